"""The knowledge base in and out: xlsx, CSV, JSON and Markdown. Imports are all or nothing, every
problem named with its row (or, for Markdown, its heading's line)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.bounds import LAW_DAY_MIN, OutOfBounds, bounded_day
from chunfeng.consult import policy
from chunfeng.consult.errors import ConsultInvalid
from chunfeng.consult.knowledge import entry_length_problems, save_entry
from chunfeng.consult.models import KbEntry
from chunfeng.jobs import Progress, no_progress
from chunfeng.org.access import Actor, authorize
from chunfeng.org.models import Unit
from chunfeng.tabular import MB, TableError, TableLimits, decode_text, listed_problems, read_table, write_csv
from chunfeng.xlsx import write_table

FIELDS = {  # canonical name: accepted headers, the first being what exports write
    "key": ("编号", "id", "key"),
    "question": ("问题", "question"),
    "phrasings": ("其他问法", "phrasings", "别称"),
    "answer": ("答案", "answer"),
    "basis": ("政策依据", "basis", "依据"),
    "article": ("条款", "article"),
    "tags": ("标签", "tags"),
    "region": ("地区", "region"),
    "effective_from": ("生效日期", "effective_from"),
    "effective_until": ("失效日期", "effective_until"),
    "status": ("状态", "status"),
    "repeals": ("废止文件", "repeals"),  # documents this entry's basis replaced: see knowledge.review_queue
}
FORMATS = ("xlsx", "csv", "json", "md")


def _day(value, where: str, label: str, problems: list[str]) -> date | None:
    text = str(value or "").strip()[:10]
    if not text:
        return None
    try:
        return bounded_day(text, label, earliest=LAW_DAY_MIN)
    except OutOfBounds as exc:
        problems.append(f"{where}:{exc}")
        return None


def _rows_from_file(path: Path, limits: TableLimits) -> list[tuple[str, dict]]:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("xlsx", "csv"):
        try:
            rows = read_table(path, FIELDS, required={"question", "answer"}, limits=limits)
        except TableError as exc:
            raise ConsultInvalid(f"{path.name}:{exc}") from None
        return [(f"第 {r.number} 行", r.values) for r in rows]
    if path.stat().st_size > limits.max_file_mb * MB:
        raise ConsultInvalid(f"{path.name}:文件超过上限 {limits.max_file_mb} MB")
    text = decode_text(path.read_bytes())
    if suffix == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConsultInvalid(f"{path.name}:不是有效的 JSON(第 {exc.lineno} 行第 {exc.colno} 列:{exc.msg})") from None
        except RecursionError:  # thousands of nested brackets: no entry looks like that
            raise ConsultInvalid(f"{path.name}:JSON 嵌套过深,不是知识条目的格式") from None
        items = data.get("entries", []) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ConsultInvalid(f"{path.name}:JSON 应为条目的数组,或含 entries 数组的对象")
        if len(items) > limits.max_rows:
            raise ConsultInvalid(f"{path.name}:超过 {limits.max_rows} 个条目的上限;请拆分后分批导入")
        rows = []
        for i, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise ConsultInvalid(f"{path.name}:第 {i} 个条目不是对象")
            rows.append((f"第 {i} 个条目", {("key" if k == "id" else k): v for k, v in item.items()}))
        return rows
    if suffix in ("md", "markdown"):
        rows = _markdown_rows(text)
        if len(rows) > limits.max_rows:
            raise ConsultInvalid(f"{path.name}:超过 {limits.max_rows} 个条目的上限;请拆分后分批导入")
        return rows
    raise ConsultInvalid(f"{path.name}:不支持的格式,可导入 {'、'.join(FORMATS)}")


_MD_META = {"其他问法": "phrasings", "依据": "basis", "政策依据": "basis", "条款": "article", "标签": "tags",
            "地区": "region", "生效": "effective_from", "生效日期": "effective_from", "失效": "effective_until",
            "失效日期": "effective_until", "状态": "status", "废止文件": "repeals"}


def _markdown_rows(text: str) -> list[tuple[str, dict]]:
    rows, current, answer, start = [], None, [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            if current is not None:
                current["answer"] = "\n".join(answer).strip()
                rows.append((f"第 {start} 行的条目", current))
            head = line[3:].strip()
            m = re.match(r"^(kb-\d+)\s+(.*)$", head)
            current, answer, start = ({"key": m[1], "question": m[2]} if m else {"question": head}), [], number
        elif current is not None:
            m = re.match(r"^-\s*([^::]+)[::]\s*(.*)$", line)
            if m and m[1].strip() in _MD_META:
                current[_MD_META[m[1].strip()]] = m[2].strip()
            else:
                answer.append(line)
    if current is not None:
        current["answer"] = "\n".join(answer).strip()
        rows.append((f"第 {start} 行的条目", current))
    return rows


_TEXT_FIELDS = ("key", "question", "answer", "basis", "article", "region", "effective_from", "effective_until",
                "status")


def _typed(values: dict, where: str, problems: list[str]) -> dict:
    """Keep what has the right type: text (a number is taken as its text) for each field, text or a list of
    text for phrasings and tags; anything else (objects, nested lists, true/false) is a problem naming the field."""
    kept = {}
    for field, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if field in _TEXT_FIELDS and not isinstance(value, str):
            problems.append(f"{where}:{FIELDS[field][0]}应为文字,不能是{type(value).__name__}")
        elif field in ("phrasings", "tags", "repeals") and not (
                isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            problems.append(f"{where}:{FIELDS[field][0]}应为文字或文字的数组")
        else:
            kept[field] = value
    return kept


@dataclass
class EntryPlan:
    """A checked knowledge-base file: each entry's key (or "") and values, ready to save."""

    file: str
    entries: list[tuple[str, dict]]


