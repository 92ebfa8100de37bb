"""Assignments and their roll-up. Keyword-only, over a session; the caller owns the transaction, and every change
writes its audit entry here. Progress reports and their review are `reporting`; the review queue is `reviews`.

Roll-up rule (also in the README): an assignment that was broken down takes its progress from its
children — the plain mean of their progress, each child unit counting once — and its status is
done when every child is done, not started when none has started, ongoing when all are ongoing,
otherwise in progress. An assignment with no children takes status and percent from its latest
approved report. Each approval recomputes the assignment and every ancestor up the chain (`roll_up`, under
`lock_chain`), so the stored progress of any assignment is always its rolled-up value.

Lights: each approval, return, breakdown and change of deadline recomputes the warning lights of the assignments it
moved (the assignment and its ancestors) in the same transaction, by the hourly scan's rule (warnings.relight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from chunfeng.bounds import length_problem
from chunfeng.db import utcnow
from chunfeng.errors import NotFound
from chunfeng.ledger import policy
from chunfeng.ledger.errors import LedgerInvalid, LedgerNotFound
from chunfeng.ledger.models import CYCLES, ROLES, Assignment, Indicator, ProgressReport
from chunfeng.ledger.warnings import DEFAULT_RULES, WarningRules, judge, last_finished_period, relight
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure, PlanNotice
from chunfeng.plan.services import latest_notice_id


@dataclass
class Terms:
    """What an assignment asks: a deadline, or ongoing (长期坚持); and how often to report."""

    owner: str = ""
    deadline: date | None = None
    ongoing: bool = False
    cycle: str = "monthly"
    role: str = "lead"
    start_date: date | None = None

    def check(self) -> None:
        if self.cycle not in CYCLES:
            raise LedgerInvalid(f"报告周期“{self.cycle}”无效,应为 {'、'.join(CYCLES)}", field="cycle")
        if self.role not in ROLES:
            raise LedgerInvalid(f"单位角色“{self.role}”无效,应为 lead(牵头)或 supporting(配合)", field="role")
        if self.ongoing == (self.deadline is not None):
            raise LedgerInvalid("完成时限和“长期坚持”须二选一:有期限的任务填写完成时限,长期坚持的任务不填时限",
                                field="deadline")
        if self.deadline and self.start_date and self.deadline < self.start_date:
            raise LedgerInvalid(f"完成时限 {self.deadline} 早于开始日期 {self.start_date}", field="deadline")


def _province_code(unit: Unit) -> str:
    """The provincial-level ancestor's code (its own code for national units): the dashboards group by it."""
    parts = unit.path.strip("/").split("/")
    return parts[1] if len(parts) > 1 and unit.level not in ("department",) else unit.code


def lookup_unit(session: Session, code: str, field: str) -> Unit:
    """The unit of a code an official typed or picked, or LedgerNotFound naming the form field it came from."""
    try:
        return find_unit(session=session, code=code)
    except NotFound as exc:
        raise LedgerNotFound(str(exc), field=field) from None


def _ancestor_codes(unit: Unit) -> list[str]:
    return unit.path.strip("/").split("/")[:-1]


def _measure(session: Session, notice: PlanNotice | None, no: int) -> PlanMeasure:
    where = [PlanMeasure.no == no]
    if notice is not None:
        where.append(PlanMeasure.notice_id == notice.id)
    else:
        where.append(PlanMeasure.notice_id == latest_notice_id())
    measure = session.scalar(select(PlanMeasure).where(*where))
    if measure is None:
        raise LedgerNotFound(f"没有序号为 {no} 的具体措施(请先导入行动方案)", field="measures")
    return measure


def _parent_assignment(session: Session, measure_id: int, unit: Unit) -> Assignment | None:
    """The assignment of the same measure held by the nearest ancestor unit, if any."""
    codes = _ancestor_codes(unit)
    if not codes:
        return None
    rows = session.execute(select(Assignment, Unit.path).join(Unit, Assignment.unit_id == Unit.id)
                           .where(Assignment.measure_id == measure_id, Unit.code.in_(codes))).all()
    return max(rows, key=lambda r: len(r.path)).Assignment if rows else None


