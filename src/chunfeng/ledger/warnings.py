"""Red / yellow / green per assignment (预警), recomputed for the whole ledger by one scan, and for one
assignment and its ancestors by each decision that moves them (`relight`: an approval or a return, a breakdown).

Rules, each with its setting (CHUNFENG_WARN_*), the worst light winning:
- overdue: not done and past the deadline → red;
- due soon: not done and the deadline at most `warn_due_soon_days` away → yellow;
- missing report: no report (submitted or approved) for the last finished period of the
  assignment's cycle → yellow, and red once `warn_report_grace_days` have passed since that period ended;
- behind: progress trails the straight line from start date to deadline by more than
  `warn_behind_points` percentage points → yellow.
Done assignments are green. On the pages a green light says which green it is (`badge`): done, on track, or
not started with nothing to warn of yet — a 0 % task reading as "all good" misleads. The stored reason is a list of rule codes; pages turn it into words
with today's numbers (`describe`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Integer, any_, bindparam, case, exists, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from chunfeng.ledger.models import Assignment, ProgressReport
from chunfeng.ledger.periods import period_bounds, period_of

LIGHTS = {"green": "绿灯", "yellow": "黄灯", "red": "红灯"}
RULES = {"overdue": "已逾期", "due_soon": "临近时限", "missing_report": "未按期报告",
         "missing_report_long": "超期未报告", "behind": "进度滞后"}


@dataclass(frozen=True)
class WarningRules:
    due_soon_days: int = 7
    report_grace_days: int = 10
    behind_points: float = 20.0

    @classmethod
    def from_settings(cls, settings) -> WarningRules:
        return cls(settings.warn_due_soon_days, settings.warn_report_grace_days, settings.warn_behind_points)


DEFAULT_RULES = WarningRules()  # the settings' defaults; entry points pass WarningRules.from_settings(settings)


def last_finished_period(today: date, cycle: str) -> tuple[str, date]:
    """The period before today's, and the day it ended."""
    start, _ = period_bounds(period_of(today, cycle), cycle)
    previous = period_of(start - timedelta(days=1), cycle)
    return previous, start - timedelta(days=1)


def judge(*, today: date, rules: WarningRules, status: str, progress: float, start: date, deadline: date | None,
          reported: bool, period_end: date) -> tuple[str, tuple[str, ...]]:
    """One assignment's light and the rules that gave it."""
    if status == "done":
        return "green", ()
    red, yellow = [], []
    if deadline is not None:
        if today > deadline:
            red.append("overdue")
        elif (deadline - today).days <= rules.due_soon_days:
            yellow.append("due_soon")
        span = (deadline - start).days
        if span > 0 and today > start:
            expected = min(100.0, 100.0 * (today - start).days / span)
            if expected - progress > rules.behind_points:
                yellow.append("behind")
    if not reported and start <= period_end:
        (red if (today - period_end).days > rules.report_grace_days else yellow).append(
            "missing_report_long" if (today - period_end).days > rules.report_grace_days else "missing_report")
    return ("red" if red else "yellow" if yellow else "green"), tuple(red + yellow)


@dataclass
class ScanResult:
    scanned: int
    changed: int
    counts: dict[str, int]


def _rows(today: date):
    """The narrow rows `judge` reads, each with whether its cycle's last finished period has a report, and the
    end of that period per cycle."""
    finished = {cycle: last_finished_period(today, cycle) for cycle in ("weekly", "monthly", "quarterly")}
    # Whether the last finished period has a report, answered by the database through the
    # (assignment, period) index rather than by shipping every report id here.
    period_of_cycle = case(*((Assignment.cycle == c, p) for c, (p, _) in finished.items()))
    reported = exists().where(ProgressReport.assignment_id == Assignment.id, ProgressReport.period == period_of_cycle)
    query = select(Assignment.id, Assignment.status, Assignment.progress, Assignment.start_date, Assignment.deadline,
                   Assignment.cycle, Assignment.light, Assignment.light_reason, reported.label("reported"))
    return query, {cycle: end for cycle, (_, end) in finished.items()}


def _judge_row(row, today: date, rules: WarningRules, period_ends: dict[str, date]) -> tuple[str, str]:
    light, reasons = judge(today=today, rules=rules, status=row.status, progress=row.progress, start=row.start_date,
                           deadline=row.deadline, reported=bool(row.reported), period_end=period_ends[row.cycle])
    return light, ",".join(reasons)


def relight(*, session: Session, assignment_ids: list[int], today: date, rules: WarningRules) -> None:
    """The scan's rule for a few assignments, in the caller's transaction: a decision that changes their progress,
    reports or breakdown shows in their lights at once, not at the next scan. The caller holds the rows' locks
    (services._lock_chain) where two decisions could race."""
    query, period_ends = _rows(today)
    for row in session.execute(query.where(Assignment.id.in_(assignment_ids))):
        light, reason = _judge_row(row, today, rules, period_ends)
        if light != row.light or reason != row.light_reason:
            assignment = session.get(Assignment, row.id)
            assignment.light, assignment.light_reason = light, reason
    session.flush()


def scan(*, session: Session, today: date, rules: WarningRules, progress=None) -> ScanResult:
    """Recompute every assignment's light. Reads narrow tuples and writes only the rows that changed,
    grouped by (light, reason) so that a national ledger is a handful of UPDATE statements."""
    query, period_ends = _rows(today)
    total = session.scalar(select(func.count()).select_from(Assignment)) or 0
    changes: dict[tuple[str, str], list[int]] = defaultdict(list)
    counts = {"green": 0, "yellow": 0, "red": 0}
    rows = session.execute(query.execution_options(yield_per=20000))
    for done, row in enumerate(rows, start=1):
        light, reason = _judge_row(row, today, rules, period_ends)
        counts[light] += 1
        if light != row.light or reason != row.light_reason:
            changes[(light, reason)].append(row.id)
        if progress and done % 20000 == 0:
            progress(done, total)
    changed = 0
    postgres = session.get_bind().dialect.name == "postgresql"
    for (light, reason), ids in changes.items():
        # PostgreSQL takes the ids as one array parameter (= ANY), three times faster than long IN lists;
        # SQLite takes IN lists below its limit on bound parameters.
        chunks = [ids] if postgres else [ids[i:i + 20000] for i in range(0, len(ids), 20000)]
        for chunk in chunks:
            where = (Assignment.id == any_(bindparam("ids", chunk, type_=ARRAY(Integer))) if postgres
                     else Assignment.id.in_(chunk))
            session.execute(update(Assignment).where(where).values(light=light, light_reason=reason)
                            .execution_options(synchronize_session=False))
            changed += len(chunk)
    if progress:
        progress(total, total)
    return ScanResult(total, changed, counts)


def describe(assignment: Assignment, today: date) -> list[str]:
    """The stored reasons in words, with today's numbers."""
    words = []
    for code in filter(None, assignment.light_reason.split(",")):
        if code == "overdue" and assignment.deadline:
            words.append(f"已逾期 {(today - assignment.deadline).days} 天")
        elif code == "due_soon" and assignment.deadline:
            words.append(f"距完成时限还有 {(assignment.deadline - today).days} 天")
        else:
            words.append(RULES.get(code, code))
    return words


def badge(assignment: Assignment) -> tuple[str, str]:
    """The light as the pages show it (CSS class, words): green told apart into done, not started, on track."""
    if assignment.light != "green":
        return assignment.light, LIGHTS[assignment.light]
    if assignment.status == "done":
        return "green done", "已完成"
    if assignment.status == "not_started":
        return "idle", "未开始·暂无预警"
    return "green", "绿灯·正常推进"
