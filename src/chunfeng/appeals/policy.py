"""Whether this official may act on this demand or complaint: the one rule the item's page (to offer a button)
and the services (to refuse) share.

An item belongs to its responsible unit (`Appeal.unit`: where routing sent it, an official reassigned it, or
escalation moved it up). The role table says who may handle items and who may see a submitter's contact in
full; this module adds the item: the officials of the responsible unit's subtree and of every unit above it,

- move it on (accept, start, reply, close) from the states the state machine allows (`models.MOVES`);
- reassign it or change its measures, to a unit of their own subtree;
- see the submitter's contact in full, when there is one left to see (retention erases it).

Each rule is a `…_refusal(actor, item, …)` returning the error a service raises (Forbidden, or AppealInvalid
for a state that does not allow the action), with its Chinese reason, or None; `may_…` is the same rule as a
yes or no for the page.
"""

from __future__ import annotations

from chunfeng.appeals.errors import AppealInvalid
from chunfeng.appeals.models import ACTION_NAMES, MOVES, STATES, Appeal
from chunfeng.org.access import Actor, refusal
from chunfeng.org.models import Unit


def handle_refusal(actor: Actor, appeal: Appeal) -> Exception | None:
    return refusal(actor, "appeals.handle", appeal.unit)


def move_refusal(actor: Actor, appeal: Appeal, action: str) -> Exception | None:
    if action not in MOVES:
        return AppealInvalid(f"未知操作“{action}”")
    if refused := handle_refusal(actor, appeal):
        return refused
    if appeal.state not in MOVES[action][0]:
        return AppealInvalid(f"事项当前为“{STATES[appeal.state]}”,不能{ACTION_NAMES[action]}")
    return None


def reassign_refusal(actor: Actor, appeal: Appeal, unit: Unit | None = None) -> Exception | None:
    """Reassigning the item to `unit` (None: changing only its measures)."""
    if refused := handle_refusal(actor, appeal):
        return refused
    return refusal(actor, "appeals.handle", unit) if unit is not None else None


def contact_refusal(actor: Actor, appeal: Appeal) -> Exception | None:
    if refused := refusal(actor, "appeals.contact", appeal.unit):
        return refused
    if not (appeal.submitter or appeal.phone or appeal.email):
        return AppealInvalid("这件事项没有可查看的联系方式:提交人未留下,或已在办结满保存期限后删除")
    return None


def may_handle(actor: Actor, appeal: Appeal) -> bool:
    return handle_refusal(actor, appeal) is None


def may_move(actor: Actor, appeal: Appeal, action: str) -> bool:
    return move_refusal(actor, appeal, action) is None


def may_view_contact(actor: Actor, appeal: Appeal) -> bool:
    return contact_refusal(actor, appeal) is None
