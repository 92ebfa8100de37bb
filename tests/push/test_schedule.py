"""The schedule sends only what a person approved (issue 14.6): approval after a preview, withdrawal before the day,
a hold when the audience has moved beyond the margin, a reminder when the day comes without approval — run through
the job function `chunfeng worker` calls, on a real database and store."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from chunfeng.inbox.models import InboxMessage
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry, Unit, User
from chunfeng.push import campaigns, jobs, schedule, stages
from chunfeng.push.errors import PushInvalid
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage
from chunfeng.settings import Settings
from tests.push.test_campaigns import SYSTEM, _busiest_policy

JULY_1 = datetime(2022, 7, 1, 2)  # 10:00 in Beijing, the day of the first notice


def _settings(store_file, **changes) -> Settings:
    return Settings(push_store=str(store_file), **changes)


def _create(db, pid, *, channels=("inapp",)) -> int:
    with db.write() as session:
        c = campaigns.create_campaign(session=session, actor=SYSTEM, name="7月征期提醒", unit_code="110000",
                                      policy_ids=[pid], channels=list(channels), year=2022, month=7)
        session.flush()
        return c.id


def approve(db, duck, cid, stage, *, who: str = "", now=JULY_1):
    """What an official does on the page: preview the stage, then approve what the preview showed."""
    with db.read() as session:
        preview = stages.preview_stage(session=session, conn=duck, actor=_actor(session, who), campaign_id=cid,
                                       stage=stage, configured=("inapp",), now=now)
    with db.write() as session:
        done = schedule.approve_stage(session=session, conn=duck, actor=_actor(session, who), campaign_id=cid,
                                      stage=stage, code=preview.code, configured=("inapp",), now=now)
        return done.approved_taxpayers, preview


def _actor(session, who: str):
    return session.scalar(select(User).where(User.username == who)) if who else SYSTEM


def approve_all(db, duck, cid, *, now=JULY_1):
    with db.read() as session:
        names = [s.stage for s in campaigns.stages_of(session, session.get(Campaign, cid)) if s.planned_at is None]
    for name in names:
        approve(db, duck, cid, name, now=now)


def _stage(session, cid, name) -> CampaignStage:
    return session.scalar(select(CampaignStage).where(CampaignStage.campaign_id == cid, CampaignStage.stage == name))


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_the_margin():
    assert not schedule.beyond_margin(1000, 1100, 0.10) and schedule.beyond_margin(1000, 1101, 0.10)
    assert not schedule.beyond_margin(1000, 900, 0.10) and schedule.beyond_margin(1000, 899, 0.10)
    assert not schedule.beyond_margin(0, 0, 0.10) and schedule.beyond_margin(0, 1, 0.10)
    with pytest.raises(ValueError):
        Settings(push_approval_margin=1.5)


def test_an_unapproved_stage_is_not_sent_on_its_day_and_its_unit_is_told_once(policies, duck, store_file):
    """Before: the worker's job sent every stage on its day with nobody having approved it."""
    db = policies
    cid = _create(db, _busiest_policy(db, duck))
    duck.close()  # the job opens the store itself
    settings = _settings(store_file)
    runs = [jobs.plan_due_stages(db, settings, JULY_1) for _ in range(2)]
    assert runs == [{"执行推送阶段": 0, "对象变化暂停": 0, "未批准未发送": 1},
                    {"执行推送阶段": 0, "对象变化暂停": 0, "未批准未发送": 0}]  # said once
    with db.read() as session:
        assert _count(session, PushMessage) == 0
        first = _stage(session, cid, "first")
        assert first.planned_at is None and first.overdue_notified_at is not None
        assert schedule.stage_state(first, date(2022, 7, 1)) == ("overdue", "待批准·已到期")
        assert schedule.stage_state(_stage(session, cid, "reminder"), date(2022, 7, 1)) == ("unapproved", "未批准")
        beijing = session.scalar(select(Unit).where(Unit.code == "110000"))
        told = session.scalars(select(InboxMessage).where(InboxMessage.unit_id == beijing.id)).all()
        assert [m.title for m in told] == ["推送阶段未批准,未发送:「7月征期提醒」政策提醒(2022-07-01)"]
        assert told[0].link == f"/push/campaigns/{cid}"
        skipped = session.scalars(select(AuditEntry).where(AuditEntry.action == "push.stage.skipped")).all()
        assert len(skipped) == 1 and skipped[0].object_id == str(cid)
        assert session.get(Campaign, cid).state == "active"


