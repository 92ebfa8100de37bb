"""Invitations to a drawn sample, through the push outbox and its channels: one one-time token per sampled
taxpayer (the survey's invitation mechanism: the token admits one answer), a message to each of its chosen contacts
on each configured channel (in-app ones land in the taxpayer's message centre), reminders to those who have not
answered (at most N each, never to those who answered or opted out), and the opt-out link every message carries.

The messages are push messages of a campaign of kind "survey" (one per sample), so the outbox sends them at most
once, the delivery log and the campaign page show them, and the taxpayer's message centre lists the in-app ones.
A message carries only the personal data the sample declared (`PERSONAL_DATA`): no name at all by default.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chunfeng import crypto, outbox
from chunfeng.db import Database, utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor
from chunfeng.org.models import Unit
from chunfeng.push import matching
from chunfeng.push.campaigns import ORIGIN, unconfigured_text
from chunfeng.push.models import Campaign, CampaignStage, PushMessage
from chunfeng.push.schema import CHANNELS, CONTACT_ROLES
from chunfeng.survey import list_sampling
from chunfeng.survey.errors import SurveyInvalid, SurveyNotFound
from chunfeng.survey.models import Survey, SurveyInvitation
from chunfeng.survey.policy import invite_refusal, manage_refusal
from chunfeng.survey.sample_models import LIST_ROLE, PERSONAL_DATA, SurveyOptOut, SurveySample, SurveySampleMember, SurveyStratum
from chunfeng.survey.services import _digest, get_survey

INVITE = "invite"
MAX_REMINDERS = 5  # push.campaigns.STAGES names the stages remind1 … remind5
SYSTEM = SystemActor(username="survey")


def get_sample(*, session: Session, actor: Actor, sample_id: int) -> SurveySample:
    sample = session.get(SurveySample, sample_id)
    if sample is None:
        raise SurveyNotFound(f"没有编号为 {sample_id} 的样本")
    get_survey(session=session, actor=actor, survey_id=sample.survey_id)  # the survey's subtree decides
    return sample


def samples_of(session: Session, survey_id: int) -> list[SurveySample]:
    return list(session.scalars(select(SurveySample).where(SurveySample.survey_id == survey_id)
                                .order_by(SurveySample.id.desc())))


def opted_out_codes(session: Session, codes: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(codes), 1000):
        found |= set(session.scalars(select(SurveyOptOut.credit_code).where(SurveyOptOut.credit_code.in_(codes[i:i + 1000]))))
    return found


def _body(survey: Survey, sample: SurveySample, *, taxpayer: str, person: str, token: str, reminder: bool) -> str:
    base = sample.public_url.rstrip("/")
    whom = f"{person}您好:" if person else "您好:"
    asked = f"{survey.unit.name}邀请{taxpayer or '贵单位'}参加问卷调查“{survey.title}”"
    named = ("本问卷记名:答卷将与贵单位名称一并保存。" if "taxpayer" in sample.personal_data
             else "本问卷匿名:答卷不与贵单位名称一并显示。")
    return (f"{whom}{'提醒:您尚未填写问卷。' if reminder else ''}{asked},请点击填写:{base}/s/{token}"
            f"(此链接专供贵单位使用,只能提交一次)。{named}"
            f"如不希望再收到问卷调查消息,请点击:{base}/s/{token}/stop")


def _write_messages(session: Session, sample: SurveySample, messages: list[dict], stage_counts: dict[str, int],
                    now: datetime) -> None:
    """The messages, and the outbox deliveries of those not in-app, in the caller's transaction."""
    for i in range(0, len(messages), 5000):
        session.execute(PushMessage.__table__.insert(), messages[i:i + 5000])
    unit = session.get(Unit, session.get(Campaign, sample.campaign_id).unit_id)
    for stage, n in stage_counts.items():
        outbox.enqueue_from(session, select(
            literal(ORIGIN), PushMessage.id, literal(unit.path), PushMessage.channel, PushMessage.address,
            PushMessage.title, PushMessage.body).where(PushMessage.campaign_id == sample.campaign_id,
                                                       PushMessage.stage == stage, PushMessage.created_at == now,
                                                       PushMessage.channel != "inapp"))
        row = session.scalar(select(CampaignStage).where(CampaignStage.campaign_id == sample.campaign_id,
                                                         CampaignStage.stage == stage))
        if row is None:
            session.add(CampaignStage(campaign_id=sample.campaign_id, stage=stage, due=now.date(), planned_at=now,
                                      audience=0, messages=n, capped=0, opted_out=0))
        else:
            row.messages += n


