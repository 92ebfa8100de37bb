"""The review queue over HTTP at the size of a real office's (issue 14, item 8), and the assign and break-down forms
shown again when refused (item 5)."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

from openpyxl import load_workbook
from sqlalchemy import select

from chunfeng.ledger import reporting
from chunfeng.ledger import services as ledger
from chunfeng.ledger.models import Assignment, ProgressReport
from chunfeng.ledger.services import Terms
from chunfeng.org.models import AuditEntry
from tests.conftest import csrf_from, login, person

DEADLINE = date.today() + timedelta(days=200)


def crowded(db, first: int = 55, second: int = 3) -> dict[str, list[int]]:
    """Measures 1..first reported by 甲市一县, 1..second by 甲市二县: more than a page waits at 甲市."""
    with db.write() as s:
        ledger.assign_bulk(session=s, actor=person(s, "nat_office"), level="county", measure_nos=list(range(1, first + 1)),
                           terms=Terms(deadline=DEADLINE, start_date=date.today() - timedelta(days=60)))
    reports: dict[str, list[int]] = {"110101": [], "110102": []}
    with db.write() as s:
        for code, who, count in (("110101", "county_reporter", first), ("110102", "county2_reporter", second)):
            held = s.scalars(select(Assignment).where(Assignment.unit.has(code=code), Assignment.measure_no <= count)
                             .order_by(Assignment.measure_no))
            for a in held:
                reports[code].append(reporting.submit_report(session=s, actor=person(s, who), assignment_id=a.id,
                                                          status="in_progress", percent=20,
                                                          narrative=f"第{a.measure_no}条进展").id)
    return reports


def rows(page: str) -> list[str]:
    return re.findall(r'name="reports" value="(\d+):\d+"', page)


def test_filters_survive_paging_and_export(bureau, server):
    reports = crowded(bureau)
    office = login(server, "city_office")
    everything = office.get("/ledger/review").text
    assert "第 1 / 2 页,共 58 条" in everything
    # The filter form sends its empty choices too: they mean "all", not a bad request.
    page1 = office.get("/ledger/review", params={"unit": "110101", "measure": "", "category": "", "period": ""}).text
    assert "共 55 条" in page1 and "甲市二县税务局</td>" not in page1
    next_link = re.search(r'<a href="([^"]+)"[^>]*>下一页', page1)[1].replace("&amp;", "&")
    assert next_link == "/ledger/review?unit=110101&page=2"
    page2 = office.get(next_link).text
    assert len(rows(page2)) == 5 and "甲市二县税务局</td>" not in page2 and "第 2 / 2 页" in page2
    # Measures by number and title; the unit and measure options say how many wait.
    with bureau.read() as s:
        title = s.scalar(select(Assignment).where(Assignment.measure_no == 3)).measure.text
    assert f"第 3 条</a> {title[:20]}" in page1 and "甲市一县税务局(55)" in page1
    one = office.get("/ledger/review", params={"unit": "110102", "measure": 2}).text
    assert rows(one) == [str(reports["110102"][1])] and 'value="2" selected' in one
    with bureau.read() as s:
        category = s.scalar(select(Assignment.category_no).where(Assignment.measure_no == 54))
        in_category = s.scalar(select(Assignment.measure_no).where(Assignment.category_no == category)
                               .order_by(Assignment.measure_no).limit(1))
    by_category = office.get("/ledger/review", params={"category": category}).text
    assert f"第 {in_category} 条" in by_category and "第 1 条</a>" not in by_category
    assert 'href="/ledger/review?unit=110101&amp;export=true"' in page1
    exported = office.get("/ledger/review", params={"unit": "110101", "export": "true"})
    sheet = load_workbook(io.BytesIO(exported.content)).active
    assert sheet.max_row == 56 and {row[0] for row in sheet.iter_rows(min_row=2, values_only=True)} == {"甲市一县税务局"}
    assert office.get("/ledger/review", params={"measure": "9" * 30}).status_code == 400
    assert office.get("/ledger/review", params={"unit": "999999"}).status_code == 404
    assert office.get("/ledger/review", params={"unit": "440000"}).status_code == 403


def test_evidence_links_in_the_queue(bureau, server):
    with bureau.write() as s:
        for who, code in (("nat_office", "110000"), ("bj_office", "110100"), ("city_office", "110101")):
            aid = ledger.assign(session=s, actor=person(s, who), measure_no=54, unit_code=code,
                                terms=Terms(deadline=DEADLINE, start_date=date.today() - timedelta(days=60))).id
    reporter = login(server, "county_reporter")
    pdf = b"%PDF-1.4\n%%EOF\n"
    sent = reporter.post(f"/ledger/assignments/{aid}/reports",
                         data={"csrf_token": csrf_from(reporter.get(f"/ledger/assignments/{aid}").text),
                               "status": "in_progress", "percent": "30", "narrative": "见附件"},
                         files=[("evidence", ("座谈会纪要.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"))])
    assert sent.status_code == 303
    queue = login(server, "city_office").get("/ledger/review").text
    link = re.search(r'href="(/ledger/evidence/\d+)" download>座谈会纪要.pdf', queue)[1]
    assert login(server, "city_office").get(link).content == pdf
    assert login(server, "gd_office").get(link).status_code == 403  # the link is no way around the access check


def test_batch_approval(bureau, server):
    reports = crowded(bureau, first=4, second=2)
    office = login(server, "city_office")
    page = office.get("/ledger/review", params={"unit": "110101"}).text
    picks = re.findall(r'name="reports" value="(\d+:\d+)"', page)
    stale_id, version = picks[2].split(":")
    picks[2] = f"{stale_id}:{int(version) + 1}"  # as if the county resubmitted it while the page was open
    done = office.post("/ledger/review/batch", data={"csrf_token": csrf_from(page), "reports": picks[:3],
                                                     "comment": "同意", "unit": "110101", "page": "1"})
    assert done.status_code == 200
    assert "已批量通过 2 份报告" in done.text
    assert re.search(rf"甲市一县税务局 第 \d+ 条 \S+ 的报告\(编号 {stale_id}\):[^<]*刷新", done.text)
    assert rows(done.text) == [stale_id, str(reports["110101"][3])]  # still filtered to 甲市一县
    with bureau.read() as s:
        states = {r.id: r.state for r in s.scalars(select(ProgressReport))}
    assert [states[i] for i in reports["110101"]] == ["approved", "approved", "submitted", "submitted"]
    assert {states[i] for i in reports["110102"]} == {"submitted"}
    # Nothing done: the answer is the refusal's status, and the page still offers the queue.
    again = office.post("/ledger/review/batch", data={"csrf_token": csrf_from(page), "reports": picks[:1]})
    assert again.status_code == 400 and "只有待审核的报告可以审核" in again.text and "通过勾选的报告" in again.text
    for bad in ("x:1", "9" * 30 + ":1", f"{stale_id}:" + "9" * 30):
        assert office.post("/ledger/review/batch", data={"csrf_token": csrf_from(page), "reports": [bad]}).status_code == 400
    other = login(server, "bj_office")
    refused = other.post("/ledger/review/batch", data={"csrf_token": csrf_from(other.get("/ledger/review").text),
                                                       "reports": [picks[3]]})
    assert refused.status_code == 403 and f"(编号 {picks[3].split(':')[0]}):只有直属上级单位" in refused.text
    with bureau.read() as s:
        assert s.scalar(select(AuditEntry.outcome).where(AuditEntry.actor == "bj_office",
                                                         AuditEntry.action == "ledger.report.approved")) == "denied"


def field_error(page: str, name: str) -> str:
    found = re.search(rf'id="error-{name}">([^<]*)<', page)
    return found[1] if found else ""


def test_assign_form_keeps_the_input_and_names_the_field(bureau, server):
    office = login(server, "bj_office")
    token = csrf_from(office.get("/ledger/assign").text)
    typed = {"csrf_token": token, "target": "unit", "unit": "110010", "measures": "54", "deadline": DEADLINE.isoformat(),
             "owner": "李四", "cycle": "quarterly"}
    mistyped = office.post("/ledger/assign", data=typed)
    assert mistyped.status_code == 404 and "没有代码为“110010”的单位" in field_error(mistyped.text, "unit")
    form = mistyped.text.split('action="/ledger/assign"', 1)[1]
    assert 'name="unit" value="110010"' in form and 'value="54"' in form and 'value="李四"' in form
    assert '<option value="quarterly" selected>' in form and 'value="unit" checked' in form
    elsewhere = office.post("/ledger/assign", data={**typed, "unit": "440000"})
    assert elsewhere.status_code == 403 and field_error(elsewhere.text, "unit")
    with bureau.read() as s:
        assert s.scalar(select(AuditEntry.outcome).where(AuditEntry.actor == "bj_office",
                                                         AuditEntry.action == "access.denied")) == "denied"
    bad_day = office.post("/ledger/assign", data={**typed, "unit": "110100", "deadline": "2022-13-01"})
    assert bad_day.status_code == 400 and "完成时限" in field_error(bad_day.text, "deadline")
    bad_measure = office.post("/ledger/assign", data={**typed, "unit": "110100", "measures": "54, 999"})
    assert bad_measure.status_code == 404 and "999" in field_error(bad_measure.text, "measures")
    with bureau.read() as s:
        assert s.scalar(select(Assignment.id)) is None  # nothing was assigned on any refusal


def test_break_down_form_keeps_the_input(bureau, server):
    with bureau.write() as s:
        bj = ledger.assign(session=s, actor=person(s, "nat_office"), measure_no=82, unit_code="110000",
                           terms=Terms(deadline=DEADLINE)).id
    province = login(server, "bj_office")
    page = province.get(f"/ledger/assignments/{bj}").text
    late = (DEADLINE + timedelta(days=1)).isoformat()
    refused = province.post(f"/ledger/assignments/{bj}/break-down",
                            data={"csrf_token": csrf_from(page), "units": ["110200"], "deadline": late, "owner": "赵六"})
    assert refused.status_code == 400 and "不能晚于" in field_error(refused.text, "deadline")
    form = refused.text.split(f'action="/ledger/assignments/{bj}/break-down"', 1)[1].split("</form>", 1)[0]
    assert 'value="110200" checked' in form and 'value="110100" >' in form
    assert f'value="{late}"' in form and 'value="赵六"' in form
    none = province.post(f"/ledger/assignments/{bj}/break-down",
                         data={"csrf_token": csrf_from(page), "deadline": DEADLINE.isoformat()})
    assert none.status_code == 400 and "至少选择" in field_error(none.text, "units")
    ok = province.post(f"/ledger/assignments/{bj}/break-down",
                       data={"csrf_token": csrf_from(page), "units": ["110100"], "deadline": DEADLINE.isoformat()})
    assert ok.status_code == 303
    twice = province.post(f"/ledger/assignments/{bj}/break-down",  # the same form sent again, from an old tab
                          data={"csrf_token": csrf_from(page), "units": ["110100"], "deadline": DEADLINE.isoformat()})
    assert twice.status_code == 400 and "已分配给“北京甲市税务局”" in twice.text.split('class="error"', 1)[1]
