"""The permission matrix: every role × every permission, at the national, provincial and county level,
over units inside and outside the user's subtree. Generated from one table; each cell allow or deny."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chunfeng.org.access import allowed, authorize
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import Unit, User
from chunfeng.org.roles import ROLES

# A taxpayer's account sees only its own messages and bill; the audit administrator only the audit log.
OFFICIALS = set(ROLES) - {"taxpayer", "audit_admin"}

ALLOW = {
    # permission: roles that hold it
    "plan.view": OFFICIALS,
    "plan.import": {"admin", "action_office"},
    "org.unit.view": OFFICIALS,
    "org.unit.import": {"admin"},
    "org.user.view": {"admin"},
    "org.user.manage": {"admin"},
    "audit.view": {"audit_admin"},
    "org.user.roles": {"security_admin"},
    "ledger.view": OFFICIALS,
    "ledger.assign": {"action_office"},
    "ledger.report": {"unit_reporter"},
    "ledger.review": {"action_office"},
    "ledger.indicator": {"action_office"},
    "ledger.supervise": {"action_office"},
    "ledger.answer": {"action_office", "unit_reporter"},
    "inbox.read": OFFICIALS,
    "inbox.channel": {"admin"},
    "consult.agent": {"agent", "service_officer"},
    "consult.kb.edit": {"agent"},
    "consult.kb.national": {"agent"},
    "consult.analytics": {"agent", "service_officer", "action_office"},
    "push.policy.view": OFFICIALS,
    "push.policy.edit": {"service_officer"},
    "push.match": {"service_officer", "action_office"},
    "push.campaign": {"service_officer"},
    "push.bill.view": {"service_officer"},
    "push.inbox": {"taxpayer"},
    "appeals.view": {"service_officer", "action_office", "agent", "viewer"},
    "appeals.handle": {"service_officer"},
    "appeals.contact": {"service_officer"},
    "appeals.enter": {"service_officer", "agent"},
    "appeals.analysis": {"service_officer", "action_office"},
}
NATIONAL_ONLY = {"plan.import", "ledger.indicator", "consult.kb.national", "push.policy.edit"}
UNIT_BOUND = {"org.unit.view", "org.unit.import", "org.user.view", "org.user.manage", "org.user.roles", "ledger.view", "ledger.assign",
              "ledger.report", "ledger.review", "ledger.supervise", "ledger.answer", "inbox.read", "inbox.channel", "consult.kb.edit",
              "push.campaign", "appeals.view", "appeals.handle", "appeals.contact"}

WHERE = {"national": "000000", "province": "110000", "county": "110101"}
TARGETS = {"own": None, "child": "110101", "other_province": "440000", "parent": "110000"}

CASES = [(role, level, perm) for role in ROLES for level in WHERE for perm in ALLOW]


def expected(role: str, level: str, perm: str, target: str | None, target_code: str | None) -> bool:
    if role not in ALLOW[perm]:
        return False
    if perm in NATIONAL_ONLY and level != "national":
        return False
    if target is None or perm not in UNIT_BOUND:
        return True
    own = WHERE[level]
    return target_code.startswith(own[:2]) if level == "province" else (level == "national" or target_code == own)


@pytest.fixture
def users(db, add_users, county):
    add_users({f"{role}_{level}": (code, [role]) for role in ROLES for level, code in WHERE.items()})
    return db


def test_matrix(users):
    checked = 0
    with users.read() as s:
        units = {u.code: u for u in s.scalars(select(Unit))}
        for role, level, perm in CASES:
            user = s.scalar(select(User).where(User.username == f"{role}_{level}"))
            for target, code in TARGETS.items():
                code = code or WHERE[level]
                if target == "parent" and level == "national":
                    continue
                want = expected(role, level, perm, target if perm in UNIT_BOUND else None, code)
                unit = units[code] if perm in UNIT_BOUND else None
                assert allowed(user, perm, unit) is want, (role, level, perm, target)
                if not want:
                    with pytest.raises(Forbidden):
                        authorize(user, perm, unit)
                checked += 1
    assert checked == len(CASES) * len(TARGETS) - len(ROLES) * len(ALLOW)


def test_unknown_permission_is_denied(users):
    with users.read() as s:
        admin = s.scalar(select(User).where(User.username == "admin_national"))
        assert not allowed(admin, "ledger.anything")


def test_inactive_user_is_denied(users):
    with users.write() as s:
        admin = s.scalar(select(User).where(User.username == "admin_national"))
        admin.active = False
        assert not allowed(admin, "plan.view")


def test_every_permission_has_a_name_and_a_refusal_says_it_in_words():
    """Issue 14.10: 403 pages showed permission ids ("ledger.review"). Each permission has a Chinese name, and a
    refusal names what was refused and which roles may do it, never the id."""
    from chunfeng.org.roles import PERMISSION_NAMES, PERMISSIONS

    assert set(PERMISSION_NAMES) == set(PERMISSIONS)
    viewer = User(username="v", display_name="v", roles="viewer", unit=Unit(code="110000", name="北京", level="province"))
    with pytest.raises(Forbidden) as refused:
        authorize(viewer, "ledger.review")
    assert "审核进展报告" in str(refused.value) and "春风办" in str(refused.value)
    assert "ledger.review" not in str(refused.value)