def invite(*, session: Session, conn, actor: Actor, sample_id: int, channels: list[str], roles: list[str],
           personal_data: list[str], base_url: str, configured: Collection[str], max_reminders: int = 2,
           remind_after_days: int = 3, now: datetime | None = None) -> SurveySample:
    """Invite every sampled taxpayer that has not opted out: a token each, a message to each chosen contact on each
    chosen channel (contacts that unsubscribed from push messages are left out too), once per sample."""
    sample = get_sample(session=session, actor=actor, sample_id=sample_id)
    survey = session.get(Survey, sample.survey_id)
    if refused := invite_refusal(actor, survey):
        raise refused
    if sample.state != "drawn":
        raise SurveyInvalid("这个样本已经发过邀请;未作答的可以发送提醒")
    channels, roles = list(dict.fromkeys(channels)), list(dict.fromkeys(roles))
    problems = []
    if not channels or (bad := [c for c in channels if c not in CHANNELS]):
        problems.append("请选择渠道" if not channels else f"未知渠道:{'、'.join(bad)[:60]}")
    elif off := [c for c in channels if c not in configured]:
        problems.append(unconfigured_text(off))
    if sample.source == "list" and "inapp" not in channels:
        roles = []  # a list's SMS and e-mail go to the contact it names; only the message centre has accounts by role
    elif not roles or any(r not in CONTACT_ROLES for r in roles):
        problems.append(f"请选择邀请的联系人({'、'.join(CONTACT_ROLES)})" if sample.source == "registry" else
                        f"请选择站内消息发给纳税人的哪些账号({'、'.join(CONTACT_ROLES)})")
    if any(p not in PERSONAL_DATA for p in personal_data):
        problems.append("个人信息只能声明纳税人名称和联系人姓名")
    if not 0 <= max_reminders <= MAX_REMINDERS:
        problems.append(f"每户最多提醒次数应在 0 到 {MAX_REMINDERS} 之间")
    if not 0 <= remind_after_days <= 30:
        problems.append("自动提醒间隔应在 0 到 30 天之间(0 为只手动提醒)")
    if not base_url.startswith(("http://", "https://")):
        problems.append("站点地址应以 http:// 或 https:// 开头")
    if problems:
        raise SurveyInvalid("不能发送邀请:" + ";".join(problems))
    now = now or utcnow()
    members = list(session.execute(select(SurveySampleMember.id, SurveySampleMember.credit_code,
                                          SurveySampleMember.stratum_id)
                                   .where(SurveySampleMember.sample_id == sample.id)
                                   .order_by(SurveySampleMember.id)).all())
    out = opted_out_codes(session, [code for _, code, _ in members])
    # Each invitation carries its stratum's label, which its answer keeps: the analysis weights answers back to the
    # population by it, with the stratum's frame size (report.population).
    label_of = dict(session.execute(select(SurveyStratum.id, SurveyStratum.label)
                                    .where(SurveyStratum.sample_id == sample.id)).all())
    stratum_of = {mid: label_of[sid][:64] for mid, _, sid in members}
    invited = [(mid, code) for mid, code, _ in members if code not in out]
    tokens = {mid: secrets.token_urlsafe(24) for mid, _ in invited}
    # One executemany, the ids read back by digest: RETURNING in parameter order made SQLite insert row by row
    # (a million statements for a national sample).
    digests = {mid: _digest(tokens[mid]) for mid, _ in invited}
    for i in range(0, len(invited), 50_000):
        session.execute(insert(SurveyInvitation), [
            {"survey_id": survey.id, "token_digest": digests[mid], "label": f"样本 {sample.id}",
             "stratum": stratum_of[mid], "created_by": actor.username, "created_at": now}
            for mid, _ in invited[i:i + 50_000]])
    id_of = dict(session.execute(select(SurveyInvitation.token_digest, SurveyInvitation.id).where(
        SurveyInvitation.survey_id == survey.id, SurveyInvitation.created_at == now,
        SurveyInvitation.label == f"样本 {sample.id}")).all()) if invited else {}
    ids = [id_of[digests[mid]] for mid, _ in invited]
    key = crypto.encryption_key()
    encrypted = crypto.encrypt_with(key, [tokens[mid] for mid, _ in invited])
    session.execute(update(SurveySampleMember), [
        {"id": mid, "invitation_id": iid, "token": token, "last_sent_at": now}
        for (mid, _), iid, token in zip(invited, ids, encrypted, strict=True)])
    if out:
        session.execute(update(SurveySampleMember).where(SurveySampleMember.sample_id == sample.id,
                                                         SurveySampleMember.credit_code.in_(out)).values(opted_out=True))
    campaign = Campaign(name=f"问卷邀请:{survey.title}"[:200], kind="survey", unit_id=survey.unit_id, policies=[],
                        channels=channels, year=now.year, month=now.month, created_by=actor.username)
    session.add(campaign)
    session.flush()
    sample.campaign_id, sample.channels, sample.roles = campaign.id, channels, roles
    sample.personal_data = [p for p in PERSONAL_DATA if p in personal_data]
    sample.public_url, sample.max_reminders, sample.remind_after_days = base_url, max_reminders, remind_after_days
    sample.state, sample.invited_at = "invited", now
    code_of = dict(invited)
    rows = (list_sampling.contacts(session, sample.id, [code for _, code in invited], channels, roles=roles)
            if sample.source == "list" else _contacts(conn, [code for _, code in invited], roles=roles, channels=channels))
    if sample.source == "list" and any(c != "inapp" for c in channels):
        sample.roles = [*roles, LIST_ROLE]
    messages = []
    by_code: dict[str, list[tuple]] = {}
    for row in rows:
        by_code.setdefault(row[0], []).append(row)
    for mid, _ in invited:
        for code, name, role, person, channel, address in by_code.get(code_of[mid], []):
            messages.append(_message(survey, sample, mid, code, name, role, person, channel, address,
                                     token=tokens[mid], stage=INVITE, now=now))
    _write_messages(session, sample, messages, {INVITE: len(messages)}, now)
    stage = session.scalar(select(CampaignStage).where(CampaignStage.campaign_id == campaign.id,
                                                       CampaignStage.stage == INVITE))
    if stage is None:  # nobody reachable: the stage is still recorded, with nothing sent
        stage = CampaignStage(campaign_id=campaign.id, stage=INVITE, due=now.date(), planned_at=now, messages=0,
                              capped=0)
        session.add(stage)
    stage.audience, stage.opted_out = len(by_code), len(out)
    audit.record(session, actor=actor, action="survey.sample.invited", object_type="survey", object_id=survey.id,
                 after={"sample": sample.id, "invited": len(invited), "opted_out": len(out),
                        "reachable": len(by_code), "messages": len(messages), "channels": channels, "roles": roles,
                        "personal_data": sample.personal_data, "campaign": campaign.id})
    return sample


