"""Lower-level units (municipal, county, branch) imported from CSV or xlsx: checked in a read session, then
written in one short transaction, all rows or none, every problem named with its row."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.jobs import Progress, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.models import Unit
from chunfeng.org.roles import LEVELS, PARENT_LEVELS
from chunfeng.tabular import TableError, TableLimits, listed_problems, read_table

UNIT_COLUMNS = {
    "code": ("code", "代码", "单位代码", "税务机关代码"),
    "parent_code": ("parent_code", "上级代码", "上级单位代码", "parent"),
    "name": ("name", "名称", "单位名称"),
    "level": ("level", "层级", "级别"),
}

_LEVEL_WORDS = {
    "municipal": "municipal", "市级": "municipal", "市": "municipal", "地市": "municipal", "市局": "municipal",
    "county": "county", "县级": "county", "县": "county", "区县": "county", "县区": "county", "县局": "county",
    "branch": "branch", "分局": "branch", "税务所": "branch", "分局（所）": "branch", "所": "branch",
}


# A unit code ends up in paths, URLs, file names and (as a region prefix) queries: letters, digits, _ and - only.
UNIT_CODE = re.compile(r"[0-9A-Za-z_-]{1,32}")


@dataclass
class UnitPlan:
    """A checked unit file: each code's row number, parent, name and canonical level."""

    file: str
    rows: dict[str, tuple[int, dict[str, str]]]


def check_units(*, session: Session, actor: Actor, path: Path, limits: TableLimits = TableLimits()) -> UnitPlan:
    """Read and check a unit file without writing: run it in a read session, before the write transaction,
    so that a large or hostile file holds no lock while it is parsed. Every problem with its row number.
    """
    try:
        rows = read_table(path, UNIT_COLUMNS, required=set(UNIT_COLUMNS), limits=limits)
    except TableError as exc:
        raise ValidationFailed(f"{Path(path).name}:{exc}") from None
    problems: list[tuple[int, str]] = []  # (row, message): reported in row order
    if not rows:
        problems.append((0, "文件中没有数据行"))
    by_code: dict[str, tuple[int, dict[str, str]]] = {}
    existing = {u.code: u for u in session.scalars(select(Unit))}
    for row in rows:
        v = row.values
        code, parent, name, level = v["code"], v["parent_code"], v["name"], v["level"]
        where = f"第 {row.number} 行"
        if not code:
            problems.append((row.number, f"{where}:代码为空"))
            continue
        if code in by_code:
            problems.append((row.number, f"{where}:代码“{code}”与第 {by_code[code][0]} 行重复"))
            continue
        if code in existing:
            problems.append((row.number, f"{where}:代码“{code}”已存在(“{existing[code].name}”)"))
        if not UNIT_CODE.fullmatch(code):
            problems.append((row.number, f"{where}:代码“{code}”不合规(只能由字母、数字、“_”和“-”组成,不超过 32 位)"))
        if not name:
            problems.append((row.number, f"{where}:名称为空"))
        canonical_level = _LEVEL_WORDS.get(level.strip().lower())
        if canonical_level is None:
            problems.append((row.number, f"{where}:层级“{level}”无法识别,应为 市级 / 县级 / 分局(或 municipal / county / branch)"))
        if not parent:
            problems.append((row.number, f"{where}:上级代码为空"))
        by_code[code] = (row.number, {"parent": parent, "name": name, "level": canonical_level or ""})

    # Resolve parents once every row is known, so a file may list children before their parents.
    def parent_level(code: str) -> str | None:
        if code in by_code:
            return by_code[code][1]["level"]
        return existing[code].level if code in existing else None

    for number, v in by_code.values():
        if not v["parent"] or not v["level"]:
            continue
        plevel = parent_level(v["parent"])
        if plevel is None:
            problems.append((number, f"第 {number} 行:上级代码“{v['parent']}”既不是已有单位,也不在本文件中"))
        elif plevel and plevel not in PARENT_LEVELS[v["level"]]:
            problems.append((number, f"第 {number} 行:{LEVELS[v['level']]}不能隶属于{LEVELS.get(plevel, plevel)}"
                                     f"(上级代码“{v['parent']}”)"))
    for _, v in by_code.values():
        if v["parent"] in existing:  # outside the actor's subtree: refused before anything is written
            authorize(actor, "org.unit.import", existing[v["parent"]])
    if problems:
        raise ValidationFailed(f"{Path(path).name}:导入被拒绝,未写入任何数据(共 {len(problems)} 处问题)。",
                               listed_problems([message for _, message in sorted(problems, key=lambda p: p[0])],
                                               limits))
    return UnitPlan(Path(path).name, by_code)


def import_units(*, session: Session, actor: Actor, path: Path, plan: UnitPlan | None = None,
                 limits: TableLimits = TableLimits(), progress: Progress = no_progress) -> int:
    """Import lower-level units (municipal, county, branch) from CSV or xlsx: all rows, or none.

    Parents may be existing units or rows of the same file, in any order; every unit must end up
    inside the actor's subtree. `plan` is `check_units`' answer when the caller checked the file before
    opening this transaction (pages and CLI do); only what may have changed since is checked again here.
    """
    plan = plan or check_units(session=session, actor=actor, path=path, limits=limits)
    by_code = plan.rows
    existing = {u.code: u for u in session.scalars(select(Unit))}
    taken = [f"第 {by_code[c][0]} 行:代码“{c}”已存在(“{existing[c].name}”)" for c in by_code if c in existing]
    gone = [f"第 {n} 行:上级代码“{v['parent']}”已不存在" for n, v in by_code.values()
            if v["parent"] not in existing and v["parent"] not in by_code]
    if taken or gone:  # another import or an edit got there between the check and this transaction
        raise ValidationFailed(f"{plan.file}:导入被拒绝,未写入任何数据。", listed_problems(taken + gone, limits))

    created: dict[str, Unit] = {}

    def materialise(code: str, seen: tuple[str, ...] = ()) -> Unit:
        if code in existing:
            return existing[code]
        if code in created:
            return created[code]
        if code in seen:
            raise ValidationFailed(f"{plan.file}:导入被拒绝,未写入任何数据。",
                                   [f"第 {by_code[code][0]} 行:上级关系成环({' → '.join(seen + (code,))})"])
        number, v = by_code[code]
        parent = materialise(v["parent"], seen + (code,))
        authorize(actor, "org.unit.import", parent)
        unit = Unit(code=code, name=v["name"], level=v["level"], parent=parent,
                    path=parent.path + code + "/", sort=number)
        session.add(unit)
        created[code] = unit
        return unit

    for n, code in enumerate(by_code, 1):
        materialise(code)
        progress(n, len(by_code), "正在写入")
    session.flush()
    audit.record(session, actor=actor, action="org.units.imported", object_type="file", object_id=plan.file,
                 after={"count": len(created), "codes": sorted(created)[:50]})
    return len(created)
