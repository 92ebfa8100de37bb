"""Questionnaires over HTTP: import (and a refused sheet), preview, publish, the public answer page without
JavaScript (skip logic and required questions on the server, input kept on an error), invitations used once,
results and the xlsx export, refusals."""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import event, func, select, text

from chunfeng.inbox.models import InboxMessage
from chunfeng.ledger.models import Assignment
from chunfeng.org.models import AuditEntry
from chunfeng.settings import Settings
from chunfeng.survey.models import Survey, SurveyQuestion, SurveyResponse
from chunfeng.xlsx import write_table
from tests.conftest import TEST_DATA_KEY, csrf_from, login, serving
from tests.survey.test_services import GOOD, HEADERS
from tests.web.test_form_errors_pages import form_of, value_of
from tests.web.test_review_queue_pages import field_error


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "bj_viewer": ("110000", ["viewer"]),
               "gd_officer": ("440000", ["service_officer"]), "agent": ("000000", ["agent"])})
    return with_plan


def xlsx_bytes(tmp_path, rows) -> bytes:
    return write_table(tmp_path / "q.xlsx", sheet="问卷", headers=HEADERS, rows=rows).read_bytes()


def import_survey(client, tmp_path, rows=GOOD, **fields) -> httpx.Response:
    token = csrf_from(client.get("/survey").text)
    return client.post("/survey/import", data={"csrf_token": token, "title": "纳税人需求调查", **fields},
                       files={"file": ("问卷.xlsx", xlsx_bytes(tmp_path, rows))})


def published(server, tmp_path) -> tuple[httpx.Client, int, str]:
    officer = login(server, "county_officer")
    made = import_survey(officer, tmp_path)
    assert made.status_code == 303, made.text[:500]
    survey_id = int(re.search(r"/survey/(\d+)", made.headers["location"])[1])
    page = officer.get(f"/survey/{survey_id}")
    assert page.status_code == 200 and "您对办税服务厅的满意程度" in page.text and "disabled" in page.text
    done = officer.post(f"/survey/{survey_id}/publish", data={"csrf_token": csrf_from(page.text)})
    assert done.status_code == 303
    page = officer.get(f"/survey/{survey_id}").text
    link = re.search(r'id="public-link">[^<]*/s/([\w-]+)<', page)[1]
    assert "<svg" in page  # the hall's QR code, drawn offline
    return officer, survey_id, link


def test_a_bad_sheet_is_refused_naming_rows_and_nothing_is_stored(office, server, tmp_path):
    officer = login(server, "county_officer")
    refused = import_survey(officer, tmp_path, rows=[["Q1", "判断", "办过业务吗?", "", "是", "", ""],
                                                     ["Q2", "单选", "", "是", "否", "Q9", "是"]])
    assert refused.status_code == 400
    assert "第 2 行 题型" in refused.text and "第 3 行 题目" in refused.text and "第 3 行 显示条件题号" in refused.text
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(Survey)) == 0


def test_answer_page_without_javascript_enforces_skip_logic_and_keeps_input(office, server, tmp_path):
    _, survey_id, link = published(server, tmp_path)
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    form = public.get(f"/s/{link}")
    assert form.status_code == 200 and 'name="viewport"' in form.text and "<script" not in form.text.split("</head>")[1]
    token = csrf_from(form.text)
    # Q1 = 是 shows Q2, which is required: refused, with what was typed still there.
    missing = public.post(f"/s/{link}", data={"csrf_token": token, "Q1": "是", "Q5": "希望延长服务时间"})
    assert missing.status_code == 400 and "此题为必答题" in missing.text
    assert "希望延长服务时间</textarea>" in missing.text and 'value="是" checked' in missing.text
    forged = public.post(f"/s/{link}", data={"csrf_token": token, "Q1": "是", "Q2": "7"})
    assert forged.status_code == 400 and "请从给出的选项中选择一项" in forged.text
    # Q1 = 否 hides Q2: its answer is dropped.
    sent = public.post(f"/s/{link}", data={"csrf_token": token, "Q1": "否", "Q2": "1", "Q3": ["电子税务局", "12366热线"],
                                           "Q4": "9", "Q5": "=HYPERLINK(\"http://x\",\"y\")"})
    assert sent.status_code == 303 and "提交成功" in public.get(sent.headers["location"]).text
    with office.read() as s:
        [answers] = s.scalars(select(SurveyResponse.answers))
        assert "Q2" not in answers and answers["Q3"] == ["电子税务局", "12366热线"] and answers["Q4"] == 9
    assert public.post(f"/s/{link}", data={"Q1": "否"}).status_code == 403  # no CSRF token
    assert public.get("/s/not-a-token").status_code == 404


