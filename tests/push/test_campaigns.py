"""Campaigns on a real database and store: stage dates, audiences checked against the record-by-record
evaluator, opt-outs, caps, no repeats, and delivery to a real HTTP gateway, including a crash mid-send."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from chunfeng.org.access import SystemActor
from chunfeng.outbox import Delivery
from chunfeng.push import campaigns, periods, rules, schedule, stages
from chunfeng.push.errors import PushInvalid
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage
from chunfeng.settings import Settings, get_settings
from chunfeng.workdays import load_calendar

SYSTEM = SystemActor()
NOW = datetime(2022, 7, 1, 9, 0)


def test_stage_dates_follow_the_filing_calendar():
    deadline, due = campaigns.stage_dates(year=2022, month=7, reminder_day=10, last_days=2, cal=load_calendar())
    # July 2022: no holiday, the 15th is a Friday; the 10th is a Sunday, so the reminder goes on Monday.
    assert deadline == date(2022, 7, 15)
    assert due == {"first": date(2022, 7, 1), "reminder": date(2022, 7, 11), "last": date(2022, 7, 13)}
    deadline, due = campaigns.stage_dates(year=2022, month=10, reminder_day=10, last_days=2, cal=load_calendar())
    # October 2022: National Day 1–7 extends the period to the 25th; Saturday the 8th is a make-up working day.
    assert deadline == date(2022, 10, 25)
    assert due == {"first": date(2022, 10, 8), "reminder": date(2022, 10, 10), "last": date(2022, 10, 21)}


def _registry(duck) -> list[dict]:
    cols = [d[0] for d in duck.execute("SELECT * FROM registry LIMIT 0").description]
    return [dict(zip(cols, row, strict=True)) for row in duck.execute("SELECT * FROM registry").fetchall()]


def _campaign(db, duck, policy_ids, *, channels=("inapp", "sms"), unit="110000", month=7, stage="first",
              now=NOW, cap=3, audience=""):
    with db.write() as session:
        c = campaigns.create_campaign(session=session, actor=SYSTEM, name="测试活动", unit_code=unit,
                                      policy_ids=list(policy_ids), channels=list(channels), year=2022, month=month,
                                      audience=audience)
        session.flush()
        s = session.scalar(select(CampaignStage).where(CampaignStage.campaign_id == c.id, CampaignStage.stage == stage))
        stages.plan_stage(session=session, conn=duck, campaign=c, stage=s, now=now, cap=cap)
        return c.id, s.audience, s.messages, s.capped, s.opted_out


def _policy(db, policy_id):
    with db.read() as session:
        p = session.get(Policy, policy_id)
        return p.rule, list(p.roles)


def _valid_in(p, year=2022, month=7) -> bool:
    """Whether a campaign filing in (year, month) may carry the policy: its return's period lies in its validity."""
    period = periods.return_period(period_kind=p.period_kind, filing=p.filing, year=year, month=month)
    return periods.validity_problem(p, period) is None


def _busiest_policy(db, duck, but=""):
    """The shipped policy in force for July 2022 with the most eligible taxpayers in 北京 (so the tests have
    something to count)."""
    with db.read() as session:
        found = [(duck.execute(f"SELECT count(*) FROM registry WHERE region LIKE '11%' AND "
                               f"{rules.parse(p.rule).sql()}").fetchone()[0], p.id)
                 for p in session.scalars(select(Policy)) if _valid_in(p) and p.id != but]
    return max(found)[1]


