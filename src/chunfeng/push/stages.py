"""A campaign's stages: who each stage reaches (the rule over the taxpayer store, the roles, channels, opt-outs and
the weekly cap), the preview an official checks and then confirms (send now) or approves (send on its day: see
`push.schedule`), and the planning that writes every message in one transaction and hands the ones not in-app to
the outbox.

A stage is planned once: the transaction that writes its messages marks it planned, so a repeated run adds nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from chunfeng import crypto, outbox
from chunfeng.db import utcnow
from chunfeng.jobs import local_day
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor
from chunfeng.org.models import Unit
from chunfeng.push import matching, periods, rules
from chunfeng.push.campaigns import ORIGIN, STAGES, get_campaign, runnable, unconfigured_text, validity_problems
from chunfeng.push.errors import PushInvalid, PushNotFound
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage
from chunfeng.settings import DEFAULTS
from chunfeng.workdays import configured_calendar


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


def not_before_its_day(stage: CampaignStage, now: datetime) -> None:
    """A stage goes out on its day or later, never earlier, whoever asks and whatever date they give."""
    today = local_day(now)
    if stage.due > today:
        raise PushInvalid(f"{STAGES[stage.stage]}定于 {stage.due} 发送,今天是 {today},不能提前发送")


def select_messages(session: Session, conn, campaign: Campaign, stage: CampaignStage, now: datetime, cap: int) -> Selection:
    """The stage's messages as of now, rendered, after opt-outs and the frequency cap; nothing is written."""
    unit = session.get(Unit, campaign.unit_id)
    region = matching.region_prefix(unit.code)
    policies = [session.get(Policy, pid) for pid in campaign.policies]
    if problems := validity_problems(session, campaign.policies, year=campaign.year, month=campaign.month):
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
    not_before_its_day(stage, now)
    chosen = select_messages(session, conn, campaign, stage, now, cap)
    write_messages(session, campaign, stage, chosen, now)
    return stage


def write_messages(session: Session, campaign: Campaign, stage: CampaignStage, chosen: Selection, now: datetime) -> None:
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
                        "capped": stage.capped, "opted_out": stage.opted_out, "taxpayers": len(chosen.regions),
                        "approved_by": stage.approved_by or None})


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


def stage_named(session: Session, campaign: Campaign, stage: str) -> CampaignStage:
    found = session.scalar(select(CampaignStage).where(CampaignStage.campaign_id == campaign.id,
                                                       CampaignStage.stage == stage))
    if found is None:
        raise PushNotFound(f"推送活动 {campaign.id} 没有“{STAGES.get(stage, stage[:20])}”阶段")
    return found


def preview_stage(*, session: Session, conn, actor: Actor, campaign_id: int, configured: Collection[str],
                  stage: str | None = None, now: datetime | None = None,
                  cap: int = DEFAULTS.push_cap_per_week) -> StagePreview:
    """A stage's audience and messages as of now, without sending anything (also before its day, to look): the
    next stage (to confirm it), or the one named (to approve it for its day)."""
    if stage is None:
        campaign = runnable(session=session, actor=actor, campaign_id=campaign_id)
        chosen_stage = next_stage(session, campaign)
    else:
        campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
        chosen_stage = stage_named(session, campaign, stage)
        if chosen_stage.planned_at is not None:
            raise PushInvalid(f"{STAGES[chosen_stage.stage]}已于 {chosen_stage.planned_at:%Y-%m-%d} 发送,没有可预览的内容")
    stage = chosen_stage
    now = now or utcnow()
    chosen = select_messages(session, conn, campaign, stage, now, cap)
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
    not_before_its_day(current, now)
    if off := [c for c in campaign.channels if c not in configured]:
        raise PushInvalid(unconfigured_text(off) + ",请先修改活动的渠道")
    chosen = select_messages(session, conn, campaign, current, now, cap)
    if chosen.code() != code.strip():
        raise PushInvalid(f"预览之后发送对象有了变化(现为 {len(chosen.messages)} 条消息),请重新预览后再确认")
    write_messages(session, campaign, current, chosen, now)
    audit.record(session, actor=actor, action="push.stage.confirmed", object_type="campaign", object_id=campaign.id,
                 after={"stage": current.stage, "messages": current.messages, "code": chosen.code()})
    return current
