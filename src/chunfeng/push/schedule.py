"""What the schedule may send, and who said so. An official approves a stage for its day after seeing its preview
(批准按期发送); on that day the schedule (`chunfeng worker`'s push.stages, `chunfeng push campaign run`) sends only
what was approved, and only if the taxpayers it reaches then are within a margin of the figure approved
(`CHUNFENG_PUSH_APPROVAL_MARGIN`). Beyond it the stage is held and the approver's unit told; a stage whose day comes
without an approval is not sent, and the campaign's unit is told once. An approval can be withdrawn before the day.

Approving refreshes nothing by itself: what goes out is still computed on the day (the reminders must leave out
those who filed in between), the approval bounds how far that may drift from what a person saw.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.db import Database, utcnow
from chunfeng.inbox import services as inbox
from chunfeng.jobs import Progress, local_day, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor
from chunfeng.org.models import Unit, User
from chunfeng.push import policy as permissions
from chunfeng.push import rules, stages
from chunfeng.push.campaigns import STAGES, get_campaign, unconfigured_text, validity_problems
from chunfeng.push.errors import PushError, PushInvalid
from chunfeng.push.models import Campaign, CampaignStage
from chunfeng.settings import DEFAULTS

log = logging.getLogger(__name__)
BEIJING = timedelta(hours=8)


def beyond_margin(approved: int, now: int, margin: float) -> bool:
    """Whether today's audience has moved further from the approved one than the margin (a fraction of it)."""
    return abs(now - approved) > margin * approved


def stage_state(stage: CampaignStage, today: date) -> tuple[str, str]:
    """(code, words) of a stage as its campaign's page shows it: sent, held, approved, overdue or unapproved."""
    if stage.planned_at is not None:
        return "sent", f"已发送({(stage.planned_at + BEIJING):%m-%d %H:%M})"
    if stage.held_at is not None:
        return "held", f"已暂停({stage.held_reason})"
    if stage.approved_at is not None:
        return "approved", (f"已批准({stage.approved_by},{(stage.approved_at + BEIJING):%Y-%m-%d %H:%M},"
                            f"{stage.approved_taxpayers} 户纳税人 / {stage.approved_messages} 条消息)")
    if stage.due <= today:
        return "overdue", "待批准·已到期"
    return "unapproved", "未批准"


def _checked(session: Session, actor: Actor, campaign_id: int, stage: str, refusal, today: date):
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    found = stages.stage_named(session, campaign, stage)
    if refused := refusal(actor, campaign, found, today):
        raise refused
    return campaign, found


def approve_stage(*, session: Session, conn, actor: Actor, campaign_id: int, stage: str, code: str,
                  configured: Collection[str], now: datetime | None = None,
                  cap: int = DEFAULTS.push_cap_per_week) -> CampaignStage:
    """Approve the stage previewed for sending on its day: refused when the preview (`code`) is no longer who
    would get what, so the figures recorded are those the approver saw."""
    now = now or utcnow()
    campaign, found = _checked(session, actor, campaign_id, stage, permissions.approve_refusal, local_day(now))
    if problems := validity_problems(session, campaign.policies, year=campaign.year, month=campaign.month):
        raise PushInvalid("不能批准:" + ";".join(text for _, text in problems))
    if off := [c for c in campaign.channels if c not in configured]:
        raise PushInvalid("不能批准:" + unconfigured_text(off) + ",请先修改活动的渠道")
    chosen = stages.select_messages(session, conn, campaign, found, now, cap)
    if chosen.code() != code.strip():
        raise PushInvalid(f"预览之后发送对象有了变化(现为 {len(chosen.regions)} 户纳税人、{len(chosen.messages)} 条消息),"
                          "请重新预览后再批准")
    before = found.clear_approval() if found.approved_at else None
    # the operator at the command line acts for no unit: a hold is then told to the campaign's own
    unit_id = actor.unit.id if isinstance(actor, User) else campaign.unit_id
    found.approved_at, found.approved_by, found.approved_unit_id = now, actor.username, unit_id
    found.approved_taxpayers, found.approved_messages = len(chosen.regions), len(chosen.messages)
    if found.held_at is not None:  # approved again after a hold: the new figures are what the day is held to
        before = (before or {}) | {"held_reason": found.held_reason}
        found.held_at, found.held_reason = None, ""
    audit.record(session, actor=actor, action="push.stage.approved", object_type="campaign", object_id=campaign.id,
                 before=before, after={"stage": found.stage, "due": str(found.due), "taxpayers": found.approved_taxpayers,
                                       "messages": found.approved_messages, "code": chosen.code()})
    return found


