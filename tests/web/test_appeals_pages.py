"""Demands and complaints over HTTP: the public form and API, tracking, rating, the officials' pages with
masked contacts, the measure page's links, the 12366 hand-off, refusals."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select

from chunfeng.appeals.models import Appeal
from chunfeng.consult import services as consult
from chunfeng.org.models import AuditEntry
from tests.conftest import csrf_from, login

FORM = {"kind": "complaint", "title": "出口退税慢", "text": "出口退税申报后等了十几个工作日还没有到账,希望加快",
        "region": "110101", "submitter": "张三", "phone": "13812345678", "topic": "出口退税"}


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"handler": ("110000", ["service_officer"]), "viewer": ("110000", ["viewer"]),
               "agent": ("000000", ["agent"]), "gd_handler": ("440000", ["service_officer"])})
    return with_plan


def file_complaint(server, **changes) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(client.get("/appeals/new").text)
    return client, client.post("/appeals/new", data={**FORM, **changes, "csrf_token": token})


def test_public_form_tracking_and_refusals(office, server):
    client, sent = file_complaint(server)
    assert sent.status_code == 303 and "/appeals/track/" in sent.headers["location"]
    page = client.get(sent.headers["location"]).text
    assert re.search(r'id="number">\d{14}<', page) and "已接收" in page
    _, missing = file_complaint(server, phone="")
    assert missing.status_code == 400 and "电话或电子邮箱" in missing.text
    with httpx.Client(base_url=server) as anonymous:
        assert anonymous.post("/appeals/new", data=FORM).status_code == 403  # no CSRF token
        assert anonymous.get("/appeals/track/not-a-token").status_code == 404
        assert anonymous.get("/appeals").status_code in (303, 401)
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 1


def test_json_api(office, server):
    with httpx.Client(base_url=server) as api:
        made = api.post("/api/appeals", json={"kind": "demand", "text": "希望办税服务厅周末开放", "phone": "13900001111",
                                              "region": "440300"})
        assert made.status_code == 201
        body = made.json()
        assert body["unit"] == "440300" and body["state"] == "received" and set(body["due"]) == {"accept", "reply", "close"}
        assert api.get(f"/appeals/track/{body['token']}").status_code == 200
        bad = api.post("/api/appeals", json={"kind": "demand", "text": "没有联系方式"})
        assert bad.status_code == 400 and "电话或电子邮箱" in bad.json()["detail"]
        assert api.post("/api/appeals", json={"text": "缺类型"}).status_code == 400
    handler = login(server, "handler")  # with a session cookie, the API needs the CSRF header like any form
    assert handler.post("/api/appeals", json={"kind": "demand", "text": "x", "phone": "13900001111"}).status_code == 403


def test_officials_handle_with_masked_contacts_and_the_submitter_rates(office, server):
    client, sent = file_complaint(server)
    track = sent.headers["location"].split("?")[0]
    with office.read() as s:
        appeal_id = s.scalar(select(Appeal.id))
    viewer = login(server, "viewer")
    page = viewer.get(f"/appeals/{appeal_id}").text
    assert "138****5678" in page and "13812345678" not in page and "查看完整联系方式" not in page
    assert viewer.post(f"/appeals/{appeal_id}/contact", data={"csrf_token": csrf_from(page)}).status_code == 403  # not a role that needs it
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "appeals.contact.viewed")) == 0
    handler = login(server, "handler")
    page = handler.get(f"/appeals/{appeal_id}").text
    assert "138****5678" in page and "查看完整联系方式" in page and "第54条" in page
    full = handler.post(f"/appeals/{appeal_id}/contact", data={"csrf_token": csrf_from(page)}).text
    assert "13812345678" in full
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "appeals.contact.viewed")) == 1
    token = csrf_from(page)
    for action, note in (("accept", ""), ("start", ""), ("reply", "已督促审核,款项三日内到账。")):
        assert handler.post(f"/appeals/{appeal_id}/act", data={"action": action, "note": note, "csrf_token": token}
                            ).status_code == 303
    wrong = handler.post(f"/appeals/{appeal_id}/act", data={"action": "accept", "csrf_token": token})
    assert wrong.status_code == 400 and "不能受理" in wrong.text
    assert login(server, "gd_handler").get(f"/appeals/{appeal_id}").status_code == 403
    assert viewer.post(f"/appeals/{appeal_id}/act", data={"action": "close", "csrf_token": token}).status_code == 403
    tracked = client.get(track).text
    assert "已督促审核" in tracked and "提交评价" in tracked
    assert client.post(track + "/rate", data={"rating": "5", "csrf_token": csrf_from(tracked)}).status_code == 303
    assert "已办结" in client.get(track).text
    listing = handler.get("/appeals", params={"state": "closed"}).text
    assert "出口退税慢" in listing
    measure = handler.get("/plan/measures/54").text
    assert "关联的诉求与投诉" in measure and "出口退税慢" in measure


def test_agent_turns_a_handoff_into_a_demand(office, server):
    with office.write() as s:
        asked = consult.ask(session=s, query="我家小狗的疫苗怎么打", region="110000")
        consult.request_handoff(session=s, query_id=asked.query_id, token=asked.token)
    agent = login(server, "agent")
    queue = agent.get("/consult/queue").text
    handoff_id = re.search(r'/consult/handoffs/(\d+)/demand', queue)[1]
    made = agent.post(f"/consult/handoffs/{handoff_id}/demand", data={"csrf_token": csrf_from(queue),
                                                                      "phone": "13900003333", "note": "来电人很着急"})
    assert made.status_code == 303
    again = agent.post(f"/consult/handoffs/{handoff_id}/demand", data={"csrf_token": csrf_from(queue), "phone": "13900003333"})
    assert again.status_code == 400 and "已经转为诉求" in again.text
    with office.read() as s:
        a = s.scalar(select(Appeal))
        assert (a.channel, a.kind, a.handoff_id) == ("consult", "demand", int(handoff_id)) and "来电人很着急" in a.text


def test_analysis_page_xlsx_and_pdf(office, server):
    for n in range(3):
        file_complaint(server, text=f"办税服务厅排队时间太长了,等了两个小时{'!' * n}")
    handler = login(server, "handler")
    page = handler.get("/appeals/analysis")
    assert page.status_code == 200 and "服务投诉和舆情分析报告" in page.text and "<svg" in page.text
    assert "排队" in page.text  # the recurring issue found by clustering
    xlsx = handler.get("/appeals/analysis", params={"format": "xlsx"})
    assert xlsx.content.startswith(b"PK")
    pdf = handler.get("/appeals/analysis", params={"format": "pdf"})
    assert pdf.content.startswith(b"%PDF")
    assert handler.get("/appeals/analysis", params={"start": "2022-13-01"}).status_code == 400
    assert login(server, "viewer").get("/appeals/analysis").status_code == 403
    assert handler.get("/appeals/analysis", params={"unit": "440000"}).status_code == 403


def test_officials_enter_opinion_items_and_read_attachments(office, server):
    handler = login(server, "handler")
    form = handler.get("/appeals/enter").text
    made = handler.post("/appeals/enter", data={"csrf_token": csrf_from(form), "kind": "opinion", "region": "110101",
                                                "text": "某论坛帖子反映办税服务厅排队时间长,阅读量较高"})
    assert made.status_code == 303
    with office.read() as s:
        a = s.scalar(select(Appeal))
        assert (a.kind, a.channel, a.phone, a.created_by) == ("opinion", "official", "", "handler")
    refused = handler.post("/appeals/enter", data={"csrf_token": csrf_from(form), "kind": "complaint", "text": "无联系方式"})
    assert refused.status_code == 400 and "电话或电子邮箱" in refused.text
    assert login(server, "viewer").get("/appeals/enter").status_code == 403
    client = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(client.get("/appeals/new").text)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    sent = client.post("/appeals/new", data={**FORM, "csrf_token": token}, files={"files": ("回执.pdf", pdf, "application/pdf")})
    assert sent.status_code == 303
    with office.read() as s:
        appeal_id = s.scalar(select(Appeal.id).where(Appeal.channel == "web"))
    page = handler.get(f"/appeals/{appeal_id}").text
    link = re.search(r'href="(/appeals/attachments/\d+)"', page)[1]
    got = handler.get(link)
    assert got.status_code == 200 and got.content == pdf and "attachment" in got.headers["content-disposition"]
    assert login(server, "gd_handler").get(link).status_code == 403
    with httpx.Client(base_url=server) as anonymous:
        assert anonymous.get(link).status_code in (303, 401)


def test_exporting_the_list_needs_a_purpose_and_is_logged(office, server):
    import io

    from openpyxl import load_workbook

    file_complaint(server)
    handler = login(server, "handler")
    for purpose in ("", "看看", "x" * 201):
        refused = handler.get("/appeals", params={"export": "true", "purpose": purpose})
        assert refused.status_code == 400 and "须写明用途" in refused.text
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "appeals.exported")) == 0
    got = handler.get("/appeals", params={"export": "true", "kind": "complaint", "purpose": "  第三季度投诉 复盘  "})
    rows = list(load_workbook(io.BytesIO(got.content), read_only=True).active.iter_rows(values_only=True))
    assert rows[0][0] == "编号" and len(rows) == 2 and rows[1][3] == "出口退税慢"
    with office.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "appeals.exported"))
        assert (entry.actor, entry.outcome, entry.source) == ("handler", "success", "127.0.0.1")
        assert '"purpose":"第三季度投诉 复盘"' in entry.after and '"rows":1' in entry.after and '"kind":"complaint"' in entry.after
