"""Direct reports and the survey analysis over HTTP: a form sent from the page with the unit pickers (a due date
needing 2027 refused with the calendar's words), a contact unit's report written by that unit only (others refused,
audited as denied), the roll-up with reminders and xlsx; the analysis page unweighted then weighted, a cross-tab,
a theme linked to measures and handed to the ledger, xlsx and PDF."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.inbox.models import InboxMessage
from chunfeng.org.models import AuditEntry
from chunfeng.survey.direct_models import DirectReport, DirectReportForm
from chunfeng.survey.models import SurveyInvitation
from tests.conftest import csrf_from, login
from tests.web.test_survey_pages import published


@pytest.fixture
def people(with_plan, county, add_users):
    add_users({"bj_officer": ("110000", ["service_officer"]), "county_officer": ("110101", ["service_officer"]),
               "city_reporter": ("110100", ["unit_reporter"]), "county_reporter": ("110101", ["unit_reporter"]),
               "bj_viewer": ("110000", ["viewer"]), "gd_officer": ("440000", ["service_officer"]),
               "bj_office": ("110000", ["action_office"])})
    return with_plan


def test_a_form_from_the_page_a_unit_report_and_the_rollup(people, server):
    officer = login(server, "bj_officer")
    page = officer.get("/direct-reports")
    assert page.status_code == 200 and 'data-unit-picker="/org/unit-picker"' in page.text
    form = {"csrf_token": csrf_from(page.text), "policy_name": "新出台的留抵退税政策", "working_days": "20",
            "unit_a": "110101", "units": ""}
    refused = officer.post("/direct-reports", data=form)  # 20 working days from 2026-12-07 run into 2027
    assert refused.status_code == 400 and "2027年的工作日历尚未导入" in refused.text
    with people.read() as s:
        assert s.scalar(select(func.count()).select_from(DirectReportForm)) == 0
    made = officer.post("/direct-reports", data={**form, "working_days": "5", "units": "110100"})
    assert made.status_code == 303, made.text[:300]
    form_id = int(re.search(r"/direct-reports/(\d+)", made.headers["location"])[1])
    rollup = officer.get(made.headers["location"]).text
    assert "已发到 2 个单位的消息" in rollup and "未报送" in rollup

    reporter = login(server, "county_reporter")
    mine = reporter.get("/direct-reports")
    assert mine.status_code == 200 and "新出台的留抵退税政策落实情况直联直报" in mine.text
    own = reporter.get(f"/direct-reports/{form_id}/report")
    assert own.status_code == 200 and 'name="problems"' in own.text
    sent = reporter.post(f"/direct-reports/{form_id}/report", data={
        "csrf_token": csrf_from(own.text), "problems": "退税申请表栏次口径不清", "reactions": "企业希望尽快到账"})
    assert sent.status_code == 303 and "已报送" in reporter.get(sent.headers["location"]).text

    # The city sits above the county and has its own report to write; it may not write the county's — nor may
    # 广东 or the sender: each reaches only its own unit's report.
    gd = login(server, "gd_officer")
    assert gd.get(f"/direct-reports/{form_id}/report").status_code == 403
    assert gd.get(f"/direct-reports/{form_id}").status_code == 403
    assert officer.post(f"/direct-reports/{form_id}/report", data={
        "csrf_token": csrf_from(rollup), "problems": "代填"}).status_code == 403
    with people.read() as s:
        county_report = s.scalar(select(DirectReport).where(DirectReport.submitted_by == "county_reporter"))
        assert county_report.problems == "退税申请表栏次口径不清"
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.outcome == "denied", AuditEntry.actor.in_(["gd_officer", "bj_officer"]))) >= 3

    token = csrf_from(officer.get(f"/direct-reports/{form_id}").text)
    reminded = officer.post(f"/direct-reports/{form_id}/remind", data={"csrf_token": token})
    assert reminded.status_code == 303 and "已催报 1 个单位" in officer.get(reminded.headers["location"]).text
    again = officer.post(f"/direct-reports/{form_id}/remind", data={"csrf_token": token, "unit_code": "110101"})
    assert again.status_code == 400 and "都已报送" in again.text
    assert login(server, "bj_viewer").post(f"/direct-reports/{form_id}/remind", data={
        "csrf_token": token}).status_code == 403
    with people.read() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage).where(InboxMessage.title.like("催报:%"))) == 1
    download = login(server, "bj_viewer").get(f"/direct-reports/{form_id}?format=xlsx")
    book = load_workbook(io.BytesIO(download.content))
    states = {r[0]: r[2] for r in book["各单位报送"].iter_rows(min_row=2, values_only=True)}
    assert states == {"110100": "未报送", "110101": "按时报送"}


def test_the_analysis_page_unweighted_then_weighted_with_a_crosstab_a_theme_and_the_ledger(people, server, tmp_path):
    officer, survey_id, _ = published(server, tmp_path)
    made = officer.post(f"/survey/{survey_id}/invitations", data={
        "csrf_token": csrf_from(officer.get(f"/survey/{survey_id}").text), "labels": "\n".join(f"企业{i}" for i in range(6))})
    tokens = re.findall(r'href="[^"]*/s/([\w-]+)"', made.text)
    with people.write() as s:
        for i, inv in enumerate(s.scalars(select(SurveyInvitation).order_by(SurveyInvitation.id))):
            inv.stratum = "大型" if i < 2 else "小型"
    public = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    for token, q2 in zip(tokens, ["5", "4", "2", "2", "4", "4"], strict=True):
        csrf = csrf_from(public.get(f"/s/{token}").text)
        assert public.post(f"/s/{token}", data={"csrf_token": csrf, "Q1": "是", "Q2": q2, "Q4": "9",
                                                 "Q5": "电子税务局登录太慢"}).status_code == 303

    page = officer.get(f"/survey/{survey_id}/analysis")
    assert page.status_code == 200 and "结果未加权:没有录入各层总体数" in page.text
    saved = officer.post(f"/survey/{survey_id}/population", data={"csrf_token": csrf_from(page.text),
                                                                  "sizes": "大型,1000\n小型,3000"})
    assert saved.status_code == 303
    bad = officer.post(f"/survey/{survey_id}/population", data={"csrf_token": csrf_from(page.text), "sizes": "大型,很多"})
    assert bad.status_code == 400 and "第 1 行" in bad.text
    page = officer.get(f"/survey/{survey_id}/analysis?row=Q2&col=Q4")
    # 大型 mean 4.5 counts a quarter, 小型 mean 3 three quarters: 3.375.
    assert "按总体分层加权" in page.text and "加权平均分 <b>3.38</b>" in page.text
    assert 'id="chi-square"' in page.text and 'class="chart"' in page.text
    assert 'name="measures" multiple' in page.text and "电子税务局登录太慢" in page.text

    linked = officer.post(f"/survey/{survey_id}/themes", data={"csrf_token": csrf_from(page.text),
                                                               "label": "电子税务局登录太慢", "terms": "登录", "size": "6",
                                                               "measures": ["28", "5"]})
    assert linked.status_code == 303
    viewer = login(server, "bj_viewer")
    assert viewer.post(f"/survey/{survey_id}/themes", data={"csrf_token": csrf_from(page.text), "label": "x",
                                                            "measures": ["5"]}).status_code == 403
    office = login(server, "bj_office")
    page = office.get(f"/survey/{survey_id}/analysis")
    assert "第5条、第28条" in page.text
    handed = office.post(f"/survey/{survey_id}/findings", data={
        "csrf_token": csrf_from(page.text), "text": "电子税务局登录太慢", "measure_no": "28", "unit_code": "110101",
        "deadline": "2026-12-31"})
    assert handed.status_code == 303 and handed.headers["location"].startswith("/ledger/assignments/")

    xlsx = viewer.get(f"/survey/{survey_id}/analysis?row=Q2&col=Q4&format=xlsx")
    assert xlsx.status_code == 200 and "分层与权数" in load_workbook(io.BytesIO(xlsx.content)).sheetnames
    pdf = viewer.get(f"/survey/{survey_id}/analysis?format=pdf")
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"
    assert login(server, "gd_officer").get(f"/survey/{survey_id}/analysis").status_code == 403