def test_first_notice_reaches_every_eligible_contact_in_the_region_and_no_one_else(policies, duck):
    db = policies
    pid = _busiest_policy(db, duck)
    rule, roles = _policy(db, pid)
    check = rules.parse(rule).predicate()
    eligible = {r["credit_code"] for r in _registry(duck) if r["region"].startswith("11") and check(r)}
    contacts = duck.execute("SELECT credit_code, role, channel, opted_out FROM contacts "
                            "WHERE channel IN ('inapp', 'sms')").fetchall()
    expected = {(c, role, ch) for c, role, ch, out in contacts if c in eligible and role in roles and not out}
    opted_out = sum(1 for c, role, ch, out in contacts if c in eligible and role in roles and out)
    cid, audience, messages, capped, out = _campaign(db, duck, [pid])
    with db.read() as session:
        sent = set(session.execute(select(PushMessage.credit_code, PushMessage.role, PushMessage.channel)
                                   .where(PushMessage.campaign_id == cid)).all())
        states = {ch: set(counts) for (_, ch), counts in campaigns.delivery_figures(session, cid)["by_stage_channel"].items()}
        sample = session.scalar(select(PushMessage).where(PushMessage.campaign_id == cid).limit(1))
    assert expected and sent == expected and messages == len(expected)
    assert out == opted_out and capped == 0
    assert states == {"inapp": {"sent"}, "sms": {"pending"}}  # in-app is delivered by being written
    assert "{" not in sample.body and sample.title.startswith("政策提醒")


def test_a_stage_is_planned_once_and_a_message_cannot_be_repeated(policies, duck):
    db = policies
    pid = _busiest_policy(db, duck)
    cid, *_ = _campaign(db, duck, [pid])
    with db.write() as session:
        stage = session.scalar(select(CampaignStage).where(CampaignStage.campaign_id == cid, CampaignStage.stage == "first"))
        before = session.scalar(select(func.count()).select_from(PushMessage))
        stages.plan_stage(session=session, conn=duck, campaign=session.get(campaigns.Campaign, cid), stage=stage)
        assert session.scalar(select(func.count()).select_from(PushMessage)) == before
    for _ in range(2):  # the schedule finds nothing more to do for the first stage
        schedule.run_due(db, duck, today=date(2022, 7, 1))
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(PushMessage)) == before
        m = session.scalar(select(PushMessage).limit(1))
        copy = {c.name: getattr(m, c.name) for c in PushMessage.__table__.columns if c.name != "id"}
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(PushMessage.__table__.insert(), [copy])


def test_the_frequency_cap_holds_back_extra_pushes_within_a_week(policies, duck):
    db = policies
    with db.read() as session:
        ids = [p.id for p in session.scalars(select(Policy).order_by(Policy.id)) if _valid_in(p)]
    cid, audience, messages, capped, _ = _campaign(db, duck, ids, channels=["inapp"], cap=2)
    with db.read() as session:
        per_taxpayer = session.execute(
            select(PushMessage.credit_code, func.count(func.distinct(PushMessage.policy_id)))
            .where(PushMessage.campaign_id == cid).group_by(PushMessage.credit_code)).all()
    assert capped > 0 and max(n for _, n in per_taxpayer) == 2
    # A second campaign three days later reaches none of those already at the cap; eight days later it may.
    capped_codes = {c for c, n in per_taxpayer if n == 2}
    cid2, *_ = _campaign(db, duck, ids[:1], channels=["inapp"], cap=2, now=NOW + timedelta(days=3))
    cid3, *_ = _campaign(db, duck, ids[:1], channels=["inapp"], cap=2, now=NOW + timedelta(days=8))
    with db.read() as session:
        again = set(session.scalars(select(PushMessage.credit_code).where(PushMessage.campaign_id == cid2)))
        later = set(session.scalars(select(PushMessage.credit_code).where(PushMessage.campaign_id == cid3)))
    assert not (again & capped_codes)
    assert later & capped_codes


def test_reminders_skip_those_who_filed_and_claimed(policies, duck):
    db = policies
    pid = _busiest_policy(db, duck)
    with db.read() as session:
        p = session.get(Policy, pid)
        filing, kind = p.filing, p.period_kind
    period = periods.return_period(period_kind=kind, filing=filing, year=2022, month=7)
    cid, *_ = _campaign(db, duck, [pid], channels=["inapp"], stage="reminder", now=datetime(2022, 7, 11, 9))
    with db.read() as session:
        reached = set(session.scalars(select(PushMessage.credit_code).where(PushMessage.campaign_id == cid)))
    done = {c for (c,) in duck.execute(
        "SELECT f.credit_code FROM filings f JOIN claims c ON c.credit_code = f.credit_code AND c.policy = ? "
        "AND c.period = f.period WHERE f.return_type = ? AND f.period = ? AND f.filed_on <= DATE '2022-07-11'",
        [pid, filing, period]).fetchall()}
    assert reached and not (reached & done)


