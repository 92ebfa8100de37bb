"""The credit register and the list of major violators: import, read, publish, remove.

Ratings come from the bureau's yearly evaluation as a CSV or xlsx file, checked whole before anything is written
(every problem named with its row), then written in one short transaction: all rows or none. A violator entry is
public from its publication day until it comes off: on its own date (the periodic job) or earlier, on repair or
payment (an official). Every change is audited.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from pathlib import Path

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, joinedload

from chunfeng.credit import policy
from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import LEVELS, REMOVAL_REASONS, CreditRating, Violator
from chunfeng.jobs import Progress, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, refusal, subtree_filter
from chunfeng.org.errors import Forbidden, ValidationFailed
from chunfeng.org.models import Unit
from chunfeng.paging import Page, Slice, keyset, paginate
from chunfeng.push.schema import credit_code_problem
from chunfeng.tabular import TableError, TableLimits, listed_problems, read_table

# --- the rules ------------------------------------------------------------------------------------


@cache
def rules() -> dict:
    """The rules as shipped (credit/data/rules.json), each with its source and article, or marked for review."""
    return json.loads(files("chunfeng.credit").joinpath("data/rules.json").read_text(encoding="utf-8"))


def level_rules() -> dict[str, dict]:
    return {r["level"]: r for r in rules()["levels"]}


def standard_off_date(published_on: date) -> date | None:
    """The day an entry comes off by the standard period, or None while the period awaits review (rules.json):
    then the bureau names the day itself."""
    years = rules()["violators"]["standard_period_years"]
    if not years:
        return None
    try:
        return published_on.replace(year=published_on.year + years)
    except ValueError:  # 29 February
        return published_on.replace(year=published_on.year + years, day=28)


# --- the register ---------------------------------------------------------------------------------

RATING_COLUMNS = {
    "credit_code": ("统一社会信用代码", "信用代码", "纳税人识别号", "credit_code"),
    "name": ("纳税人名称", "名称", "name"),
    "year": ("评价年度", "年度", "year"),
    "score": ("评价得分", "得分", "score"),
    "level": ("信用级别", "级别", "level"),
    "deductions": ("扣分明细", "扣分", "deductions"),
    "unit": ("主管税务机关代码", "单位代码", "unit"),
}
FIRST_YEAR = 2014  # the first yearly evaluation under the national measures
_DEDUCTION = re.compile(r"\s*([^:：;；]+?)\s*[:：]\s*(\d+(?:\.\d+)?)\s*")


def parse_deductions(text: str) -> dict[str, float]:
    """“未按期申报:5;发票违规:11” → {indicator: points}; raises ValueError naming the part it cannot read."""
    found: dict[str, float] = {}
    for part in filter(str.strip, re.split(r"[;；]", text or "")):
        m = _DEDUCTION.fullmatch(part)
        if not m:
            raise ValueError(f"“{part.strip()}”应写作“指标:扣分”")
        found[m[1]] = found.get(m[1], 0) + float(m[2])
    return found


@dataclass
class RatingPlan:
    """A checked ratings file: each row's number and its clean values."""

    file: str
    rows: list[tuple[int, dict]]