def _contacts(conn, codes: list[str], *, roles: list[str], channels: list[str]) -> list[tuple]:
    """(credit code, taxpayer name, role, person, channel, address) of the invited taxpayers' chosen contacts that
    have not unsubscribed (person and address as stored: SM4 ciphertext)."""
    if not codes:
        return []
    roles_sql, params = matching.in_list("role", roles)
    channels_sql, channel_params = matching.in_list("channel", channels)
    params.update(channel_params, codes=codes)
    return matching.DuckDBEngine(conn).rows(f"""
        SELECT k.credit_code, r.name, k.role, k.person, k.channel, k.address
        FROM (SELECT unnest($codes::VARCHAR[]) AS credit_code) m
        JOIN contacts k ON k.credit_code = m.credit_code AND k.role IN ({roles_sql}) AND k.channel IN ({channels_sql})
                       AND NOT k.opted_out
        JOIN registry r ON r.credit_code = k.credit_code
        ORDER BY k.credit_code, k.role, k.channel""", params)


def _message(survey: Survey, sample: SurveySample, member_id: int, code: str, name: str, role: str, person: str,
             channel: str, address: str, *, token: str, stage: str, now: datetime) -> dict:
    """One push message; the taxpayer's and the contact's names only as declared."""
    taxpayer = name if "taxpayer" in sample.personal_data else ""
    person = person if "person" in sample.personal_data else ""
    return dict(campaign_id=sample.campaign_id, stage=stage, policy_id="", credit_code=code, taxpayer_name=taxpayer,
                role=role, person=person, channel=channel, address=address,
                title=f"{'问卷提醒' if stage != INVITE else '问卷邀请'}:{survey.title}"[:200],
                body=_body(survey, sample, taxpayer=taxpayer, person=crypto.decrypt(person) or "", token=token,
                           reminder=stage != INVITE),
                # the message centre's button: the taxpayer's own invitation, found by who is signed in (no token)
                link=f"/survey/invited/{member_id}" if channel == "inapp" else "", created_at=now)


