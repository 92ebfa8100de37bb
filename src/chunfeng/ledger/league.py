"""Effect evaluation (督查问效): a published score per unit and a league table per level.

Each unit is scored on the assignments it holds itself:

    score = 100 × (0.35 × on-time rate + 0.25 × first-pass approval rate + 0.25 × warning score
                   + 0.15 × indicators met)

- on-time rate: reports first submitted no later than the grace days after their period ended,
  over all reports due (one per finished period of each assignment since its start);
- first-pass approval rate: approved reports never returned, over reviewed reports;
- warning score: 1 − (red + ½ yellow) / assignments;
- indicators met: indicator values on approved reports that meet their target, over all such values.
A part with nothing to measure (no report due yet, nothing reviewed, no indicator) is left out and the
other weights are scaled up to sum to 1, so a unit is never punished for what it could not yet do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from chunfeng.ledger.models import Assignment, Indicator, IndicatorValue, ProgressReport
from chunfeng.ledger.periods import period_bounds, period_of
from chunfeng.ledger.warnings import last_finished_period
from chunfeng.org.access import Actor, authorize
from chunfeng.org.models import Unit

WEIGHTS = {"on_time": 0.35, "approval": 0.25, "warnings": 0.25, "indicators": 0.15}
PARTS = {"on_time": "按时报告率", "approval": "一次通过率", "warnings": "预警得分", "indicators": "指标达标率"}


@dataclass
class Standing:
    unit: Unit
    assignments: int = 0
    due: int = 0
    on_time: int = 0
    reviewed: int = 0
    first_pass: int = 0
    red: int = 0
    yellow: int = 0
    values: int = 0
    met: int = 0
    rank: int = 0
    rates: dict[str, float | None] = field(default_factory=dict)
    score: float = 0.0

    def compute(self) -> None:
        self.rates = {
            "on_time": min(1.0, self.on_time / self.due) if self.due else None,
            "approval": self.first_pass / self.reviewed if self.reviewed else None,
            "warnings": 1 - (self.red + 0.5 * self.yellow) / self.assignments if self.assignments else None,
            "indicators": self.met / self.values if self.values else None,
        }
        present = {k: w for k, w in WEIGHTS.items() if self.rates[k] is not None}
        total = sum(present.values())
        self.score = round(100 * sum(self.rates[k] * w for k, w in present.items()) / total, 1) if total else 0.0


def periods_due(start: date, cycle: str, today: date) -> int:
    """Finished periods from the one holding `start` up to the last finished one."""
    last, ended = last_finished_period(today, cycle)
    if start > ended:
        return 0
    count, key = 0, period_of(start, cycle)
    while True:
        count += 1
        if key == last:
            return count
        key = period_of(period_bounds(key, cycle)[1] + timedelta(days=1), cycle)


def league_table(*, session: Session, actor: Actor, level: str, within: Unit, today: date) -> list[Standing]:
    authorize(actor, "ledger.view", within)
    units = list(session.scalars(select(Unit).where(Unit.level == level, Unit.path.startswith(within.path, autoescape=True))
                                 .order_by(Unit.sort, Unit.code)))
    table = {u.id: Standing(u) for u in units}
    if not table:
        return []
    ids = list(table)
    due_cache: dict[tuple[date, str], int] = {}
    for unit_id, start, cycle, light in session.execute(
            select(Assignment.unit_id, Assignment.start_date, Assignment.cycle, Assignment.light)
            .where(Assignment.unit_id.in_(ids))):
        row = table[unit_id]
        row.assignments += 1
        row.red += light == "red"
        row.yellow += light == "yellow"
        if (start, cycle) not in due_cache:
            due_cache[(start, cycle)] = periods_due(start, cycle, today)
        row.due += due_cache[(start, cycle)]
    reports = session.execute(
        select(Assignment.unit_id, func.sum(case((ProgressReport.on_time, 1), else_=0)),
               func.sum(case((ProgressReport.state != "submitted", 1), else_=0)),
               func.sum(case((and_(ProgressReport.state == "approved", ProgressReport.returned_count == 0), 1), else_=0)))
        .join(Assignment, ProgressReport.assignment_id == Assignment.id)
        .where(Assignment.unit_id.in_(ids)).group_by(Assignment.unit_id))
    for unit_id, on_time, reviewed, first_pass in reports:
        row = table[unit_id]
        row.on_time, row.reviewed, row.first_pass = int(on_time or 0), int(reviewed or 0), int(first_pass or 0)
    met = or_(and_(Indicator.direction == "up", IndicatorValue.value >= Indicator.target),
              and_(Indicator.direction == "down", IndicatorValue.value <= Indicator.target))
    values = session.execute(
        select(Assignment.unit_id, func.count(), func.sum(case((met, 1), else_=0)))
        .select_from(IndicatorValue).join(Indicator, IndicatorValue.indicator_id == Indicator.id)
        .join(ProgressReport, IndicatorValue.report_id == ProgressReport.id)
        .join(Assignment, ProgressReport.assignment_id == Assignment.id)
        .where(Assignment.unit_id.in_(ids), ProgressReport.state == "approved").group_by(Assignment.unit_id))
    for unit_id, count, ok in values:
        table[unit_id].values, table[unit_id].met = count, int(ok or 0)
    ranked = [row for row in table.values() if row.assignments]
    for row in ranked:
        row.compute()
    ranked.sort(key=lambda r: (-r.score, r.unit.sort, r.unit.code))
    for i, row in enumerate(ranked, start=1):
        row.rank = i
    return ranked