def _check_within_parent(terms: Terms, parent: Assignment | None, unit: Unit) -> None:
    if parent is None:
        return
    if parent.deadline is not None and (terms.deadline is None or terms.deadline > parent.deadline):
        raise LedgerInvalid(f"“{unit.name}”的完成时限不能晚于上级任务的时限 {parent.deadline}"
                            + ("(上级任务有期限,下级不能设为长期坚持)" if terms.deadline is None else ""), field="deadline")


def _snapshot(a: Assignment) -> dict:
    return {"measure": a.measure_no, "unit": a.unit.code, "role": a.role, "owner": a.owner,
            "deadline": a.deadline, "ongoing": a.ongoing, "cycle": a.cycle, "parent": a.parent_id}


def assign(*, session: Session, actor: Actor, measure_no: int, unit_code: str, terms: Terms,
           today: date | None = None, rules: WarningRules = DEFAULT_RULES) -> Assignment:
    """Give one measure to one unit. Its parent is the same measure's assignment at the nearest ancestor."""
    unit = lookup_unit(session, unit_code, "unit")
    if refused := policy.assign_refusal(actor, unit):
        raise refused
    terms.start_date = terms.start_date or today or date.today()
    terms.check()
    measure = _measure(session, None, measure_no)
    if session.scalar(select(Assignment.id).where(Assignment.measure_id == measure.id, Assignment.unit_id == unit.id)):
        raise LedgerInvalid(f"第 {measure_no} 条措施已分配给“{unit.name}”", field="measures")
    parent = _parent_assignment(session, measure.id, unit)
    _check_within_parent(terms, parent, unit)
    assignment = Assignment(
        measure=measure, unit=unit, parent_id=parent.id if parent else None, role=terms.role, owner=terms.owner,
        start_date=terms.start_date, deadline=terms.deadline, ongoing=terms.ongoing, cycle=terms.cycle,
        assigned_by=actor.username, province_code=_province_code(unit), category_no=measure.item.category.no,
        measure_no=measure.no, status="ongoing" if terms.ongoing else "not_started",
    )
    session.add(assignment)
    session.flush()
    moved = [assignment.id] + ([a.id for a in roll_up(session, parent)] if parent is not None else [])
    relight(session=session, assignment_ids=moved, today=today or date.today(), rules=rules)
    audit.record(session, actor=actor, action="ledger.assignment.created", object_type="assignment",
                 object_id=assignment.id, after=_snapshot(assignment))
    return assignment


def break_down(*, session: Session, actor: Actor, assignment_id: int, unit_codes: list[str], terms: Terms,
               today: date | None = None, rules: WarningRules = DEFAULT_RULES) -> list[Assignment]:
    """分解下达: hand an assignment on to some of the holding unit's direct children."""
    parent = get_assignment(session=session, actor=actor, assignment_id=assignment_id)
    if refused := policy.break_down_refusal(actor, parent):
        raise refused
    if not unit_codes:
        raise LedgerInvalid("请至少选择一个下级单位", field="units")
    created = []
    for code in unit_codes:
        unit = lookup_unit(session, code, "units")
        if unit.parent_id != parent.unit_id:
            raise LedgerInvalid(f"“{unit.name}”不是“{parent.unit.name}”的直属下级单位", field="units")
        created.append(assign(session=session, actor=actor, measure_no=parent.measure_no, unit_code=code,
                              terms=Terms(**vars(terms)), today=today, rules=rules))
    return created


def change_deadline(*, session: Session, actor: Actor, assignment_id: int, deadline: date, today: date | None = None,
                    rules: WarningRules = DEFAULT_RULES) -> Assignment:
    """A new deadline for an assignment that has one: no later than its parent's, no earlier than its children's
    (the same nesting `assign` keeps). Its light follows at once; the ancestors' do not depend on it."""
    assignment = get_assignment(session=session, actor=actor, assignment_id=assignment_id)
    if refused := policy.deadline_refusal(actor, assignment):
        raise refused
    assignment = lock_chain(session, assignment_id)[0]
    if assignment.ongoing:
        raise LedgerInvalid("长期坚持的任务没有完成时限", field="deadline")
    if deadline < assignment.start_date:
        raise LedgerInvalid(f"完成时限 {deadline} 早于开始日期 {assignment.start_date}", field="deadline")
    parent = assignment.parent
    if parent is not None and parent.deadline is not None and deadline > parent.deadline:
        raise LedgerInvalid(f"完成时限不能晚于上级任务的时限 {parent.deadline}", field="deadline")
    latest_child = session.scalar(select(func.max(Assignment.deadline)).where(Assignment.parent_id == assignment.id))
    if latest_child is not None and deadline < latest_child:
        raise LedgerInvalid(f"下级任务的时限最晚为 {latest_child},新时限不能早于它(请先调整下级任务的时限)",
                            field="deadline")
    before = _snapshot(assignment)
    assignment.deadline = deadline
    session.flush()
    relight(session=session, assignment_ids=[assignment.id], today=today or date.today(), rules=rules)
    audit.record(session, actor=actor, action="ledger.assignment.changed", object_type="assignment",
                 object_id=assignment.id, before=before, after=_snapshot(assignment))
    return assignment


