"""Whether this official may run, edit, pause, resume, cancel or re-send this campaign now: the one rule the
campaign's page (to offer a button) and the services (to refuse) share. (The permission policy, as in every
domain's policy.py; the tax policies a campaign pushes are `models.Policy`. Import it as `permissions`.)

A campaign belongs to the unit that made it (its audience is that unit's region): the role table's
`push.campaign` over that unit — its service officers and those of the units above it — may act on it. What
they may do depends on the campaign's state:

| action | allowed when |
| --- | --- |
| preview and confirm its next stage | a policy campaign (a bill campaign has no stages to run), active, with a stage not yet run |
| edit what is still to send | a policy campaign, active, paused or failed, with a stage not yet run |
| pause | a policy campaign, active (a failed one has already stopped, and pausing it would hide why) |
| resume | paused or failed (its rules are then checked again) |
| cancel | active, paused or failed |
| re-send the "uncertain" messages | not cancelled (cancelling withdrew what was still to send), and there are some |
| retry the failed messages of one reason | not cancelled, and there are some |
| approve a stage for its day (`push.stage.approve`) | a policy campaign not cancelled or ended, the stage not sent and its day today or later |
| withdraw that approval | the same, the stage approved and its day not yet come |

Each rule is a `…_refusal(actor, campaign, …)` returning the error a service raises (Forbidden, or
PushInvalid for a state that does not allow the action), with its Chinese reason, or None; `may_…` is the
same rule as a yes or no for the page.
"""

from __future__ import annotations

from datetime import date

from chunfeng.org.access import Actor, refusal
from chunfeng.push.errors import PushInvalid
from chunfeng.push.models import CAMPAIGN_STATES, Campaign, CampaignStage

CHANGEABLE = ("active", "paused", "failed")


def _state_refusal(campaign: Campaign, states: tuple[str, ...], doing: str) -> Exception | None:
    if campaign.state not in states:
        return PushInvalid(f"推送活动{CAMPAIGN_STATES.get(campaign.state, campaign.state)},不能{doing}")
    return None


def run_refusal(actor: Actor, campaign: Campaign, stages: list[CampaignStage]) -> Exception | None:
    """Previewing and confirming the next stage."""
    if refused := refusal(actor, "push.campaign", campaign.unit):
        return refused
    if campaign.kind != "policy":
        return PushInvalid("红利账单活动在创建时已生成全部消息,没有要执行的阶段")
    if refused := _state_refusal(campaign, ("active",), "执行"):
        return refused
    if all(stage.planned_at is not None for stage in stages):
        return PushInvalid("这个推送活动的所有阶段都已执行")
    return None


def edit_refusal(actor: Actor, campaign: Campaign, stages: list[CampaignStage]) -> Exception | None:
    if refused := refusal(actor, "push.campaign", campaign.unit) or _state_refusal(campaign, CHANGEABLE, "修改"):
        return refused
    if campaign.kind != "policy":
        return PushInvalid("红利账单活动不能修改")
    if all(stage.planned_at is not None for stage in stages):
        return PushInvalid("所有阶段都已执行,没有可修改的内容")
    return None


def pause_refusal(actor: Actor, campaign: Campaign) -> Exception | None:
    if refused := refusal(actor, "push.campaign", campaign.unit):
        return refused
    if campaign.kind != "policy":
        return PushInvalid("红利账单活动在创建时已生成全部消息,没有可暂停的阶段;要撤回未发出的账单,请取消活动")
    return _state_refusal(campaign, ("active",), "暂停")


def resume_refusal(actor: Actor, campaign: Campaign) -> Exception | None:
    return refusal(actor, "push.campaign", campaign.unit) or _state_refusal(campaign, ("paused", "failed"), "恢复")


def cancel_refusal(actor: Actor, campaign: Campaign) -> Exception | None:
    return refusal(actor, "push.campaign", campaign.unit) or _state_refusal(campaign, CHANGEABLE, "取消")


