"""Campaigns: staged reminders along a filing period — a campaign's life (created, edited, paused, resumed,
cancelled), the delivery of its messages through the outbox with failures grouped by reason, and the taxpayer's
message centre. Who each stage reaches and how it is planned is `push.stages`.

The outbox sends each message at most once (`chunfeng.outbox`): a taxpayer never gets the same message twice, also
when a sender is killed mid-send.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chunfeng import outbox
from chunfeng.calendar.errors import CalendarNotCovered
from chunfeng.db import Database, utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.push import periods, rules
from chunfeng.push import policy as permissions
from chunfeng.push.errors import PushInvalid, PushNotFound
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage
from chunfeng.push.schema import CHANNEL_NAMES, CHANNELS
from chunfeng.settings import Settings
from chunfeng.workdays import WorkCalendar, configured_calendar, filing_period

STAGES = {"first": "政策提醒", "reminder": "申报提醒", "last": "截止前提醒", "bill": "红利账单",
          # a survey's invitations and reminders (survey.invitations), sent as a campaign of kind "survey"
          "invite": "问卷邀请", **{f"remind{n}": f"问卷提醒(第 {n} 次)" for n in range(1, 6)}}
MESSAGE_STATES = outbox.STATES
ORIGIN = "push.message"
log = logging.getLogger(__name__)


class CampaignFormInvalid(PushInvalid):
    """A campaign that cannot be saved: `problems` maps each form field to what is wrong with it, and `rule_error`
    is the audience rule's fault with its position, so a form can show each beside its field."""

    def __init__(self, doing: str, problems: list[tuple[str, str]], rule_error: rules.RuleError | None = None):
        self.problems: dict[str, str] = {}
        for name, text in problems:
            self.problems[name] = f"{self.problems[name]};{text}" if name in self.problems else text
        self.rule_error = rule_error
        super().__init__(f"{doing}:" + ";".join(text for _, text in problems))


def configured_channels(settings: Settings) -> tuple[str, ...]:
    """The channels a campaign may use: in-app always, any other only once its gateway URL is in push_channels
    (an SMS chosen without one would only fail, message by message, when it is sent)."""
    return tuple(c for c in CHANNELS if c == "inapp" or settings.push_channels.get(c))


def stage_dates(*, year: int, month: int, reminder_day: int, last_days: int, session: Session | None = None,
                cal: WorkCalendar | None = None) -> tuple[date, dict[str, date]]:
    """The filing deadline and the day each stage is due: the first working day of the period, the
    reminder day (or the next working day), and `last_days` working days before the deadline.

    The calendar is the one in force (`session`) or `cal`; a month of a year it does not cover raises
    CalendarNotCovered rather than planning on weekends alone (a January campaign would greet New Year's Day)."""
    if cal is None:
        if session is None:
            raise TypeError("stage_dates needs the session (the calendar in force) or a calendar")
        cal = configured_calendar(session)
    start, deadline = filing_period(year, month, cal)
    due = {"first": cal.next_working_day(start)}
    reminder = cal.next_working_day(date(year, month, min(reminder_day, 28)))
    last = deadline
    for _ in range(last_days):
        last = last - timedelta(days=1)
        while not cal.is_working_day(last):
            last -= timedelta(days=1)
    if due["first"] < reminder < last:
        due["reminder"] = reminder
    if due["first"] < last:
        due["last"] = last
    return deadline, due