def test_bad_campaigns_are_refused(policies, duck):
    with pytest.raises(PushInvalid) as caught, policies.write() as session:
        campaigns.create_campaign(session=session, actor=SYSTEM, name="", unit_code="110000", policy_ids=["NOPE"],
                                  channels=["pigeon"], year=2022, month=13, audience="headcount >")
    for words in ("名称", "NOPE", "pigeon", "2022-13", "补充条件"):
        assert words in str(caught.value)
    # each fault is named by its field, and the rule's by its position, for the form to show beside the field
    assert set(caught.value.problems) == {"name", "policies", "channels", "month", "audience"}
    assert caught.value.rule_error.position == len("headcount >")
    with policies.read() as session:
        assert session.scalar(select(func.count()).select_from(campaigns.Campaign)) == 0


class Gateway:
    """A webhook SMS gateway on loopback that records what it receives and answers `status`."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 200
        self.on_receive = None
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                gateway.received.append({"path": self.path, "key": self.headers.get("Idempotency-Key"), **body})
                if gateway.on_receive:
                    gateway.on_receive()
                self.send_response(gateway.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_port}/sms?-to={{address}}&+Idempotency-Key={{message}}"


@pytest.fixture
def gateway(monkeypatch):
    g = Gateway()
    monkeypatch.setenv("CHUNFENG_PUSH_CHANNELS", json.dumps({"sms": g.url}))
    monkeypatch.setenv("CHUNFENG_PUSH_RETRY_MINUTES", "5")
    monkeypatch.setenv("CHUNFENG_CHANNEL_HOSTS_ALLOWED", '["127.0.0.1"]')  # the gateway is on loopback
    yield g
    g.server.shutdown()


def _fresh_settings() -> Settings:
    """The settings a command started now would read: the environment this test set (gateway, channels)."""
    get_settings.cache_clear()
    return get_settings()


def _one_sms(db, duck):
    """A campaign with exactly one pending SMS (the others removed): what delivery tests send."""
    pid = _busiest_policy(db, duck)
    cid, *_ = _campaign(db, duck, [pid], channels=["sms"])
    with db.write() as session:
        keep = session.scalar(select(func.min(PushMessage.id)).where(PushMessage.campaign_id == cid))
        session.execute(PushMessage.__table__.delete().where(PushMessage.id != keep))
        session.execute(Delivery.__table__.delete().where(Delivery.origin_id != keep))
        return keep


def _delivery(session, message_id) -> Delivery:
    """The outbox delivery of a push message."""
    return session.scalars(select(Delivery).where(Delivery.origin == campaigns.ORIGIN,
                                                  Delivery.origin_id == message_id)).one()


def _state(db, message_id):
    with db.read() as session:
        d = _delivery(session, message_id)
        return d.state, d.attempts, d.next_attempt_at


def test_delivery_retries_with_back_off_then_succeeds(policies, duck, gateway):
    db = policies
    mid = _one_sms(db, duck)
    gateway.status = 500
    run = campaigns.deliver(db, settings=_fresh_settings(), now=NOW)
    assert (run.sent, run.failed) == (0, 1)
    state, attempts, retry_at = _state(db, mid)
    assert (state, attempts, retry_at) == ("failed", 1, NOW + timedelta(minutes=5))
    assert campaigns.deliver(db, settings=_fresh_settings(), now=NOW + timedelta(minutes=4)).failed == 0  # not yet due
    campaigns.deliver(db, settings=_fresh_settings(), now=NOW + timedelta(minutes=6))
    assert _state(db, mid)[:2] == ("failed", 2) and _state(db, mid)[2] == NOW + timedelta(minutes=16)
    gateway.status = 200
    assert campaigns.deliver(db, settings=_fresh_settings(), now=NOW + timedelta(minutes=20)).sent == 1
    assert _state(db, mid)[:2] == ("sent", 3)
    assert campaigns.deliver(db, settings=_fresh_settings(), now=NOW + timedelta(days=1)).sent == 0
    with db.read() as session:
        key = str(_delivery(session, mid).id)  # the delivery's id: the same on every attempt
    assert len(gateway.received) == 3 and {r["key"] for r in gateway.received} == {key}
    assert gateway.received[-1]["path"].startswith("/sms?to=1")


def test_an_unconfigured_channel_is_a_logged_failure(policies, duck, monkeypatch):
    monkeypatch.setenv("CHUNFENG_PUSH_CHANNELS", "{}")
    get_settings.cache_clear()
    try:
        mid = _one_sms(policies, duck)
        assert campaigns.deliver(policies, settings=_fresh_settings(), now=NOW).failed == 1
        with policies.read() as session:
            assert "未配置" in _delivery(session, mid).last_error
    finally:
        get_settings.cache_clear()


def test_a_crash_between_send_and_log_does_not_send_twice(policies, duck, gateway, _database):
    """`chunfeng push deliver` is killed (SIGKILL) while the gateway holds its request: the message went out
    but the outcome was never written. The next run marks it uncertain and does not send it again."""
    db = policies
    mid = _one_sms(db, duck)
    env = {**os.environ, "CHUNFENG_DATABASE_URL": _database.url, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "chunfeng", "push", "deliver"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    gateway.on_receive = lambda: os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert len(gateway.received) == 1
    assert _state(db, mid)[0] == "sending"
    gateway.on_receive = None
    later = datetime.utcnow() + timedelta(minutes=11)  # past the sending lease
    run = campaigns.deliver(db, settings=_fresh_settings(), now=later)
    assert (run.uncertain, run.sent) == (1, 0)
    assert campaigns.deliver(db, settings=_fresh_settings(), now=later + timedelta(hours=1)).sent == 0
    assert _state(db, mid)[0] == "uncertain" and len(gateway.received) == 1
    with db.write() as session:  # an official checked with the gateway: it did not go out
        cid = session.get(PushMessage, mid).campaign_id
        assert campaigns.requeue_uncertain(session=session, actor=SYSTEM, campaign_id=cid) == 1
    assert campaigns.deliver(db, settings=_fresh_settings(), now=later).sent == 1 and len(gateway.received) == 2


def _run_every_job(db, settings):
    """What `chunfeng jobs run NAME` does for each job in turn: run it now, due or not."""
    from chunfeng import jobs
    from chunfeng.web import app  # noqa: F401 (the entry point registers every domain's periodic jobs)

    runner = jobs.Runner(db, settings)
    return [runner.run(job, force=True) for job in jobs.registered()]


def test_the_servers_schedule_sends_only_approved_stages(policies, duck, store_file):
    """Issue 14.6: every stage went out on its day with nobody having approved it. Now the same run sends nothing
    until each stage is approved (see tests/push/test_schedule.py), then sends what was approved."""
    from tests.push.test_schedule import approve_all

    pid = _busiest_policy(policies, duck)
    with policies.write() as session:
        ids = []
        for name in ("无人批准", "已批准"):
            c = campaigns.create_campaign(session=session, actor=SYSTEM, name=name, unit_code="110000",
                                          policy_ids=[pid], channels=["inapp"], year=2022, month=7)
            session.flush()
            ids.append(c.id)
    unapproved, approved = ids
    approve_all(policies, duck, approved)
    duck.close()  # the schedule opens the store itself
    settings = _fresh_settings().model_copy(update={"push_store": str(store_file)})
    _run_every_job(policies, settings)
    with policies.read() as session:
        for cid, sent in ((unapproved, False), (approved, True)):
            stages = session.scalars(select(CampaignStage).where(CampaignStage.campaign_id == cid)).all()
            assert stages and all((s.planned_at is not None) is sent for s in stages)
            assert bool(session.scalar(select(func.count()).select_from(PushMessage)
                                       .where(PushMessage.campaign_id == cid))) is sent


def test_a_failing_campaign_is_recorded_and_the_schedule_goes_on(policies, duck, store_file, gateway):
    """Issue 11: a rule saved before the bounds existed made every scheduled run fail before delivery, nationwide."""
    from chunfeng.org.models import AuditEntry
    from tests.push.test_schedule import approve_all

    db = policies
    pid = _busiest_policy(db, duck, but="LSLF-FJ-2022")  # that one is made to fail below
    waiting = _one_sms(db, duck)  # an SMS from earlier, still to be delivered
    with db.write() as session:
        session.execute(update(Campaign).values(state="finished"))
        ids = {}
        for name, audience in (("坏条件", ""), ("好活动", ""), ("坏政策", "")):
            c = campaigns.create_campaign(session=session, actor=SYSTEM, name=name, unit_code="110000",
                                          policy_ids=["LSLF-FJ-2022" if name == "坏政策" else pid],
                                          channels=["inapp"], year=2022, month=7, audience=audience)
            session.flush()
            ids[name] = c.id
    for cid in ids.values():
        approve_all(db, duck, cid)
    with db.write() as session:
        # what the bounds now refuse, written as an older version let it be saved
        session.get(Campaign, ids["坏条件"]).audience = "(" * 140 + "headcount > 1" + ")" * 140
        session.get(Policy, "LSLF-FJ-2022").rule = "monthly_sales > " + "9" * 38
    duck.close()
    _run_every_job(db, _fresh_settings().model_copy(update={"push_store": str(store_file)}))
    with db.read() as session:
        good = session.get(Campaign, ids["好活动"])
        assert good.state == "active" and good.last_error == ""
        assert all(s.planned_at for s in session.scalars(select(CampaignStage).where(CampaignStage.campaign_id == good.id)))
        assert session.scalar(select(func.count()).select_from(PushMessage).where(PushMessage.campaign_id == good.id))
        for name, word in (("坏条件", "嵌套过深"), ("坏政策", "超出范围")):
            bad = session.get(Campaign, ids[name])
            assert bad.state == "failed" and word in bad.last_error and "政策提醒" in bad.last_error, bad.last_error
            assert not session.scalar(select(func.count()).select_from(PushMessage).where(PushMessage.campaign_id == bad.id))
            assert session.scalar(select(AuditEntry.outcome).where(
                AuditEntry.action == "push.campaign.failed", AuditEntry.object_id == str(bad.id))) == "failure"
        assert _delivery(session, waiting).state == "sent"
    # a failed campaign waits for someone: a second run does not retry it
    _run_every_job(db, _fresh_settings().model_copy(update={"push_store": str(store_file)}))
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "push.campaign.failed")) == 2


def test_pause_resume_edit_and_cancel_are_checked_and_audited(policies, duck):
    from chunfeng.org.models import AuditEntry

    db = policies
    pid = _busiest_policy(db, duck)
    cid, *_ = _campaign(db, duck, [pid], channels=["inapp", "sms"])  # the first stage planned: SMS pending
    with db.write() as session:
        campaigns.pause_campaign(session=session, actor=SYSTEM, campaign_id=cid)
        assert not [s for c, s in schedule.due_stages(session, date(2022, 7, 31)) if c.id == cid]
    with db.write() as session, pytest.raises(PushInvalid, match="不能暂停"):
        campaigns.pause_campaign(session=session, actor=SYSTEM, campaign_id=cid)
    with db.write() as session, pytest.raises(PushInvalid, match="补充条件"):
        campaigns.edit_campaign(session=session, actor=SYSTEM, campaign_id=cid, name="改", policy_ids=[pid],
                                channels=["inapp"], audience="headcount > " + "1" * 20)
    with db.write() as session:
        campaigns.edit_campaign(session=session, actor=SYSTEM, campaign_id=cid, name="改", policy_ids=[pid],
                                channels=["inapp"], audience="high_tech")
        campaigns.resume_campaign(session=session, actor=SYSTEM, campaign_id=cid)
        pending = session.scalar(select(func.count()).select_from(Delivery).where(
            campaigns._deliveries_of(cid), Delivery.state == "pending"))
        assert pending > 0
        assert campaigns.cancel_campaign(session=session, actor=SYSTEM, campaign_id=cid) == pending
    with db.read() as session:
        c = session.get(Campaign, cid)
        assert (c.state, c.name, c.audience, c.channels) == ("cancelled", "改", "high_tech", ["inapp"])
        assert not session.scalar(select(func.count()).select_from(Delivery).where(
            campaigns._deliveries_of(cid), Delivery.state == "pending"))
        actions = list(session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "campaign", AuditEntry.object_id == str(cid)).order_by(AuditEntry.seq)))
    assert actions == ["push.campaign.created", "push.stage.planned", "push.campaign.paused", "push.campaign.edited",
                       "push.campaign.resumed", "push.campaign.cancelled"]
    with db.write() as session, pytest.raises(PushInvalid, match="不能修改"):
        campaigns.edit_campaign(session=session, actor=SYSTEM, campaign_id=cid, name="再改", policy_ids=[pid],
                                channels=["inapp"], audience="")


def test_no_body_holds_a_contact_name_in_clear(policies, duck):
    """Issue 11: push_message.body greeted each contact by name in plain text, beside the SM4 columns."""
    from sqlalchemy import text

    from chunfeng.push import bills

    db = policies
    cid, *_ = _campaign(db, duck, [_busiest_policy(db, duck)])
    with db.write() as session:
        bill_id = bills.push_bills(duck, session=session, actor=SYSTEM, unit_code="110000", year=2022).id
    with db.read() as session:
        people = {person for (person,) in session.execute(select(PushMessage.person))}
        shown = list(session.scalars(select(PushMessage.body).where(PushMessage.campaign_id.in_([cid, bill_id]))))
        raw = [body for (body,) in session.execute(text("SELECT body FROM push_message"))]
    assert len(people) > 10 and len(raw) == len(shown) > 10
    assert all(body.startswith("sm4gcm:") for body in raw)
    assert not [body for body in raw if any(name in body for name in people)]
    # What the message centre and the sender read: the text, greeting the contact.
    assert sum(any(name in body for name in people) for body in shown) > len(shown) // 2


def test_a_channel_url_to_an_internal_host_is_not_called(policies, duck, gateway):
    """CHUNFENG_PUSH_CHANNELS pointing at loopback without the allow-list: refused right before sending."""
    mid = _one_sms(policies, duck)
    unlisted = _fresh_settings().model_copy(update={"channel_hosts_allowed": []})
    assert campaigns.deliver(policies, settings=unlisted, now=NOW).failed == 1 and gateway.received == []
    with policies.read() as session:
        assert "CHUNFENG_CHANNEL_HOSTS_ALLOWED" in _delivery(session, mid).last_error


def test_an_engine_error_is_a_push_error_with_a_chinese_message(duck):
    from chunfeng.push import matching
    from chunfeng.push.errors import EngineFailed

    with pytest.raises(EngineFailed, match="数据引擎") as caught:
        matching.DuckDBEngine(duck).rows("SELECT CAST(name AS INTEGER) FROM registry")
    assert "Conversion" in caught.value.detail


# --- issue 14.6: channels offered only when configured, no stage before its day, preview and confirmation,
# failures by reason with retry ------------------------------------------------------------------------------


def test_only_channels_with_a_gateway_may_be_chosen(policies, duck):
    """Issue 14.6: SMS could be chosen with no gateway configured; 3,524 SMS then failed one by one."""
    assert campaigns.configured_channels(Settings(push_channels={})) == ("inapp",)
    assert campaigns.configured_channels(Settings(push_channels={"sms": "json://gw/{address}", "email": ""})) == \
        ("inapp", "sms")
    pid = _busiest_policy(policies, duck)
    with pytest.raises(PushInvalid) as caught, policies.write() as session:
        campaigns.create_campaign(session=session, actor=SYSTEM, name="短信提醒", unit_code="110000", policy_ids=[pid],
                                  channels=["inapp", "sms"], year=2022, month=7, configured=("inapp",))
    assert "短信尚未配置发送网关" in caught.value.problems["channels"]
    with policies.write() as session:
        c = campaigns.create_campaign(session=session, actor=SYSTEM, name="站内提醒", unit_code="110000",
                                      policy_ids=[pid], channels=["inapp"], year=2022, month=7, configured=("inapp",))
        session.flush()
        cid = c.id
    with pytest.raises(PushInvalid, match="短信尚未配置发送网关"), policies.write() as session:
        campaigns.edit_campaign(session=session, actor=SYSTEM, campaign_id=cid, name="改", policy_ids=[pid],
                                channels=["sms"], audience="", configured=("inapp",))
    with policies.read() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 1
        assert session.get(Campaign, cid).channels == ["inapp"]
    # a gateway removed after the campaign was made: the preview says so and the confirmation is refused
    with policies.write() as session:
        session.get(Campaign, cid).channels = ["inapp", "sms"]
    with policies.read() as session:
        preview = stages.preview_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, now=NOW,
                                          configured=("inapp",))
    assert preview.unconfigured == ["sms"]
    with pytest.raises(PushInvalid, match="短信尚未配置发送网关"), policies.write() as session:
        stages.confirm_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, stage="first",
                                code=preview.code, configured=("inapp",), now=NOW)
    with policies.read() as session:
        assert session.scalar(select(func.count()).select_from(PushMessage)) == 0


def _calendar_2027(db):
    """2027 as if imported: New Year's Day off (test data; the real year comes from `chunfeng calendar import`)."""
    from chunfeng.workdays import CalendarYear

    with db.write() as session:
        session.add(CalendarYear(year=2027, holidays=["2027-01-01"], makeup_days=[], deadlines={},
                                 source="测试数据(非正式安排)"))


