"""The ledger as xlsx in the familiar layout, for any subtree, written in constant memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from chunfeng.ledger.models import STATUSES, Assignment, ProgressReport
from chunfeng.ledger.warnings import LIGHTS
from chunfeng.org.access import Actor, authorize
from chunfeng.org.models import Unit
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure
from chunfeng.xlsx import write_table

HEADERS = ["序号", "任务类别", "任务事项", "具体措施", "牵头单位", "配合单位", "责任人", "完成时限", "进展情况", "状态",
           "预警", "完成百分比", "单位代码", "最近报告期"]
WIDTHS = [6, 14, 14, 60, 28, 28, 10, 12, 50, 10, 8, 10, 12, 12]


def ledger_rows(session: Session, unit: Unit) -> Iterator[list]:
    """One row per assignment in `unit`'s subtree, by measure then unit, streamed from the database."""
    latest = and_(ProgressReport.assignment_id == Assignment.id, ProgressReport.period == Assignment.last_period)
    query = (select(Assignment.measure_no, PlanCategory.name, PlanItem.name, PlanMeasure.text, Unit.name, Assignment.role,
                    Assignment.owner, Assignment.deadline, Assignment.ongoing, ProgressReport.narrative, Assignment.status,
                    Assignment.light, Assignment.progress, Unit.code, Assignment.last_period)
             .join(Unit, Assignment.unit_id == Unit.id)
             .join(PlanMeasure, Assignment.measure_id == PlanMeasure.id)
             .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
             .join(PlanCategory, PlanItem.category_id == PlanCategory.id)
             .outerjoin(ProgressReport, latest)
             .where(Unit.path.startswith(unit.path, autoescape=True))
             .order_by(Assignment.measure_no, Unit.path)
             .execution_options(yield_per=5000))
    for (no, category, item, text, unit_name, role, owner, deadline, ongoing, narrative, status, light, progress,
         code, period) in session.execute(query):
        yield [no, category, item, text, unit_name if role == "lead" else "", unit_name if role == "supporting" else "",
               owner, "长期坚持" if ongoing else deadline.isoformat(), narrative or "", STATUSES.get(status, status),
               LIGHTS.get(light, light), progress, code, period or ""]


def count_rows(session: Session, unit: Unit) -> int:
    return session.scalar(select(func.count()).select_from(Assignment).join(Unit, Assignment.unit_id == Unit.id)
                          .where(Unit.path.startswith(unit.path, autoescape=True))) or 0


def export_ledger(*, session: Session, actor: Actor, unit: Unit, path: Path,
                  progress: Callable[[int], None] | None = None) -> int:
    """Write the subtree's ledger to `path`; returns the number of rows."""
    authorize(actor, "ledger.view", unit)
    written = 0

    def counted() -> Iterator[list]:
        nonlocal written
        for row in ledger_rows(session, unit):
            written += 1
            if progress and written % 10000 == 0:
                progress(written)
            yield row

    write_table(path, sheet="春风行动台账", headers=HEADERS, rows=counted(), widths=WIDTHS)
    if progress:
        progress(written)
    return written
