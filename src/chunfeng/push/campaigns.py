"""Campaigns: staged reminders along a filing period, frequency caps, opt-outs, and delivery through an outbox.

A stage is planned once, in one transaction that writes every message, enqueues the deliveries of those not
in-app in the outbox and marks the stage planned, so a repeated run adds nothing. The outbox sends them at most
once (`chunfeng.outbox`): a taxpayer never gets the same message twice, also when a sender is killed mid-send.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from chunfeng import crypto, outbox
from chunfeng.calendar.errors import CalendarNotCovered
from chunfeng.db import Database, utcnow
from chunfeng.jobs import Progress, local_day, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.push import matching, periods, rules
from chunfeng.push import policy as permissions
from chunfeng.push.errors import PushError, PushInvalid, PushNotFound
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage
from chunfeng.push.schema import CHANNEL_NAMES, CHANNELS
from chunfeng.settings import DEFAULTS, Settings
from chunfeng.workdays import WorkCalendar, configured_calendar, filing_period

STAGES = {"first": "政策提醒", "reminder": "申报提醒", "last": "截止前提醒", "bill": "红利账单"}
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
        problems = _validity_problems(session, policy_ids, year=year, month=month)
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
        problems.append(("channels", _unconfigured_text(off)))
    if audience.strip():
        try:
            rules.check(audience)
        except rules.RuleError as exc:
            problems.append(("audience", f"补充条件:{exc}"))
            rule_error = exc
    return problems, rule_error


def _unconfigured_text(channels: list[str]) -> str:
    return (f"渠道{'、'.join(CHANNEL_NAMES.get(c, c) for c in channels)}尚未配置发送网关,不能选用"
            "(由管理员在 CHUNFENG_PUSH_CHANNELS 中配置)")


def _validity_problems(session: Session, policy_ids: list[str], *, year: int, month: int) -> list[tuple[str, str]]:
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


def render(policy: Policy, role: str, channel: str, values: dict) -> str:
    by_channel = policy.templates.get(role) or {}
    template = by_channel.get(channel) or by_channel.get("default") or policy.summary
    return template.format_map(defaultdict(str, values))


def _recipients_sql(campaign: Campaign, policy: Policy, stage: CampaignStage, region: str,
                    period: str) -> tuple[str, dict]:
    """Eligible taxpayers × their contacts for this policy's roles on the campaign's channels (opted-out included,
    flagged, so they can be counted). Reminders go only to those who have not both filed and claimed.
    The SQL and its bound parameters."""
    audience = matching.Audience(region=region, extra=campaign.audience)
    eligible = matching._eligible_sql(rules.parse(policy.rule), audience, "r.credit_code, r.name, r.region")
    roles_sql, params = matching.in_list("role", policy.roles)
    channels_sql, channel_params = matching.in_list("channel", campaign.channels)
    params.update(channel_params, **audience.params())
    pending = ""
    if stage.stage in ("reminder", "last"):
        params.update(filing=policy.filing, period=period, due=stage.due, policy=policy.id)
        pending = """WHERE NOT (
            EXISTS (SELECT 1 FROM filings f WHERE f.credit_code = e.credit_code AND f.return_type = $filing
                    AND f.period = $period AND f.filed_on <= $due)
            AND EXISTS (SELECT 1 FROM claims c WHERE c.credit_code = e.credit_code AND c.policy = $policy
                    AND c.period = $period))"""
    return f"""
        WITH e AS ({eligible})
        SELECT e.credit_code, e.name, e.region, k.role, k.person, k.channel, k.address, k.opted_out
        FROM (SELECT * FROM e {pending}) AS e
        JOIN contacts k ON k.credit_code = e.credit_code AND k.role IN ({roles_sql}) AND k.channel IN ({channels_sql})
        ORDER BY e.credit_code, k.role, k.channel""", params


def _recent_pushes(session: Session, codes: list[str], since: datetime) -> dict[str, int]:
    """Distinct pushes (campaign, stage, policy) each taxpayer received since `since`: what the cap counts."""
    counts: dict[str, int] = {}
    for i in range(0, len(codes), 1000):
        chunk = codes[i:i + 1000]
        inner = (select(PushMessage.credit_code, PushMessage.campaign_id, PushMessage.stage, PushMessage.policy_id)
                 .where(PushMessage.credit_code.in_(chunk), PushMessage.created_at >= since).distinct().subquery())
        for code, n in session.execute(select(inner.c.credit_code, func.count()).group_by(inner.c.credit_code)):
            counts[code] = n
    return counts


@dataclass
class Selection:
    """What a stage would send now: the messages (rows of push_message), who they reach and who is left out."""

    messages: list[dict] = field(default_factory=list)
    audience: set[str] = field(default_factory=set)
    capped: set[tuple[str, str]] = field(default_factory=set)
    opted_out: int = 0
    regions: dict[str, str] = field(default_factory=dict)  # credit code → region code, of those reached

    def code(self) -> str:
        """A short digest of who gets what: the confirmation names it, so what is sent is what was previewed."""
        digest = hashlib.sha256()
        for m in self.messages:
            digest.update(f"{m['policy_id']}|{m['credit_code']}|{m['role']}|{m['channel']}\n".encode())
        return digest.hexdigest()[:12]


def _not_before_its_day(stage: CampaignStage, now: datetime) -> None:
    """A stage goes out on its day or later, never earlier, whoever asks and whatever date they give."""
    today = local_day(now)
    if stage.due > today:
        raise PushInvalid(f"{STAGES[stage.stage]}定于 {stage.due} 发送,今天是 {today},不能提前发送")


def _select(session: Session, conn, campaign: Campaign, stage: CampaignStage, now: datetime, cap: int) -> Selection:
    """The stage's messages as of now, rendered, after opt-outs and the frequency cap; nothing is written."""
    unit = session.get(Unit, campaign.unit_id)
    region = matching.region_prefix(unit.code)
    policies = [session.get(Policy, pid) for pid in campaign.policies]
    if problems := _validity_problems(session, campaign.policies, year=campaign.year, month=campaign.month):
        raise PushInvalid("不能执行推送阶段:" + ";".join(text for _, text in problems))
    cal = configured_calendar(session)
    found: list[tuple[Policy, periods.ReturnDue, list[tuple]]] = []
    for policy in policies:
        due = periods.return_due(period_kind=policy.period_kind, filing=policy.filing, year=campaign.year,
                                 month=campaign.month, cal=cal)
        rows = matching.DuckDBEngine(conn).rows(*_recipients_sql(campaign, policy, stage, region, due.period))
        found.append((policy, due, rows))
    codes = sorted({row[0] for _, _, rows in found for row in rows})
    used = _recent_pushes(session, codes, now - timedelta(days=7))
    pushes: dict[str, set[str]] = defaultdict(set)
    chosen = Selection()
    for policy, period, rows in found:
        for code, name, taxpayer_region, role, person, channel, address, out in rows:
            chosen.audience.add(code)
            if out:
                chosen.opted_out += 1
                continue
            if policy.id not in pushes[code] and used.get(code, 0) + len(pushes[code]) >= cap:
                chosen.capped.add((code, policy.id))
                continue
            pushes[code].add(policy.id)
            chosen.regions[code] = taxpayer_region
            values = {"name": name, "person": crypto.decrypt(person), "policy": policy.name, "basis": policy.basis,
                      "period": period.label, "deadline": period.deadline_text(campaign.year)}
            chosen.messages.append(dict(
                campaign_id=campaign.id, stage=stage.stage, policy_id=policy.id, credit_code=code, taxpayer_name=name,
                role=role, person=person, channel=channel, address=address,
                title=f"{STAGES[stage.stage]}:{policy.name}"[:200], body=render(policy, role, channel, values),
                link=f"/push/policies/{policy.id}", created_at=now))
    return chosen