def test_no_stage_runs_before_its_day(policies, duck):
    """Issue 14.6: "执行截至 2027-01-01" ran January's stage in December. Whatever day is asked for, a stage
    goes out on its day or later: the schedule, the page's run and planning itself refuse an earlier send."""
    from tests.push.test_schedule import approve
    _calendar_2027(policies)
    with policies.read() as session:  # a policy in force for what January 2027 files
        pid = next(p.id for p in session.scalars(select(Policy).order_by(Policy.id)) if _valid_in(p, 2027, 1))
    with policies.write() as session:
        c = campaigns.create_campaign(session=session, actor=SYSTEM, name="1月征期提醒", unit_code="110000",
                                      policy_ids=[pid], channels=["inapp"], year=2027, month=1)
        session.flush()
        cid = c.id
        first = session.scalar(select(CampaignStage).where(CampaignStage.campaign_id == cid,
                                                           CampaignStage.stage == "first"))
        assert first.due == date(2027, 1, 4)  # New Year's Day off, then a weekend
    december = datetime(2026, 12, 6, 2)
    with pytest.raises(PushInvalid, match="不能执行 2027-01-01 才到期的推送阶段:今天是 2026-12-06"):
        schedule.run_due(policies, duck, today=date(2027, 1, 1), now=december, campaign_id=cid)
    with pytest.raises(PushInvalid, match="政策提醒定于 2027-01-04 发送,今天是 2026-12-06,不能提前发送"), \
            policies.write() as session:
        stage = session.get(CampaignStage, first.id)
        stages.plan_stage(session=session, conn=duck, campaign=session.get(Campaign, cid), stage=stage, now=december)
    with policies.read() as session:
        preview = stages.preview_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, now=december,
                                          configured=("inapp",))
    assert preview.stage.stage == "first" and not preview.due_now and preview.messages > 0  # one may look ahead
    with pytest.raises(PushInvalid, match="不能提前发送"), policies.write() as session:
        stages.confirm_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, stage="first",
                                code=preview.code, configured=("inapp",), now=december)
    approve(policies, duck, cid, "first", now=december)  # approved ahead of its day: still sent only on it
    assert schedule.run_due(policies, duck, today=date(2026, 12, 6), now=december, campaign_id=cid).planned == []
    with policies.read() as session:
        assert session.get(Campaign, cid).state == "active"  # a refused early run is no failure of the campaign
        assert session.scalar(select(func.count()).select_from(PushMessage)) == 0
        assert all(s.planned_at is None for s in campaigns.stages_of(session, session.get(Campaign, cid)))
    on_the_day = datetime(2027, 1, 4, 1)
    planned = schedule.run_due(policies, duck, today=date(2027, 1, 4), now=on_the_day, campaign_id=cid).planned
    assert [s.stage for s in planned] == ["first"]