def create_campaign(*, session: Session, actor: Actor, name: str, unit_code: str, policy_ids: list[str],
                    channels: list[str], year: int, month: int, audience: str = "", reminder_day: int = 10,
                    last_days: int = 2, configured: Collection[str] | None = None) -> Campaign:
    """`configured`: the channels with a gateway (`configured_channels(settings)`); None checks only their names."""
    unit = find_unit(session=session, code=unit_code)
    authorize(actor, "push.campaign", unit)
    problems, rule_error = _content_problems(session, name=name, policy_ids=policy_ids, channels=channels,
                                             audience=audience, configured=configured)
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        problems.append(("month", f"申报月份 {year}-{month} 无效"))
    if not 1 <= reminder_day <= 28:
        problems.append(("reminder_day", "提醒日应在 1–28 日之间"))
    if not 0 <= last_days <= 10:
        problems.append(("last_days", "截止前提醒应在 0–10 个工作日之间"))
    if not problems:
        problems = validity_problems(session, policy_ids, year=year, month=month)
    if problems:
        raise CampaignFormInvalid("无法创建推送活动", problems, rule_error)
    try:
        _, due = stage_dates(year=year, month=month, reminder_day=reminder_day, last_days=last_days, session=session)
        cal = configured_calendar(session)
        for policy in session.scalars(select(Policy).where(Policy.id.in_(policy_ids))):
            # the deadline the messages will name (January's, for a quarter filed next year) must be known now
            periods.return_due(period_kind=policy.period_kind, filing=policy.filing, year=year, month=month, cal=cal)
    except CalendarNotCovered as exc:
        raise CampaignFormInvalid("无法创建推送活动", [("month", str(exc))]) from exc
    campaign = Campaign(name=name.strip(), unit_id=unit.id, policies=list(dict.fromkeys(policy_ids)),
                        channels=list(dict.fromkeys(channels)), audience=audience.strip(), year=year, month=month,
                        reminder_day=reminder_day, last_days=last_days, created_by=actor.username)
    session.add(campaign)
    session.flush()
    for stage, day in due.items():
        session.add(CampaignStage(campaign_id=campaign.id, stage=stage, due=day))
    audit.record(session, actor=actor, action="push.campaign.created", object_type="campaign", object_id=campaign.id,
                 after={"name": campaign.name, "unit": unit.code, "policies": campaign.policies,
                        "channels": campaign.channels, "period": f"{year}-{month:02d}", "audience": campaign.audience})
    return campaign


def _content_problems(session: Session, *, name: str, policy_ids: list[str], channels: list[str],
                      audience: str, configured: Collection[str] | None
                      ) -> tuple[list[tuple[str, str]], rules.RuleError | None]:
    """What is wrong with what a campaign says (creating or editing one), field by field, and the audience rule's
    fault. The audience rule is checked on the engine too, so a saved campaign never fails its scheduled run on
    its own rule."""
    problems, rule_error = [], None
    if not name.strip():
        problems.append(("name", "请填写活动名称"))
    known = set(session.scalars(select(Policy.id).where(Policy.id.in_(policy_ids)))) if policy_ids else set()
    if not policy_ids:
        problems.append(("policies", "请至少选择一项政策"))
    elif missing := [p for p in policy_ids if p not in known]:
        problems.append(("policies", f"没有这些政策:{'、'.join(missing)}"))
    if not channels:
        problems.append(("channels", "请至少选择一个渠道"))
    elif bad := [c for c in channels if c not in CHANNELS]:
        problems.append(("channels", f"未知渠道:{'、'.join(bad)}(可用:{'、'.join(CHANNELS)})"))
    elif configured is not None and (off := [c for c in channels if c not in configured]):
        problems.append(("channels", unconfigured_text(off)))
    if audience.strip():
        try:
            rules.check(audience)
        except rules.RuleError as exc:
            problems.append(("audience", f"补充条件:{exc}"))
            rule_error = exc
    return problems, rule_error


def unconfigured_text(channels: list[str]) -> str:
    return (f"渠道{'、'.join(CHANNEL_NAMES.get(c, c) for c in channels)}尚未配置发送网关,不能选用"
            "(由管理员在 CHUNFENG_PUSH_CHANNELS 中配置)")


def validity_problems(session: Session, policy_ids: list[str], *, year: int, month: int) -> list[tuple[str, str]]:
    """Each policy whose validity does not cover the period the campaign's messages are about (its return's)."""
    problems = []
    for policy in session.scalars(select(Policy).where(Policy.id.in_(policy_ids)).order_by(Policy.id)):
        period = periods.return_period(period_kind=policy.period_kind, filing=policy.filing, year=year, month=month)
        if problem := periods.validity_problem(policy, period):
            problems.append(("policies", problem))
    return problems


