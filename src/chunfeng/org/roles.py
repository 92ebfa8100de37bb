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
    # Approving a stage for the schedule to send unattended: today the officers who may also confirm one by hand.
    "push.stage.approve": frozenset({"service_officer"}),
    "push.bill.view": frozenset({"service_officer"}),
    "push.inbox": frozenset({"taxpayer"}),
    "appeals.view": frozenset({"service_officer", "action_office", "agent", "viewer"}),
    "appeals.handle": frozenset({"service_officer"}),
    "appeals.contact": frozenset({"service_officer"}),
    "appeals.enter": frozenset({"service_officer", "agent"}),
    "appeals.analysis": frozenset({"service_officer", "action_office"}),
    "calendar.view": ALL,
    "calendar.manage": frozenset({"admin"}),
    "jobs.view": frozenset({"admin"}),  # the periodic jobs' runs and errors; a task's page is its starter's
    "credit.view": frozenset({"service_officer", "action_office", "viewer"}),
    "credit.import": frozenset({"service_officer"}),
    "credit.violators.manage": frozenset({"service_officer"}),
    "credit.self": frozenset({"taxpayer"}),
    "credit.repair.apply": frozenset({"taxpayer", "service_officer"}),  # a taxpayer for itself, an official on its behalf
    "credit.repair.decide": frozenset({"service_officer"}),
    "credit.evaluate": frozenset({"service_officer"}),
    "credit.risk": frozenset({"service_officer"}),
    "survey.view": frozenset({"service_officer", "action_office", "viewer"}),
    "survey.manage": frozenset({"service_officer", "action_office"}),
    # A contact unit's own direct report (measure 19): service halls, 12366 and grassroots bureaus.
    "survey.report": frozenset({"unit_reporter", "service_officer", "agent"}),
}

# What each permission lets a person do, in the words a refusal shows them (never the permission's id).
PERMISSION_NAMES: dict[str, str] = {
    "plan.view": "查看行动方案",
    "plan.import": "导入行动方案",
    "org.unit.view": "查看单位",
    "org.unit.import": "导入下级单位",
    "org.user.view": "查看用户",
    "org.user.manage": "管理用户账户",
    "audit.view": "查看审计日志",
    "org.user.roles": "授予业务角色",
    "ledger.view": "查看台账",
    "ledger.assign": "分解任务",
    "ledger.report": "填报进展",
    "ledger.review": "审核进展报告",
    "ledger.indicator": "设置成效指标",
    "ledger.supervise": "下发督办单",
    "ledger.answer": "答复督办单",
    "inbox.read": "阅读收件箱",
    "inbox.channel": "设置通知渠道",
    "consult.agent": "处理转人工问题",
    "consult.kb.edit": "编辑知识库",
    "consult.kb.national": "编辑全国知识库",
    "consult.analytics": "查看咨询分析",
    "push.policy.view": "查看优惠政策",
    "push.policy.edit": "编辑优惠政策",
    "push.match": "查看政策匹配与应享未享清单",
    "push.campaign": "管理推送活动",
    "push.stage.approve": "批准推送阶段按期发送",
    "push.bill.view": "查看红利账单",
    "push.inbox": "阅读消息中心",
    "appeals.view": "查看诉求",
    "appeals.handle": "办理诉求",
    "appeals.contact": "查看诉求人联系方式",
    "appeals.enter": "登记诉求",
    "appeals.analysis": "查看诉求分析",
    "calendar.view": "查看工作日历",
    "calendar.manage": "维护工作日历",
    "jobs.view": "查看定时任务",
    "outbox.view": "查看发送记录",
    "credit.view": "查看纳税缴费信用",
    "credit.import": "导入纳税缴费信用评价结果",
    "credit.violators.manage": "管理重大税收违法失信主体名单",
    "credit.self": "查看本企业纳税缴费信用",
    "credit.repair.apply": "申请纳税缴费信用修复",
    "credit.repair.decide": "核定纳税缴费信用修复申请",
    "credit.evaluate": "受理和开展个体工商户自愿信用评价",
    "credit.risk": "计算和查看纳税人风险等级",
    "survey.view": "查看问卷与调查结果",
    "survey.manage": "管理问卷(导入、发布、邀请)",
    "survey.report": "填报本单位的直联直报",
}


# Where each role's work is, in order of precedence for a user holding several: a reporter lands on the to-do
# list, the action office on the review queue, a 12366 agent on the hand-off queue, a service officer on the
# appeals — not everyone on the notice's text.
LANDINGS: tuple[tuple[str, str], ...] = (
    ("taxpayer", "/push/inbox"), ("audit_admin", "/audit"), ("security_admin", "/security"),
    ("admin", "/org/units/{unit}"), ("unit_reporter", "/ledger/todo"), ("action_office", "/ledger/review"),
    ("agent", "/consult/queue"), ("service_officer", "/appeals"), ("viewer", "/ledger"),
)


def landing(roles: set[str], unit_code: str) -> str:
    """The page a user with these roles starts on."""
    return next((page.format(unit=unit_code) for role, page in LANDINGS if role in roles), "/plan")


def permission_name(permission: str) -> str:
    return PERMISSION_NAMES.get(permission, permission)


def roles_allowed(permission: str) -> list[str]:
    """The names of the roles that hold a permission, to tell a refused person whom to ask."""
    return [name for role, name in ROLES.items() if role in PERMISSIONS.get(permission, ())]


# Permissions that only make sense for the whole country: the user must sit at the national unit.
NATIONAL_ONLY = frozenset({"plan.import", "ledger.indicator", "consult.kb.national", "push.policy.edit", "calendar.manage"})
