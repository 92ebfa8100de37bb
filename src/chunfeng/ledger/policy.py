"""Whether this user may act on this assignment, report or supervision notice: the one rule the pages (to
offer a button or a form) and the services (to refuse) share, so the two cannot drift apart.

The role table (`org.roles`) says which role may assign, report, review, supervise or answer at all, and
only over the user's own subtree; this module adds what depends on the object:

- report (填报进展): the holding unit's reporters, on their own unit's assignment only;
- change a deadline: an action office above the holding unit, as for assigning it a measure;
- break down (分解下达): the holding unit's action office, to its direct children. Responsibility is pressed
  down one level at a time (the notice, section 三: 压实工作责任, 责任到位): the unit that holds a measure
  decides how its children share it. An office above it gives a unit a measure directly (assign), where
  the assignment hangs under the nearest ancestor's;
- review (审核): the action office of the holding unit's direct parent, a submitted report only;
- supervise (督办 / 催办): an action office above the holding unit, never the holding unit itself;
- answer a notice: the unit it was sent to; close it: the supervising unit or one above it; neither once
  it is closed.

Each rule is a `…_refusal(actor, object)` that returns the error a service raises (Forbidden, or
LedgerInvalid for a state that does not allow the action), with its Chinese reason, or None when the actor
may; `may_…` is the same rule as a yes or no for the pages. The operator at the command line
(SystemActor) acts for the whole administration: only the object's state can refuse it.
"""

from __future__ import annotations

from chunfeng.ledger.errors import LedgerInvalid
from chunfeng.ledger.models import REPORT_STATES, Assignment, ProgressReport, SupervisionNotice
from chunfeng.org.access import Actor, SystemActor, refusal
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import Unit


def assign_refusal(actor: Actor, unit: Unit) -> Exception | None:
    """Giving a measure to `unit` directly: an action office above it."""
    if refused := refusal(actor, "ledger.assign", unit):
        return refused
    if not isinstance(actor, SystemActor) and actor.unit.id == unit.id:
        return Forbidden("不能给本单位分配任务:任务由上级单位分配或分解下达")
    return None


def deadline_refusal(actor: Actor, assignment: Assignment) -> Exception | None:
    """Moving an assignment's deadline: those who may give its unit a measure (an action office above it)."""
    if not isinstance(actor, SystemActor) and actor.unit.id == assignment.unit_id:
        return Forbidden("完成时限由分配任务的上级单位调整,不能调整本单位任务的时限")
    return assign_refusal(actor, assignment.unit)


def report_refusal(actor: Actor, assignment: Assignment) -> Exception | None:
    if isinstance(actor, SystemActor):
        return None
    if refused := refusal(actor, "ledger.report", assignment.unit):
        return refused
    if actor.unit.id != assignment.unit_id:
        return Forbidden("只能填报本单位的任务进展")
    return None


def break_down_refusal(actor: Actor, assignment: Assignment) -> Exception | None:
    if isinstance(actor, SystemActor):
        return None
    if refused := refusal(actor, "ledger.assign", assignment.unit):
        return refused
    if actor.unit.id != assignment.unit_id:
        return Forbidden(f"只有承担这项任务的“{assignment.unit.name}”可以将它分解下达给直属下级单位;"
                         "上级单位可在“分配任务”中直接分配给下级单位")
    return None


def review_refusal(actor: Actor, report: ProgressReport) -> Exception | None:
    if not isinstance(actor, SystemActor):
        unit = report.assignment.unit
        if refused := refusal(actor, "ledger.review", unit):
            return refused
        if unit.parent_id != actor.unit.id:
            return Forbidden("只有直属上级单位可以审核这份报告")
    if report.state != "submitted":
        return LedgerInvalid(f"报告当前为“{REPORT_STATES.get(report.state, report.state)}”状态,只有待审核的报告可以审核")
    return None


def supervise_refusal(actor: Actor, assignment: Assignment) -> Exception | None:
    """A supervision notice or a reminder about `assignment`."""
    if isinstance(actor, SystemActor):
        return None
    if refused := refusal(actor, "ledger.supervise", assignment.unit):
        return refused
    if actor.unit.id == assignment.unit_id:
        return Forbidden("督办和催办由上级单位发出,不能发给本单位")
    return None


def answer_refusal(actor: Actor, notice: SupervisionNotice) -> Exception | None:
    if not isinstance(actor, SystemActor):
        if refused := refusal(actor, "ledger.answer", notice.to_unit):
            return refused
        if actor.unit.id != notice.to_unit_id:
            return Forbidden("只有被督办的单位可以答复督办单")
    if notice.state == "closed":
        return LedgerInvalid("督办单已办结,不能再答复")
    return None


def close_refusal(actor: Actor, notice: SupervisionNotice) -> Exception | None:
    if refused := refusal(actor, "ledger.supervise", notice.supervising_unit):
        return refused
    if notice.state == "closed":
        return LedgerInvalid("督办单已办结")
    return None


def may_report(actor: Actor, assignment: Assignment) -> bool:
    return report_refusal(actor, assignment) is None


def may_change_deadline(actor: Actor, assignment: Assignment) -> bool:
    return deadline_refusal(actor, assignment) is None


def may_break_down(actor: Actor, assignment: Assignment) -> bool:
    return break_down_refusal(actor, assignment) is None


def may_review(actor: Actor, report: ProgressReport) -> bool:
    return review_refusal(actor, report) is None


def may_supervise(actor: Actor, assignment: Assignment) -> bool:
    return supervise_refusal(actor, assignment) is None


def may_answer(actor: Actor, notice: SupervisionNotice) -> bool:
    return answer_refusal(actor, notice) is None


def may_close(actor: Actor, notice: SupervisionNotice) -> bool:
    return close_refusal(actor, notice) is None