def withdraw_approval(*, session: Session, actor: Actor, campaign_id: int, stage: str,
                      now: datetime | None = None) -> CampaignStage:
    """Take an approval back before the stage's day: the schedule will not send it."""
    now = now or utcnow()
    campaign, found = _checked(session, actor, campaign_id, stage, permissions.withdraw_refusal, local_day(now))
    before = found.clear_approval()
    audit.record(session, actor=actor, action="push.stage.withdrawn", object_type="campaign", object_id=campaign.id,
                 before=before, after={"stage": found.stage, "due": str(found.due)})
    return found


# --- the scheduled run -----------------------------------------------------------------------------------

@dataclass
class ScheduledRun:
    """What one run of the schedule did: the stages sent, held (audience moved) and left waiting for approval."""

    planned: list[CampaignStage] = field(default_factory=list)
    held: list[CampaignStage] = field(default_factory=list)
    unapproved: list[CampaignStage] = field(default_factory=list)


def due_stages(session: Session, today: date) -> list[tuple[Campaign, CampaignStage]]:
    """The stages the schedule still has something to do for: not sent, not held, and either approved or not yet
    reported as come due without approval."""
    return list(session.execute(
        select(Campaign, CampaignStage).join(CampaignStage, CampaignStage.campaign_id == Campaign.id)
        .where(Campaign.state == "active", Campaign.kind == "policy", CampaignStage.planned_at.is_(None),
               CampaignStage.held_at.is_(None), CampaignStage.due <= today,
               CampaignStage.approved_at.is_not(None) | CampaignStage.overdue_notified_at.is_(None))
        .order_by(CampaignStage.due, Campaign.id)).all())


def run_due(db: Database, conn, *, today: date, now: datetime | None = None, campaign_id: int | None = None,
            cap: int = DEFAULTS.push_cap_per_week, margin: float = DEFAULTS.push_approval_margin,
            progress: Progress = no_progress) -> ScheduledRun:
    """Send every approved stage that is due (of one campaign, or of all), each in its own transaction.

    A campaign whose stage fails (a rule the engine refuses, today's data overflowing it) is marked `failed`
    with the reason, shown on its page, and skipped until someone resumes it; the other campaigns are still
    planned, and the outbox is still delivered: one bad campaign must not stall the nation's.

    `today` may be earlier than the real day (to catch up on part of the schedule), never later."""
    now = now or utcnow()
    if today > (real := local_day(now)):
        raise PushInvalid(f"不能执行 {today} 才到期的推送阶段:今天是 {real},阶段只在其日期当天或之后发送")
    run = ScheduledRun()
    with db.read() as session:
        work = [(c.id, s.id) for c, s in due_stages(session, today) if campaign_id in (None, c.id)]
    failed: set[int] = set()
    for n, (cid, stage_id) in enumerate(work):
        progress(n, len(work), "正在执行推送阶段")
        if cid in failed:
            continue
        try:
            with db.write() as session:
                _run_one(session, conn, cid, stage_id, now=now, cap=cap, margin=margin, run=run)
        except Exception as exc:  # noqa: BLE001 (isolation is the point: record it, go on with the others)
            failed.add(cid)
            _record_failure(db, cid, stage_id, exc)
    return run