def requeue_refusal(actor: Actor, campaign: Campaign, uncertain: int) -> Exception | None:
    """Re-sending the campaign's `uncertain` messages (those a crash left unknown)."""
    if refused := refusal(actor, "push.campaign", campaign.unit):
        return refused
    if campaign.state == "cancelled":
        return PushInvalid("推送活动已取消,结果不明的消息不再重发")
    if not uncertain:
        return PushInvalid("这个推送活动没有结果不明的消息")
    return None


def retry_refusal(actor: Actor, campaign: Campaign, failed: int) -> Exception | None:
    """Trying again the campaign's messages that failed for one reason on one channel."""
    if refused := refusal(actor, "push.campaign", campaign.unit):
        return refused
    if campaign.state == "cancelled":
        return PushInvalid("推送活动已取消,失败的消息不再重发")
    if not failed:
        return PushInvalid("没有这一原因的发送失败消息(可能已经重发)")
    return None


def _stage_refusal(actor: Actor, campaign: Campaign, stage: CampaignStage, doing: str) -> Exception | None:
    if refused := refusal(actor, "push.stage.approve", campaign.unit):
        return refused
    if campaign.kind != "policy":
        return PushInvalid("红利账单活动在创建时已生成全部消息,没有要批准的阶段")
    if refused := _state_refusal(campaign, CHANGEABLE, doing):
        return refused
    if stage.planned_at is not None:
        return PushInvalid(f"本阶段已于 {stage.planned_at:%Y-%m-%d} 发送,不能{doing}")
    return None


def approve_refusal(actor: Actor, campaign: Campaign, stage: CampaignStage, today: date) -> Exception | None:
    """Approving a stage for the schedule to send on its day (also again, after a hold on that day)."""
    if refused := _stage_refusal(actor, campaign, stage, "批准"):
        return refused
    if stage.due < today:
        return PushInvalid(f"本阶段定于 {stage.due} 发送,日期已过,不能再批准按期发送;如仍要发送,请预览后确认发送")
    return None


def withdraw_refusal(actor: Actor, campaign: Campaign, stage: CampaignStage, today: date) -> Exception | None:
    """Withdrawing an approval: only before the day, when the schedule may already be sending it."""
    if refused := _stage_refusal(actor, campaign, stage, "撤回批准"):
        return refused
    if stage.approved_at is None:
        return PushInvalid("本阶段尚未批准,没有可撤回的批准")
    if stage.due <= today:
        return PushInvalid(f"本阶段定于 {stage.due} 发送,已到发送日期,不能再撤回批准;要停止发送,请暂停活动")
    return None


def may_approve(actor: Actor, campaign: Campaign, stage: CampaignStage, today: date) -> bool:
    return approve_refusal(actor, campaign, stage, today) is None


def may_withdraw(actor: Actor, campaign: Campaign, stage: CampaignStage, today: date) -> bool:
    return withdraw_refusal(actor, campaign, stage, today) is None


def may_run(actor: Actor, campaign: Campaign, stages: list[CampaignStage]) -> bool:
    return run_refusal(actor, campaign, stages) is None


def may_edit(actor: Actor, campaign: Campaign, stages: list[CampaignStage]) -> bool:
    return edit_refusal(actor, campaign, stages) is None


def may_pause(actor: Actor, campaign: Campaign) -> bool:
    return pause_refusal(actor, campaign) is None


def may_resume(actor: Actor, campaign: Campaign) -> bool:
    return resume_refusal(actor, campaign) is None


def may_cancel(actor: Actor, campaign: Campaign) -> bool:
    return cancel_refusal(actor, campaign) is None


def may_retry(actor: Actor, campaign: Campaign, failed: int) -> bool:
    return retry_refusal(actor, campaign, failed) is None


def may_requeue(actor: Actor, campaign: Campaign, uncertain: int) -> bool:
    return requeue_refusal(actor, campaign, uncertain) is None