def check_ratings(*, session: Session, actor: Actor, path: Path, today: date,
                  limits: TableLimits = TableLimits()) -> RatingPlan:
    """Read and check a ratings file without writing (run it in a read session, before the write transaction).
    Every problem is listed with its row; a row at a unit outside the actor's subtree refuses the whole file."""
    authorize(actor, "credit.import")
    name = Path(path).name
    try:
        rows = read_table(path, RATING_COLUMNS, required=set(RATING_COLUMNS) - {"deductions"}, limits=limits)
    except TableError as exc:
        raise ValidationFailed(f"{name}:{exc}") from None
    units = {u.code: u for u in session.scalars(select(Unit).where(
        Unit.code.in_({r.values["unit"] for r in rows})))}
    problems: list[str] = [] if rows else ["文件中没有数据行"]
    outside: list[str] = []
    seen: dict[tuple[str, int], int] = {}
    clean: list[tuple[int, dict]] = []
    for row in rows:
        v, where = row.values, f"第 {row.number} 行"
        here: list[str] = []
        code = v["credit_code"].upper()
        if (problem := credit_code_problem(code)) is not None:
            here.append(f"{where}:统一社会信用代码“{v['credit_code']}”{problem}")
        if not v["name"]:
            here.append(f"{where}:纳税人名称为空")
        year = int(v["year"]) if re.fullmatch(r"\d{4}", v["year"]) else None
        if year is None:
            here.append(f"{where}:评价年度“{v['year']}”应为四位年份")
        elif not FIRST_YEAR <= year < today.year:
            # 第十五条: the evaluation period is a calendar year, so only a year already over can have a result.
            here.append(f"{where}:评价年度 {year} 不在 {FIRST_YEAR}–{today.year - 1} 年之间(评价周期为一个公历年度,"
                        "当年尚未结束不能评价)")
        try:
            score = float(v["score"])
            if not 0 <= score <= 100:
                raise ValueError
        except ValueError:
            score = None
            here.append(f"{where}:评价得分“{v['score']}”应为 0–100 的数值")
        level = v["level"].strip().upper().removesuffix("级")
        if level not in LEVELS:
            here.append(f"{where}:信用级别“{v['level']}”应为 A、B、M、C、D 之一")
        try:
            deductions = parse_deductions(v.get("deductions", ""))
        except ValueError as exc:
            deductions = {}
            here.append(f"{where}:扣分明细{exc}")
        unit = units.get(v["unit"])
        if unit is None:
            here.append(f"{where}:主管税务机关代码“{v['unit']}”不是已有单位")
        elif refusal(actor, "credit.import", unit) is not None:
            outside.append(f"{where}:主管税务机关“{unit.name}”不在您的管辖范围内")
        if year is not None and not here:
            if (code, year) in seen:
                here.append(f"{where}:{code} 的 {year} 年度评价与第 {seen[code, year]} 行重复")
            seen[code, year] = row.number
        problems += here
        if not here:
            clean.append((row.number, {"credit_code": code, "name": v["name"], "year": year, "score": score,
                                       "level": level, "deductions": deductions, "unit_id": unit.id if unit else None}))
    if outside:
        raise Forbidden(f"{name}:导入被拒绝,未写入任何数据:有 {len(outside)} 行属于您管辖范围以外的单位。\n"
                        + "\n".join(listed_problems(outside, limits)))
    if problems:
        raise ValidationFailed(f"{name}:导入被拒绝,未写入任何数据(共 {len(problems)} 处问题)。",
                               listed_problems(problems, limits))
    return RatingPlan(name, clean)


def import_ratings(*, session: Session, actor: Actor, path: Path, today: date, plan: RatingPlan | None = None,
                   limits: TableLimits = TableLimits(), progress: Progress = no_progress) -> tuple[int, int]:
    """Import a ratings file: all rows or none. A taxpayer's year already in the register is replaced (a
    re-evaluation), its previous level and score kept in the audit entry. Returns (added, replaced)."""
    plan = plan or check_ratings(session=session, actor=actor, path=path, today=today, limits=limits)
    codes = {v["credit_code"] for _, v in plan.rows}
    existing: dict[tuple[str, int], CreditRating] = {}
    for chunk in _chunks(sorted(codes), 500):
        for r in session.scalars(select(CreditRating).options(joinedload(CreditRating.unit))
                                 .where(CreditRating.credit_code.in_(chunk))):
            existing[r.credit_code, r.year] = r
    outside = [f"第 {n} 行:{v['credit_code']} 的 {v['year']} 年度评价已由您管辖范围以外的“{old.unit.name}”登记"
               for n, v in plan.rows if (old := existing.get((v["credit_code"], v["year"]))) is not None
               and refusal(actor, "credit.import", old.unit) is not None]
    if outside:
        raise Forbidden(f"{plan.file}:导入被拒绝,未写入任何数据。\n" + "\n".join(listed_problems(outside, limits)))
    added, replaced = 0, []
    for n, (_, v) in enumerate(plan.rows, 1):
        old = existing.get((v["credit_code"], v["year"]))
        if old is None:
            session.add(CreditRating(**v))
            added += 1
        else:
            replaced.append({"credit_code": old.credit_code, "year": old.year, "before": [old.level, old.score],
                             "after": [v["level"], v["score"]]})
            for key, value in v.items():
                setattr(old, key, value)
        if n % 500 == 0 or n == len(plan.rows):
            progress(n, len(plan.rows), "正在写入")
    session.flush()
    audit.record(session, actor=actor, action="credit.ratings.imported", object_type="file", object_id=plan.file,
                 after={"added": added, "replaced": len(replaced), "replaced_first": replaced[:50]})
    return added, len(replaced)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def list_ratings(*, session: Session, actor: Actor, q: str = "", year: int | None = None, level: str = "",
                 page: int = 1, per_page: int = 50) -> Page[CreditRating]:
    """The ratings of the actor's subtree, newest year first."""
    authorize(actor, "credit.view")
    return paginate(session, _ratings_query(actor, q, year, level), page, per_page)


