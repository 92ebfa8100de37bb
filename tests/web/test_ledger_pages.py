"""Ledger pages over HTTP: dashboard, drill-down, assignment, report → return → resubmit → approve, assign, export."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

from openpyxl import load_workbook
from sqlalchemy import func, select, update

from chunfeng.jobs import JobRun
from chunfeng.ledger import reporting
from chunfeng.ledger import services as ledger
from chunfeng.ledger.models import Assignment, ProgressReport
from chunfeng.ledger.periods import period_of
from chunfeng.ledger.services import Terms
from tests.conftest import TEST_DATA_KEY, csrf_from, exported, finished, login, person

DEADLINE = date.today() + timedelta(days=200)


def make_chain(db):
    start = date.today() - timedelta(days=60)
    with db.write() as s:
        bj = ledger.assign(session=s, actor=person(s, "nat_office"), measure_no=54, unit_code="110000",
                           terms=Terms(deadline=DEADLINE, start_date=start)).id
        city = ledger.assign(session=s, actor=person(s, "bj_office"), measure_no=54, unit_code="110100",
                             terms=Terms(deadline=DEADLINE, start_date=start)).id
        county = ledger.assign(session=s, actor=person(s, "city_office"), measure_no=54, unit_code="110101",
                               terms=Terms(deadline=DEADLINE, start_date=start, owner="王五")).id
    return bj, city, county


def form_of(page: str, action: str) -> str:
    return page.split(f'action="{action}"', 1)[1].split("</form>", 1)[0]


def test_report_return_resubmit_approve(bureau, server):
    bj, city, county = make_chain(bureau)
    reporter = login(server, "county_reporter")
    page = reporter.get(f"/ledger/assignments/{county}").text
    assert "填报进展" in page and "王五" in page
    token = csrf_from(page)
    period = period_of(date.today(), "monthly")
    sent = reporter.post(f"/ledger/assignments/{county}/reports",
                         data={"csrf_token": token, "period": period, "status": "in_progress", "percent": "40",
                               "narrative": "已梳理资料清单"})
    assert sent.status_code == 303
    assert "待审核" in reporter.get(f"/ledger/assignments/{county}").text

    reviewer = login(server, "city_office")
    queue = reviewer.get("/ledger/review").text
    assert "已梳理资料清单" in queue and "甲市一县税务局" in queue
    with bureau.read() as s:
        report = s.scalars(select(ProgressReport)).one()
    no_comment = reviewer.post(f"/ledger/reports/{report.id}/review",
                               data={"csrf_token": csrf_from(queue), "decision": "return", "version": report.version})
    assert no_comment.status_code == 400 and "退回意见" in no_comment.text
    returned = reviewer.post(f"/ledger/reports/{report.id}/review",
                             data={"csrf_token": csrf_from(queue), "decision": "return", "comment": "请补充数据",
                                   "version": report.version, "back": "/ledger/review"})
    assert returned.status_code == 303 and returned.headers["location"].startswith("/ledger/review")

    todo = reporter.get("/ledger/todo").text
    assert "请补充数据" in todo
    page = reporter.get(f"/ledger/assignments/{county}").text
    assert "修改被退回的报告" in page and "请补充数据" in page
    version = re.search(r'name="version" value="(\d+)"', page)[1]
    resent = reporter.post(f"/ledger/assignments/{county}/reports",
                           data={"csrf_token": token, "period": period, "status": "in_progress", "percent": "55",
                                 "narrative": "已补充数据", "version": version})
    assert resent.status_code == 303
    stale = reporter.post(f"/ledger/assignments/{county}/reports",
                          data={"csrf_token": token, "period": period, "status": "in_progress", "percent": "60",
                                "narrative": "过时的页面", "version": version})
    assert stale.status_code == 409 and "请刷新" in stale.text
    # The conflict keeps what was typed, and the form now carries the stored version.
    assert ">过时的页面</textarea>" in stale.text
    assert f'name="version" value="{int(version) + 1}"' in report_form(stale.text)

    with bureau.read() as s:
        report = s.get(ProgressReport, report.id)
    wrong_reviewer = login(server, "bj_office")
    refused = wrong_reviewer.post(f"/ledger/reports/{report.id}/review",
                                  data={"csrf_token": csrf_from(wrong_reviewer.get("/ledger").text), "decision": "approve",
                                        "version": report.version})
    assert refused.status_code == 403
    approved = reviewer.post(f"/ledger/reports/{report.id}/review",
                             data={"csrf_token": csrf_from(queue), "decision": "approve", "version": report.version})
    assert approved.status_code == 303
    with bureau.read() as s:
        assert s.get(Assignment, county).progress == 55 and s.get(Assignment, city).progress == 55
        assert s.get(Assignment, bj).progress == 55


def test_others_cannot_report_or_see(bureau, server):
    bj, city, county = make_chain(bureau)
    other = login(server, "county2_reporter")
    page = other.get(f"/ledger/assignments/{county}")
    assert page.status_code == 403
    token = csrf_from(other.get("/ledger/todo").text)
    sent = other.post(f"/ledger/assignments/{county}/reports",
                      data={"csrf_token": token, "status": "in_progress", "percent": "10"})
    assert sent.status_code == 403
    gd = login(server, "gd_office")
    assert gd.get(f"/ledger/assignments/{bj}").status_code == 403
    assert gd.get("/ledger", params={"unit": "110000"}).status_code == 403
    gd_token = csrf_from(gd.get("/ledger").text)
    assert gd.post("/ledger/export.xlsx", data={"csrf_token": gd_token, "unit": "110000"}).status_code == 403
    viewer = login(server, "viewer")
    page = viewer.get(f"/ledger/assignments/{bj}").text
    assert "填报进展" not in page and "分解下达" not in page
    with bureau.read() as s:
        assert s.scalar(select(ProgressReport.id)) is None


def test_dashboard_drill_down_and_export(bureau, server, server_files):
    make_chain(bureau)
    client = login(server, "nat_office")
    page = client.get("/ledger").text
    assert "国家税务总局北京市税务局" in page and "智慧办理更便捷" in page
    drill = client.get("/ledger", params={"unit": "110000"}).text
    assert "北京甲市税务局" in drill
    tasks = client.get("/ledger/units/110101").text
    assert "进一步精简出口退税" in tasks
    # The page's own export form, as a browser submits it: a POST behind the CSRF token.
    form = re.search(r'<form class="inline" method="post" action="(/ledger/export.xlsx)">.*?name="unit" value="(\d+)"',
                     drill)
    assert form and form[2] == "110000"
    started = client.post(form[1], data={"csrf_token": csrf_from(drill), "unit": form[2]})
    assert started.status_code == 303  # a subtree's ledger is written by a task, not on the request
    progress = client.get(started.headers["location"])
    assert progress.status_code == 200 and "导出台账" in progress.text
    page, download = exported(client, started)
    assert "已导出 3 行" in page.text and "下载文件" in page.text
    link = re.search(r'href="(/jobs/runs/(\d+)/download)"', page.text)
    # Only the one who started it: another office that may see the same subtree is told there is no such run.
    other = login(server, "bj_office")
    assert other.get(link[1]).status_code == 404 and other.get(started.headers["location"]).status_code == 404
    assert download.status_code == 200 and "110000" in download.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(download.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 4 and rows[1][0] == 54
    # The file is removed once fetched: a second fetch is refused, and nothing is left in the data dir.
    again = client.get(link[1])
    assert again.status_code == 404 and "已下载过或已过期" in again.text
    assert not (server_files / "exports" / link[2]).exists()


def test_ledger_export_starts_only_from_the_form(bureau, server):
    """Writing a subtree's ledger is a task: a plain link (a GET another site could plant) or a POST without the
    form's CSRF token starts none."""
    make_chain(bureau)
    client = login(server, "nat_office")
    with bureau.read() as s:
        before = s.scalar(select(func.count()).select_from(JobRun))
    assert client.get("/ledger/export.xlsx", params={"unit": "110000"}).status_code == 405
    refused = client.post("/ledger/export.xlsx", data={"unit": "110000"})
    assert refused.status_code == 403
    with bureau.read() as s:
        assert s.scalar(select(func.count()).select_from(JobRun)) == before