def test_an_invitation_answers_once(office, server, tmp_path):
    officer, survey_id, _ = published(server, tmp_path)
    page = officer.post(f"/survey/{survey_id}/invitations",
                        data={"csrf_token": csrf_from(officer.get(f"/survey/{survey_id}").text), "labels": "甲公司\n乙公司"})
    assert page.status_code == 200
    tokens = re.findall(r'href="[^"]*/s/([\w-]+)"', page.text)
    assert len(tokens) == 2
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(public.get(f"/s/{tokens[0]}").text)
    assert public.post(f"/s/{tokens[0]}", data={"csrf_token": token, "Q1": "否"}).status_code == 303
    again = public.post(f"/s/{tokens[0]}", data={"csrf_token": token, "Q1": "是", "Q2": "5"})
    assert again.status_code == 409 and "只能提交一次" in again.text
    assert public.get(f"/s/{tokens[0]}").status_code == 409
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 1


def test_results_page_and_export(office, server, tmp_path):
    _, survey_id, link = published(server, tmp_path)
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(public.get(f"/s/{link}").text)
    for q2, q4 in [("5", "10"), ("4", "9"), ("3", "3")]:
        assert public.post(f"/s/{link}", data={"csrf_token": token, "Q1": "是", "Q2": q2, "Q4": q4,
                                                "Q5": "=1+1"}).status_code == 303
    viewer = login(server, "bj_viewer")  # the unit above sees its subtree's results
    page = viewer.get(f"/survey/{survey_id}/results")
    assert page.status_code == 200 and "答卷总数" in page.text and 'class="chart"' in page.text
    assert "平均分 <strong>4.00</strong>" in page.text and "净推荐值 NPS <strong>33.3</strong>" in page.text
    download = viewer.get(f"/survey/{survey_id}/results?format=xlsx")
    assert download.status_code == 200
    book = load_workbook(io.BytesIO(download.content))
    rows = list(book["答卷"].iter_rows(values_only=True))
    assert rows[0][:3] == ("提交时间(UTC)", "方式", "Q1") and len(rows) == 4
    assert rows[1][6] == "=1+1" and book["答卷"].cell(2, 7).data_type == "s"  # text, never a formula
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "survey.results.exported")) == 1


def test_refusals_outside_the_subtree_and_without_the_role(office, server, tmp_path):
    _, survey_id, _ = published(server, tmp_path)
    gd = login(server, "gd_officer")
    token = csrf_from(gd.get("/survey").text)
    assert "纳税人需求调查" not in gd.get("/survey").text
    for response in (gd.get(f"/survey/{survey_id}"), gd.get(f"/survey/{survey_id}/results"),
                     gd.post(f"/survey/{survey_id}/invitations", data={"csrf_token": token, "count": "3"})):
        assert response.status_code == 403 and "管辖范围" in response.text
    viewer = login(server, "bj_viewer")
    token = csrf_from(viewer.get("/survey").text)
    assert viewer.post(f"/survey/{survey_id}/publish", data={"csrf_token": token}).status_code == 403
    assert login(server, "agent").get("/survey").status_code == 403
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyQuestion)) == 5
        denied = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.outcome == "denied"))
        assert denied >= 4


