"""The review queue at the scale of a national office: what its filters can narrow to, and approving several reports
at once.

A batch approval decides each report on its own, exactly as one approval would (`reporting.review_report`: the same
policy, the same version check, the same audit entry and roll-up), each inside its own savepoint. A report that may
not be approved is left as it was, its refusal is written to the audit log, and the batch carries on: the reports
of a batch have nothing to do with each other, and one county resubmitting its report while the reviewer read the
page must not hold back the forty others the reviewer did read. The result names every report done and every
report refused, with the reason, so nothing is silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from chunfeng.errors import ChunfengError, Forbidden
from chunfeng.ledger import reporting, services
from chunfeng.ledger.errors import LedgerInvalid
from chunfeng.ledger.models import Assignment, ProgressReport
from chunfeng.ledger.warnings import DEFAULT_RULES, WarningRules
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, allowed, authorize
from chunfeng.org.models import Unit, User
from chunfeng.paging import Page, paginate
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure

MAX_BATCH = 200  # four pages of the queue: more than anyone reads before deciding


def awaiting_review(query: Select, actor: User) -> Select:
    """`query` over the reports submitted by the actor's direct child units, which the actor's unit reviews."""
    return (query.select_from(ProgressReport).join(Assignment, ProgressReport.assignment_id == Assignment.id)
            .join(Unit, Assignment.unit_id == Unit.id)
            .where(Unit.parent_id == actor.unit.id, ProgressReport.state == "submitted"))


def review_queue(*, session: Session, actor: Actor, page: int = 1, per_page: int = 50, unit_code: str = "",
                 measure_no: int | None = None, category_no: int | None = None,
                 period: str = "") -> Page[ProgressReport]:
    """Submitted reports from the actor's direct child units, oldest first; narrowed to one unit's subtree, one
    measure, one category or one period where given (the filters below)."""
    if isinstance(actor, SystemActor):
        raise LedgerInvalid("审核队列属于具体单位的审核人")
    authorize(actor, "ledger.review", actor.unit)
    base = awaiting_review(select(ProgressReport), actor)
    if unit_code:
        within = services.lookup_unit(session, unit_code, "unit")
        authorize(actor, "ledger.view", within)
        base = base.where(Unit.path.startswith(within.path, autoescape=True))
    if measure_no is not None:
        base = base.where(Assignment.measure_no == measure_no)
    if category_no is not None:
        base = base.where(Assignment.category_no == category_no)
    if period:
        base = base.where(ProgressReport.period == period)
    return paginate(session, base.order_by(ProgressReport.submitted_at, ProgressReport.id), page, per_page)


@dataclass
class QueueOptions:
    """What the queue's filters offer: (value, label, pending count) for each unit, measure, category and period
    that has a report waiting."""

    units: list[tuple[str, str, int]]
    measures: list[tuple[int, str, int]]
    categories: list[tuple[int, str, int]]
    periods: list[tuple[str, str, int]]


def queue_options(*, session: Session, actor: Actor) -> QueueOptions:
    if isinstance(actor, SystemActor):
        raise LedgerInvalid("审核队列属于具体单位的审核人")
    authorize(actor, "ledger.review", actor.unit)
    count = func.count(ProgressReport.id)
    units = session.execute(awaiting_review(select(Unit.code, Unit.name, count), actor)
                            .group_by(Unit.code, Unit.name, Unit.sort).order_by(Unit.sort, Unit.code)).all()
    measures = session.execute(awaiting_review(select(PlanMeasure.no, PlanMeasure.text, count), actor)
                               .join(PlanMeasure, Assignment.measure_id == PlanMeasure.id)
                               .group_by(PlanMeasure.no, PlanMeasure.text).order_by(PlanMeasure.no)).all()
    categories = session.execute(awaiting_review(select(PlanCategory.no, PlanCategory.name, count), actor)
                                 .join(PlanMeasure, Assignment.measure_id == PlanMeasure.id)
                                 .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
                                 .join(PlanCategory, PlanItem.category_id == PlanCategory.id)
                                 .group_by(PlanCategory.no, PlanCategory.name).order_by(PlanCategory.no)).all()
    periods = session.execute(awaiting_review(select(ProgressReport.period, count), actor)
                              .group_by(ProgressReport.period).order_by(ProgressReport.period.desc())).all()
    return QueueOptions(units=[(c, n, k) for c, n, k in units], measures=[(no, t, k) for no, t, k in measures],
                        categories=[(no, n, k) for no, n, k in categories], periods=[(p, p, k) for p, k in periods])


@dataclass
class BatchResult:
    approved: list[str] = field(default_factory=list)              # each report done, described
    refused: list[tuple[str, str]] = field(default_factory=list)   # each report refused: described, and why
    status: int = 200                                              # the first refusal's status when nothing was done


def _describe(session: Session, actor: Actor, report_id: int) -> str:
    """A report as the reviewer knows it; only its number where the reviewer may not see whose it is."""
    report = session.get(ProgressReport, report_id)
    if report is None or not allowed(actor, "ledger.view", report.assignment.unit):
        return f"编号 {report_id} 的报告"
    a = report.assignment
    return f"{a.unit.name} 第 {a.measure_no} 条 {report.period} 的报告(编号 {report_id})"


def approve_batch(*, session: Session, actor: Actor, picks: list[tuple[int, int | None]],
                  comment: str = "", rules: WarningRules = DEFAULT_RULES) -> BatchResult:
    """Approve each picked report (its id, and the version the reviewer read): see this module's doc."""
    if not picks:
        raise LedgerInvalid("请至少勾选一份报告", field="reports")
    if len(picks) > MAX_BATCH:
        raise LedgerInvalid(f"一次最多批量审核 {MAX_BATCH} 份报告,本次勾选了 {len(picks)} 份", field="reports")
    result = BatchResult()
    for report_id, version in dict(picks).items():
        try:
            with session.begin_nested():
                reporting.review_report(session=session, actor=actor, report_id=report_id, approve=True,
                                       comment=comment, expected_version=version, rules=rules)
        except ChunfengError as exc:
            label = _describe(session, actor, report_id)
            result.refused.append((label, str(exc)))
            if not result.approved and result.status == 200:
                result.status = exc.status
            audit.record(session, actor=actor, action="ledger.report.approved", object_type="report",
                         object_id=report_id, after={"reason": str(exc), "batch": True},
                         outcome="denied" if isinstance(exc, Forbidden) else "failure")
            continue
        result.approved.append(_describe(session, actor, report_id))
    if result.approved:
        result.status = 200
    return result