def get_campaign(*, session: Session, actor: Actor, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise PushNotFound(f"没有编号为 {campaign_id} 的推送活动")
    authorize(actor, "push.campaign", session.get(Unit, campaign.unit_id))
    return campaign


def list_campaigns(*, session: Session, actor: Actor, page: int = 1, per_page: int = 30) -> Page[Campaign]:
    authorize(actor, "push.campaign")
    where = [Campaign.unit_id == Unit.id, subtree_filter(actor)]
    return paginate(session, select(Campaign).join(Unit, Campaign.unit_id == Unit.id).where(*where)
                    .order_by(Campaign.id.desc()), page, per_page)


def _deliveries_of(campaign_id: int):
    """SQL condition: the outbox deliveries of the campaign's messages."""
    return (outbox.Delivery.origin == ORIGIN) & outbox.Delivery.origin_id.in_(
        select(PushMessage.id).where(PushMessage.campaign_id == campaign_id))


def deliver(db: Database, *, settings: Settings, now: datetime | None = None, limit: int = 10_000) -> outbox.DeliveryRun:
    """Send the push messages due in the outbox (claim → send → record: never twice)."""
    return outbox.deliver_due(db, settings=settings, now=now, limit=limit, origin=ORIGIN, batch=settings.push_send_batch,
                              concurrency=settings.push_send_concurrency)


def delivery_figures(session: Session, campaign_id: int) -> dict:
    """Messages by stage, channel and state: the campaign page's delivery table."""
    figures: dict = defaultdict(lambda: defaultdict(int))
    delivered = func.coalesce(outbox.Delivery.state, "sent")  # in-app: delivered by being written
    for stage, channel, state, n in session.execute(
            select(PushMessage.stage, PushMessage.channel, delivered, func.count())
            .outerjoin(outbox.Delivery, (outbox.Delivery.origin == ORIGIN) & (outbox.Delivery.origin_id == PushMessage.id))
            .where(PushMessage.campaign_id == campaign_id)
            .group_by(PushMessage.stage, PushMessage.channel, delivered)):
        figures[(stage, channel)][state] += n
    read = dict(session.execute(select(PushMessage.stage, func.count()).where(
        PushMessage.campaign_id == campaign_id, PushMessage.read_at.is_not(None)).group_by(PushMessage.stage)).all())
    return {"by_stage_channel": {k: dict(v) for k, v in figures.items()}, "read": read}


def uncertain_count(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).select_from(outbox.Delivery).where(
        _deliveries_of(campaign_id), outbox.Delivery.state == "uncertain")) or 0


def requeue_uncertain(*, session: Session, actor: Actor, campaign_id: int) -> int:
    """An official who has checked with the gateway that nothing went out sends the uncertain ones again."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.requeue_refusal(actor, campaign, uncertain_count(session, campaign.id)):
        raise refused
    n = outbox.requeue(session, _deliveries_of(campaign.id))
    audit.record(session, actor=actor, action="push.campaign.requeued", object_type="campaign", object_id=campaign.id,
                 after={"messages": n})
    return n


def failure_groups(session: Session, campaign_id: int, *, max_attempts: int) -> list[outbox.FailureGroup]:
    """The campaign's failed deliveries by reason and channel (the outbox's delivery log, nothing kept apart)."""
    return outbox.failures(session, _deliveries_of(campaign_id), max_attempts=max_attempts)


def retry_failures(*, session: Session, actor: Actor, campaign_id: int, reason: str, channel: str) -> int:
    """Send again the campaign's deliveries that failed on `channel` with `reason` (an official fixed the cause)."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    which = _deliveries_of(campaign.id) & (outbox.Delivery.last_error == reason) & (outbox.Delivery.channel == channel)
    failed = session.scalar(select(func.count()).select_from(outbox.Delivery).where(
        which, outbox.Delivery.state == "failed")) or 0
    if refused := permissions.retry_refusal(actor, campaign, failed):
        raise refused
    n = outbox.retry_failed(session, which)
    audit.record(session, actor=actor, action="push.campaign.retried", object_type="campaign", object_id=campaign.id,
                 after={"messages": n, "channel": channel, "reason": reason[:200]})
    return n


# --- pausing, resuming, editing and cancelling -----------------------------------------------------

def stages_of(session: Session, campaign: Campaign) -> list[CampaignStage]:
    return list(session.scalars(select(CampaignStage).where(CampaignStage.campaign_id == campaign.id)
                                .order_by(CampaignStage.due)))


def runnable(*, session: Session, actor: Actor, campaign_id: int) -> Campaign:
    """The campaign, if `actor` may preview and confirm its next stage now (its page's button)."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.run_refusal(actor, campaign, stages_of(session, campaign)):
        raise refused
    return campaign


def pause_campaign(*, session: Session, actor: Actor, campaign_id: int) -> Campaign:
    """No stage is planned while paused; what the outbox already holds is still delivered."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.pause_refusal(actor, campaign):
        raise refused
    before, campaign.state = campaign.state, "paused"
    audit.record(session, actor=actor, action="push.campaign.paused", object_type="campaign", object_id=campaign.id,
                 before={"state": before}, after={"state": "paused"})
    return campaign