def assign_bulk(*, session: Session, actor: Actor, level: str, terms: Terms, measure_nos: list[int] | None = None,
                category_no: int | None = None, today: date | None = None,
                rules: WarningRules = DEFAULT_RULES) -> int:
    """A measure, several, or a whole category to every unit at `level` in the actor's subtree, in one action.

    Units that already hold the measure are left as they are. All or nothing: a conflict with a
    parent's deadline refuses the whole action and names the first units concerned.
    """
    root = find_unit(session=session, code=actor.unit_code)
    authorize(actor, "ledger.assign", root)
    today = today or date.today()
    terms.start_date = terms.start_date or today
    terms.check()
    # Every new row starts alike (nothing reported, no progress): one light for all, by the scan's rule.
    status = "ongoing" if terms.ongoing else "not_started"
    light, reasons = judge(today=today, rules=rules, status=status, progress=0.0, start=terms.start_date,
                           deadline=terms.deadline, reported=False, period_end=last_finished_period(today, terms.cycle)[1])
    if (measure_nos is None) == (category_no is None):
        raise LedgerInvalid("请指定措施序号或任务类别(二选一)", field="measures")
    query = (select(PlanMeasure.id, PlanMeasure.no, PlanCategory.no).join(PlanItem, PlanMeasure.item_id == PlanItem.id)
             .join(PlanCategory, PlanItem.category_id == PlanCategory.id).where(PlanMeasure.notice_id == latest_notice_id()))
    if category_no is not None:
        query = query.where(PlanCategory.no == category_no)
    else:
        query = query.where(PlanMeasure.no.in_(measure_nos))
    measures = session.execute(query.order_by(PlanMeasure.no)).all()
    if not measures:
        raise LedgerNotFound("没有找到要分配的措施(请检查措施序号或类别,或先导入行动方案)", field="measures")
    if measure_nos is not None and len(measures) != len(set(measure_nos)):
        missing = sorted(set(measure_nos) - {m[1] for m in measures})
        raise LedgerNotFound(f"没有序号为 {'、'.join(map(str, missing))} 的具体措施", field="measures")
    units = list(session.scalars(select(Unit).where(Unit.level == level, Unit.path.startswith(root.path, autoescape=True),
                                                    Unit.id != root.id).order_by(Unit.path)))
    if not units:
        raise LedgerInvalid(f"“{root.name}”之下没有“{level}”层级的单位", field="level")
    measure_ids = [m[0] for m in measures]
    unit_id_by_code = dict(session.execute(select(Unit.code, Unit.id).where(Unit.path.startswith(root.path, autoescape=True))).all())
    held = {(m, u): (a, d) for a, m, u, d in session.execute(
        select(Assignment.id, Assignment.measure_id, Assignment.unit_id, Assignment.deadline)
        .where(Assignment.measure_id.in_(measure_ids)))}
    rows, problems = [], []
    for unit in units:
        ancestors = [unit_id_by_code.get(c) for c in reversed(_ancestor_codes(unit))]
        for measure_id, measure_no, cat_no in measures:
            if (measure_id, unit.id) in held:
                continue
            parent = next((held[(measure_id, a)] for a in ancestors if (measure_id, a) in held), None)
            if parent and parent[1] is not None and (terms.deadline is None or terms.deadline > parent[1]):
                problems.append(f"{unit.name} 第 {measure_no} 条(上级时限 {parent[1]})")
                continue
            rows.append({"measure_id": measure_id, "unit_id": unit.id, "parent_id": parent[0] if parent else None,
                         "role": terms.role, "owner": terms.owner, "start_date": terms.start_date,
                         "deadline": terms.deadline, "ongoing": terms.ongoing, "cycle": terms.cycle,
                         "assigned_by": actor.username, "assigned_at": utcnow(), "province_code": _province_code(unit),
                         "category_no": cat_no, "measure_no": measure_no,
                         "status": status, "progress": 0.0, "light": light, "light_reason": ",".join(reasons)})
    if problems:
        raise LedgerInvalid(f"完成时限晚于上级任务的时限,未分配任何任务({len(problems)} 处):" + ";".join(problems[:5])
                            + (" 等" if len(problems) > 5 else ""), field="deadline")
    for start in range(0, len(rows), 5000):
        session.execute(insert(Assignment), rows[start:start + 5000])
    session.flush()
    parents = {r["parent_id"] for r in rows if r["parent_id"]}
    moved = set()
    for parent_id in sorted(parents):
        moved.update(a.id for a in roll_up(session, session.get(Assignment, parent_id)))
    relight(session=session, assignment_ids=sorted(moved), today=today, rules=rules)
    audit.record(session, actor=actor, action="ledger.assignment.bulk_created", object_type="unit",
                 object_id=root.code, after={"level": level, "measures": [m[1] for m in measures], "created": len(rows),
                                             "deadline": terms.deadline, "ongoing": terms.ongoing, "cycle": terms.cycle})
    return len(rows)