def plan_stage(*, session: Session, conn, campaign: Campaign, stage: CampaignStage, now: datetime | None = None,
               cap: int = DEFAULTS.push_cap_per_week) -> CampaignStage:
    """Write the stage's messages to the outbox (in-app ones are delivered by being written)."""
    if stage.planned_at is not None:
        return stage
    now = now or utcnow()
    _not_before_its_day(stage, now)
    chosen = _select(session, conn, campaign, stage, now, cap)
    _write(session, campaign, stage, chosen, now)
    return stage


def _write(session: Session, campaign: Campaign, stage: CampaignStage, chosen: Selection, now: datetime) -> None:
    unit = session.get(Unit, campaign.unit_id)
    messages = chosen.messages
    for i in range(0, len(messages), 5000):
        session.execute(PushMessage.__table__.insert(), messages[i:i + 5000])
    # One statement, the stored ciphertexts copied as they are: a national stage enqueues millions.
    outbox.enqueue_from(session, select(
        literal(ORIGIN), PushMessage.id, literal(unit.path), PushMessage.channel, PushMessage.address,
        PushMessage.title, PushMessage.body).where(PushMessage.campaign_id == campaign.id,
                                                   PushMessage.stage == stage.stage, PushMessage.channel != "inapp"))
    stage.planned_at, stage.audience, stage.messages = now, len(chosen.audience), len(messages)
    stage.capped, stage.opted_out = len(chosen.capped), chosen.opted_out
    audit.record(session, actor=SystemActor(), action="push.stage.planned", object_type="campaign", object_id=campaign.id,
                 after={"stage": stage.stage, "audience": stage.audience, "messages": stage.messages,
                        "capped": stage.capped, "opted_out": stage.opted_out})