def test_assign_and_break_down_in_the_browser_forms(bureau, server):
    office = login(server, "nat_office")
    form = office.get("/ledger/assign").text
    token = csrf_from(form)
    done = office.post("/ledger/assign", data={"csrf_token": token, "target": "level", "level": "province",
                                               "category": "4", "deadline": DEADLINE.isoformat()})
    assert done.status_code == 303 and "assigned=720" in done.headers["location"]
    bad = office.post("/ledger/assign", data={"csrf_token": token, "target": "unit", "unit": "110000",
                                              "measures": "1, x", "deadline": DEADLINE.isoformat()})
    assert bad.status_code == 400 and "措施序号" in bad.text
    with bureau.read() as s:
        bj = s.scalar(select(Assignment.id).where(Assignment.measure_no == 82, Assignment.province_code == "110000"))
    province = login(server, "bj_office")
    page = province.get(f"/ledger/assignments/{bj}").text
    assert "分解下达" in page and "北京甲市税务局" in form_of(page, f"/ledger/assignments/{bj}/break-down")
    late = province.post(f"/ledger/assignments/{bj}/break-down",
                         data={"csrf_token": csrf_from(page), "units": ["110100"],
                               "deadline": (DEADLINE + timedelta(days=1)).isoformat()})
    assert late.status_code == 400 and "不能晚于" in late.text
    ok = province.post(f"/ledger/assignments/{bj}/break-down",
                       data={"csrf_token": csrf_from(page), "units": ["110100", "110200"], "deadline": DEADLINE.isoformat()})
    assert ok.status_code == 303
    assert "分解到下级(2)" in province.get(f"/ledger/assignments/{bj}").text
    reporter = login(server, "bj_reporter")
    assert reporter.get("/ledger/assign").status_code == 403