def _ratings_query(actor: Actor, q: str, year: int | None, level: str) -> Select:
    query = (select(CreditRating).join(CreditRating.unit).options(joinedload(CreditRating.unit))
             .where(subtree_filter(actor)))
    if q := q.strip():
        query = query.where(or_(CreditRating.name.contains(q, autoescape=True),
                                CreditRating.credit_code.startswith(q.upper(), autoescape=True)))
    if year:
        query = query.where(CreditRating.year == year)
    if level:
        query = query.where(CreditRating.level == level)
    return query.order_by(CreditRating.year.desc(), CreditRating.credit_code)


def taxpayer_history(*, session: Session, actor: Actor, credit_code: str) -> list[CreditRating]:
    """A taxpayer's ratings, newest year first: for the taxpayer themself, or an official of a unit that rated it."""
    credit_code = credit_code.strip().upper()
    ratings = list(session.scalars(select(CreditRating).options(joinedload(CreditRating.unit))
                                   .where(CreditRating.credit_code == credit_code)
                                   .order_by(CreditRating.year.desc())))
    if refused := policy.history_refusal(actor, credit_code, [r.unit for r in ratings]):
        raise refused
    if policy.is_taxpayer(actor):
        return ratings
    # An official sees the years their own subtree rated, not another province's.
    return [r for r in ratings if refusal(actor, "credit.view", r.unit) is None]


# --- major violators ------------------------------------------------------------------------------


def _amount(text: str | Decimal, label: str, field: str | None = None) -> Decimal:
    try:
        value = Decimal(str(text).strip().replace(",", "") or "0")
    except InvalidOperation:
        raise CreditInvalid(f"{label}“{text}”不是金额", field=field) from None
    if not value.is_finite() or value < 0 or value >= Decimal("1e16"):
        raise CreditInvalid(f"{label}“{text}”应为不小于 0 的金额", field=field)
    return value.quantize(Decimal("0.01"))