# --- reminders ---------------------------------------------------------------------------------------


@dataclass
class ReminderPreview:
    sample: SurveySample
    members: int  # to be reminded now
    messages: int
    answered: int  # left out: answered
    opted_out: int  # left out: opted out (before or since the invitation)
    exhausted: int  # left out: had every reminder already
    waiting: int  # left out: the last message is more recent than the interval (scheduled reminders only)
    body: str  # one reminder as it reads (the link shown as …)
    code: str  # what the confirmation must name


def _reminder_plan(session: Session, sample: SurveySample, *, now: datetime, scheduled: bool):
    """Who gets a reminder now: invited, not answered, not opted out, fewer than max_reminders so far (and, for the
    scheduled run, the last message at least remind_after_days old). The members chosen and the counts left out."""
    rows = session.execute(
        select(SurveySampleMember, SurveyInvitation.answered_at)
        .join(SurveyInvitation, SurveyInvitation.id == SurveySampleMember.invitation_id)
        .where(SurveySampleMember.sample_id == sample.id).order_by(SurveySampleMember.id)).all()
    out = opted_out_codes(session, [m.credit_code for m, _ in rows])
    chosen, counts = [], {"answered": 0, "opted_out": 0, "exhausted": 0, "waiting": 0}
    since = now - timedelta(days=sample.remind_after_days)
    for member, answered_at in rows:
        if answered_at is not None:
            counts["answered"] += 1
        elif member.credit_code in out:
            counts["opted_out"] += 1
        elif member.reminders >= sample.max_reminders:
            counts["exhausted"] += 1
        elif scheduled and member.last_sent_at is not None and member.last_sent_at > since:
            counts["waiting"] += 1
        else:
            chosen.append(member)
    return chosen, counts


def _code(members: list[SurveySampleMember]) -> str:
    return hashlib.sha256(",".join(str(m.id) for m in members).encode()).hexdigest()[:12]