def test_the_server_scans_on_start(bureau, tmp_path):
    """A second app on the same database with the schedule on: its first scan runs at start-up."""
    import threading
    import time

    import uvicorn

    from chunfeng.settings import Settings
    from chunfeng.web.app import create_app
    from chunfeng.web.server import uvicorn_config
    from tests.conftest import _free_port

    with bureau.write() as s:
        a = ledger.assign(session=s, actor=person(s, "nat_office"), measure_no=1, unit_code="110000",
                          terms=Terms(deadline=date.today() - timedelta(days=3), start_date=date.today() - timedelta(days=90)))
        aid = a.id
    settings = Settings(database_url=bureau.url, secret_key="x" * 32, environment="test", data_key=TEST_DATA_KEY,
                        scan_interval_minutes=60, run_jobs_in_web=True)
    server = uvicorn.Server(uvicorn_config(create_app(bureau, settings), settings, host="127.0.0.1",
                                           port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with bureau.read() as s:
                if s.get(Assignment, aid).light == "red":
                    break
            time.sleep(0.2)
        with bureau.read() as s:
            assert s.get(Assignment, aid).light == "red" and "overdue" in s.get(Assignment, aid).light_reason
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_notice_thread_and_inbox(bureau, server):
    bj, city, county = make_chain(bureau)
    office = login(server, "city_office")
    page = office.get(f"/ledger/assignments/{county}").text
    assert "发督办单" in page
    token = csrf_from(page)
    sent = office.post(f"/ledger/assignments/{county}/notices",
                       data={"csrf_token": token, "subject": "进度滞后", "text": "请说明原因",
                             "respond_by": (date.today() + timedelta(days=5)).isoformat()})
    assert sent.status_code == 303
    notice_url = sent.headers["location"]
    reporter = login(server, "county_reporter")
    home = reporter.get("/ledger/todo").text
    assert "进度滞后" in home and 'class="nav-count">1<' in home
    inbox_page = reporter.get("/inbox").text
    message_id = re.search(r'action="/inbox/(\d+)/read"', inbox_page)[1]
    opened = reporter.post(f"/inbox/{message_id}/read", data={"csrf_token": csrf_from(inbox_page)})
    assert opened.headers["location"] == notice_url
    assert "nav-count" not in reporter.get("/inbox").text
    thread = reporter.get(notice_url).text
    assert "提交答复" in thread and "办结" not in thread.split("</ol>")[1]
    reporter.post(f"{notice_url}/answer", data={"csrf_token": csrf_from(thread), "text": "已增派人手"})
    other = login(server, "county2_reporter")
    refused = other.post(f"{notice_url}/answer", data={"csrf_token": csrf_from(other.get("/inbox").text), "text": "x"})
    assert refused.status_code == 403
    closing = office.get(notice_url).text
    assert "已增派人手" in closing and "已答复" in closing
    office.post(f"{notice_url}/close", data={"csrf_token": csrf_from(closing), "text": "同意"})
    assert "已办结" in office.get(notice_url).text
    reminded = office.post(f"/ledger/assignments/{county}/remind", data={"csrf_token": token, "text": "请周五前报送"})
    assert reminded.status_code == 303
    assert "请周五前报送" in reporter.get("/inbox").text


def test_evidence_upload_and_download(bureau, server):
    *_, county = make_chain(bureau)
    reporter = login(server, "county_reporter")
    token = csrf_from(reporter.get(f"/ledger/assignments/{county}").text)
    fields = {"csrf_token": token, "status": "in_progress", "percent": "30", "narrative": "见附件"}
    forged = reporter.post(f"/ledger/assignments/{county}/reports", data=fields,
                           files=[("evidence", ("纪要.pdf", b"<html><script>alert(1)</script></html>", "application/pdf"))])
    assert forged.status_code == 400 and "不是允许的文件类型" in forged.text
    with bureau.read() as s:
        assert s.scalar(select(ProgressReport.id)) is None  # the report was refused with its file
    big = reporter.post(f"/ledger/assignments/{county}/reports", data=fields,
                        files=[("evidence", ("big.pdf", b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 10), "application/pdf"))])
    assert big.status_code == 400 and "超过上限" in big.text
    pdf = b"%PDF-1.4\n%%EOF\n"
    ok = reporter.post(f"/ledger/assignments/{county}/reports", data=fields,
                       files=[("evidence", ("会议纪要.pdf", pdf, "application/pdf")),
                              ("evidence", ("照片.png", b"\x89PNG\r\n\x1a\n0000", "image/png"))])
    assert ok.status_code == 303
    page = reporter.get(f"/ledger/assignments/{county}").text
    links = re.findall(r'href="(/ledger/evidence/\d+)"', page)
    assert len(links) == 2 and "会议纪要.pdf" in page
    download = login(server, "city_office").get(links[0])
    assert download.status_code == 200 and download.content == pdf
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment")
    assert login(server, "gd_office").get(links[0]).status_code == 403


def test_league_page(bureau, server):
    make_chain(bureau)
    client = login(server, "bj_office")
    page = client.get("/ledger/league").text
    assert "市级税务局排名" in page and "北京甲市税务局" in page and "得分 = 100 ×" in page
    county = client.get("/ledger/league", params={"level": "county"}).text
    assert "甲市一县税务局" in county and "甲市二县税务局" not in county  # holds no assignment
    sheet = load_workbook(io.BytesIO(client.get("/ledger/league", params={"level": "municipal", "export": "true"}).content),
                          read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("名次", "单位", "得分") and rows[1][1] == "北京甲市税务局"
    assert client.get("/ledger/league", params={"level": "planet"}).status_code == 400
    assert "没有承担任务的单位" in login(server, "gd_office").get("/ledger/league").text


def test_no_report_form_for_an_approved_period(bureau, server):
    *_, county = make_chain(bureau)
    period = period_of(date.today(), "monthly")
    with bureau.write() as s:
        r = reporting.submit_report(session=s, actor=person(s, "county_reporter"), assignment_id=county, status="in_progress",
                                 percent=50, period=period)
        reporting.review_report(session=s, actor=person(s, "city_office"), report_id=r.id, approve=True)
    page = login(server, "county_reporter").get(f"/ledger/assignments/{county}").text
    assert f'<option value="{period}"' not in page


def test_bulk_upload_page(bureau, server):
    *_, county = make_chain(bureau)
    reporter = login(server, "county_reporter")
    todo = reporter.get("/ledger/todo").text
    assert "批量填报" in todo
    sheet_bytes = exported(reporter, reporter.post("/ledger/export.xlsx", data={"csrf_token": csrf_from(todo),
                                                                                "unit": "110101"}))[1].content
    book = load_workbook(io.BytesIO(sheet_bytes))
    header = [c.value for c in book.active[1]]
    row = book.active[2]
    row[header.index("状态")].value, row[header.index("完成百分比")].value = "推进中", 35
    row[header.index("进展情况")].value = "批量填报的进展"
    buffer = io.BytesIO()
    book.save(buffer)
    period = period_of(date.today(), "monthly")
    sent = finished(reporter, reporter.post("/ledger/todo/upload", data={"csrf_token": csrf_from(todo), "period": period},
                                            files={"file": ("ledger.xlsx", buffer.getvalue(), "application/octet-stream")}))
    assert sent.status_code == 200 and 'href="/ledger/todo?uploaded=1"' in sent.text
    assert "批量填报的进展" in reporter.get(f"/ledger/assignments/{county}").text
    bad = finished(reporter, reporter.post("/ledger/todo/upload", data={"csrf_token": csrf_from(todo)}, files={
        "file": ("x.csv", "序号,单位代码,状态,完成百分比,进展情况\n54,110101,飞速,1,x\n".encode(), "text/csv")}))
    assert bad.status_code == 400 and "第 2 行" in bad.text and "状态“飞速”无效" in bad.text


def test_briefing_pages(bureau, server):
    make_chain(bureau)
    client = login(server, "bj_office")
    html = client.get("/ledger/briefing")
    assert html.status_code == 200 and "春风行动进展简报" in html.text and 'href="/static/briefing.css"' in html.text
    assert client.get("/static/briefing.css").status_code == 200
    pdf = client.get("/ledger/briefing", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"].startswith("attachment")
    assert login(server, "gd_office").get("/ledger/briefing", params={"unit": "110000"}).status_code == 403


def test_charts_on_dashboard_and_assignment(bureau, server):
    *_, county = make_chain(bureau)
    with bureau.write() as s:
        iid = ledger.define_indicator(session=s, actor=person(s, "nat_office"), measure_no=54, name="出口退税平均办理时间",
                                      unit_label="天", baseline=7, target=6, direction="down").id
        r = reporting.submit_report(session=s, actor=person(s, "county_reporter"), assignment_id=county, status="in_progress",
                                 percent=50, values={iid: 5.5})
        reporting.review_report(session=s, actor=person(s, "city_office"), report_id=r.id, approve=True)
    client = login(server, "city_office")
    page = client.get(f"/ledger/assignments/{county}").text
    assert "指标:出口退税平均办理时间" in page and "5.5天" in page and "<svg" in page
    dashboard = client.get("/ledger", params={"unit": "110100"}).text
    assert dashboard.count("<svg") == 2 and "甲市一县税务局" in dashboard.split("下级单位红/黄/绿")[1]


def test_category_item_measure_drill_down(bureau, server):
    make_chain(bureau)
    with bureau.write() as s:
        s.execute(update(Assignment).where(Assignment.unit.has(code="110101")).values(light="red"))
    client = login(server, "bj_office")
    page = client.get("/ledger/measures").text
    assert "智慧办理更便捷" in page and "提速退税办理" in page
    row = page.split('measure=54">', 1)[1].split("</tr>", 1)[0]
    # The other two are lit at creation: started 60 days ago, nothing reported for last month (yellow).
    assert 'class="light red" title="红灯">1<' in row and 'class="light yellow" title="黄灯">2<' in row
    listing = client.get("/ledger/units/110000", params={"measure": 54}).text
    assert "甲市一县税务局" in listing and "北京甲市税务局" in listing
    assert login(server, "gd_office").get("/ledger/measures", params={"unit": "110000"}).status_code == 403


def test_queue_and_notice_exports(bureau, server):
    *_, county = make_chain(bureau)
    with bureau.write() as s:
        reporting.submit_report(session=s, actor=person(s, "county_reporter"), assignment_id=county, status="in_progress",
                             percent=20, narrative="导出测试")
        from chunfeng.ledger import supervision
        supervision.issue_notice(session=s, actor=person(s, "city_office"), assignment_id=county, subject="导出督办",
                                 text="x", respond_by=date.today() + timedelta(days=3))
    client = login(server, "city_office")
    queue = list(load_workbook(io.BytesIO(client.get("/ledger/review", params={"export": "true"}).content),
                               read_only=True).worksheets[0].iter_rows(values_only=True))
    assert queue[1][0] == "甲市一县税务局" and queue[1][5] == "导出测试"
    notices = list(load_workbook(io.BytesIO(client.get("/ledger/notices", params={"export": "true"}).content),
                                 read_only=True).worksheets[0].iter_rows(values_only=True))
    assert notices[1][1] == "导出督办" and notices[1][6] == "待答复"


# --- issue 14: lights at the decision (3, 11), narrative-only reports where progress rolls up (4), the report form
# kept on a refusal (5) ---


def report_form(page: str) -> str:
    return page.split('class="stack report-form"', 1)[1].split("</form>", 1)[0]


def test_approval_shows_in_the_lights_at_once(bureau, server):
    *_, county = make_chain(bureau)
    last = period_of(date.today().replace(day=1) - timedelta(days=1), "monthly")
    reporter = login(server, "county_reporter")
    page = reporter.get(f"/ledger/assignments/{county}").text
    assert 'class="light yellow">黄灯' in page  # last month not reported
    sent = reporter.post(f"/ledger/assignments/{county}/reports",
                         data={"csrf_token": csrf_from(page), "period": last, "status": "in_progress", "percent": "85",
                               "narrative": "已完成八成"})
    assert sent.status_code == 303
    with bureau.read() as s:
        report = s.scalars(select(ProgressReport)).one()
    reviewer = login(server, "city_office")
    decided = reviewer.post(f"/ledger/reports/{report.id}/review",
                            data={"csrf_token": csrf_from(reviewer.get("/ledger/review").text), "decision": "approve",
                                  "version": report.version})
    assert decided.status_code == 303
    page = reviewer.get(f"/ledger/assignments/{county}").text
    assert 'class="light green">绿灯·正常推进' in page and "黄灯" not in page.split("</h1>")[0]


def test_a_fresh_assignment_does_not_read_as_all_good(bureau, server):
    with bureau.write() as s:
        fresh = ledger.assign(session=s, actor=person(s, "bj_office"), measure_no=55, unit_code="110100",
                              terms=Terms(deadline=DEADLINE)).id
    client = login(server, "city_office")
    page = client.get(f"/ledger/assignments/{fresh}").text.split("</h1>")[0]
    assert 'class="light idle">未开始·暂无预警' in page and "绿灯" not in page
    listing = client.get("/ledger/units/110100").text
    assert "未开始·暂无预警" in listing
    # The 北京 dashboard counts it apart from the greens, in the table and the chart.
    dashboard = login(server, "bj_office").get("/ledger", params={"unit": "110000"}).text
    assert '<span class="light idle" title="未开始·暂无预警">1</span>' in dashboard and 'fill="#cbd5e1"' in dashboard
    with bureau.write() as s:
        r = reporting.submit_report(session=s, actor=person(s, "city_reporter"), assignment_id=fresh, status="done",
                                 percent=100)
        reporting.review_report(session=s, actor=person(s, "bj_office"), report_id=r.id, approve=True)
    assert 'class="light green done">已完成' in client.get(f"/ledger/assignments/{fresh}").text


def test_a_rolled_up_assignment_offers_a_narrative_only(bureau, server):
    _, city, _ = make_chain(bureau)
    reporter = login(server, "city_reporter")
    page = reporter.get(f"/ledger/assignments/{city}").text
    form = report_form(page)
    assert 'name="percent"' not in form and 'name="status"' not in form
    assert "情况说明(仅文字)" in form and "进度由 1 个下级任务汇总" in page
    # A percent posted anyway (an old page, a crafted request) is refused in words, beside the form, and nothing kept.
    forced = reporter.post(f"/ledger/assignments/{city}/reports",
                           data={"csrf_token": csrf_from(page), "status": "done", "percent": "100",
                                 "narrative": "全部完成"})
    assert forced.status_code == 400 and "已分解下达" in forced.text and "全部完成</textarea>" in forced.text
    with bureau.read() as s:
        assert s.scalar(select(ProgressReport.id)) is None
    sent = reporter.post(f"/ledger/assignments/{city}/reports",
                         data={"csrf_token": csrf_from(page), "narrative": "两县推进中"})
    assert sent.status_code == 303
    with bureau.read() as s:
        assert [(r.narrative, r.percent) for r in s.scalars(select(ProgressReport))] == [("两县推进中", 0.0)]


def test_a_refused_report_keeps_the_form_and_the_narrative(bureau, server):
    *_, county = make_chain(bureau)
    reporter = login(server, "county_reporter")
    token = csrf_from(reporter.get(f"/ledger/assignments/{county}").text)
    narrative = "已召开专题会议部署,完成三个分局的培训"
    fields = {"csrf_token": token, "status": "in_progress", "percent": "30", "narrative": narrative}
    forged = reporter.post(f"/ledger/assignments/{county}/reports", data=fields,
                           files=[("evidence", ("纪要.pdf", b"<html>not a pdf</html>", "application/pdf"))])
    assert forged.status_code == 400
    form = report_form(forged.text)
    evidence = form.split('name="evidence"', 1)[1].split("</label>", 1)[0]
    assert "纪要.pdf:不是允许的文件类型" in evidence  # beside the file field
    assert f">{narrative}</textarea>" in form and 'name="percent" min="0" max="100" step="1" required value="30"' in form
    bad = reporter.post(f"/ledger/assignments/{county}/reports", data={**fields, "percent": "120"})
    assert bad.status_code == 400
    percent = report_form(bad.text).split('name="percent"', 1)[1].split("</label>", 1)[0]
    assert 'aria-invalid="true"' in percent and "超出 0–100" in percent
    assert f">{narrative}</textarea>" in bad.text
    word = reporter.post(f"/ledger/assignments/{county}/reports", data={**fields, "percent": "三十"})
    assert word.status_code == 400 and "完成百分比“三十”不是数字" in report_form(word.text)
    with bureau.read() as s:
        assert s.scalar(select(ProgressReport.id)) is None


def test_a_changed_deadline_shows_in_the_light_at_once(bureau, server):
    with bureau.write() as s:
        fresh = ledger.assign(session=s, actor=person(s, "bj_office"), measure_no=55, unit_code="110100",
                              terms=Terms(deadline=DEADLINE)).id
    holder = login(server, "city_office")
    assert "/deadline" not in holder.get(f"/ledger/assignments/{fresh}").text  # not offered to the holding unit
    office = login(server, "bj_office")
    page = office.get(f"/ledger/assignments/{fresh}").text
    moved = office.post(f"/ledger/assignments/{fresh}/deadline",
                        data={"csrf_token": csrf_from(page), "deadline": (date.today() + timedelta(days=3)).isoformat()})
    assert moved.status_code == 303
    page = office.get(moved.headers["location"]).text
    assert 'class="light yellow">黄灯' in page and "距完成时限还有 3 天" in page
    own_page = holder.get(f"/ledger/assignments/{fresh}").text
    refused = holder.post(f"/ledger/assignments/{fresh}/deadline",
                          data={"csrf_token": csrf_from(own_page), "deadline": DEADLINE.isoformat()})
    assert refused.status_code == 403 and "不能调整本单位任务的时限" in refused.text