def _run_one(session: Session, conn, campaign_id: int, stage_id: int, *, now: datetime, cap: int, margin: float,
             run: ScheduledRun) -> None:
    # Locked: a withdrawal or a confirmation by hand committing meanwhile is seen, not overwritten.
    stage = session.get(CampaignStage, stage_id, with_for_update=True, populate_existing=True)
    campaign = session.get(Campaign, campaign_id)
    if stage.planned_at is not None or stage.held_at is not None or campaign.state != "active":
        return
    if stage.approved_at is None:
        if stage.overdue_notified_at is None:
            _skip_unapproved(session, campaign, stage, now)
            run.unapproved.append(stage)
        return
    stages.not_before_its_day(stage, now)
    chosen = stages.select_messages(session, conn, campaign, stage, now, cap)
    reached = len(chosen.regions)
    if beyond_margin(stage.approved_taxpayers or 0, reached, margin):
        _hold(session, campaign, stage, reached, margin, now)
        run.held.append(stage)
        return
    stages.write_messages(session, campaign, stage, chosen, now)
    run.planned.append(stage)


def _link(campaign: Campaign) -> str:
    return f"/push/campaigns/{campaign.id}"


def _skip_unapproved(session: Session, campaign: Campaign, stage: CampaignStage, now: datetime) -> None:
    """Not sent, and said once: to the campaign's unit, and in the audit log (not again on every later run)."""
    stage.overdue_notified_at = now
    name = STAGES[stage.stage]
    inbox.post(session, unit=session.get(Unit, campaign.unit_id), kind="push", link=_link(campaign),
               title=f"推送阶段未批准,未发送:「{campaign.name}」{name}({stage.due})",
               body=(f"推送活动「{campaign.name}」的{name}定于 {stage.due} 发送,但没有人批准按期发送,定时任务没有发送。"
                     "如仍需发送,请打开活动页面预览后确认发送。"))
    audit.record(session, actor=SystemActor(), action="push.stage.skipped", object_type="campaign",
                 object_id=campaign.id, after={"stage": stage.stage, "due": str(stage.due), "reason": "未批准"})


def _hold(session: Session, campaign: Campaign, stage: CampaignStage, reached: int, margin: float,
          now: datetime) -> None:
    approved = stage.approved_taxpayers or 0
    change = f"{abs(reached - approved) / approved:.0%}" if approved else "从无到有"
    stage.held_at = now
    stage.held_reason = (f"发送对象由批准时的 {approved} 户变为 {reached} 户(变化 {change},"
                         f"超过允许的 {margin:.0%}),未发送")
    name = STAGES[stage.stage]
    unit = session.get(Unit, stage.approved_unit_id or campaign.unit_id)
    inbox.post(session, unit=unit, kind="push", link=_link(campaign),
               title=f"推送阶段已暂停:「{campaign.name}」{name}({stage.due})",
               body=(f"{stage.approved_by} 批准的{name}今天到期,但{stage.held_reason}。请打开活动页面重新预览:"
                     "确认无误后可预览并确认发送。"))
    audit.record(session, actor=SystemActor(), action="push.stage.held", object_type="campaign", object_id=campaign.id,
                 before={"taxpayers": approved, "approved_by": stage.approved_by},
                 after={"stage": stage.stage, "due": str(stage.due), "taxpayers": reached, "margin": margin,
                        "reason": stage.held_reason})


def _record_failure(db: Database, campaign_id: int, stage_id: int, exc: Exception) -> None:
    if isinstance(exc, (PushError, rules.RuleError)):
        reason = str(exc)
        log.warning("campaign %s: stage %s failed: %s", campaign_id, stage_id, exc)
    else:
        reason = f"执行出错({type(exc).__name__}),详见服务器日志"
        log.exception("campaign %s: stage %s failed", campaign_id, stage_id)
    with db.write() as session:
        campaign = session.get(Campaign, campaign_id)
        stage = session.get(CampaignStage, stage_id)
        campaign.state, campaign.last_error = "failed", f"{STAGES[stage.stage]}({stage.due}):{reason}"[:1000]
        audit.record(session, actor=SystemActor(), action="push.campaign.failed", object_type="campaign",
                     object_id=campaign_id, after={"stage": stage.stage, "error": campaign.last_error}, outcome="failure")