def add_violator(*, session: Session, actor: Actor, credit_code: str, name: str, unit_code: str, case_nature: str,
                 facts: str, amount_unpaid: str | Decimal, amount_penalty: str | Decimal, published_on: date,
                 off_on: date | None, today: date) -> Violator:
    """Enter a published major violator. Without a date it comes off, the standard period sets one, when the rules
    confirm it; until then the date must be given."""
    authorize(actor, "credit.violators.manage")
    unit = session.scalar(select(Unit).where(Unit.code == unit_code.strip()))
    if unit is None:
        raise CreditNotFound(f"没有代码为“{unit_code}”的单位", field="unit_code")
    if refused := refusal(actor, "credit.violators.manage", unit):
        refused.field = "unit_code"  # a unit outside the official's own subtree, typed in the form
        raise refused
    credit_code = credit_code.strip().upper()
    if (problem := credit_code_problem(credit_code)) is not None:
        raise CreditInvalid(f"统一社会信用代码“{credit_code}”{problem}", field="credit_code")
    name, case_nature = name.strip(), case_nature.strip()
    if not name or len(name) > 200:
        raise CreditInvalid("失信主体名称不能为空,且不超过 200 字", field="name")
    if not case_nature or len(case_nature) > 100:
        raise CreditInvalid("案件性质不能为空,且不超过 100 字", field="case_nature")
    if published_on > today:
        raise CreditInvalid(f"公布日期 {published_on} 晚于今天:请在公布当日或之后登记", field="published_on")
    off_on = off_on or standard_off_date(published_on)
    if off_on is None:
        raise CreditInvalid("请填写撤出日期:《重大税收违法失信主体信息公布管理办法》规定的公布期限尚待复核,系统不代为计算",
                            field="off_on")
    if off_on <= published_on:
        raise CreditInvalid(f"撤出日期 {off_on} 应晚于公布日期 {published_on}", field="off_on")
    violator = Violator(credit_code=credit_code, name=name, unit=unit, case_nature=case_nature, facts=facts.strip(),
                        amount_unpaid=_amount(amount_unpaid, "违法金额", "amount_unpaid"),
                        amount_penalty=_amount(amount_penalty, "罚款及滞纳金", "amount_penalty"),
                        published_on=published_on, off_on=off_on, removal_note="")
    session.add(violator)
    session.flush()
    audit.record(session, actor=actor, action="credit.violator.added", object_type="credit_violator",
                 object_id=violator.id, after=_violator_fields(violator))
    return violator


def _violator_fields(v: Violator) -> dict:
    return {"credit_code": v.credit_code, "name": v.name, "unit": v.unit.code, "case_nature": v.case_nature,
            "amount_unpaid": str(v.amount_unpaid), "amount_penalty": str(v.amount_penalty),
            "published_on": str(v.published_on), "off_on": str(v.off_on),
            "removed_on": str(v.removed_on) if v.removed_on else None, "removal_reason": v.removal_reason}


def remove_violator(*, session: Session, actor: Actor, violator_id: int, reason: str, note: str, today: date) -> Violator:
    """Take an entry off the public list before its date, on repair or payment; the reason is required."""
    authorize(actor, "credit.violators.manage")
    violator = session.get(Violator, violator_id, with_for_update=True)
    if violator is None or refusal(actor, "credit.violators.manage", violator.unit) is not None:
        raise CreditNotFound(f"没有编号为 {violator_id} 的失信主体记录")
    if reason not in REMOVAL_REASONS or reason == "expired":
        raise CreditInvalid("提前撤出的原因应为“信用修复”或“缴清税款、滞纳金和罚款”", field="reason")
    if refused := policy.remove_refusal(actor, violator):
        raise refused
    if not note.strip():
        raise CreditInvalid("请写明提前撤出的依据(如修复决定或缴款凭证编号)", field="note")
    before = _violator_fields(violator)
    violator.removed_on, violator.removal_reason, violator.removal_note = today, reason, note.strip()[:2000]
    audit.record(session, actor=actor, action="credit.violator.removed", object_type="credit_violator",
                 object_id=violator.id, before=before, after=_violator_fields(violator))
    return violator


def _published(today: date) -> list:
    return [Violator.removed_on.is_(None), Violator.published_on <= today, Violator.off_on > today]


def _public_entries(q: str, today: date) -> Select:
    query = select(Violator).where(*_published(today))
    if q := q.strip():
        query = query.where(or_(Violator.name.contains(q, autoescape=True),
                                Violator.credit_code.startswith(q.upper(), autoescape=True)))
    return query


# The list's order, newest first; the index ix_credit_violator_public_order (migration 0031) serves it at any depth.
PUBLIC_ORDER = (Violator.published_on, Violator.id)
PUBLIC_COUNT_LIMIT = 10_000  # beyond it a page says “超过 10,000 条” instead of counting a national list each time
_CURSOR = re.compile(r"(\d{4}-\d{2}-\d{2})\.(\d{1,10})")


def public_query(*, q: str = "", today: date) -> Select:
    """The entries on the public list today, newest first."""
    return _public_entries(q, today).order_by(*(k.desc() for k in PUBLIC_ORDER))


def violator_cursor(v: Violator) -> tuple[date, int]:
    return v.published_on, v.id


