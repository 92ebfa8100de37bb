"""Progress reports and their review: a unit reports on its assignment for a period (status, percent, narrative,
indicator values, evidence), its direct parent approves or returns it, and an approval moves the assignment and
every ancestor up the chain (`services.roll_up`) and their lights (`warnings.relight`) in the same transaction.
Keyword-only, over a session; the caller owns the transaction, and every change writes its audit entry here.

A unit holding a broken-down assignment reports a narrative only (情况说明): its progress is rolled up from its
children, so the service refuses a status or percent there, which an approval could not apply.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.bounds import TEXT, length_problem
from chunfeng.db import utcnow
from chunfeng.ledger import policy
from chunfeng.ledger.errors import LedgerInvalid, LedgerNotFound, StaleReport
from chunfeng.ledger.models import STATUSES, Assignment, Indicator, IndicatorValue, ProgressReport
from chunfeng.ledger.periods import period_bounds, period_of
from chunfeng.ledger.services import get_assignment, has_children, lock_chain, recompute
from chunfeng.ledger.warnings import DEFAULT_RULES, WarningRules, relight
from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize


def _check_report_values(report_status: str | None, percent: float | None, assignment: Assignment) -> None:
    if report_status is None:
        raise LedgerInvalid("请选择状态", field="status")
    if report_status not in STATUSES:
        raise LedgerInvalid(f"状态“{report_status}”无效,应为 {'、'.join(f'{k}({v})' for k, v in STATUSES.items())}",
                            field="status")
    if percent is None:
        raise LedgerInvalid("请填写完成百分比", field="percent")
    if not math.isfinite(percent) or not 0 <= percent <= 100:
        raise LedgerInvalid(f"完成百分比 {percent} 超出 0–100", field="percent")
    if report_status == "done" and percent != 100:
        raise LedgerInvalid("状态为“已完成”时完成百分比应为 100", field="percent")
    if report_status == "not_started" and percent != 0:
        raise LedgerInvalid("状态为“未开始”时完成百分比应为 0", field="percent")
    if report_status == "ongoing" and not assignment.ongoing:
        raise LedgerInvalid("只有长期坚持的任务可以报告为“长期坚持”", field="status")


def rolled_up(*, session: Session, assignment: Assignment) -> bool:
    """Whether the assignment takes its progress from its children (it was broken down): its unit reports a
    narrative only."""
    return has_children(session, assignment.id)


def _check_narrative_only(status: str | None, percent: float | None, narrative: str, assignment: Assignment) -> None:
    if status is not None or percent is not None:
        raise LedgerInvalid(f"第 {assignment.measure_no} 条任务已分解下达,进度由下级任务汇总(当前 {assignment.progress:g}%),"
                            "不能填报状态和完成百分比,审核通过也不会改变进度;请只填写情况说明", field="percent")
    if not narrative.strip():
        raise LedgerInvalid("请填写情况说明(本任务进度由下级任务汇总,只报告文字情况)", field="narrative")


def check_report(*, session: Session, actor: Actor, assignment_id: int, status: str | None, percent: float | None,
                 narrative: str = "", period: str | None = None, values: dict[int, float] | None = None,
                 expected_version: int | None = None,
                 today: date | None = None) -> tuple[Assignment, str, ProgressReport | None]:
    """Everything `submit_report` checks, without writing: the assignment, the period and the report it would
    replace. A bulk upload runs it on every row before its write transaction.

    On a rolled-up assignment (broken down) `status` and `percent` must be None: the report is a narrative only."""
    if problem := length_problem(narrative, "进展情况", TEXT):
        raise LedgerInvalid(problem, field="narrative")
    assignment = get_assignment(session=session, actor=actor, assignment_id=assignment_id)
    if refused := policy.report_refusal(actor, assignment):
        raise refused
    period = period or period_of(today or date.today(), assignment.cycle)
    start, _ = period_bounds(period, assignment.cycle)
    if start > (today or date.today()):
        raise LedgerInvalid(f"报告期 {period} 尚未开始", field="period")
    if rolled_up(session=session, assignment=assignment):
        _check_narrative_only(status, percent, narrative, assignment)
    else:
        _check_report_values(status, percent, assignment)
    indicators = {i.id: i for i in session.scalars(select(Indicator).where(Indicator.measure_id == assignment.measure_id))}
    for indicator_id, value in (values or {}).items():
        if indicator_id not in indicators:
            raise LedgerInvalid(f"指标 {indicator_id} 不属于第 {assignment.measure_no} 条措施")
        if not math.isfinite(value):  # NaN would be stored as NULL by SQLite, and compares with nothing
            raise LedgerInvalid(f"指标“{indicators[indicator_id].name}”的值 {value} 不是有限的数",
                                field=f"indicator_{indicator_id}")
    report = session.scalar(select(ProgressReport).where(ProgressReport.assignment_id == assignment.id,
                                                         ProgressReport.period == period))
    if report is not None:
        if report.state == "approved":
            raise LedgerInvalid(f"{period} 的报告已审核通过,不能再修改", field="period")
        if expected_version is None or expected_version != report.version:
            raise StaleReport(f"{period} 的报告已被 {report.submitted_by} 于 {report.submitted_at:%Y-%m-%d %H:%M} 修改"
                              f"(版本 {report.version}),请刷新后在最新内容上修改")
    return assignment, period, report


def submit_report(*, session: Session, actor: Actor, assignment_id: int, status: str | None, percent: float | None,
                  narrative: str = "", period: str | None = None, values: dict[int, float] | None = None,
                  expected_version: int | None = None, today: date | None = None,
                  grace_days: int = 10) -> ProgressReport:
    """Report (or resubmit a returned report) on the actor's own unit's assignment for one period.

    A report already in the database is changed only if `expected_version` is the version its author
    read: two officials saving the same report never silently overwrite each other. On a rolled-up assignment
    (`status` and `percent` None) the report keeps the rolled-up status and progress of the day it was written.
    """
    assignment, period, report = check_report(session=session, actor=actor, assignment_id=assignment_id,
                                              status=status, percent=percent, narrative=narrative, period=period,
                                              values=values, expected_version=expected_version, today=today)
    _, end = period_bounds(period, assignment.cycle)
    before = None
    if report is not None:
        before = _report_snapshot(report)
        report.values.clear()
        session.flush()
    else:
        # On time: the first submission no later than `grace_days` after the period ended.
        report = ProgressReport(assignment_id=assignment.id, period=period,
                                on_time=(today or date.today()) <= end + timedelta(days=grace_days))
        session.add(report)
    if status is None:
        status, percent = assignment.status, assignment.progress
    report.status, report.percent, report.narrative = status, float(percent), narrative.strip()
    report.state, report.submitted_by, report.submitted_at = "submitted", actor.username, utcnow()
    report.reviewed_by, report.reviewed_at = None, None
    for indicator_id, value in (values or {}).items():
        report.values.append(IndicatorValue(indicator_id=indicator_id, value=float(value)))
    session.flush()
    audit.record(session, actor=actor, action="ledger.report.resubmitted" if before else "ledger.report.submitted",
                 object_type="report", object_id=report.id, before=before, after=_report_snapshot(report))
    return report


def _report_snapshot(report: ProgressReport) -> dict:
    return {"assignment": report.assignment_id, "period": report.period, "status": report.status,
            "percent": report.percent, "narrative": report.narrative, "state": report.state,
            "values": {v.indicator_id: v.value for v in report.values}, "review_comment": report.review_comment}


def get_report(*, session: Session, actor: Actor, report_id: int) -> ProgressReport:
    report = session.get(ProgressReport, report_id)
    if report is None:
        raise LedgerNotFound(f"没有编号为 {report_id} 的报告")
    authorize(actor, "ledger.view", report.assignment.unit)
    return report


def review_report(*, session: Session, actor: Actor, report_id: int, approve: bool, comment: str = "",
                  expected_version: int | None = None, today: date | None = None,
                  rules: WarningRules = DEFAULT_RULES) -> ProgressReport:
    """The direct parent unit approves a submitted report, or returns it with a comment."""
    if problem := length_problem(comment, "审核意见", TEXT):
        raise LedgerInvalid(problem)
    report = get_report(session=session, actor=actor, report_id=report_id)
    # Two reviewers of one unit deciding the same report at once: the second waits for the first and then sees the
    # report decided (a clear refusal) instead of failing on the version check at commit (a 500 on PostgreSQL).
    session.execute(select(ProgressReport.id).where(ProgressReport.id == report.id).with_for_update())
    session.refresh(report)
    if refused := policy.review_refusal(actor, report):
        raise refused
    if expected_version is not None and expected_version != report.version:
        raise StaleReport("报告在您审阅期间已被重新提交,请刷新后再审核")
    if not approve and not comment.strip():
        raise LedgerInvalid("退回报告时请填写退回意见")
    before = _report_snapshot(report)
    report.state = "approved" if approve else "returned"
    report.returned_count += 0 if approve else 1
    report.review_comment = comment.strip()
    report.reviewed_by, report.reviewed_at = actor.username, utcnow()
    session.flush()
    chain = lock_chain(session, report.assignment_id)
    if approve:
        _apply_approved(session, report, chain)
    relight(session=session, assignment_ids=[a.id for a in chain], today=today or date.today(), rules=rules)
    audit.record(session, actor=actor, action="ledger.report.approved" if approve else "ledger.report.returned",
                 object_type="report", object_id=report.id, before=before, after=_report_snapshot(report))
    return report


def _apply_approved(session: Session, report: ProgressReport, chain: list[Assignment]) -> None:
    assignment = chain[0]
    if assignment.last_period is None or report.period >= assignment.last_period:
        assignment.last_period = report.period
        if not has_children(session, assignment.id):
            assignment.status, assignment.progress = report.status, report.percent
        session.flush()
        recompute(session, chain[1:])


def reports_of(*, session: Session, assignment: Assignment) -> list[ProgressReport]:
    return list(session.scalars(select(ProgressReport).where(ProgressReport.assignment_id == assignment.id)
                                .order_by(ProgressReport.period.desc())))
