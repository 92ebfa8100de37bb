"""The periodic briefing (简报): progress by category, warnings, league table, overdue list and indicator
attainment for a subtree, as one self-contained HTML page or a PDF (WeasyPrint, CJK fonts from Debian)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from chunfeng import documents
from chunfeng.charts import bar_chart, light_bars
from chunfeng.ledger import league
from chunfeng.ledger.dashboard import Cell, light_counts, rollup
from chunfeng.ledger.models import Assignment, Indicator, IndicatorValue, ProgressReport
from chunfeng.org.access import Actor, authorize
from chunfeng.org.models import Unit
from chunfeng.org.roles import LEVELS
from chunfeng.plan.models import PlanCategory
from chunfeng.plan.services import latest_notice_id


@dataclass
class Briefing:
    unit: Unit
    today: date
    totals: Cell
    categories: list[tuple[str, float, Cell]]
    children: list
    standings: list
    level: str
    overdue: list[tuple[Assignment, int]]
    indicators: list[tuple[Indicator, int, int]]
    charts: dict[str, str] = field(default_factory=dict)


def build(*, session: Session, actor: Actor, unit: Unit, today: date) -> Briefing:
    authorize(actor, "ledger.view", unit)
    in_subtree = and_(Assignment.unit_id == Unit.id, Unit.path.startswith(unit.path, autoescape=True))
    by_category = session.execute(
        select(Assignment.category_no, func.avg(Assignment.progress), *light_counts(), func.count())
        .select_from(Assignment).join(Unit, in_subtree).group_by(Assignment.category_no).order_by(Assignment.category_no))
    names = dict(session.execute(select(PlanCategory.no, PlanCategory.name)
                                 .where(PlanCategory.notice_id == latest_notice_id())).all())
    categories, totals = [], Cell()
    for no, mean, red, yellow, idle, n in by_category:
        totals.add(red, yellow, idle, n)
        categories.append((names.get(no, f"类别{no}"), round(float(mean or 0), 1), Cell().add(red, yellow, idle, n)))
    order = list(LEVELS)
    below = [lv for lv in order[2:] if order.index(lv) > order.index(unit.level)]
    level = below[0] if below else unit.level
    overdue = [(a, (today - a.deadline).days) for a in session.scalars(
        select(Assignment).join(Unit, in_subtree).where(Assignment.status != "done", Assignment.deadline < today)
        .order_by(Assignment.deadline, Assignment.measure_no).limit(30))]
    met = case((((Indicator.direction == "up") & (IndicatorValue.value >= Indicator.target))
                | ((Indicator.direction == "down") & (IndicatorValue.value <= Indicator.target)), 1), else_=0)
    indicators = [(i, int(n), int(ok or 0)) for i, n, ok in session.execute(
        select(Indicator, func.count(), func.sum(met)).join(IndicatorValue, IndicatorValue.indicator_id == Indicator.id)
        .join(ProgressReport, IndicatorValue.report_id == ProgressReport.id)
        .join(Assignment, ProgressReport.assignment_id == Assignment.id).join(Unit, in_subtree)
        .where(ProgressReport.state == "approved").group_by(Indicator.id).order_by(Indicator.id))]
    children = rollup(session=session, actor=actor, unit=unit)
    briefing = Briefing(unit, today, totals, categories, children,
                        league.league_table(session=session, actor=actor, level=level, within=unit, today=today)[:15],
                        level, overdue, indicators)
    briefing.charts = {
        "categories": bar_chart([c[0] for c in categories], [c[1] for c in categories]),
        "children": light_bars([r.unit.name for r in children[:20]], [r.overall.lights for r in children[:20]]),
    }
    return briefing


def render_html(briefing: Briefing, *, inline_css: bool = False, back: str = "") -> str:
    """The briefing page; with `inline_css` a single self-contained file (for saving and for the PDF),
    otherwise linking /static/briefing.css, as the site's CSP allows no inline style. `back`: the page a reader
    on the site returns to (a saved file and the PDF have no way back to offer)."""
    return documents.render("ledger/briefing.html", inline_css=inline_css, b=briefing, LEVELS=LEVELS,
                            PARTS=league.PARTS, back=back)


def render_pdf(briefing: Briefing) -> bytes:
    return documents.html_to_pdf(render_html(briefing, inline_css=True))