def test_inviting_units_from_the_page(office, server, tmp_path):
    officer, survey_id, _ = published(server, tmp_path)
    token = csrf_from(officer.get(f"/survey/{survey_id}").text)
    sent = officer.post(f"/survey/{survey_id}/invitations/units", data={"csrf_token": token, "units": "110101"})
    assert sent.status_code == 303 and "已向 1 个单位发出邀请" in officer.get(sent.headers["location"]).text
    outside = officer.post(f"/survey/{survey_id}/invitations/units", data={"csrf_token": token, "units": "440000"})
    assert outside.status_code == 403 and field_error(outside.text, "units")  # the page again (issue 14 item 5)
    unknown = officer.post(f"/survey/{survey_id}/invitations/units", data={"csrf_token": token, "units": "110101\n123456"})
    assert unknown.status_code == 400 and "123456" in field_error(unknown.text, "units")
    assert "110101\n123456</textarea>" in form_of(unknown.text, f"/survey/{survey_id}/invitations/units")
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 1


def test_answers_from_one_address_are_rate_limited_and_the_page_says_the_input_is_kept(office, _database, server,
                                                                                          server_files, tmp_path):
    _, _, link = published(server, tmp_path)
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(server_files),
                        push_store=str(server_files / "taxpayers.duckdb"), totp_required_roles=[],
                        rate_limits={"survey": 2}, rate_ceilings={})
    with serving(_database, settings) as url:
        public = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
        token = csrf_from(public.get(f"/s/{link}").text)
        codes = [public.post(f"/s/{link}", data={"csrf_token": token, "Q1": "否"}).status_code for _ in range(3)]
        assert codes == [303, 303, 429]
        refused = public.post(f"/s/{link}", data={"csrf_token": token, "Q1": "否"})
        assert "每分钟最多 2 次" in refused.text and "尚未提交" in refused.text
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 2


def test_a_finding_becomes_a_ledger_assignment_from_the_results_page(office, server, tmp_path, add_users):
    _, survey_id, _ = published(server, tmp_path)
    add_users({"bj_office": ("110000", ["action_office"])})
    office_client = login(server, "bj_office")
    page = office_client.get(f"/survey/{survey_id}/results")
    assert "转为台账任务" in page.text
    form = {"csrf_token": csrf_from(page.text), "text": "排队时间长", "measure_no": "54", "unit_code": "110101",
            "deadline": "2027-06-30", "question_code": "Q2"}
    made = office_client.post(f"/survey/{survey_id}/findings", data=form)
    assert made.status_code == 303 and made.headers["location"].startswith("/ledger/assignments/")
    assert "排队时间长" in office_client.get(f"/survey/{survey_id}/results").text
    bad = office_client.post(f"/survey/{survey_id}/findings", data={**form, "deadline": "明年"})
    assert bad.status_code == 400 and "完成时限" in bad.text
    viewer = login(server, "bj_viewer")
    assert "转为台账任务" not in viewer.get(f"/survey/{survey_id}/results").text
    assert viewer.post(f"/survey/{survey_id}/findings", data={**form, "csrf_token": csrf_from(
        viewer.get("/survey").text)}).status_code == 403


def test_a_refused_finding_keeps_the_results_page_and_the_text(office, server, tmp_path, add_users):
    """Issue 14 item 5: the finding as typed, the fault beside its field, no assignment made."""
    _, survey_id, _ = published(server, tmp_path)
    add_users({"bj_office": ("110000", ["action_office"])})
    client = login(server, "bj_office")
    form = {"csrf_token": csrf_from(client.get(f"/survey/{survey_id}/results").text), "text": "排队时间长,叫号系统常出故障",
            "measure_no": "54", "unit_code": "11O101", "deadline": "2026-12-30", "question_code": "Q2"}
    for change, field, message in (({}, "unit_code", "没有代码为“11O101”的单位"),
                                   ({"unit_code": "110101", "deadline": "明年"}, "deadline", "完成时限“明年”无效"),
                                   ({"unit_code": "110101", "question_code": "Q99"}, "question_code", "Q99")):
        page = client.post(f"/survey/{survey_id}/findings", data={**form, **change})
        assert page.status_code in (400, 404) and message in field_error(page.text, field), change
        typed = form_of(page.text, f"/survey/{survey_id}/findings")
        assert "排队时间长,叫号系统常出故障</textarea>" in typed and value_of(typed, field) == {**form, **change}[field]
    outside = client.post(f"/survey/{survey_id}/findings", data={**form, "unit_code": "440000"})
    assert outside.status_code == 403 and field_error(outside.text, "unit_code")
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(Assignment)) == 0