def test_an_approved_stage_is_sent_on_its_day_and_an_approval_can_be_withdrawn_before_it(
        policies, duck, store_file, add_users):
    db = policies
    add_users({"nat_officer": ("000000", ["service_officer"])})
    pid = _busiest_policy(db, duck)
    withdrawn, sent = _create(db, pid), _create(db, pid)
    approved, preview = approve(db, duck, withdrawn, "reminder", who="nat_officer", now=datetime(2022, 7, 5, 2))
    assert approved == preview.taxpayers > 0
    with db.read() as session:
        reminder = _stage(session, withdrawn, "reminder")
        assert (reminder.approved_by, reminder.approved_messages) == ("nat_officer", preview.messages)
        assert reminder.approved_unit_id == session.scalar(select(Unit.id).where(Unit.code == "000000"))
        state, words = schedule.stage_state(reminder, date(2022, 7, 5))
        assert state == "approved" and "nat_officer" in words and f"{approved} 户纳税人" in words
    with db.write() as session:  # withdrawn the day before: nothing goes out on the day
        schedule.withdraw_approval(session=session, actor=_actor(session, "nat_officer"), campaign_id=withdrawn,
                                   stage="reminder", now=datetime(2022, 7, 8, 2))
    approve(db, duck, sent, "last", who="nat_officer", now=datetime(2022, 7, 8, 2))
    with db.write() as session, pytest.raises(PushInvalid, match="已到发送日期,不能再撤回批准"):
        schedule.withdraw_approval(session=session, actor=_actor(session, "nat_officer"), campaign_id=sent,
                                   stage="last", now=datetime(2022, 7, 13, 1))
    duck.close()
    settings = _settings(store_file)
    assert jobs.plan_due_stages(db, settings, datetime(2022, 7, 11, 2))["执行推送阶段"] == 0
    with db.read() as session:
        assert _count(session, PushMessage) == 0
        assert schedule.stage_state(_stage(session, withdrawn, "reminder"), date(2022, 7, 11))[0] == "overdue"
    summary = jobs.plan_due_stages(db, settings, datetime(2022, 7, 13, 2))
    assert summary["执行推送阶段"] == 1
    with db.read() as session:
        last = _stage(session, sent, "last")
        assert last.planned_at is not None and last.messages == last.approved_messages
        assert _count(session, PushMessage) == _count(session, PushMessage, PushMessage.campaign_id == sent) == last.messages
        assert schedule.stage_state(last, date(2022, 7, 13))[0] == "sent"
        actions = list(session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "campaign", AuditEntry.object_id == str(sent)).order_by(AuditEntry.seq)))
    assert actions == ["push.campaign.created", "push.stage.approved", "push.stage.skipped", "push.stage.skipped",
                       "push.stage.planned"]


def test_a_stage_whose_audience_moved_beyond_the_margin_is_held_and_the_approver_told(
        policies, duck, store_file, add_users):
    db = policies
    add_users({"nat_officer": ("000000", ["service_officer"])})
    pid = _busiest_policy(db, duck)
    cid = _create(db, pid)
    approved, _ = approve(db, duck, cid, "last", who="nat_officer", now=datetime(2022, 7, 8, 2))
    with db.write() as session:  # the catalogue's rule narrowed after the approval (an update nobody previewed)
        policy = session.get(Policy, pid)
        policy.rule = f'({policy.rule}) and credit == "A"'
    duck.close()
    settings = _settings(store_file)
    summary = jobs.plan_due_stages(db, settings, datetime(2022, 7, 13, 2))
    assert (summary["执行推送阶段"], summary["对象变化暂停"]) == (0, 1)
    assert jobs.plan_due_stages(db, settings, datetime(2022, 7, 13, 3))["对象变化暂停"] == 0  # held once
    with db.read() as session:
        last = _stage(session, cid, "last")
        assert last.planned_at is None and last.held_at is not None
        assert f"由批准时的 {approved} 户变为" in last.held_reason and "超过允许的 10%" in last.held_reason
        state, words = schedule.stage_state(last, date(2022, 7, 13))
        assert state == "held" and words.startswith("已暂停(发送对象由批准时的")
        assert _count(session, PushMessage) == 0
        national = session.scalar(select(Unit).where(Unit.code == "000000"))
        told = session.scalars(select(InboxMessage).where(InboxMessage.unit_id == national.id)).all()
        assert len(told) == 1 and told[0].title.startswith("推送阶段已暂停:「7月征期提醒」截止前提醒")
        held = session.scalar(select(AuditEntry).where(AuditEntry.action == "push.stage.held"))
        assert held.object_id == str(cid)
    # a wider margin (the setting) lets the same change through
    with db.write() as session:
        stage = _stage(session, cid, "last")
        stage.held_at, stage.held_reason = None, ""
    summary = jobs.plan_due_stages(db, _settings(store_file, push_approval_margin=1.0), datetime(2022, 7, 13, 4))
    assert summary["执行推送阶段"] == 1


