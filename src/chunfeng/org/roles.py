"""Roles, levels and what each role may do: permission is decided here and nowhere else.

Deny by default: a permission not listed for any of a user's roles is refused, and every
unit-bound permission is also limited to the user's own unit subtree.
"""

from __future__ import annotations

ROLES: dict[str, str] = {
    "admin": "系统管理员",
    "action_office": "春风办",
    "unit_reporter": "单位填报员",
    "agent": "12366坐席",
    "service_officer": "纳税服务专员",
    "viewer": "只读查看",
    "taxpayer": "纳税人缴费人",
    "security_admin": "安全管理员",
    "audit_admin": "审计管理员",
}

# 三员分立: the system administrator (users, units, settings), the security administrator (roles and policies)
# and the audit administrator (the audit log and nothing else) are three people; no account holds two.
SEPARATED = frozenset({"admin", "security_admin", "audit_admin"})
# Everything else is a business role: it reaches taxpayers' data. An administrator never holds one (see
# `org.services.role_change_refusal`), so administering the system never also means working in it.
BUSINESS = frozenset(ROLES) - SEPARATED

LEVELS: dict[str, str] = {
    "national": "总局",
    "department": "总局内设机构",
    "province": "省级税务局",
    "municipal": "市级税务局",
    "county": "县级税务局",
    "branch": "税务分局（所）",
}

# Which levels an imported unit of each level may hang under.
PARENT_LEVELS: dict[str, set[str]] = {
    "municipal": {"province"},
    "county": {"province", "municipal"},
    "branch": {"municipal", "county"},
}

# Officials: every role but the taxpayer's, who sees only their own messages and bill, and the audit
# administrator's, who sees the audit log and nothing else.
ALL = frozenset(ROLES) - {"taxpayer", "audit_admin"}

PERMISSIONS: dict[str, frozenset[str]] = {
    "plan.view": ALL,
    "plan.import": frozenset({"admin", "action_office"}),
    "org.unit.view": ALL,
    "org.unit.import": frozenset({"admin"}),
    "org.user.view": frozenset({"admin"}),
    "org.user.manage": frozenset({"admin"}),
    "audit.view": frozenset({"audit_admin"}),
    "org.user.roles": frozenset({"security_admin"}),
    "ledger.view": ALL,
    "ledger.assign": frozenset({"action_office"}),
    "ledger.report": frozenset({"unit_reporter"}),
    "ledger.review": frozenset({"action_office"}),
    "ledger.indicator": frozenset({"action_office"}),
    "ledger.supervise": frozenset({"action_office"}),
    "ledger.answer": frozenset({"action_office", "unit_reporter"}),
    "inbox.read": ALL,
    "inbox.channel": frozenset({"admin"}),
    "outbox.view": frozenset({"admin"}),  # the whole delivery log of the subtree; service officers see their pushes'
    "consult.agent": frozenset({"agent", "service_officer"}),
    "consult.kb.edit": frozenset({"agent"}),
    "consult.kb.national": frozenset({"agent"}),
    "consult.analytics": frozenset({"agent", "service_officer", "action_office"}),
    "push.policy.view": ALL,
    "push.policy.edit": frozenset({"service_officer"}),
    "push.match": frozenset({"service_officer", "action_office"}),
    "push.campaign": frozenset({"service_officer"}),
    "push.bill.view": frozenset({"service_officer"}),
    "push.inbox": frozenset({"taxpayer"}),
    "appeals.view": frozenset({"service_officer", "action_office", "agent", "viewer"}),
    "appeals.handle": frozenset({"service_officer"}),
    "appeals.contact": frozenset({"service_officer"}),
    "appeals.enter": frozenset({"service_officer", "agent"}),
    "appeals.analysis": frozenset({"service_officer", "action_office"}),
    "calendar.view": ALL,
    "calendar.manage": frozenset({"admin"}),
}

# Permissions that only make sense for the whole country: the user must sit at the national unit.
NATIONAL_ONLY = frozenset({"plan.import", "ledger.indicator", "consult.kb.national", "push.policy.edit", "calendar.manage"})