def _remindable(session: Session, actor: Actor, sample_id: int) -> tuple[SurveySample, Survey]:
    sample = get_sample(session=session, actor=actor, sample_id=sample_id)
    survey = session.get(Survey, sample.survey_id)
    if refused := manage_refusal(actor, survey):
        raise refused
    if sample.state != "invited":
        raise SurveyInvalid("这个样本还没有发出邀请,不能提醒")
    if survey.state != "published":
        raise SurveyInvalid("问卷已结束或未发布,不再发送提醒")
    return sample, survey


def preview_reminders(*, session: Session, actor: Actor, sample_id: int, now: datetime | None = None) -> ReminderPreview:
    """Who a reminder would reach now and what it says; nothing is sent."""
    sample, survey = _remindable(session, actor, sample_id)
    chosen, counts = _reminder_plan(session, sample, now=now or utcnow(), scheduled=False)
    messages = session.scalar(select(func.count()).select_from(PushMessage).where(
        PushMessage.campaign_id == sample.campaign_id, PushMessage.stage == INVITE,
        PushMessage.credit_code.in_([m.credit_code for m in chosen[:30000]]))) if chosen else 0
    body = _body(survey, sample, taxpayer="", person="", token="…", reminder=True)
    return ReminderPreview(sample, len(chosen), messages or 0, counts["answered"], counts["opted_out"],
                           counts["exhausted"], counts["waiting"], body, _code(chosen))


def _send(session: Session, sample: SurveySample, survey: Survey, chosen: list[SurveySampleMember],
          now: datetime) -> int:
    """A reminder to each chosen member's contacts as invited (the invitation's messages say who and where)."""
    by_code = {m.credit_code: m for m in chosen}
    messages, stages = [], {}
    codes = list(by_code)
    for i in range(0, len(codes), 1000):
        for m in session.scalars(select(PushMessage).where(
                PushMessage.campaign_id == sample.campaign_id, PushMessage.stage == INVITE,
                PushMessage.credit_code.in_(codes[i:i + 1000])).order_by(PushMessage.id)):
            member = by_code[m.credit_code]
            stage = f"remind{member.reminders + 1}"
            messages.append(_message(survey, sample, member.id, m.credit_code, m.taxpayer_name, m.role,
                                     crypto.encrypt(m.person) or "", m.channel, crypto.encrypt(m.address) or "",
                                     token=member.token, stage=stage, now=now))
            stages[stage] = stages.get(stage, 0) + 1
    _write_messages(session, sample, messages, stages, now)
    for member in chosen:
        member.reminders += 1
        member.last_sent_at = now
    return len(messages)


def send_reminders(*, session: Session, actor: Actor, sample_id: int, code: str,
                   now: datetime | None = None) -> int:
    """Send the reminders the official previewed (`code`): refused when who would get one has changed since."""
    sample, survey = _remindable(session, actor, sample_id)
    now = now or utcnow()
    chosen, counts = _reminder_plan(session, sample, now=now, scheduled=False)
    if not chosen:
        raise SurveyInvalid("没有需要提醒的对象(都已作答、退订或已达提醒次数上限)")
    if _code(chosen) != code.strip():
        raise SurveyInvalid(f"预览之后提醒对象有了变化(现为 {len(chosen)} 户),请重新预览后再确认")
    sent = _send(session, sample, survey, chosen, now)
    audit.record(session, actor=actor, action="survey.reminders.sent", object_type="survey", object_id=survey.id,
                 after={"sample": sample.id, "members": len(chosen), "messages": sent, "skipped": counts})
    return sent


def due_samples(session: Session) -> list[int]:
    return list(session.scalars(select(SurveySample.id).join(Survey, Survey.id == SurveySample.survey_id).where(
        SurveySample.state == "invited", SurveySample.remind_after_days > 0, SurveySample.max_reminders > 0,
        Survey.state == "published").order_by(SurveySample.id)))


