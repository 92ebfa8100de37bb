"""Approving a campaign's stage for its day over HTTP (issue 14.6): the campaign page's state per stage (未批准,
已批准, 已暂停, 待批准·已到期, 已发送), approval from the stage's preview, withdrawal, and every refusal a 4xx with a
Chinese message that changes nothing."""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import func, select

from chunfeng.org.models import AuditEntry
from chunfeng.push import schedule, store
from chunfeng.push.models import CampaignStage, Policy
from chunfeng.workdays import CalendarYear
from tests.conftest import csrf_from, login
from tests.push.test_campaigns import _valid_in
from tests.push.test_schedule import approve
from tests.web.test_push_pages import site, taxpayer_store  # noqa: F401  (the fixtures)

NEXT_YEAR = date.today().year + 1


def next_january(db) -> str:
    """Next January's calendar as if imported (test data: the real year comes from `chunfeng calendar import`), and
    a policy in force for what that month files: a campaign whose stages are all ahead of today."""
    with db.write() as session:
        session.add(CalendarYear(year=NEXT_YEAR, holidays=[f"{NEXT_YEAR}-01-01"], makeup_days=[], deadlines={},
                                 source="测试数据(非正式安排)"))
        return next(p.id for p in session.scalars(select(Policy).order_by(Policy.id)) if _valid_in(p, NEXT_YEAR, 1))


def create(client, month: str, policy: str) -> str:
    page = client.get("/push/campaigns").text
    made = client.post("/push/campaigns", data={"csrf_token": csrf_from(page), "name": f"{month} 征期提醒",
                                                "month": month, "policies": [policy], "channels": ["inapp"]})
    assert made.status_code == 303, made.text[-800:]
    return made.headers["location"].split("?")[0]


def state_of(page: str, stage: str) -> str:
    row = re.search(rf'<tr id="stage-{stage}">.*?</tr>', page, re.S)[0]
    return re.sub(r"\s+", " ", re.search(r'class="stage-state[^"]*">(.*?)</td>', row, re.S)[1]).strip()


def approval_form(client, url: str, stage: str) -> dict:
    preview = client.get(f"{url}/preview?stage={stage}")
    assert preview.status_code == 200, preview.text[-800:]
    form = re.search(r'<form method="post" action="([^"]+)" class="review-form" id="approve-form">(.*?)</form>',
                     preview.text, re.S)
    fields = dict(re.findall(r'name="(code|csrf_token)" value="([^"]*)"', form[2]))
    taxpayers = int(re.search(r'id="preview-taxpayers">(\d+) 户', preview.text)[1])
    return {"action": form[1], "data": fields, "taxpayers": taxpayers}


def _approvals(db):
    with db.read() as session:
        return (session.execute(select(CampaignStage.id, CampaignStage.approved_at, CampaignStage.held_at)
                                .order_by(CampaignStage.id)).all(),
                session.scalar(select(func.count()).select_from(AuditEntry).where(
                    AuditEntry.action.in_(["push.stage.approved", "push.stage.withdrawn"]))))