def check_entries(*, session: Session, actor: Actor, path: Path, limits: TableLimits = TableLimits()) -> EntryPlan:
    """Read and check a knowledge-base file without writing: run it before the write transaction, so that a
    large or hostile file holds no lock while it is parsed. Every problem named with its row or entry."""
    authorize(actor, "consult.kb.edit")
    path = Path(path)
    rows = _rows_from_file(path, limits)
    if not rows:
        raise ConsultInvalid(f"{path.name}:文件中没有条目")
    units = set(session.scalars(select(Unit.code)))
    seen: dict[str, str] = {}
    problems, prepared = [], []
    for where, raw in rows:
        values = _typed({k: raw.get(k) for k in FIELDS if raw.get(k) not in (None, "")}, where, problems)
        key = str(values.get("key") or "").strip()
        if key:
            if key in seen:
                problems.append(f"{where}:编号“{key}”与{seen[key]}重复")
            seen[key] = where
        for field in ("question", "answer"):
            if not str(values.get(field) or "").strip():
                problems.append(f"{where}:{FIELDS[field][0]}为空")
        values["effective_from"] = _day(values.get("effective_from"), where, "生效日期", problems)
        values["effective_until"] = _day(values.get("effective_until"), where, "失效日期", problems)
        region = str(values.get("region") or "national").strip()
        if region not in ("national", "全国") and region not in units:
            problems.append(f"{where}:地区“{region[:40]}”不是 national 或已知的单位代码")
        values["region"] = "national" if region == "全国" else region
        status = str(values.get("status") or "published").strip()
        values["status"] = {"草稿": "draft", "已发布": "published"}.get(status, status)
        if values["status"] not in ("draft", "published"):
            problems.append(f"{where}:状态“{status[:40]}”无效,应为 published(已发布)或 draft(草稿)")
        if values["effective_from"] and values["effective_until"] and values["effective_until"] < values["effective_from"]:
            problems.append(f"{where}:失效日期早于生效日期")
        problems += [f"{where}:{p}" for p in entry_length_problems({**values, "key": key})]
        prepared.append((key, values))
    if problems:
        raise ConsultInvalid(f"{path.name}:导入被拒绝,未写入任何条目(共 {len(problems)} 处问题)。\n"
                             + "\n".join(listed_problems(problems, limits)))
    return EntryPlan(path.name, prepared)


