"""Whether this person may see or change this credit record: the one rule the pages (to offer a button) and the
services (to refuse) share.

A rating and a violator entry belong to their competent unit: the officials of that unit's subtree, and of every
unit above it, may see them (credit.view) and, for entries, remove them early (credit.violators.manage). A taxpayer
sees only the ratings of the credit code their account is bound to. The public list needs no rule: it shows only
what is published.
"""

from __future__ import annotations

from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import Violator
from chunfeng.org.access import Actor, allowed, refusal


def is_taxpayer(actor: Actor) -> bool:
    return "taxpayer" in getattr(actor, "role_set", ())


def history_refusal(actor: Actor, credit_code: str, units: list) -> Exception | None:
    """Seeing a taxpayer's credit history, whose ratings sit at `units`. Whoever may not is told there is none:
    that a code has a rating elsewhere is itself not theirs to know."""
    missing = CreditNotFound(f"没有信用代码为 {credit_code} 的纳税缴费信用记录")
    if is_taxpayer(actor):
        if refused := refusal(actor, "credit.self"):
            return refused
        return None if actor.taxpayer_code == credit_code and units else missing
    if refused := refusal(actor, "credit.view"):
        return refused
    return None if any(allowed(actor, "credit.view", unit) for unit in units) else missing


def remove_refusal(actor: Actor, violator: Violator) -> Exception | None:
    if refused := refusal(actor, "credit.violators.manage", violator.unit):
        return refused
    if violator.removed_on is not None:
        return CreditInvalid(f"“{violator.name}”已于 {violator.removed_on} 撤出公布名单")
    return None


def may_remove(actor: Actor, violator: Violator) -> bool:
    return remove_refusal(actor, violator) is None
