"""Who is acting, and whether they may: the one permission check every route and service uses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement

from chunfeng.org.builtin import NATIONAL
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import Unit, User
from chunfeng.org.roles import NATIONAL_ONLY, PERMISSIONS, permission_name, roles_allowed


@dataclass(frozen=True)
class SystemActor:
    """The operator at the server's command line: acts for the whole administration."""

    username: str = "system"
    unit_code: str = NATIONAL[0]


Actor = User | SystemActor


def allowed(actor: Actor, permission: str, unit: Unit | None = None) -> bool:
    if isinstance(actor, SystemActor):
        return True
    if not actor.active or not (actor.role_set & PERMISSIONS.get(permission, frozenset())):
        return False
    if permission in NATIONAL_ONLY and actor.unit.level != "national":
        return False
    return unit is None or actor.unit.contains(unit)


def refusal(actor: Actor, permission: str, unit: Unit | None = None) -> Forbidden | None:
    """Why `actor` may not use `permission` (over `unit`, when one is named), as the error to raise; None if
    they may. The domains' policy modules build their object rules on it."""
    if allowed(actor, permission, unit):
        return None
    if unit is not None and isinstance(actor, User) and not actor.unit.contains(unit):
        # The refused unit is not named: its name is outside what this user may read.
        return Forbidden(f"无权访问该单位:它不在您所在单位“{actor.unit.name}”的管辖范围内")
    holders = roles_allowed(permission)
    national = "(且须在总局)" if permission in NATIONAL_ONLY else ""
    return Forbidden(f"您的角色无权{permission_name(permission)}" +
                     (f"。此操作由{'、'.join(holders)}办理{national},如需办理请联系本单位系统管理员。" if holders else "。"))


def authorize(actor: Actor, permission: str, unit: Unit | None = None) -> None:
    """Raise Forbidden unless `actor` holds `permission` (over `unit`, when one is named)."""
    if (refused := refusal(actor, permission, unit)) is not None:
        raise refused


def subtree_filter(actor: Actor) -> ColumnElement[bool]:
    """SQL condition: the unit is in the actor's subtree."""
    if isinstance(actor, SystemActor):
        return Unit.path.is_not(None)
    return Unit.path.startswith(actor.unit.path, autoescape=True)