def import_entries(*, session: Session, actor: Actor, path: Path, sample: bool = False,
                   plan: EntryPlan | None = None, limits: TableLimits = TableLimits(),
                   progress: Progress = no_progress) -> tuple[int, int]:
    """Create or update entries from a file; returns (created, updated). Nothing is kept if any row is bad.
    `plan` is `check_entries`' answer when the caller checked the file before opening this transaction."""
    plan = plan or check_entries(session=session, actor=actor, path=path, limits=limits)
    prepared = plan.entries
    existing = set(session.scalars(select(KbEntry.key)))  # all of them: a long IN list overflows SQLite's variables
    created = updated = 0
    for n, (key, values) in enumerate(prepared, 1):
        progress(n, len(prepared), "正在写入")
        if key and key in existing:
            save_entry(session=session, actor=actor, values=values, key=key)
            updated += 1
        else:
            entry = save_entry(session=session, actor=actor, values={**values, "key": key or None})
            entry.sample = sample
            if sample:  # shipped sample content waits for an official's review (knowledge.review_queue)
                entry.reviewed_at = None
            created += 1
    return created, updated


def export_entries(*, session: Session, actor: Actor, fmt: str, path: Path) -> int:
    """Every entry `actor` may read (policy.entries_within: drafts only of its subtree) to `path`."""
    authorize(actor, "consult.agent")
    entries = list(session.scalars(select(KbEntry).where(policy.entries_within(session, actor)).order_by(KbEntry.key)))
    records = [{"key": e.key, "question": e.question, "phrasings": e.phrasing_list, "answer": e.answer, "basis": e.basis,
                "article": e.article, "tags": e.tag_list, "region": e.region,
                "effective_from": e.effective_from.isoformat() if e.effective_from else "",
                "effective_until": e.effective_until.isoformat() if e.effective_until else "", "status": e.status,
                "repeals": e.repeal_list}
               for e in entries]
    if fmt == "json":
        path.write_text(json.dumps({"entries": [{("id" if k == "key" else k): v for k, v in r.items()} for r in records]},
                                   ensure_ascii=False, indent=1), encoding="utf-8")
    elif fmt in ("csv", "xlsx"):
        headers = [FIELDS[f][0] for f in FIELDS]
        flat = [[" | ".join(v) if isinstance(v, list) and f in ("phrasings", "repeals") else ",".join(v) if isinstance(v, list) else v
                 for f, v in r.items()] for r in records]
        if fmt == "csv":
            write_csv(path, headers=headers, rows=flat)
        else:
            write_table(path, sheet="知识库", headers=headers, rows=flat,
                        widths=[10, 40, 40, 60, 30, 12, 20, 10, 12, 12, 8, 30])
    elif fmt == "md":
        parts = ["# 春风 12366 知识库\n"]
        for r in records:
            parts.append(f"## {r['key']} {r['question']}")
            for label, f in (("其他问法", "phrasings"), ("依据", "basis"), ("条款", "article"), ("标签", "tags"),
                             ("地区", "region"), ("生效", "effective_from"), ("失效", "effective_until"),
                             ("状态", "status"), ("废止文件", "repeals")):
                value = " | ".join(r[f]) if f in ("phrasings", "repeals") else ",".join(r[f]) if f == "tags" else r[f]
                if value:
                    parts.append(f"- {label}: {value}")
            parts.append("")
            parts.append(r["answer"])
            parts.append("")
        path.write_text("\n".join(parts), encoding="utf-8")
    else:
        raise ConsultInvalid(f"不支持的格式“{fmt}”,可导出 {'、'.join(FORMATS)}")
    return len(records)


def starter_path() -> Path:
    return Path(str(resources.files("chunfeng.consult").joinpath("data", "starter_kb.json")))


def load_starter(*, session: Session, actor: Actor) -> int:
    """The sample knowledge base written for this project, once, marked as sample content."""
    if session.scalar(select(KbEntry.id).limit(1)):
        return 0
    created, _ = import_entries(session=session, actor=actor, path=starter_path(), sample=True)
    return created
