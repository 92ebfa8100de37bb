"""Refused forms are shown again, never a dead end (issue 14, item 5): each test posts a wrong value over HTTP and
finds the page again with the message beside the field, what was typed kept, and nothing changed."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import httpx
from sqlalchemy import func, select

from chunfeng.appeals.models import Appeal, AppealEvent
from chunfeng.consult.models import Handoff, KbEntry
from chunfeng.credit.models import Violator
from chunfeng.inbox.models import Channel
from chunfeng.ledger.models import Assignment, NoticeMessage, SupervisionNotice
from chunfeng.org.models import AuditEntry, User
from tests.conftest import csrf_from, login
from tests.consult.test_services import kb  # noqa: F401  (the fixture)
from tests.credit.test_services import A as CREDIT_CODE
from tests.web.test_appeals_pages import file_complaint, office  # noqa: F401  (the fixture)
from tests.web.test_credit_pages import site  # noqa: F401  (the fixture)
from tests.web.test_ledger_pages import DEADLINE, make_chain
from tests.web.test_review_queue_pages import field_error


def form_of(page: str, action: str) -> str:
    return page.split(f'action="{action}"', 1)[1].split("</form>", 1)[0]


def value_of(form: str, name: str) -> str:
    found = re.search(rf'<input name="{name}" value="([^"]*)"', form) or re.search(rf'name="{name}"[^>]* value="([^"]*)"', form)
    return html.unescape(found[1]) if found else ""


def filed(db, server) -> int:
    file_complaint(server)
    with db.read() as s:
        return s.scalar(select(Appeal.id))


def appeal_state(db, appeal_id: int) -> tuple:
    with db.read() as s:
        a = s.get(Appeal, appeal_id)
        events = s.scalar(select(func.count()).select_from(AppealEvent).where(AppealEvent.appeal_id == appeal_id))
        return a.unit_id, a.measures, a.state, a.reply, events


def test_reassigning_to_a_mistyped_unit_shows_the_page_again(office, server):  # noqa: F811
    appeal_id = filed(office, server)
    before = appeal_state(office, appeal_id)
    handler = login(server, "handler")
    token = csrf_from(handler.get(f"/appeals/{appeal_id}").text)
    page = handler.post(f"/appeals/{appeal_id}/override",
                        data={"csrf_token": token, "unit_code": "11O100", "measures": "53, 54"})
    assert page.status_code == 404 and "回到首页" not in page.text
    assert field_error(page.text, "unit_code") == "没有代码为“11O100”的单位"
    override = form_of(page.text, f"/appeals/{appeal_id}/override")
    assert value_of(override, "unit_code") == "11O100" and value_of(override, "measures") == "53, 54"
    assert "出口退税慢" in page.text  # the item's page, not an error page
    for measures, message in (("53, x", "措施编号“53, x”应为数字"), ("999", "没有这些措施:999")):
        bad = handler.post(f"/appeals/{appeal_id}/override",
                           data={"csrf_token": token, "unit_code": "110101", "measures": measures})
        assert bad.status_code == 400 and message in field_error(bad.text, "measures")
        assert value_of(form_of(bad.text, f"/appeals/{appeal_id}/override"), "unit_code") == "110101"
    assert appeal_state(office, appeal_id) == before
    moved = handler.post(f"/appeals/{appeal_id}/override", data={"csrf_token": token, "unit_code": "110101"})
    assert moved.status_code == 303


def test_reassigning_outside_the_subtree_is_refused_beside_the_field_and_recorded(office, server):  # noqa: F811
    appeal_id = filed(office, server)
    before = appeal_state(office, appeal_id)
    handler = login(server, "handler")
    token = csrf_from(handler.get(f"/appeals/{appeal_id}").text)
    page = handler.post(f"/appeals/{appeal_id}/override", data={"csrf_token": token, "unit_code": "440000"})
    assert page.status_code == 403 and field_error(page.text, "unit_code")
    assert value_of(form_of(page.text, f"/appeals/{appeal_id}/override"), "unit_code") == "440000"
    assert appeal_state(office, appeal_id) == before
    with office.read() as s:
        denied = s.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied", AuditEntry.actor == "handler")).all()
        assert [e.object_id for e in denied] == [f"POST /appeals/{appeal_id}/override"]
    # An item the official may not handle at all stays the error page.
    other = login(server, "gd_handler")
    assert other.post(f"/appeals/{appeal_id}/override",
                      data={"csrf_token": csrf_from(other.get("/appeals").text), "unit_code": "11O100"}).status_code == 403


def test_an_empty_reply_is_refused_beside_the_text(office, server):  # noqa: F811
    appeal_id = filed(office, server)
    handler = login(server, "handler")
    token = csrf_from(handler.get(f"/appeals/{appeal_id}").text)
    for action in ("accept", "start"):
        assert handler.post(f"/appeals/{appeal_id}/act", data={"csrf_token": token, "action": action}).status_code == 303
    before = appeal_state(office, appeal_id)
    page = handler.post(f"/appeals/{appeal_id}/act", data={"csrf_token": token, "action": "reply", "note": "   "})
    assert page.status_code == 400 and field_error(page.text, "note") == "请填写答复内容"
    assert 'name="action" value="reply"' in page.text and "出口退税慢" in page.text
    assert appeal_state(office, appeal_id) == before


def notices(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(SupervisionNotice))


def test_a_refused_notice_keeps_its_text(bureau, server):
    _, _, county = make_chain(bureau)
    city = login(server, "city_office")
    token = csrf_from(city.get(f"/ledger/assignments/{county}").text)
    typed = {"csrf_token": token, "subject": "进度滞后", "text": "请说明第54条进度滞后的原因<b>及措施</b>",
             "respond_by": "2026-02-30"}
    page = city.post(f"/ledger/assignments/{county}/notices", data=typed)
    assert page.status_code == 400 and "2026-02-30" in field_error(page.text, "respond_by")
    form = form_of(page.text, f"/ledger/assignments/{county}/notices")
    assert value_of(form, "subject") == "进度滞后" and value_of(form, "respond_by") == "2026-02-30"
    assert "请说明第54条进度滞后的原因&lt;b&gt;及措施&lt;/b&gt;</textarea>" in form
    nameless = city.post(f"/ledger/assignments/{county}/notices",
                           data={**typed, "subject": " ", "respond_by": (date.today() + timedelta(days=5)).isoformat()})
    assert nameless.status_code == 400 and field_error(nameless.text, "subject") == "请填写督办单的标题"
    assert "请说明第54条进度滞后的原因" in form_of(nameless.text, f"/ledger/assignments/{county}/notices")
    today = city.post(f"/ledger/assignments/{county}/notices", data={**typed, "respond_by": date.today().isoformat()})
    assert today.status_code == 400 and "应晚于今天" in field_error(today.text, "respond_by")
    assert notices(bureau) == 0


def test_a_refused_deadline_is_shown_beside_the_field(bureau, server):
    _, _, county = make_chain(bureau)
    city = login(server, "city_office")
    token = csrf_from(city.get(f"/ledger/assignments/{county}").text)
    late = (DEADLINE + timedelta(days=30)).isoformat()
    for typed, message in ((late, "不能晚于上级任务的时限"), ("2026-13-01", "2026-13-01"), ("", "请填写新的完成时限")):
        page = city.post(f"/ledger/assignments/{county}/deadline", data={"csrf_token": token, "deadline": typed})
        assert page.status_code == 400 and message in field_error(page.text, "deadline"), typed
        assert value_of(form_of(page.text, f"/ledger/assignments/{county}/deadline"), "deadline") == typed
    with bureau.read() as s:
        assert s.get(Assignment, county).deadline == DEADLINE


def test_an_empty_answer_to_a_notice_is_refused_beside_the_text(bureau, server):
    _, _, county = make_chain(bureau)
    city = login(server, "city_office")
    sent = city.post(f"/ledger/assignments/{county}/notices",
                       data={"csrf_token": csrf_from(city.get(f"/ledger/assignments/{county}").text),
                             "subject": "进度滞后", "text": "请说明原因",
                             "respond_by": (date.today() + timedelta(days=5)).isoformat()})
    notice_url = sent.headers["location"]
    reporter = login(server, "county_reporter")
    page = reporter.post(f"{notice_url}/answer", data={"csrf_token": csrf_from(reporter.get(notice_url).text),
                                                       "text": " \n "})
    assert page.status_code == 400 and field_error(page.text, "text") == "答复内容不能为空"
    assert "提交答复" in page.text and "请说明原因" in page.text
    with bureau.read() as s:
        assert s.scalar(select(SupervisionNotice.state)) == "open"
        assert s.scalar(select(func.count()).select_from(NoticeMessage)) == 1


def test_an_empty_reminder_sends_the_text_its_field_shows(bureau, server):
    """Not refused: the field says it may stay empty and shows, as its placeholder, the sentence then sent."""
    _, _, county = make_chain(bureau)
    city = login(server, "city_office")
    page = city.get(f"/ledger/assignments/{county}").text
    reminder = form_of(page, f"/ledger/assignments/{county}/remind")
    assert "可不填" in reminder and 'placeholder="请抓紧推进第 54 条措施并按期报告进展。"' in reminder
    assert city.post(f"/ledger/assignments/{county}/remind", data={"csrf_token": csrf_from(page), "text": ""}
                       ).status_code == 303
    assert "请抓紧推进第 54 条措施并按期报告进展。" in login(server, "county_reporter").get("/inbox").text


def test_an_empty_agent_answer_keeps_the_queue_and_the_typed_answer(kb, server):  # noqa: F811
    asked = httpx.get(f"{server}/api/consult", params={"q": "我家小狗的疫苗怎么打"}, timeout=60).json()
    httpx.post(f"{server}/api/consult/handoff", json={"query_id": asked["query_id"], "token": asked["token"]}, timeout=60)
    agent = login(server, "agent")
    queue = agent.get("/consult/queue").text
    with kb.read() as s:
        handoff_id = s.scalar(select(Handoff.id))
    page = agent.post(f"/consult/handoffs/{handoff_id}/answer",
                      data={"csrf_token": csrf_from(queue), "answer": "  ", "page": "1"})
    assert page.status_code == 400 and field_error(page.text, "answer") == "答复内容不能为空"
    assert "我家小狗的疫苗怎么打" in page.text
    long = "请咨询动物防疫机构。" * 1000
    page = agent.post(f"/consult/handoffs/{handoff_id}/answer", data={"csrf_token": csrf_from(queue), "answer": long})
    assert page.status_code == 400 and "答复" in field_error(page.text, "answer") and long in page.text
    with kb.read() as s:
        assert s.scalar(select(Handoff.state)) == "waiting"


def test_a_refused_knowledge_entry_keeps_what_was_typed(kb, server):  # noqa: F811
    agent = login(server, "agent")
    token = csrf_from(agent.get("/consult/kb/new").text)
    typed = {"csrf_token": token, "question": "个体工商户如何申报经营所得", "answer": "", "basis": "个人所得税法",
             "region": "national", "status": "published", "effective_from": "2024-01-01"}
    page = agent.post("/consult/kb", data=typed)
    assert page.status_code == 400 and field_error(page.text, "answer") == "答案为空"
    form = form_of(page.text, "/consult/kb")
    assert value_of(form, "question") == typed["question"] and value_of(form, "basis") == "个人所得税法"
    assert value_of(form, "effective_from") == "2024-01-01"
    bad_day = agent.post("/consult/kb", data={**typed, "answer": "按年汇算", "effective_from": "2024-02-30"})
    assert bad_day.status_code == 400 and "2024-02-30" in field_error(bad_day.text, "effective_from")
    assert "按年汇算</textarea>" in bad_day.text
    with kb.read() as s:
        assert s.scalar(select(func.count()).select_from(KbEntry)) == 2


def test_a_refused_violator_entry_keeps_the_form(site, server):  # noqa: F811
    county = login(server, "county_officer")
    token = csrf_from(county.get("/credit/violators/manage").text)
    typed = {"csrf_token": token, "credit_code": CREDIT_CODE, "name": "甲公司", "unit_code": "110101",
             "case_nature": "偷税", "facts": "少缴税款两百万元", "amount_unpaid": "2000000", "amount_penalty": "1000000",
             "published_on": str(date.today() - timedelta(days=3)), "off_on": str(date.today() + timedelta(days=9))}
    for change, field, message in (({"off_on": "2026-02-30"}, "off_on", "2026-02-30"),
                                   ({"amount_unpaid": "两百万"}, "amount_unpaid", "不是金额"),
                                   ({"unit_code": "11O101"}, "unit_code", "没有代码为“11O101”的单位"),
                                   ({"name": " "}, "name", "失信主体名称不能为空")):
        page = county.post("/credit/violators", data={**typed, **change})
        assert page.status_code in (400, 404) and message in field_error(page.text, field), change
        form = form_of(page.text, "/credit/violators")
        assert "少缴税款两百万元</textarea>" in form and value_of(form, field) == change[field]
    outside = county.post("/credit/violators", data={**typed, "unit_code": "110102"})
    assert outside.status_code == 403 and field_error(outside.text, "unit_code")
    with site.read() as s:
        assert s.scalar(select(func.count()).select_from(Violator)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.outcome == "denied")) == 1


def test_a_refused_new_user_and_channel_keep_the_unit_page_and_the_names(db, server, add_users, county):
    add_users({"bjadmin": ("110000", ["admin"])})
    admin = login(server, "bjadmin")
    token = csrf_from(admin.get(f"/org/units/{county}").text)
    page = admin.post(f"/org/units/{county}/users", data={"csrf_token": token, "username": "x y",
                                                          "display_name": "新同事", "password": "short"})
    assert page.status_code == 400 and "未创建用户" in page.text and "不合规" in page.text
    form = form_of(page.text, f"/org/units/{county}/users")
    assert value_of(form, "username") == "x y" and value_of(form, "display_name") == "新同事"
    assert "short" not in form  # a password is never sent back
    email = {"csrf_token": token, "unit": county, "kind": "email", "host": "smtp.example.gov.cn", "port": "99999",
             "smtp_user": "office", "password": "pw-secret", "to": "office@example.gov.cn", "label": "办公室邮箱"}
    page = admin.post("/inbox/channels", data=email)
    assert page.status_code == 400 and "SMTP 端口“99999”" in page.text
    form = page.text.split('id="channel-email"', 1)[1].split("</form>", 1)[0]
    assert "未添加" in form and value_of(form, "host") == "smtp.example.gov.cn" and value_of(form, "label") == "办公室邮箱"
    assert "pw-secret" not in page.text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.username == "x y")) == 0
        assert s.scalar(select(func.count()).select_from(Channel)) == 0


def test_the_submitters_rating_and_reopening_are_refused_on_the_tracking_page(office, server):  # noqa: F811
    client, sent = file_complaint(server)
    track = sent.headers["location"].split("?")[0]
    with office.read() as s:
        appeal_id = s.scalar(select(Appeal.id))
    handler = login(server, "handler")
    token = csrf_from(handler.get(f"/appeals/{appeal_id}").text)
    for action, note in (("accept", ""), ("start", ""), ("reply", "已督促审核")):
        handler.post(f"/appeals/{appeal_id}/act", data={"csrf_token": token, "action": action, "note": note})
    before = appeal_state(office, appeal_id)
    ctoken = csrf_from(client.get(track).text)
    for rating in ("", "9"):
        page = client.post(f"{track}/rate", data={"csrf_token": ctoken, "rating": rating, "comment": "还要再等"})
        assert page.status_code == 400 and field_error(page.text, "rating") == "评价应为 1 到 5 分", rating
        assert value_of(form_of(page.text, f"{track}/rate"), "comment") == "还要再等"
    page = client.post(f"{track}/reopen", data={"csrf_token": ctoken, "reason": "  "})
    assert page.status_code == 400 and field_error(page.text, "reason") == "请说明不满意的原因"
    assert "已督促审核" in page.text
    assert appeal_state(office, appeal_id) == before


def test_a_refused_early_removal_keeps_the_register_and_the_note(site, server):  # noqa: F811
    county = login(server, "county_officer")
    token = csrf_from(county.get("/credit/violators/manage").text)
    assert county.post("/credit/violators", data={
        "csrf_token": token, "credit_code": CREDIT_CODE, "name": "甲公司", "unit_code": "110101", "case_nature": "偷税",
        "published_on": str(date.today() - timedelta(days=3)), "off_on": str(date.today() + timedelta(days=9))}
    ).status_code == 303
    with site.read() as s:
        entry_id = s.scalar(select(Violator.id))
    page = county.post(f"/credit/violators/{entry_id}/remove", data={"csrf_token": token, "reason": "repaired",
                                                                     "note": " "})
    assert page.status_code == 400 and "请写明提前撤出的依据" in field_error(page.text, "note")
    assert "甲公司" in page.text
    page = county.post(f"/credit/violators/{entry_id}/remove", data={"csrf_token": token, "reason": "expired",
                                                                     "note": "修复决定书 3 号"})
    assert page.status_code == 400 and "提前撤出的原因" in field_error(page.text, "reason")
    assert value_of(form_of(page.text, f"/credit/violators/{entry_id}/remove"), "note") == "修复决定书 3 号"
    with site.read() as s:
        assert s.scalar(select(Violator.removed_on)) is None


def test_a_handoff_with_a_malformed_phone_keeps_the_queue_and_the_agents_note(office, server):  # noqa: F811
    from chunfeng.consult import services as consult
    with office.write() as s:
        asked = consult.ask(session=s, query="我家小狗的疫苗怎么打", region="110000")
        consult.request_handoff(session=s, query_id=asked.query_id, token=asked.token)
        handoff_id = s.scalar(select(Handoff.id))
    agent = login(server, "agent")
    typed = {"csrf_token": csrf_from(agent.get("/consult/queue").text), "phone": "1390000", "note": "来电人很着急,下午再来电"}
    page = agent.post(f"/consult/handoffs/{handoff_id}/demand", data=typed)
    assert page.status_code == 400 and "回到首页" not in page.text
    assert field_error(page.text, "phone") == "电话“1390000”格式不对"
    form = form_of(page.text, f"/consult/handoffs/{handoff_id}/demand")
    assert value_of(form, "phone") == "1390000" and value_of(form, "note") == typed["note"]
    assert "我家小狗的疫苗怎么打" in page.text  # the queue, not an error page
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0 and s.scalar(select(Handoff.state)) == "waiting"
    made = agent.post(f"/consult/handoffs/{handoff_id}/demand", data={**typed, "phone": "13900003333"})
    assert made.status_code == 303


def appeal_count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Appeal))


def test_the_complaint_forms_show_each_problem_beside_its_field(office, server):  # noqa: F811
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    typed = {"csrf_token": csrf_from(public.get("/appeals/new").text), "kind": "complaint", "title": "出口退税慢",
             "text": "", "region": "110101", "submitter": "张三", "phone": "1381234", "email": "zhang@",
             "topic": "出口退税"}
    page = public.post("/appeals/new", data=typed)
    assert page.status_code == 400
    assert field_error(page.text, "phone") == "电话“1381234”格式不对"
    assert field_error(page.text, "email") == "电子邮箱“zhang@”格式不对"
    assert field_error(page.text, "text") == "请填写内容"
    summary = page.text.split('role="alert"', 1)[1].split("</div>", 1)[0]  # all of them at the top, read out first
    assert "未能提交" in summary and "电话“1381234”格式不对" in summary and "请填写内容" in summary
    form = form_of(page.text, "/appeals/new")
    assert value_of(form, "title") == "出口退税慢" and value_of(form, "submitter") == "张三"
    assert value_of(form, "phone") == "1381234" and 'value="110101" selected' in form
    assert 'name="phone" value="1381234" inputmode="tel" aria-invalid="true"' in form
    handler = login(server, "handler")
    entered = handler.post("/appeals/enter", data={**typed, "csrf_token": csrf_from(handler.get("/appeals/enter").text),
                                                   "text": "办税服务厅排队太久", "region": "12345"})
    assert entered.status_code == 400
    assert field_error(entered.text, "region") == "地区代码“12345”应为 6 位行政区划代码"
    assert field_error(entered.text, "phone") == "电话“1381234”格式不对" and "未能录入" in entered.text
    assert "办税服务厅排队太久</textarea>" in form_of(entered.text, "/appeals/enter")
    api = httpx.post(f"{server}/api/appeals", json={"kind": "demand", "text": "希望周末开放", "phone": "1381234",
                                                    "email": "zhang@"}, timeout=30)
    assert api.status_code == 400 and "电话“1381234”格式不对" in api.json()["detail"]
    assert api.json()["fields"] == {"phone": "电话“1381234”格式不对", "email": "电子邮箱“zhang@”格式不对"}
    assert appeal_count(office) == 0


def test_a_word_in_a_number_field_names_the_field_and_the_way_back(office, server, tmp_path, add_users):  # noqa: F811
    from chunfeng.ledger.models import Assignment as _Assignment
    from chunfeng.push.models import Campaign
    from tests.web.test_survey_pages import published
    add_users({"county_officer": ("110101", ["service_officer"]), "bj_office": ("110000", ["action_office"]),
               "bj_officer": ("110000", ["service_officer"])})
    _, survey_id, _ = published(server, tmp_path)
    client = login(server, "bj_office")
    form = {"csrf_token": csrf_from(client.get(f"/survey/{survey_id}/results").text), "text": "排队时间长",
            "measure_no": "五十四", "unit_code": "110101", "deadline": "2026-12-30", "question_code": "Q2"}
    page = client.post(f"/survey/{survey_id}/findings", data=form)  # the results page, the finding as typed
    assert page.status_code == 400 and field_error(page.text, "measure_no") == "措施序号“五十四”无效,应为整数"
    typed = form_of(page.text, f"/survey/{survey_id}/findings")
    assert value_of(typed, "measure_no") == "五十四" and "排队时间长</textarea>" in typed
    officer = login(server, "bj_officer")
    campaigns = f"{server}/push/campaigns"
    token = csrf_from(officer.get("/push/campaigns").text)
    bill = officer.post("/push/bills/send", data={"csrf_token": token, "year": "去年"}, headers={"referer": campaigns})
    assert bill.status_code == 400 and "“年度”应为数字,而不是“去年”" in bill.text
    assert '<a href="/push/campaigns">返回填写页面</a>' in bill.text
    made = officer.post("/push/campaigns", data={"csrf_token": token, "name": "提醒", "month": "2026-11",
                                                 "reminder_day": "十号"}, headers={"referer": "https://elsewhere.example/x"})
    assert made.status_code == 400 and "“申报提醒日”应为数字" in made.text and "返回填写页面" not in made.text
    api = officer.post("/push/bills/send", data={"csrf_token": token, "year": "去年"}, headers={"accept": "application/json"})
    assert api.status_code == 400 and api.json() == {"detail": "参数无效:year"}  # JSON answers as before
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(_Assignment)) == 0
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0