def test_units_from_the_picker_or_a_file_reminded_from_the_page_and_the_hall_poster(office, server, tmp_path):
    officer, survey_id, link = published(server, tmp_path)
    token = csrf_from(officer.get(f"/survey/{survey_id}").text)
    bad = officer.post(f"/survey/{survey_id}/invitations/units", data={"csrf_token": token},
                       files={"file": ("单位.csv", "单位代码\n110101\n\n坏 代码\n".encode())})
    assert bad.status_code == 400 and "第 4 行" in field_error(bad.text, "units")
    outside = officer.post(f"/survey/{survey_id}/invitations/units", data={"csrf_token": token},
                           files={"file": ("单位.csv", "单位代码\n110101\n440000\n".encode())})
    assert outside.status_code == 403 and "第 3 行" in field_error(outside.text, "units")
    with office.read() as s:  # the attempt on another unit is in the audit log; nothing was sent
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.actor == "county_officer", AuditEntry.outcome == "denied")) == 1
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 0
    sent = officer.post(f"/survey/{survey_id}/invitations/units", data={"csrf_token": token, "unit_a": "110101"},
                        files={"file": ("单位.csv", "单位代码\n110101\n".encode())})
    assert sent.status_code == 303 and "已向 1 个单位发出邀请" in officer.get(sent.headers["location"]).text
    reminded = officer.post(f"/survey/{survey_id}/invitations/units/remind", data={"csrf_token": token})
    assert reminded.status_code == 303 and "已提醒 1 个未作答的单位" in officer.get(reminded.headers["location"]).text
    assert "受邀单位作答情况" in officer.get(f"/survey/{survey_id}/analysis").text
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 2  # the invitation and one reminder

    svg = officer.get(f"/survey/{survey_id}/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    png = officer.get(f"/survey/{survey_id}/qr.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert officer.get(f"/survey/{survey_id}/qr.gif").status_code == 400
    poster = officer.get(f"/survey/{survey_id}/poster")
    assert poster.status_code == 200 and "纳税人需求调查" in poster.text and "<svg" in poster.text
    assert re.search(r'id="poster-url">https?://[^<]+/s/' + re.escape(link) + "<", poster.text)
    gd = login(server, "gd_officer")
    for path in (f"/survey/{survey_id}/poster", f"/survey/{survey_id}/qr.png"):
        assert gd.get(path).status_code == 403


def test_the_public_page_reads_a_published_versions_questions_once_per_process(office, server, tmp_path):
    """Issue 18 (p99 at 50 respondents): each public page and answer loaded the questionnaire's questions again.
    A published version's questions never change, so the process reads them once; the page and the answer check
    still see every question, and a new version's link its own."""
    officer, survey_id, link = published(server, tmp_path)
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    assert public.get(f"/s/{link}").status_code == 200  # the first read
    reads: list[str] = []

    def count(_conn, _cursor, statement, *_):
        if "FROM survey_question" in statement:
            reads.append(statement)

    event.listen(office.engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            form = public.get(f"/s/{link}")
            assert form.status_code == 200 and "您对办税服务厅的满意程度" in form.text
            assert "仅当上面“您是否在办税服务厅办过业务?”选择“是”时回答本题" in form.text
            sent = public.post(f"/api/s/{link}", json={"answers": {"Q1": "否", "Q4": 9}})
            assert sent.status_code == 201
        missing = public.post(f"/api/s/{link}", json={"answers": {"Q1": "是"}})
        assert missing.status_code == 400 and set(missing.json()["problems"]) == {"Q2"}
        assert [q["code"] for q in public.get(f"/api/s/{link}").json()["questions"]] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    finally:
        event.remove(office.engine, "before_cursor_execute", count)
    assert reads == []
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 3
    # The next version, with a question changed, is published: its link shows its own questions.
    page = officer.get(f"/survey/{survey_id}")
    made = import_survey(officer, tmp_path, rows=[*GOOD[:4], ["Q5", "填空", "您最希望改进什么?", "", "否", "", ""]],
                         edit_of=str(survey_id))
    assert made.status_code == 303, made.text[:300]
    new_id = int(re.search(r"/survey/(\d+)", made.headers["location"])[1])
    assert new_id != survey_id and csrf_from(page.text)
    page = officer.get(f"/survey/{new_id}")
    assert officer.post(f"/survey/{new_id}/publish", data={"csrf_token": csrf_from(page.text)}).status_code == 303
    new_link = re.search(r'id="public-link">[^<]*/s/([\w-]+)<', officer.get(f"/survey/{new_id}").text)[1]
    assert "您最希望改进什么?" in public.get(f"/s/{new_link}").text
    assert public.get(f"/s/{link}").status_code == 409  # the earlier version closed


def fieldsets(page: str) -> str:
    return page[page.index("<fieldset"):page.rindex("</fieldset>")]


def test_the_unanswered_form_rendered_once_is_the_one_the_template_renders(office, server, tmp_path):
    """Issue 18 (the page's CPU at 50 respondents): every respondent's page rendered the same unanswered questions
    again, about half of the page's CPU; now rendered once per published version. What a respondent sees is what
    the template renders for the version — the same questions as the preview's form, which renders them per
    request — page after page; a refused answer still shows what was typed; a new version its own questions."""
    officer, survey_id, link = published(server, tmp_path)
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    first, second = public.get(f"/s/{link}").text, public.get(f"/s/{link}").text
    preview = officer.get(f"/survey/{survey_id}/preview")
    assert preview.status_code == 200
    assert fieldsets(first) == fieldsets(second) == fieldsets(preview.text)
    assert "checked" not in fieldsets(first) and "您对办税服务厅的满意程度" in first
    refused = public.post(f"/s/{link}", data={"csrf_token": csrf_from(first), "Q1": "是", "Q5": "希望延长服务时间"})
    assert refused.status_code == 400 and "希望延长服务时间</textarea>" in refused.text and "此题为必答题" in refused.text
    assert "希望延长服务时间" not in public.get(f"/s/{link}").text  # the next respondent's form is blank again
    page = officer.get(f"/survey/{survey_id}")
    made = import_survey(officer, tmp_path, rows=[*GOOD[:4], ["Q5", "填空", "您最希望改进什么?", "", "否", "", ""]],
                         edit_of=str(survey_id))
    new_id = int(re.search(r"/survey/(\d+)", made.headers["location"])[1])
    page = officer.get(f"/survey/{new_id}")
    assert officer.post(f"/survey/{new_id}/publish", data={"csrf_token": csrf_from(page.text)}).status_code == 303
    new_link = re.search(r'id="public-link">[^<]*/s/([\w-]+)<', officer.get(f"/survey/{new_id}").text)[1]
    shown = public.get(f"/s/{new_link}").text
    assert "您最希望改进什么?" in shown and fieldsets(shown) == fieldsets(officer.get(f"/survey/{new_id}/preview").text)


def test_a_page_waiting_for_a_connection_does_not_stall_the_process(office, server, tmp_path):
    """Issue 18: on SQLite the page is read in the event loop, which must never wait there for a connection (every
    request of the process would wait with it): with none idle in the pool the page takes a thread and waits
    there, the process answers meanwhile, and the page is served once a connection is back."""
    _, _, link = published(server, tmp_path)
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    assert public.get(f"/s/{link}").status_code == 200
    pool = office.engine.pool
    held = [office.engine.connect() for _ in range(pool.size() + pool._max_overflow - pool.checkedout())]
    try:
        with ThreadPoolExecutor(1) as waiter:
            page = waiter.submit(public.get, f"/s/{link}")
            time.sleep(0.5)
            assert not page.done()  # waiting for a connection
            assert httpx.get(f"{server}/static/app.css", timeout=5).status_code == 200  # the loop is not
            for conn in held:
                conn.close()
            held = []
            assert page.result().status_code == 200 and "您对办税服务厅的满意程度" in page.result().text
    finally:
        for conn in held:
            conn.close()


def test_fifty_respondents_at_once_are_all_stored_and_an_invitation_still_answers_once(office, server, tmp_path):
    """Issue 18 (the answer page at 50 respondents, nothing lost): 50 answers sent over HTTP at the same instant —
    40 by the open link, 5 each by two one-time invitations. Every answer accepted is in the database, and each
    invitation stored one response (its other four: 409), also when the open link is looked up first."""
    officer, survey_id, link = published(server, tmp_path)
    page = officer.post(f"/survey/{survey_id}/invitations",
                        data={"csrf_token": csrf_from(officer.get(f"/survey/{survey_id}").text), "labels": "甲公司\n乙公司"})
    invitations = re.findall(r'href="[^"]*/s/([\w-]+)"', page.text)
    assert len(invitations) == 2
    tokens = [link] * 40 + [invitations[0]] * 5 + [invitations[1]] * 5
    barrier = threading.Barrier(len(tokens))

    def send(token: str) -> tuple[str, int, int | None]:
        with httpx.Client(base_url=server, timeout=60) as client:
            barrier.wait(timeout=30)
            sent = client.post(f"/api/s/{token}", json={"answers": {"Q1": "否", "Q4": 7}})
        return token, sent.status_code, sent.json().get("response_id")

    with ThreadPoolExecutor(len(tokens)) as pool:
        results = list(pool.map(send, tokens))
    accepted = {rid for _, status, rid in results if status == 201}
    assert sum(status == 201 for token, status, _ in results if token == link) == 40
    for token in invitations:
        assert sorted(status for t, status, _ in results if t == token) == [201, 409, 409, 409, 409]
    assert len(accepted) == 42
    with office.read() as s:
        stored = set(s.scalars(select(SurveyResponse.id)))
        by_invitation = s.scalars(select(SurveyResponse.invitation_id).where(SurveyResponse.invitation_id.is_not(None)))
        assert sorted(Counter(by_invitation).values()) == [1, 1]
    assert stored == accepted


def test_a_ready_process_has_compiled_the_answer_page_before_its_first_respondent(office, _database, server_files,
                                                                                   tmp_path, monkeypatch):
    """Issue 18: the slowest answer pages of a load run were all in its first half-second — fifty respondents
    arriving at a fresh process each waited for the page's templates to be compiled (≈ 0.1 s). The process now
    compiles them while it loads its indexes, before /healthz says it is ready."""
    from chunfeng.preload import Preloaded
    from chunfeng.survey import routes as survey_routes
    from chunfeng.web.deps import templates

    # As in a fresh process: nothing compiled, nothing warmed.
    monkeypatch.setattr(survey_routes, "PUBLIC_PAGE", Preloaded("survey answer page", lambda _s: None, survey_routes._warm))
    templates.env.cache.clear()
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(server_files),
                        push_store=str(server_files / "taxpayers.duckdb"), totp_required_roles=[], rate_limits={},
                        rate_ceilings={})
    with serving(_database, settings) as url:  # waited for /healthz 200
        compiled = {name for _, name in templates.env.cache.keys()}
        assert set(survey_routes.PUBLIC_TEMPLATES) <= compiled
        assert httpx.get(f"{url}/healthz").json()["builds"]["survey"] == 1


def test_an_answer_waiting_for_the_writer_does_not_stall_the_other_respondents(office, server, tmp_path):
    """Issue 18: the form's answer was stored on the event loop, so while it waited for the one writer and the disk
    every other request of the process waited too. Held here by a write of the test's own (on PostgreSQL a lock on
    the responses' table), the answer waits; the page still opens for the next respondent."""
    _, _, link = published(server, tmp_path)
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(public.get(f"/s/{link}").text)
    with ThreadPoolExecutor(1) as pool:
        with office.write() as s:
            if not office.is_sqlite:
                s.execute(text("LOCK TABLE survey_response IN EXCLUSIVE MODE"))
            sent = pool.submit(public.post, f"/s/{link}", data={"csrf_token": token, "Q1": "否"})
            time.sleep(0.5)  # the answer is in, waiting for the writer
            other = httpx.get(f"{server}/s/{link}", timeout=5)
            assert other.status_code == 200 and "您对办税服务厅的满意程度" in other.text
            assert not sent.done()
        assert sent.result(timeout=30).status_code == 303
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 1


def test_answers_waiting_for_the_writer_share_one_commit_and_a_refused_one_loses_none(office, server, tmp_path):
    """Issue 18 (the answers' p99 at 50 respondents): each answer was its own transaction, and each commit waits for
    the disk, so a burst of answers queued commit after commit. Answers that arrive while the writer is busy are now
    written together, each in a savepoint of one transaction with one commit. Held here by a write of the test's own
    (on PostgreSQL a lock on the responses' table): the first answer waits for it, 26 more arrive meanwhile — among
    them two refused (not in the choices) and an invitation answered twice. Every accepted answer is stored, each
    refusal is its own, the invitation answers once, and the 23 accepted took at most three commits (one each
    before)."""
    officer, survey_id, link = published(server, tmp_path)
    page = officer.post(f"/survey/{survey_id}/invitations",
                        data={"csrf_token": csrf_from(officer.get(f"/survey/{survey_id}").text), "labels": "甲公司\n乙公司"})
    invitations = re.findall(r'href="[^"]*/s/([\w-]+)"', page.text)
    good, bad = {"Q1": "否", "Q4": 7}, {"Q1": "也许"}
    later = [(link, good)] * 20 + [(link, bad)] * 2 + [(invitations[0], good)] * 3 + [(invitations[1], good)]
    writes: list[str] = []  # in order: i, responses inserted; c, a transaction committed

    def inserted(_conn, _cursor, statement, *_):
        if statement.lstrip().upper().startswith("INSERT INTO SURVEY_RESPONSE"):
            writes.append("i")

    def committed(_conn):
        writes.append("c")

    def send(token: str, answers: dict) -> tuple[str, int, int | None]:
        sent = httpx.post(f"{server}/api/s/{token}", json={"answers": answers}, timeout=60)
        return token, sent.status_code, sent.json().get("response_id")

    event.listen(office.engine, "before_cursor_execute", inserted)
    event.listen(office.engine, "commit", committed)
    try:
        with ThreadPoolExecutor(len(later) + 1) as pool:
            with office.write() as s:
                if not office.is_sqlite:
                    s.execute(text("LOCK TABLE survey_response IN EXCLUSIVE MODE"))
                first = pool.submit(send, link, good)
                time.sleep(0.5)  # the first answer is waiting for the writer
                rest = [pool.submit(send, token, answers) for token, answers in later]
                time.sleep(1.0)  # and the others have arrived behind it
                assert not first.done() and not any(f.done() for f in rest)
            results = [first.result(timeout=60)] + [f.result(timeout=60) for f in rest]
    finally:
        event.remove(office.engine, "before_cursor_execute", inserted)
        event.remove(office.engine, "commit", committed)
    statuses = Counter((token, status) for token, status, _ in results)
    assert statuses == {(link, 201): 21, (link, 400): 2, (invitations[0], 201): 1, (invitations[0], 409): 2,
                        (invitations[1], 201): 1}
    accepted = {rid for _, status, rid in results if status == 201}
    with office.read() as s:
        assert set(s.scalars(select(SurveyResponse.id))) == accepted
        by_invitation = s.scalars(select(SurveyResponse.invitation_id).where(SurveyResponse.invitation_id.is_not(None)))
        assert sorted(Counter(by_invitation).values()) == [1, 1]
    groups = [g for g in "".join(writes).split("c") if g]  # the INSERTs of responses each commit wrote
    assert 1 <= len(groups) <= 3, groups