# --- preview and confirmation ------------------------------------------------------------------------

@dataclass
class Sample:
    policy: str
    role: str
    channel: str
    title: str
    body: str


@dataclass
class StagePreview:
    """What the campaign's next stage would send if confirmed now: how many, where, and what it says."""

    campaign: Campaign
    stage: CampaignStage
    due_now: bool  # its day has come: it may be confirmed
    taxpayers: int
    messages: int
    capped: int
    opted_out: int
    by_province: list[tuple[str, int]]  # (province, taxpayers reached), most first
    by_channel: dict[str, int]
    samples: list[Sample]  # one rendered message per policy, role and channel
    unconfigured: list[str]  # channels of the campaign with no gateway now: confirming is refused
    code: str  # what the confirmation must name


def next_stage(session: Session, campaign: Campaign) -> CampaignStage | None:
    return session.scalars(select(CampaignStage).where(CampaignStage.campaign_id == campaign.id,
                                                       CampaignStage.planned_at.is_(None))
                           .order_by(CampaignStage.due, CampaignStage.id).limit(1)).first()


def preview_stage(*, session: Session, conn, actor: Actor, campaign_id: int, configured: Collection[str],
                  now: datetime | None = None, cap: int = DEFAULTS.push_cap_per_week) -> StagePreview:
    """The next stage's audience and messages as of now, without sending anything (also before its day, to look)."""
    campaign = runnable(session=session, actor=actor, campaign_id=campaign_id)
    stage = next_stage(session, campaign)
    now = now or utcnow()
    chosen = _select(session, conn, campaign, stage, now, cap)
    provinces = Counter(matching.PROVINCE_NAMES.get(region[:2], region[:2]) for region in chosen.regions.values())
    samples: dict[tuple[str, str, str], Sample] = {}
    for m in chosen.messages:
        key = (m["policy_id"], m["role"], m["channel"])
        if key not in samples:
            samples[key] = Sample(m["policy_id"], m["role"], m["channel"], m["title"], m["body"])
    return StagePreview(
        campaign=campaign, stage=stage, due_now=stage.due <= local_day(now), taxpayers=len(chosen.regions),
        messages=len(chosen.messages), capped=len(chosen.capped), opted_out=chosen.opted_out,
        by_province=provinces.most_common(), by_channel=dict(Counter(m["channel"] for m in chosen.messages)),
        samples=list(samples.values()), unconfigured=[c for c in campaign.channels if c not in configured],
        code=chosen.code())