def get_assignment(*, session: Session, actor: Actor, assignment_id: int) -> Assignment:
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise LedgerNotFound(f"没有编号为 {assignment_id} 的任务")
    authorize(actor, "ledger.view", assignment.unit)
    return assignment


def list_assignments(*, session: Session, actor: Actor, unit: Unit, measure_no: int | None = None,
                     light: str | None = None, page: int = 1, per_page: int = 50) -> Page[Assignment]:
    """Assignments held by `unit` (with a measure, by every unit below it holding that measure)."""
    authorize(actor, "ledger.view", unit)
    where = [Assignment.unit_id == unit.id] if measure_no is None else [
        Assignment.measure_no == measure_no, Unit.path.startswith(unit.path, autoescape=True)]
    if light:
        where.append(Assignment.light == light)
    base = select(Assignment).join(Unit, Assignment.unit_id == Unit.id).where(*where)
    return paginate(session, base.order_by(Assignment.measure_no, Unit.path), page, per_page)


def has_children(session: Session, assignment_id: int) -> bool:
    return session.scalar(select(Assignment.id).where(Assignment.parent_id == assignment_id).limit(1)) is not None


def roll_up(session: Session, assignment: Assignment) -> list[Assignment]:
    """Recompute `assignment` from its children, then each ancestor in turn (the rule in this module's doc); the
    chain it recomputed, bottom up."""
    chain = lock_chain(session, assignment.id)
    recompute(session, chain)
    return chain


def lock_chain(session: Session, assignment_id: int) -> list[Assignment]:
    """The assignment and its ancestors, bottom up, locked until the transaction ends and read afresh.

    Two approvals under one parent each recompute that parent from its children. On PostgreSQL (READ COMMITTED)
    neither sees the other's uncommitted child, so the later write of the parent would silently drop the earlier
    child: the whole chain is locked first, always in the order of ids, so that the second approval waits, then
    reads the children as the first left them, and two chains can never wait on each other. SQLite's single writer
    serialises these transactions already (FOR UPDATE is not rendered there).
    """
    ids, current = [], assignment_id
    while current is not None:
        ids.append(current)
        current = session.scalar(select(Assignment.parent_id).where(Assignment.id == current))
    locked = {a.id: a for a in session.scalars(
        select(Assignment).where(Assignment.id.in_(ids)).order_by(Assignment.id).with_for_update(of=Assignment)
        .execution_options(populate_existing=True))}
    return [locked[i] for i in ids]


