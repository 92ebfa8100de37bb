"""Reports in bulk: the unit's exported ledger xlsx, filled in and uploaded. All rows or none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.errors import ChunfengError
from chunfeng.jobs import Progress, no_progress
from chunfeng.ledger import reporting
from chunfeng.ledger.errors import LedgerInvalid
from chunfeng.ledger.models import STATUSES, Assignment, ProgressReport
from chunfeng.ledger.warnings import last_finished_period
from chunfeng.org.access import Actor, SystemActor
from chunfeng.org.services import find_unit
from chunfeng.tabular import TableError, TableLimits, listed_problems, read_table

COLUMNS = {
    "measure_no": ("序号", "measure", "measure_no"),
    "unit_code": ("单位代码", "unit", "unit_code"),
    "status": ("状态", "status"),
    "percent": ("完成百分比", "percent"),
    "narrative": ("进展情况", "narrative"),
    "period": ("报告期", "period"),
}
_STATUS_WORDS = {**{v: k for k, v in STATUSES.items()}, **{k: k for k in STATUSES}}


@dataclass
class BulkResult:
    submitted: int = 0
    skipped_other_units: int = 0
    skipped_empty: int = 0


@dataclass
class BulkPlan:
    """A checked bulk file: the reports to submit (assignment, status, percent, narrative, period, version)."""

    file: str
    reports: list[tuple[int, str | None, float | None, str, str, int | None]]
    result: BulkResult


def check_reports(*, session: Session, actor: Actor, path: Path, period: str | None = None,
                  today: date | None = None, limits: TableLimits = TableLimits()) -> BulkPlan:
    """Read and check every row of the actor's own unit whose 进展情况 is filled in, without writing: run it
    before the write transaction, so that a large or hostile file holds no lock while it is parsed.

    Rows of other units (a subtree export holds them) and rows left empty are skipped; any problem
    in any row refuses the whole file, each problem named with its row.
    """
    if isinstance(actor, SystemActor):
        raise LedgerInvalid("批量填报属于具体单位,请用 --as 指定填报人")
    try:
        rows = read_table(path, COLUMNS, required={"measure_no", "unit_code", "status", "percent", "narrative"},
                          limits=limits)
    except TableError as exc:
        raise LedgerInvalid(f"{Path(path).name}:{exc}") from None
    own = actor.unit.code
    held = {a.measure_no: a for a in session.scalars(select(Assignment).where(Assignment.unit_id == actor.unit.id))}
    result, problems, reports = BulkResult(), [], []
    for row in rows:
        v = row.values
        if v["unit_code"] != own:
            result.skipped_other_units += 1
            continue
        if not v["narrative"].strip():
            result.skipped_empty += 1
            continue
        where = f"第 {row.number} 行"
        try:
            no = int(float(v["measure_no"]))
        except (ValueError, OverflowError):
            problems.append(f"{where}:序号“{v['measure_no'][:20]}”不是数字")
            continue
        assignment = held.get(no)
        if assignment is None:
            problems.append(f"{where}:本单位没有承担第 {no} 条措施")
            continue
        # A broken-down assignment's row is a narrative only: its status and percent cells may be blank.
        rolled = reporting.rolled_up(session=session, assignment=assignment)
        status_text, percent_text = v["status"].strip(), v["percent"].strip().rstrip("%")
        status = _STATUS_WORDS.get(status_text) if status_text or not rolled else None
        if status is None and (status_text or not rolled):
            problems.append(f"{where}:状态“{v['status'][:20]}”无效,应为 {'、'.join(STATUSES.values())}")
            continue
        try:
            percent = float(percent_text) if percent_text or not rolled else None
        except ValueError:
            problems.append(f"{where}:完成百分比“{v['percent'][:20]}”不是数字")
            continue
        if rolled and status in (None, assignment.status) and percent in (None, assignment.progress):
            status = percent = None  # the export's copy of the rolled-up figures, not a report of them
        row_period = v.get("period", "").strip() or period or last_finished_period(today or date.today(), assignment.cycle)[0]
        current = session.scalar(select(ProgressReport).where(ProgressReport.assignment_id == assignment.id,
                                                              ProgressReport.period == row_period))
        version = current.version if current else None
        try:
            # Uploading the file is the deliberate act of replacing the unit's own unreviewed report.
            reporting.check_report(session=session, actor=actor, assignment_id=assignment.id, status=status,
                                  percent=percent, narrative=v["narrative"].strip(), period=row_period,
                                  expected_version=version, today=today)
        except ChunfengError as exc:
            problems.append(f"{where}(第 {no} 条):{exc}")
            continue
        reports.append((assignment.id, status, percent, v["narrative"].strip(), row_period, version))
    if problems:
        raise LedgerInvalid(f"{Path(path).name}:批量填报被拒绝,未提交任何报告(共 {len(problems)} 处问题)。\n"
                            + "\n".join(listed_problems(problems, limits)))
    if not reports:
        raise LedgerInvalid(f"{Path(path).name}:没有找到本单位({find_unit(session=session, code=own).name})"
                            f"填写了进展情况的行")
    return BulkPlan(Path(path).name, reports, result)


def import_reports(*, session: Session, actor: Actor, path: Path, period: str | None = None,
                   today: date | None = None, grace_days: int = 10, plan: BulkPlan | None = None,
                   limits: TableLimits = TableLimits(), progress: Progress = no_progress) -> BulkResult:
    """Submit a report for every row of the actor's own unit whose 进展情况 is filled in, all or none.
    `plan` is `check_reports`' answer when the caller checked the file before opening this transaction."""
    plan = plan or check_reports(session=session, actor=actor, path=path, period=period, today=today, limits=limits)
    result = BulkResult(skipped_other_units=plan.result.skipped_other_units, skipped_empty=plan.result.skipped_empty)
    problems = []
    for n, (assignment_id, status, percent, narrative, row_period, version) in enumerate(plan.reports, 1):
        progress(n, len(plan.reports), "正在提交报告")
        try:
            with session.begin_nested():
                reporting.submit_report(session=session, actor=actor, assignment_id=assignment_id, status=status,
                                       percent=percent, narrative=narrative, period=row_period,
                                       expected_version=version, today=today, grace_days=grace_days)
            result.submitted += 1
        except ChunfengError as exc:  # changed by someone else since the check
            problems.append(f"{row_period}:{exc}")
    if problems:
        raise LedgerInvalid(f"{plan.file}:批量填报被拒绝,未提交任何报告。\n" + "\n".join(listed_problems(problems, limits)))
    return result
