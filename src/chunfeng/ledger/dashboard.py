"""The roll-up behind the dashboards: lights and progress per child unit and per category.

For a unit U and each of its direct children C: the red/yellow/green counts over every assignment
in C's subtree, and C's progress — the mean of the rolled-up progress of the assignments C holds
itself (see services.roll_up). Both come from two aggregate queries over the ledger, whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from chunfeng.ledger.models import Assignment
from chunfeng.org.access import Actor, authorize
from chunfeng.org.models import Unit
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure
from chunfeng.plan.services import latest_notice_id


@dataclass
class Cell:
    red: int = 0
    yellow: int = 0
    green: int = 0
    idle: int = 0          # green by the rules but not started: shown apart, "no warning yet" is not "all good"
    held: int = 0          # assignments the unit holds itself
    progress: float = 0.0  # mean rolled-up progress of those

    @property
    def total(self) -> int:
        return self.red + self.yellow + self.green + self.idle

    @property
    def lights(self) -> dict[str, int]:
        """The four counts, as the charts take them."""
        return {"red": self.red, "yellow": self.yellow, "green": self.green, "idle": self.idle}

    def add(self, red: int | None, yellow: int | None, idle: int | None, total: int) -> Cell:
        """Add one row of `light_counts()` (SQL sums, None when no rows) and its count."""
        red, yellow, idle = int(red or 0), int(yellow or 0), int(idle or 0)
        self.red += red
        self.yellow += yellow
        self.idle += idle
        self.green += total - red - yellow - idle
        return self


@dataclass
class RollupRow:
    unit: Unit
    by_category: dict[int, Cell] = field(default_factory=dict)
    overall: Cell = field(default_factory=Cell)


def light_counts():
    """Red, yellow and idle (green and not started) counted in SQL; green is the rest (`Cell.add`). The one rule
    for splitting the lights: the dashboards, the CLI and the briefing all count through it."""
    return (func.sum(case((Assignment.light == "red", 1), else_=0)),
            func.sum(case((Assignment.light == "yellow", 1), else_=0)),
            func.sum(case(((Assignment.light == "green") & (Assignment.status == "not_started"), 1), else_=0)))


def rollup(*, session: Session, actor: Actor, unit: Unit) -> list[RollupRow]:
    """One row per direct child of `unit` that has assignments in its subtree, in unit order."""
    authorize(actor, "ledger.view", unit)
    children = list(session.scalars(select(Unit).where(Unit.parent_id == unit.id).order_by(Unit.sort, Unit.code)))
    rows = {c.id: RollupRow(c) for c in children}
    prefix_of = {c.path: c.id for c in children}
    depth = unit.path.count("/")

    def child_of(path: str) -> int | None:
        cut = path.split("/")[: depth + 1]
        return prefix_of.get("/".join(cut) + "/")

    lights = session.execute(
        select(Unit.path, Assignment.category_no, *light_counts(), func.count())
        .join(Unit, Assignment.unit_id == Unit.id)
        .where(Unit.path.startswith(unit.path, autoescape=True), Unit.id != unit.id)
        .group_by(Unit.path, Assignment.category_no))
    for path, category, r, y, i, n in lights:
        child = child_of(path)
        if child is None:
            continue
        row = rows[child]
        row.by_category.setdefault(category, Cell()).add(r, y, i, n)
        row.overall.add(r, y, i, n)
    own = session.execute(select(Assignment.unit_id, Assignment.category_no, func.count(), func.avg(Assignment.progress))
                          .where(Assignment.unit_id.in_(list(rows)))
                          .group_by(Assignment.unit_id, Assignment.category_no))
    totals: dict[int, list[float]] = defaultdict(lambda: [0, 0.0])
    for unit_id, category, n, mean in own:
        cell = rows[unit_id].by_category.setdefault(category, Cell())
        cell.held, cell.progress = n, round(float(mean or 0), 1)
        totals[unit_id][0] += n
        totals[unit_id][1] += float(mean or 0) * n
    for unit_id, (n, weighted) in totals.items():
        rows[unit_id].overall.held, rows[unit_id].overall.progress = int(n), round(weighted / n, 1) if n else 0.0
    return [row for row in rows.values() if row.overall.total or row.overall.held]


@dataclass
class MeasureRow:
    no: int
    text: str
    is_new: bool
    cell: Cell


def by_measure(*, session: Session, actor: Actor, unit: Unit) -> list[tuple[str, list[tuple[str, list[MeasureRow]]]]]:
    """Category → item → measure: lights over the subtree and the mean progress of the assignments
    held directly below `unit` (or by it, when it has no children holding the measure)."""
    authorize(actor, "ledger.view", unit)
    in_subtree = Unit.path.startswith(unit.path, autoescape=True)
    lights = {no: (r, y, i, n) for no, r, y, i, n in session.execute(
        select(Assignment.measure_no, *light_counts(), func.count()).join(Unit, Assignment.unit_id == Unit.id)
        .where(in_subtree).group_by(Assignment.measure_no))}
    top = session.execute(select(Assignment.measure_no, func.count(), func.avg(Assignment.progress))
                          .join(Unit, Assignment.unit_id == Unit.id)
                          .where(Unit.parent_id == unit.id).group_by(Assignment.measure_no)).all()
    own = session.execute(select(Assignment.measure_no, func.count(), func.avg(Assignment.progress))
                          .where(Assignment.unit_id == unit.id).group_by(Assignment.measure_no)).all()
    progress = {no: (n, float(mean or 0)) for no, n, mean in own}
    progress.update({no: (n, float(mean or 0)) for no, n, mean in top})
    rows = session.execute(select(PlanCategory.name, PlanItem.name, PlanMeasure.no, PlanMeasure.text, PlanMeasure.new_no)
                           .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
                           .join(PlanCategory, PlanItem.category_id == PlanCategory.id)
                           .where(PlanMeasure.notice_id == latest_notice_id()).order_by(PlanMeasure.no))
    tree: dict[str, dict[str, list[MeasureRow]]] = {}
    for category, item, no, text, new_no in rows:
        held, mean = progress.get(no, (0, 0.0))
        cell = Cell(held=held, progress=round(mean, 1)).add(*lights.get(no, (0, 0, 0, 0)))
        tree.setdefault(category, {}).setdefault(item, []).append(MeasureRow(no, text, new_no is not None, cell))
    return [(c, list(items.items())) for c, items in tree.items()]
