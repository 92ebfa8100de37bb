"""The audit log in words an official reads: Chinese names for the operation codes, Beijing time, and the
before/after of a change as "field: old → new" instead of canonical JSON.

The codes stay what is hashed and filtered on; this only says them. A code is named from its parts (domain,
object, verb), so a new operation written as `domain.object.verb` reads sensibly without an entry here; a code
with a part not known here is shown as it is rather than guessed at.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

BEIJING = timedelta(hours=8)

WHOLE: dict[str, str] = {
    "access.denied": "越权访问被拒绝",
    "config.changed": "系统配置变更",
    "org.login.succeeded": "登录成功",
    "org.login.failed": "登录失败(密码错误)",
    "org.login.locked": "多次密码错误,锁定登录",
    "org.login.refused_locked": "锁定期间登录被拒",
    "org.password.refused_locked": "锁定期间修改密码被拒",
    "org.password.wrong_current": "修改密码时原密码错误",
    "org.totp.change_refused": "修改动态口令被拒",
    "org.user.roles_changed": "修改用户角色",
    "org.user.enabled": "启用或停用账户",
    "appeals.contact.searched": "按联系方式查找诉求",
    "appeals.contact.viewed": "查看诉求人完整联系方式",
    "appeals.contacts.erased": "到期删除诉求人联系方式",
    "appeals.overridden": "改派或改关联诉求",
    "push.taxpayers.exported": "导出纳税人清单",
    "push.bills.sent": "发送红利账单",
    "push.stage.approved": "批准推送阶段按期发送",
    "push.stage.withdrawn": "撤回推送阶段的批准",
    "push.stage.held": "推送阶段对象变化超出允许范围,暂停发送",
    "push.stage.skipped": "推送阶段到期未批准,未发送",
    "survey.direct.form.created": "直联直报·下发报送表",
    "survey.direct.report.submitted": "直联直报·单位报送",
    "survey.units.reminded": "提醒未作答的受邀单位填写问卷",
    "survey.questionnaire.new_version": "问卷调查·复制为新版本草稿",
    "survey.questionnaire.renamed": "问卷调查·修改问卷标题和说明",
    "survey.question.moved": "问卷调查·调整题目顺序",
    "survey.question.deleted": "问卷调查·删除题目",
    "audit.exported": "导出审计日志",
    "backup.created": "创建备份",
    "backup.restored": "从备份恢复",
}

DOMAINS: dict[str, str] = {
    "org": "账户", "ledger": "台账", "plan": "行动方案", "consult": "12366咨询", "push": "精准推送",
    "appeals": "诉求", "audit": "审计", "backup": "备份", "calendar": "工作日历", "inbox": "收件箱",
    "credit": "纳税信用", "survey": "问卷调查",
}

OBJECTS: dict[str, str] = {
    "assignment": "任务分解", "report": "进展报告", "notice": "督办单", "evidence": "佐证材料", "indicator": "成效指标",
    "user": "用户", "password": "密码", "session": "会话", "totp": "动态口令", "units": "下级单位", "unit": "单位",
    "entry": "知识条目", "handoff": "转人工问题", "campaign": "推送活动", "stage": "推送阶段", "policy": "优惠政策",
    "bills": "红利账单", "taxpayers": "纳税人清单", "channel": "通知渠道", "year": "年度日历", "deadline": "申报期限",
    "login": "登录", "ratings": "信用评价结果", "violator": "失信主体", "alist": "A级纳税人名单",
    "questionnaire": "问卷", "question": "问卷题目", "invitations": "问卷邀请", "results": "调查结果", "finding": "调查发现",
    "evaluation": "信用评价申请", "rating": "信用评价结果", "repair": "信用修复申请", "risk": "风险等级",
    "annual": "年度信用(集中评价)", "analysis": "问卷分析", "direct": "直联直报", "optout": "问卷退订", "population": "各层总体数",
    "reminders": "问卷提醒", "sample": "抽样样本", "theme": "调查主题",
}

VERBS: dict[str, str] = {
    "created": "新建", "bulk_created": "批量新建", "approved": "审核通过", "returned": "退回", "submitted": "提交",
    "resubmitted": "重新提交", "issued": "下发", "answered": "答复", "closed": "办结", "escalated": "升级督办",
    "reminded": "催办", "attached": "上传", "changed": "修改", "reset": "重置", "ended": "结束", "enrolled": "绑定",
    "imported": "导入", "replaced": "替换", "disabled": "停用", "unlocked": "解除锁定", "reviewed": "复核",
    "edited": "修改", "cancelled": "取消", "paused": "暂停", "resumed": "恢复", "requeued": "重新排队",
    "retried": "重试发送", "confirmed": "确认发送",
    "failed": "失败", "planned": "生成发送计划", "refreshed": "更新", "rule_changed": "修改适用条件",
    "set": "设置", "added": "添加", "exported": "导出", "removed": "提前撤出", "expired": "期满撤出",
    # appeals.{action}: the steps of an item
    "received": "收到", "accept": "受理", "start": "开始办理", "reply": "答复", "close": "办结", "reassign": "改派",
    "rated": "评价", "reopened": "重新办理", "note": "备注", "escalate": "升级",
    "published": "发布", "sent": "发送",
    "applied": "申请", "evaluated": "评价", "refused": "不予办理", "repaired": "修复", "computed": "计算",
    "recorded": "登记", "drawn": "抽取", "invited": "发出邀请", "linked": "关联措施",
}

OUTCOMES: dict[str, str] = {"success": "成功", "failure": "失败", "denied": "拒绝"}

# The prefixes the audit page offers as a filter, in the order an auditor looks for them.
FILTERS: dict[str, str] = {
    "org.login": "登录", "org.user": "账户与角色", "org.password": "密码", "org.totp": "动态口令",
    "access.denied": "越权访问", "config.changed": "配置变更", "audit": "审计日志导出", "backup": "备份与恢复",
    "ledger": "台账(全部)", "ledger.report": "进展报告", "ledger.notice": "督办", "plan": "行动方案",
    "consult": "12366咨询", "push": "精准推送", "appeals": "诉求", "calendar": "工作日历", "inbox": "通知渠道",
    "credit": "纳税信用", "survey": "问卷调查",
}

FIELDS: dict[str, str] = {
    "status": "状态", "percent": "完成百分比", "roles": "角色", "narrative": "进展情况", "comment": "意见",
    "deadline": "期限", "unit": "单位", "period": "期间", "measure": "措施", "rows": "行数", "purpose": "用途",
    "filters": "筛选条件", "count": "数量", "name": "名称", "active": "启用", "reason": "原因", "state": "状态",
    "path": "访问路径", "permission": "权限", "method": "请求方法", "username": "用户名", "entries": "条数",
}


def action_name(code: str) -> str:
    """The operation's name in Chinese, or the code itself when a part of it is not known."""
    if code in WHOLE:
        return WHOLE[code]
    domain, *rest = code.split(".")
    if domain not in DOMAINS or not rest or len(rest) > 2:
        return code
    if len(rest) == 1:
        verb = VERBS.get(rest[0])
        return f"{DOMAINS[domain]}·{verb}" if verb else code
    thing, verb = OBJECTS.get(rest[0]), VERBS.get(rest[1])
    return f"{DOMAINS[domain]}·{verb}{thing}" if thing and verb else code


def beijing_time(at: str) -> str:
    """A stored UTC time (ISO 8601) as Beijing time, to the second."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return at
    return (moment.replace(tzinfo=None) + BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list | tuple):
        return "、".join(_value(v) for v in value) or "—"
    if isinstance(value, dict):
        return ";".join(f"{FIELDS.get(k, k)}: {_value(v)}" for k, v in value.items())
    return str(value)


def changes(before: str, after: str, *, limit: int = 8) -> list[str]:
    """The change as lines "field: old → new" (or "field: value" where there is no before), at most `limit`."""
    try:
        old, new = json.loads(before or "null"), json.loads(after or "null")
    except ValueError:
        return [after[:200]]
    if not isinstance(new, dict):
        return [] if new is None else [_value(new)]
    old = old if isinstance(old, dict) else {}
    lines = []
    for key, value in new.items():
        label = FIELDS.get(key, key)
        if key in old and old[key] != value:
            lines.append(f"{label}: {_value(old[key])} → {_value(value)}")
        elif key not in old:
            lines.append(f"{label}: {_value(value)}")
    more = len(lines) - limit
    return lines[:limit] + ([f"……另有 {more} 项"] if more > 0 else [])