def test_a_stage_sends_what_its_preview_showed_once_confirmed(policies, duck):
    db = policies
    pid = _busiest_policy(db, duck)
    rule, roles = _policy(db, pid)
    with db.write() as session:
        c = campaigns.create_campaign(session=session, actor=SYSTEM, name="预览", unit_code="110000", policy_ids=[pid],
                                      channels=["inapp", "sms"], year=2022, month=7)
        session.flush()
        cid = c.id
    with db.read() as session:
        preview = stages.preview_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, now=NOW,
                                          configured=("inapp", "sms"))
        assert session.scalar(select(func.count()).select_from(PushMessage)) == 0  # a preview writes nothing
    check = rules.parse(rule).predicate()
    eligible = {r["credit_code"] for r in _registry(duck) if r["region"].startswith("11") and check(r)}
    reached = {c for c, role, ch, out in duck.execute("SELECT credit_code, role, channel, opted_out FROM contacts "
                                                      "WHERE channel IN ('inapp', 'sms')").fetchall()
               if c in eligible and role in roles and not out}
    assert preview.stage.stage == "first" and preview.due_now and preview.taxpayers == len(reached)
    assert preview.by_province == [("北京市", len(reached))]
    assert sum(preview.by_channel.values()) == preview.messages
    kinds = {(s.policy, s.role, s.channel) for s in preview.samples}
    assert len(kinds) == len(preview.samples) and {(pid, r, ch) for r in roles for ch in ("inapp", "sms")} >= kinds
    assert all("{" not in s.body and s.title.startswith("政策提醒") for s in preview.samples)
    # a code from another preview, or a stage other than the one previewed, sends nothing
    for stage, code in (("first", "0" * 12), ("reminder", preview.code)):
        with pytest.raises(PushInvalid, match="重新预览"), db.write() as session:
            stages.confirm_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, stage=stage, code=code,
                                    configured=("inapp", "sms"), now=NOW)
    with db.write() as session:
        done = stages.confirm_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, stage="first",
                                       code=preview.code, configured=("inapp", "sms"), now=NOW)
        assert done.messages == preview.messages and done.audience >= preview.taxpayers
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(PushMessage)) == preview.messages
        assert stages.next_stage(session, session.get(Campaign, cid)).stage == "reminder"
    with pytest.raises(PushInvalid, match="不是这个活动待执行的阶段"), db.write() as session:  # not twice
        stages.confirm_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, stage="first",
                                code=preview.code, configured=("inapp", "sms"), now=NOW)