def recompute(session: Session, chain: list[Assignment]) -> None:
    """Each assignment of `chain` (bottom up) from its children, inside the locks `lock_chain` took."""
    for assignment in chain:
        count, mean, done, fresh, ongoing = session.execute(
            select(func.count(), func.avg(Assignment.progress),
                   func.sum(case((Assignment.status == "done", 1), else_=0)),
                   func.sum(case((Assignment.status == "not_started", 1), else_=0)),
                   func.sum(case((Assignment.status == "ongoing", 1), else_=0)))
            .where(Assignment.parent_id == assignment.id)).one()
        if count:
            assignment.progress = round(float(mean), 2)
            assignment.status = ("done" if done == count else "not_started" if fresh == count
                                 else "ongoing" if ongoing == count else "in_progress")
            session.flush()


def define_indicator(*, session: Session, actor: Actor, measure_no: int, name: str, target: float, direction: str,
                     unit_label: str = "", baseline: float | None = None) -> Indicator:
    authorize(actor, "ledger.indicator")
    if direction not in ("up", "down"):
        raise LedgerInvalid("指标方向应为 up(不低于目标)或 down(不高于目标)")
    if not name.strip():
        raise LedgerInvalid("指标名称为空")
    if problem := length_problem(name.strip(), "指标名称", 100) or length_problem(unit_label, "计量单位", 20):
        raise LedgerInvalid(problem)
    for label, number in (("目标值", target), ("基线值", baseline)):
        if number is not None and not math.isfinite(number):
            raise LedgerInvalid(f"{label} {number} 不是有限的数")
    measure = _measure(session, None, measure_no)
    if session.scalar(select(Indicator.id).where(Indicator.measure_id == measure.id, Indicator.name == name.strip())):
        raise LedgerInvalid(f"第 {measure_no} 条措施已有指标“{name.strip()}”")
    indicator = Indicator(measure_id=measure.id, name=name.strip(), unit_label=unit_label, baseline=baseline,
                          target=target, direction=direction)
    session.add(indicator)
    session.flush()
    audit.record(session, actor=actor, action="ledger.indicator.created", object_type="indicator", object_id=indicator.id,
                 after={"measure": measure_no, "name": indicator.name, "baseline": baseline, "target": target,
                        "direction": direction, "unit": unit_label})
    return indicator


def children_of(*, session: Session, assignment: Assignment) -> list[Assignment]:
    return list(session.scalars(select(Assignment).join(Unit, Assignment.unit_id == Unit.id)
                                .where(Assignment.parent_id == assignment.id).order_by(Unit.sort, Unit.code)))


def indicators_of(*, session: Session, assignment: Assignment) -> list[Indicator]:
    return list(session.scalars(select(Indicator).where(Indicator.measure_id == assignment.measure_id)
                                .order_by(Indicator.id)))


def units_to_break_down_to(*, session: Session, assignment: Assignment) -> list[Unit]:
    """Direct children of the holding unit that do not hold this measure yet."""
    holding = select(Assignment.unit_id).where(Assignment.measure_id == assignment.measure_id)
    return list(session.scalars(select(Unit).where(Unit.parent_id == assignment.unit_id, Unit.id.not_in(holding))
                                .order_by(Unit.sort, Unit.code)))


@dataclass
class Todo:
    due: list[tuple[Assignment, str]]    # assignments still to report, with the period
    returned: list[ProgressReport]       # reports sent back for changes


def todo(*, session: Session, actor: Actor, today: date | None = None) -> Todo:
    """What the actor's own unit must do: report for the last finished period where it has not, and
    resubmit what was returned."""
    if isinstance(actor, SystemActor):
        raise LedgerInvalid("待办事项属于具体单位")
    today = today or date.today()
    due = []
    held = list(session.scalars(select(Assignment).where(Assignment.unit_id == actor.unit.id, Assignment.status != "done")
                                .order_by(Assignment.measure_no)))
    periods = {a.id: last_finished_period(today, a.cycle) for a in held}
    reported = set(tuple(r) for r in session.execute(select(ProgressReport.assignment_id, ProgressReport.period)
                                   .where(ProgressReport.assignment_id.in_([a.id for a in held]))).all())
    for a in held:
        period, ended = periods[a.id]
        if a.start_date <= ended and (a.id, period) not in reported:
            due.append((a, period))
    returned = list(session.scalars(select(ProgressReport).join(Assignment, ProgressReport.assignment_id == Assignment.id)
                                    .where(Assignment.unit_id == actor.unit.id, ProgressReport.state == "returned")
                                    .order_by(ProgressReport.reviewed_at)))
    return Todo(due, returned)