def resume_campaign(*, session: Session, actor: Actor, campaign_id: int) -> Campaign:
    """Back to the schedule, after its rules (the audience and each policy's) check again on the engine."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.resume_refusal(actor, campaign):
        raise refused
    problems = []
    for label, text in [("补充条件", campaign.audience)] + [
            (f"政策 {p.id}", p.rule) for p in session.scalars(select(Policy).where(Policy.id.in_(campaign.policies)))]:
        if text.strip():
            try:
                rules.check(text)
            except rules.RuleError as exc:
                problems.append(f"{label}的规则:{exc}")
    if problems:
        raise PushInvalid("无法恢复推送活动,请先修改:" + ";".join(problems))
    before = {"state": campaign.state, "last_error": campaign.last_error}
    campaign.state, campaign.last_error = "active", ""
    audit.record(session, actor=actor, action="push.campaign.resumed", object_type="campaign", object_id=campaign.id,
                 before=before, after={"state": "active"})
    return campaign


def edit_campaign(*, session: Session, actor: Actor, campaign_id: int, name: str, policy_ids: list[str],
                  channels: list[str], audience: str, configured: Collection[str] | None = None) -> Campaign:
    """Change what the stages not yet run will send, and to whom; stages already run keep what they sent."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.edit_refusal(actor, campaign, stages_of(session, campaign)):
        raise refused
    problems, rule_error = _content_problems(session, name=name, policy_ids=policy_ids, channels=channels,
                                             audience=audience, configured=configured)
    if not problems:
        problems = validity_problems(session, policy_ids, year=campaign.year, month=campaign.month)
    if problems:
        raise CampaignFormInvalid("无法修改推送活动", problems, rule_error)
    fields = ("name", "policies", "channels", "audience")
    before = {f: getattr(campaign, f) for f in fields}
    campaign.name, campaign.audience = name.strip(), audience.strip()
    campaign.policies, campaign.channels = list(dict.fromkeys(policy_ids)), list(dict.fromkeys(channels))
    after = {f: getattr(campaign, f) for f in fields}
    if after != before:
        audit.record(session, actor=actor, action="push.campaign.edited", object_type="campaign",
                     object_id=campaign.id, before=before, after=after)
        # An approval was of what the preview showed then: the schedule must not send what nobody saw.
        for stage in stages_of(session, campaign):
            if stage.approved_at is not None and stage.planned_at is None:
                audit.record(session, actor=actor, action="push.stage.withdrawn", object_type="campaign",
                             object_id=campaign.id, before=stage.clear_approval(),
                             after={"stage": stage.stage, "due": str(stage.due), "reason": "活动已修改,需重新批准"})
    return campaign


def cancel_campaign(*, session: Session, actor: Actor, campaign_id: int) -> int:
    """No more stages, and the messages still waiting in the outbox are withdrawn; returns how many."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.cancel_refusal(actor, campaign):
        raise refused
    withdrawn = outbox.cancel(session, _deliveries_of(campaign.id))
    before, campaign.state = campaign.state, "cancelled"
    audit.record(session, actor=actor, action="push.campaign.cancelled", object_type="campaign", object_id=campaign.id,
                 before={"state": before}, after={"state": "cancelled", "messages_withdrawn": withdrawn})
    return withdrawn


# --- the taxpayer's message centre ----------------------------------------------------------------

def _taxpayer(actor: Actor):
    authorize(actor, "push.inbox")
    return actor.taxpayer_code, actor.taxpayer_role


def inbox(*, session: Session, actor: Actor, page: int = 1, per_page: int = 20) -> Page[PushMessage]:
    code, role = _taxpayer(actor)
    where = [PushMessage.credit_code == code, PushMessage.role == role, PushMessage.channel == "inapp"]
    return paginate(session, select(PushMessage).where(*where).order_by(PushMessage.created_at.desc(),
                                                                        PushMessage.id.desc()), page, per_page)


def inbox_unread(*, session: Session, actor: Actor) -> int:
    code, role = _taxpayer(actor)
    return session.scalar(select(func.count()).select_from(PushMessage).where(
        PushMessage.credit_code == code, PushMessage.role == role, PushMessage.channel == "inapp",
        PushMessage.read_at.is_(None))) or 0


def read_message(*, session: Session, actor: Actor, message_id: int) -> PushMessage:
    code, role = _taxpayer(actor)
    message = session.get(PushMessage, message_id)
    if message is None or message.credit_code != code or message.role != role or message.channel != "inapp":
        raise PushNotFound(f"没有编号为 {message_id} 的消息")
    if message.read_at is None:
        message.read_at = utcnow()
    return message