def test_a_stage_is_approved_from_its_preview_and_withdrawn(site, server):  # noqa: F811
    db = site["db"]
    policy = next_january(db)
    bj = login(server, "bj_officer")
    url = create(bj, f"{NEXT_YEAR}-01", policy)
    page = bj.get(url).text
    assert 'id="approval-rule"' in page and "相差超过 10%" in page
    assert {state_of(page, s) for s in ("first", "reminder", "last")} == {"未批准"}
    assert f'href="{url}/preview?stage=reminder"' in page

    form = approval_form(bj, url, "reminder")
    assert form["action"] == f"{url}/stages/reminder/approve"
    wrong = bj.post(form["action"], data=form["data"] | {"code": "0" * 12})
    assert wrong.status_code == 400 and "请重新预览后再批准" in wrong.text
    done = bj.post(form["action"], data=form["data"])
    assert done.status_code == 303 and done.headers["location"].endswith("?approved=reminder")
    page = bj.get(done.headers["location"]).text
    assert "已批准申报提醒按期发送" in page
    shown = state_of(page, "reminder")
    assert shown.startswith("已批准(bj_officer,") and f"{form['taxpayers']} 户纳税人" in shown
    with db.read() as session:
        stage = session.scalar(select(CampaignStage).where(CampaignStage.stage == "reminder"))
        assert (stage.approved_by, stage.approved_taxpayers) == ("bj_officer", form["taxpayers"])

    before = _approvals(db)
    token = csrf_from(page)
    for who, words in (("gd_officer", "不在您所在单位"), ("viewer", "批准推送阶段按期发送")):
        other = login(server, who)
        refused = other.post(form["action"], data={"csrf_token": csrf_from(other.get("/push/policies").text), "code": "x"})
        assert refused.status_code == 403 and words in refused.text, (who, refused.status_code)
        withdrawn = other.post(f"{url}/stages/reminder/withdraw", data={"csrf_token": csrf_from(other.get("/push/policies").text)})
        assert withdrawn.status_code == 403
    assert bj.post(form["action"], data={"csrf_token": token}).status_code == 400  # no preview, no approval
    assert bj.post(f"{url}/stages/bill/approve", data={"csrf_token": token, "code": "x"}).status_code == 400
    missing = bj.post(f"{url}/stages/first/withdraw", data={"csrf_token": token})
    assert missing.status_code == 400 and "尚未批准" in missing.text
    assert _approvals(db) == before

    withdrawn = bj.post(f"{url}/stages/reminder/withdraw", data={"csrf_token": token})
    assert withdrawn.status_code == 303
    page = bj.get(withdrawn.headers["location"]).text
    assert "已撤回申报提醒的批准" in page and state_of(page, "reminder") == "未批准"
    with db.read() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("push.stage.%")).order_by(AuditEntry.seq)))
    assert actions == ["push.stage.approved", "push.stage.withdrawn"]


def test_past_held_overdue_and_sent_stages_show_their_state_and_refuse_approval(site, server):  # noqa: F811
    db = site["db"]
    bj = login(server, "bj_officer")
    url = create(bj, "2022-07", "XGM-VAT-2021")
    cid = int(url.rsplit("/", 1)[1])
    with store.connect_store(site["store"]) as conn:
        approve(db, conn, cid, "first")
        approve(db, conn, cid, "last", now=datetime(2022, 7, 8, 2))
    with store.connect_store(site["store"]) as conn:  # the schedule on each day of the period
        for day in (1, 11, 13):
            if day == 11:  # the rule narrowed after the approval of the last reminder
                with db.write() as session:
                    policy = session.get(Policy, "XGM-VAT-2021")
                    policy.rule = f'({policy.rule}) and credit == "A"'
            schedule.run_due(db, conn, today=date(2022, 7, day), now=datetime(2022, 7, day, 2))
    page = bj.get(url).text
    assert state_of(page, "first").startswith("已发送(")
    assert state_of(page, "reminder") == "待批准·已到期"
    assert state_of(page, "last").startswith("已暂停(发送对象由批准时的")
    inbox = bj.get("/inbox").text
    # the held stage's approver (the operator, acting for no unit) is told at the campaign's own unit
    assert "推送阶段未批准,未发送" in inbox and "推送阶段已暂停" in inbox
    assert f'href="{url}/preview?stage=' not in page  # every day is past: nothing left to approve
    before = _approvals(db)
    token = csrf_from(page)
    for stage, words in (("reminder", "日期已过,不能再批准按期发送"), ("first", "已于 2022-07-01 发送,不能批准")):
        refused = bj.post(f"{url}/stages/{stage}/approve", data={"csrf_token": token, "code": "x"})
        assert refused.status_code == 400 and words in refused.text, refused.text[-600:]
    assert bj.post(f"{url}/cancel", data={"csrf_token": token}).status_code == 303
    ended = bj.post(f"{url}/stages/reminder/approve", data={"csrf_token": token, "code": "x"})
    assert ended.status_code == 400 and "推送活动已取消,不能批准" in ended.text
    assert _approvals(db) == before