def confirm_stage(*, session: Session, conn, actor: Actor, campaign_id: int, stage: str, code: str,
                  configured: Collection[str], now: datetime | None = None,
                  cap: int = DEFAULTS.push_cap_per_week) -> CampaignStage:
    """Send the stage the official previewed: refused before its day, on a channel with no gateway, or when who
    would get what has changed since the preview (`code`), so nothing goes out that was not seen."""
    campaign = runnable(session=session, actor=actor, campaign_id=campaign_id)
    current = next_stage(session, campaign)
    if current is None or current.stage != stage:
        raise PushInvalid(f"“{STAGES.get(stage, stage)[:20]}”不是这个活动待执行的阶段(可能已经执行),请重新预览")
    now = now or utcnow()
    _not_before_its_day(current, now)
    if off := [c for c in campaign.channels if c not in configured]:
        raise PushInvalid(_unconfigured_text(off) + ",请先修改活动的渠道")
    chosen = _select(session, conn, campaign, current, now, cap)
    if chosen.code() != code.strip():
        raise PushInvalid(f"预览之后发送对象有了变化(现为 {len(chosen.messages)} 条消息),请重新预览后再确认")
    _write(session, campaign, current, chosen, now)
    audit.record(session, actor=actor, action="push.stage.confirmed", object_type="campaign", object_id=campaign.id,
                 after={"stage": current.stage, "messages": current.messages, "code": chosen.code()})
    return current


def due_stages(session: Session, today: date) -> list[tuple[Campaign, CampaignStage]]:
    return list(session.execute(
        select(Campaign, CampaignStage).join(CampaignStage, CampaignStage.campaign_id == Campaign.id)
        .where(Campaign.state == "active", Campaign.kind == "policy", CampaignStage.planned_at.is_(None),
               CampaignStage.due <= today).order_by(CampaignStage.due, Campaign.id)).all())


def run_due(db: Database, conn, *, today: date, now: datetime | None = None,
            campaign_id: int | None = None, cap: int = DEFAULTS.push_cap_per_week,
            progress: Progress = no_progress) -> list[CampaignStage]:
    """Plan every stage that is due (of one campaign, or of all), each in its own transaction.

    A campaign whose stage fails (a rule the engine refuses, today's data overflowing it) is marked `failed`
    with the reason, shown on its page, and skipped until someone resumes it; the other campaigns are still
    planned, and the outbox is still delivered: one bad campaign must not stall the nation's.

    `today` may be earlier than the real day (to catch up on part of the schedule), never later."""
    if today > (real := local_day(now or utcnow())):
        raise PushInvalid(f"不能执行 {today} 才到期的推送阶段:今天是 {real},阶段只在其日期当天或之后发送")
    done = []
    with db.read() as session:
        work = [(c.id, s.id) for c, s in due_stages(session, today) if campaign_id in (None, c.id)]
    failed: set[int] = set()
    for n, (cid, stage_id) in enumerate(work):
        progress(n, len(work), "正在执行推送阶段")
        if cid in failed:
            continue
        try:
            with db.write() as session:
                stage = session.get(CampaignStage, stage_id)
                done.append(plan_stage(session=session, conn=conn, campaign=session.get(Campaign, cid),
                                       stage=stage, now=now, cap=cap))
        except Exception as exc:  # noqa: BLE001 (isolation is the point: record it, go on with the others)
            failed.add(cid)
            _record_failure(db, cid, stage_id, exc)
    return done


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


def _deliveries_of(campaign_id: int):
    """SQL condition: the outbox deliveries of the campaign's messages."""
    return (outbox.Delivery.origin == ORIGIN) & outbox.Delivery.origin_id.in_(
        select(PushMessage.id).where(PushMessage.campaign_id == campaign_id))


def deliver(db: Database, *, settings: Settings, now: datetime | None = None, limit: int = 10_000) -> outbox.DeliveryRun:
    """Send the push messages due in the outbox (claim → send → record: never twice)."""
    return outbox.deliver_due(db, settings=settings, now=now, limit=limit, origin=ORIGIN)


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
        problems = _validity_problems(session, policy_ids, year=campaign.year, month=campaign.month)
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