def run_due_reminders(db: Database, *, now: datetime | None = None) -> dict[int, int]:
    """The scheduled reminders: each invited sample of a published survey, in its own transaction, reminds those
    whose last message is at least its interval old. {sample id: messages}."""
    now = now or utcnow()
    with db.read() as session:
        ids = due_samples(session)
    sent = {}
    for sample_id in ids:
        with db.write() as session:
            sample = session.get(SurveySample, sample_id)
            survey = session.get(Survey, sample.survey_id)
            chosen, counts = _reminder_plan(session, sample, now=now, scheduled=True)
            if not chosen:
                continue
            sent[sample_id] = _send(session, sample, survey, chosen, now)
            audit.record(session, actor=SYSTEM, action="survey.reminders.sent", object_type="survey",
                         object_id=survey.id, after={"sample": sample.id, "members": len(chosen),
                                                     "messages": sent[sample_id], "skipped": counts, "scheduled": True})
    return sent


# --- opting out and the taxpayer's own invitation ---------------------------------------------------


def member_of_token(session: Session, token: str) -> tuple[SurveySampleMember, Survey]:
    """The sampled taxpayer an invitation's token was sent to (whatever state its survey is in now)."""
    invitation = session.scalar(select(SurveyInvitation).where(SurveyInvitation.token_digest == _digest(token)))
    member = invitation and session.scalar(select(SurveySampleMember).where(
        SurveySampleMember.invitation_id == invitation.id))
    if member is None:
        raise SurveyNotFound("链接无效:退订只能通过问卷邀请消息中的链接办理")
    return member, session.get(Survey, invitation.survey_id)


def is_opted_out(session: Session, credit_code: str) -> bool:
    return session.scalar(select(SurveyOptOut.id).where(SurveyOptOut.credit_code == credit_code)) is not None


def opt_out(*, session: Session, token: str) -> bool:
    """Record that the invited taxpayer wants no more survey messages; False if it had already said so."""
    member, survey = member_of_token(session, token)
    if is_opted_out(session, member.credit_code):
        return False
    try:
        with session.begin_nested():  # two clicks at once: the second finds the first's row, and says so
            session.add(SurveyOptOut(credit_code=member.credit_code, survey_id=survey.id, created_at=utcnow()))
    except IntegrityError:
        return False
    audit.record(session, actor=SystemActor(username="respondent"), action="survey.optout.recorded",
                 object_type="survey", object_id=survey.id,
                 after={"sample": member.sample_id, "credit_code": member.credit_code})
    return True


def own_invitation(*, session: Session, actor: Actor, member_id: int) -> str:
    """The token of the signed-in taxpayer's own invitation (the message centre's button); another's is not found."""
    member = session.get(SurveySampleMember, member_id)
    if member is None or not member.token or member.credit_code != getattr(actor, "taxpayer_code", None):
        raise SurveyNotFound(f"没有编号为 {member_id} 的问卷邀请")
    return member.token


@dataclass
class StratumFigures:
    stratum: SurveyStratum
    invited: int
    answered: int
    opted_out: int  # left out of the invitation because the taxpayer had opted out

    @property
    def response_rate(self) -> float | None:
        return 100 * self.answered / self.invited if self.invited else None


def stratum_figures(session: Session, sample: SurveySample) -> list[StratumFigures]:
    """Each stratum's frame size, quota, drawn, invited, answered and opted out: the sample page's table."""
    answered = func.sum(case((SurveyInvitation.answered_at.is_not(None), 1), else_=0))
    counts = {sid: (invited, int(done or 0), int(out or 0)) for sid, invited, done, out in session.execute(
        select(SurveySampleMember.stratum_id, func.count(SurveySampleMember.invitation_id), answered,
               func.sum(case((SurveySampleMember.opted_out, 1), else_=0)))
        .outerjoin(SurveyInvitation, SurveyInvitation.id == SurveySampleMember.invitation_id)
        .where(SurveySampleMember.sample_id == sample.id).group_by(SurveySampleMember.stratum_id))}
    return [StratumFigures(s, *counts.get(s.id, (0, 0, 0))) for s in sample.strata]