def test_failures_are_grouped_by_reason_and_retried(policies, duck, gateway):
    """Issue 14.6: 3,524 SMS failed with no reason shown. The outbox's own errors, by reason, and a retry."""
    db = policies
    mid = _one_sms(db, duck)
    gateway.status = 500
    settings = _fresh_settings().model_copy(update={"push_max_attempts": 1})
    assert campaigns.deliver(db, settings=settings, now=NOW).failed == 1
    with db.read() as session:
        cid = session.get(PushMessage, mid).campaign_id
        groups = campaigns.failure_groups(session, cid, max_attempts=1)
    assert [(g.channel, g.count, g.exhausted) for g in groups] == [("sms", 1, 1)] and groups[0].reason
    assert campaigns.deliver(db, settings=settings, now=NOW + timedelta(days=1)).sent == 0  # given up
    with pytest.raises(PushInvalid, match="没有这一原因"), db.write() as session:
        campaigns.retry_failures(session=session, actor=SYSTEM, campaign_id=cid, reason="别的原因", channel="sms")
    gateway.status = 200
    with db.write() as session:
        assert campaigns.retry_failures(session=session, actor=SYSTEM, campaign_id=cid, reason=groups[0].reason,
                                        channel="sms") == 1
    assert campaigns.deliver(db, settings=settings, now=NOW + timedelta(days=1)).sent == 1
    assert _state(db, mid)[:2] == ("sent", 1)
    with db.read() as session:
        assert campaigns.failure_groups(session, cid, max_attempts=1) == []
