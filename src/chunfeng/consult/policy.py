"""Whether this user may act on this hand-off or knowledge entry: the one rule that the pages (to offer a
button or a row) and the services (to refuse) share.

A hand-off belongs to the bureau of the region the question was asked for — the unit with that region's
code, else the nearest known unit above it (org.services.unit_for_region) — and to the national
administration when the question names no region. That unit is fixed when the hand-off is made
(`Handoff.unit_id`); officials of its subtree, and of every unit above it, see, answer and forward it, as
they do an appeal routed there. So 深圳 (a separately planned city under the national administration) is
not 广东's, and a question asked for 北京 is not 广东's either.

A published knowledge entry is a public answer: every agent reads it. A draft, and the history and export
of a draft, belong to the subtree of the unit that owns the entry (the national unit sees all).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from chunfeng.consult.errors import ConsultNotFound
from chunfeng.consult.models import ConsultQuery, Handoff, KbEntry
from chunfeng.org.access import Actor, SystemActor, allowed, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.org.services import unit_for_region


def handoff_unit(session: Session, region: str) -> Unit:
    """The unit a hand-off asked for `region` belongs to."""
    return unit_for_region(session=session, region=region)


def may_handle_handoff(actor: Actor, handoff: Handoff, permission: str = "consult.agent") -> bool:
    return allowed(actor, permission, handoff.unit)


def access_handoff_by_id(session: Session, actor: Actor, handoff_id: int,
                         permission: str = "consult.agent") -> Handoff:
    """The hand-off, if `actor` may act on it with `permission`; Forbidden when it belongs to another subtree."""
    item = session.get(Handoff, handoff_id)
    if item is None:
        raise ConsultNotFound(f"没有编号为 {handoff_id} 的转人工问题")
    authorize(actor, permission, item.unit)
    return item


def handoffs_within(actor: Actor) -> ColumnElement[bool]:
    """SQL condition on a query joined with Unit on Handoff.unit_id: the hand-offs `actor` may see."""
    return subtree_filter(actor)


def may_edit_entry(actor: Actor, entry: KbEntry) -> bool:
    return allowed(actor, "consult.kb.edit", entry.owner_unit)


def access_entry_by_key(session: Session, actor: Actor, key: str) -> KbEntry:
    """The entry, if `actor` may read it; Forbidden for another subtree's draft."""
    authorize(actor, "consult.agent")
    entry = session.scalar(select(KbEntry).where(KbEntry.key == key))
    if entry is None:
        raise ConsultNotFound(f"没有编号为 {key} 的知识条目")
    if entry.status != "published":
        authorize(actor, "consult.agent", entry.owner_unit)
    return entry


def entries_within(session: Session, actor: Actor) -> ColumnElement[bool]:
    """SQL condition on KbEntry: the entries `actor` may read (every published one, drafts of its subtree)."""
    if isinstance(actor, SystemActor) or actor.unit.level == "national":
        return KbEntry.id.is_not(None)
    owners = select(Unit.id).where(subtree_filter(actor))
    return or_(KbEntry.status == "published", KbEntry.owner_unit_id.in_(owners))


def regions_within(session: Session, actor: Actor, regions: set[str]) -> set[str]:
    """Of the regions questions were asked for, those whose bureau is in the actor's subtree: the questions
    an official may read in the analytics (the same rule as for hand-offs)."""
    if isinstance(actor, SystemActor) or actor.unit.level == "national":
        return set(regions)
    known = set(session.scalars(select(Unit.code).where(Unit.code.in_(regions))))
    mine = set(session.scalars(select(Unit.code).where(Unit.code.in_(known), subtree_filter(actor))))
    # Questions are logged under a unit's code (services.ask); older rows may hold a district code.
    return mine | {r for r in regions - known if actor.unit.contains(handoff_unit(session, r))}


def asked_regions(session: Session) -> set[str]:
    return set(session.scalars(select(ConsultQuery.region).distinct()))