def format_cursor(key: tuple[date, int] | None) -> str | None:
    """A page's place in the list as it goes into a link (and a bookmark): “公布日期.编号” of the entry beside it."""
    return None if key is None else f"{key[0].isoformat()}.{key[1]}"


def parse_cursor(text: str | None, name: str) -> tuple[date, int] | None:
    """The place a link names (`after` or `before`); a malformed one is refused naming it, never guessed."""
    if text is None or text == "":
        return None
    m = _CURSOR.fullmatch(text)
    try:
        if m is None:
            raise ValueError
        if not 0 < int(m[2]) < 2**31:  # an id the column can hold, so PostgreSQL compares it rather than fails
            raise ValueError
        return date.fromisoformat(m[1]), int(m[2])
    except ValueError:
        raise CreditInvalid(f"翻页参数 {name}=“{text[:40]}”无效:应为“公布日期.编号”(如 2026-12-01.123),"
                            "请从第一页重新翻页", field=name) from None


def public_violators(*, session: Session, q: str = "", today: date, after: str | None = None,
                     before: str | None = None, per_page: int = 50) -> Slice[Violator]:
    """A page of the public list by keyset: the entries after (older than) or before (newer than) the cursor a
    previous page's link carries, whatever the depth, with the total counted up to PUBLIC_COUNT_LIMIT."""
    after_key, before_key = parse_cursor(after, "after"), parse_cursor(before, "before")
    if after_key and before_key:
        raise CreditInvalid("翻页参数 after 与 before 只能给出一个", field="before")
    return keyset(session, _public_entries(q, today), PUBLIC_ORDER, violator_cursor, after=after_key,
                  before=before_key, per_page=per_page, count_limit=PUBLIC_COUNT_LIMIT)


def list_violators(*, session: Session, actor: Actor, q: str = "", page: int = 1, per_page: int = 50) -> Page[Violator]:
    """Every entry of the actor's subtree, on the list or off it, for the officials who manage them."""
    authorize(actor, "credit.violators.manage")
    query = (select(Violator).join(Violator.unit).options(joinedload(Violator.unit)).where(subtree_filter(actor)))
    if q := q.strip():
        query = query.where(or_(Violator.name.contains(q, autoescape=True),
                                Violator.credit_code.startswith(q.upper(), autoescape=True)))
    return paginate(session, query.order_by(Violator.published_on.desc(), Violator.id.desc()), page, per_page)


def expire_violators(*, session: Session, today: date) -> int:
    """Take off the list every entry whose date has come (the periodic job); each removal audited."""
    due = list(session.scalars(select(Violator).options(joinedload(Violator.unit))
                               .where(Violator.removed_on.is_(None), Violator.off_on <= today)
                               .order_by(Violator.id).with_for_update(of=Violator)))
    worker = SystemActor(username="worker")
    for violator in due:
        before = _violator_fields(violator)
        violator.removed_on, violator.removal_reason = today, "expired"
        audit.record(session, actor=worker, action="credit.violator.expired", object_type="credit_violator",
                     object_id=violator.id, before=before, after=_violator_fields(violator))
    return len(due)


# --- incentives -----------------------------------------------------------------------------------

A_LIST_HEADERS = ["统一社会信用代码", "纳税人名称", "评价年度", "信用级别", "评价得分", "主管税务机关"]


def partner_departments() -> dict[str, str]:
    """The departments an A-level list goes to for joint incentives (measure 121 names them)."""
    return rules()["incentives"]["partner_departments"]["departments"]


def a_list(*, session: Session, actor: Actor, year: int, department: str):
    """The A-level taxpayers of the actor's subtree for `year`, as rows for a partner department's file. Checked
    before any row is read, so a bad request starts no export."""
    authorize(actor, "credit.view")
    if department not in partner_departments():
        raise CreditInvalid(f"未知的接收部门“{department[:20]}”,应为 " + "、".join(partner_departments().values()))
    query = _ratings_query(actor, "", year, "A").order_by(None).order_by(CreditRating.credit_code)
    return ([r.credit_code, r.name, r.year, f"{r.level}级", r.score, r.unit.name]
            for r in session.scalars(query).yield_per(1000))