def test_refusals_are_clear_and_change_nothing(policies, duck, add_users, county):
    db = policies
    add_users({"bj_officer": ("110000", ["service_officer"]), "gd_officer": ("440000", ["service_officer"]),
               "bj_viewer": ("110000", ["viewer"]), "city_officer": ("110100", ["service_officer"])})
    pid = _busiest_policy(db, duck)
    cid = _create(db, pid)
    with db.read() as session:
        code = stages.preview_stage(session=session, conn=duck, actor=SYSTEM, campaign_id=cid, stage="reminder",
                                    configured=("inapp",), now=JULY_1).code

    def attempt(who, stage="reminder", now=JULY_1, the_code=None):
        with db.write() as session:
            schedule.approve_stage(session=session, conn=duck, actor=_actor(session, who), campaign_id=cid, stage=stage,
                                   code=the_code or code, configured=("inapp",), now=now)

    def snapshot():
        with db.read() as session:
            return (session.execute(select(CampaignStage.stage, CampaignStage.approved_at, CampaignStage.approved_by)
                                    .order_by(CampaignStage.id)).all(),
                    _count(session, AuditEntry, AuditEntry.action.like("push.stage.%")))

    before = snapshot()
    for who, error, words in (("bj_viewer", Forbidden, "无权管理推送活动"), ("gd_officer", Forbidden, None),
                              ("city_officer", Forbidden, None)):
        with pytest.raises(error, match=words):
            attempt(who)
    with pytest.raises(PushInvalid, match="日期已过,不能再批准按期发送"):
        attempt("bj_officer", now=datetime(2022, 7, 12, 2))
    with pytest.raises(PushInvalid, match="请重新预览后再批准"):
        attempt("bj_officer", the_code="0" * 12)
    with pytest.raises(PushInvalid, match="尚未批准"), db.write() as session:
        schedule.withdraw_approval(session=session, actor=SYSTEM, campaign_id=cid, stage="reminder", now=JULY_1)
    with db.write() as session:  # the policy's validity since ended before the period the campaign is about
        session.get(Policy, pid).effective_until = date(2022, 1, 31)
    with pytest.raises(PushInvalid, match="不能批准:"):
        attempt("bj_officer")
    with db.write() as session:
        session.get(Policy, pid).effective_until = None
        _stage(session, cid, "first").planned_at = datetime(2022, 7, 1, 3)
    with pytest.raises(PushInvalid, match="已于 2022-07-01 发送,不能批准"):
        attempt("bj_officer", stage="first")
    with db.write() as session:
        campaigns.cancel_campaign(session=session, actor=SYSTEM, campaign_id=cid)
    with pytest.raises(PushInvalid, match="推送活动已取消,不能批准"):
        attempt("bj_officer")
    after = snapshot()
    assert [row[1:] for row in after[0]] == [row[1:] for row in before[0]]
    assert after[1] == before[1]


def test_editing_a_campaign_withdraws_its_approvals(policies, duck):
    db = policies
    pid = _busiest_policy(db, duck)
    cid = _create(db, pid)
    approve_all(db, duck, cid)
    with db.write() as session:
        campaigns.edit_campaign(session=session, actor=SYSTEM, campaign_id=cid, name="7月征期提醒", policy_ids=[pid],
                                channels=["inapp"], audience='credit in ("A", "B")')
    with db.read() as session:
        assert all(s.approved_at is None for s in campaigns.stages_of(session, session.get(Campaign, cid)))
        assert _count(session, AuditEntry, AuditEntry.action == "push.stage.withdrawn") == 3
