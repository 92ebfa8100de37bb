"""Credit pages over HTTP: the register's import by upload (a job with a progress page), refused whole with its rows
named or, outside the importer's subtree, with a 403 in the audit log; a taxpayer's history for their bureau and for
themselves only; the public list of major violators anonymously, searched, paged and exported; its management."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.credit import services
from chunfeng.credit.models import CreditRating, Violator
from chunfeng.db import utcnow
from chunfeng.jobs import local_day
from chunfeng.org.access import SystemActor
from chunfeng.org.models import AuditEntry
from tests.conftest import csrf_from, exported, finished, login, person
from tests.credit.test_services import HEADER, A, B, code

TODAY = date.today()
LAST = TODAY.year - 1


@pytest.fixture
def site(bureau, add_users):
    add_users({"city_officer": ("110100", ["service_officer"]), "county_officer": ("110101", ["service_officer"]),
               "county2_officer": ("110102", ["service_officer"]), "payer": ("110000", ["taxpayer"])})
    with bureau.write() as s:
        person(s, "payer").taxpayer_code = A
    return bureau


def upload(client, token, body: str):
    return client.post("/credit/import", data={"csrf_token": token},
                       files={"file": ("ratings.csv", (HEADER + body).encode(), "text/csv")})


def test_import_and_history_pages(site, server):
    db = site
    officer = login(server, "city_officer")
    token = csrf_from(officer.get("/credit").text)
    good = f"{A},甲公司,{LAST - 1},92,A,,110101\n{A},甲公司,{LAST},85.5,B,未按期申报:5;发票违规:9.5,110101\n" \
           f"{B},乙公司,{LAST},35,D,逃避缴纳税款:65,110102\n"
    page = finished(officer, upload(officer, token, good))
    assert page.status_code == 200 and 'href="/credit?imported=3"' in page.text
    listing = officer.get("/credit", params={"level": "D"}).text
    assert "乙公司" in listing and "甲公司" not in listing
    history = officer.get(f"/credit/taxpayers/{A}")
    assert history.status_code == 200 and "未按期申报:扣 5.0 分" in history.text and f"<td>{LAST - 1}</td>" in history.text

    # The neighbouring county is told there is nothing, not that it may not look.
    neighbour = login(server, "county2_officer")
    assert neighbour.get(f"/credit/taxpayers/{A}").status_code == 404
    assert "甲公司" not in neighbour.get("/credit").text

    bad = f"{A},甲公司,{TODAY.year},92,A,,110101\n{B},,{LAST},101,Z,,110102\n"
    refused = finished(officer, upload(officer, token, bad))
    assert refused.status_code == 400
    for expected in (f"第 2 行:评价年度 {TODAY.year}", "第 3 行:纳税人名称为空", "第 3 行:评价得分“101”", "第 3 行:信用级别“Z”"):
        assert expected in refused.text, expected

    county = login(server, "county_officer")
    ctoken = csrf_from(county.get("/credit").text)
    outside = finished(county, upload(county, ctoken, f"{code(7)},丙公司,{LAST},80,B,,110102\n"))
    assert outside.status_code == 403 and "不在您的管辖范围内" in outside.text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditRating)) == 3
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "access.denied", AuditEntry.outcome == "denied", AuditEntry.actor == "county_officer")) == 1

    # Measure 121: the A-level list of the officer's subtree for a partner department, as a task; audited.
    register = officer.get("/credit").text
    assert '<form class="search" method="post" action="/credit/a-list.xlsx" id="a-list">' in register
    otoken = csrf_from(register)
    assert officer.get("/credit/a-list.xlsx", params={"year": LAST - 1, "department": "market"}).status_code == 405
    assert officer.post("/credit/a-list.xlsx", data={"year": LAST - 1, "department": "market"}).status_code == 403
    done, file = exported(officer, officer.post("/credit/a-list.xlsx", data={"csrf_token": otoken, "year": LAST - 1,
                                                                             "department": "market"}))
    assert "已导出 1 户A级纳税人" in done.text
    rows = list(load_workbook(io.BytesIO(file.content)).active.iter_rows(values_only=True))
    assert rows[1][:4] == (A, "甲公司", LAST - 1, "A级") and len(rows) == 2
    assert officer.post("/credit/a-list.xlsx", data={"csrf_token": otoken, "year": LAST,
                                                     "department": "police"}).status_code == 400
    done, file = exported(neighbour, neighbour.post("/credit/a-list.xlsx", data={
        "csrf_token": csrf_from(neighbour.get("/credit").text), "year": LAST - 1, "department": "hrss"}))
    assert "已导出 0 户" in done.text
    with db.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit.alist.exported",
                                                  AuditEntry.actor == "city_officer"))
        assert entry is not None and "市场监管部门" in entry.after

    viewer = login(server, "viewer")  # sees the register, imports nothing
    assert viewer.get("/credit").status_code == 200
    assert upload(viewer, csrf_from(viewer.get("/credit").text), good).status_code == 403


def test_a_taxpayer_sees_only_their_own_history(site, server):
    with site.write() as s:
        s.add_all([CreditRating(credit_code=A, name="甲公司", year=LAST, score=95, level="A", deductions={},
                                unit=person(s, "county_officer").unit),
                   CreditRating(credit_code=B, name="乙公司", year=LAST, score=60, level="C", deductions={},
                                unit=person(s, "county_officer").unit)])
    payer = login(server, "payer")
    mine = payer.get("/credit/mine")
    assert mine.status_code == 303 and mine.headers["location"] == f"/credit/taxpayers/{A}"
    page = payer.get(mine.headers["location"])
    assert page.status_code == 200 and "甲公司" in page.text and "A级" in page.text
    assert payer.get(f"/credit/taxpayers/{B}").status_code == 404
    assert payer.get("/credit").status_code == 403
    with httpx.Client(base_url=server) as anonymous:
        assert anonymous.get(f"/credit/taxpayers/{A}").status_code in (303, 401)


def test_public_list_search_paging_and_export(site, server):
    db = site
    # The day the server counts in, read now (not at import: a run that crosses midnight would disagree), and no
    # entry that comes off within a day of it, so that midnight passing during the test changes nothing.
    today = local_day(utcnow())
    with db.write() as s:
        actor = SystemActor()
        for n in range(51):
            services.add_violator(session=s, actor=actor, credit_code=code(100 + n), name=f"失信{n:02d}公司",
                                  unit_code="110101", case_nature="虚开增值税专用发票", facts="虚开",
                                  amount_unpaid="1000", amount_penalty="500", published_on=today - timedelta(days=n),
                                  off_on=today + timedelta(days=30), today=today)
        services.add_violator(session=s, actor=actor, credit_code=code(300), name="=HYPERLINK(\"http://x\",\"y\")",
                              unit_code="110101", case_nature="偷税", facts="", amount_unpaid="1", amount_penalty="0",
                              published_on=today - timedelta(days=100), off_on=today + timedelta(days=2), today=today)
        gone = services.add_violator(session=s, actor=actor, credit_code=code(301), name="已修复公司", unit_code="110101",
                                     case_nature="偷税", facts="", amount_unpaid="1", amount_penalty="0",
                                     published_on=today - timedelta(days=5), off_on=today + timedelta(days=9), today=today)
        services.remove_violator(session=s, actor=actor, violator_id=gone.id, reason="repaired", note="修复决定", today=today)
    with httpx.Client(base_url=server) as anonymous:
        first = anonymous.get("/credit/violators")
        assert first.status_code == 200 and "共 52 条" in first.text and "失信00公司" in first.text
        assert "已修复公司" not in first.text and "1,000.00" in first.text
        assert 'rel="prev"' not in first.text
        following = re.search(r'href="([^"]*after=[^"]*)" rel="next"', first.text)[1].replace("&amp;", "&")
        second = anonymous.get(following)  # the link as a bookmark keeps it: the cursor is in the query string
        assert "失信00公司" not in second.text and "HYPERLINK" in second.text and "共 52 条" in second.text
        back = re.search(r'href="([^"]*before=[^"]*)" rel="prev"', second.text)[1].replace("&amp;", "&")
        assert "失信00公司" in anonymous.get(back).text
        broken = anonymous.get("/credit/violators", params={"after": "2026-12-01.x"})
        assert broken.status_code == 400 and "翻页参数 after" in broken.text
        found = anonymous.get("/credit/violators", params={"q": "失信07"}).text
        assert "失信07公司" in found and "失信08公司" not in found
        export = anonymous.get("/credit/violators/export.xlsx")
        assert export.status_code == 200
        rows = list(load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
        assert len(rows) == 53 and rows[0][0] == "失信主体名称"
        cell = next(r for r in rows if "HYPERLINK" in str(r[0]))
        assert cell[0].startswith("=HYPERLINK")  # as text: write_table never writes a formula
        assert anonymous.get("/credit/rules").status_code == 200
        catalogue = anonymous.get("/credit/catalogue")
        assert catalogue.status_code == 200 and "重大税收违法失信主体信息" in catalogue.text and "待复核" in catalogue.text
        sheet = load_workbook(io.BytesIO(anonymous.get("/credit/catalogue.xlsx").content)).active
        assert sheet["A1"].value == "信息名称" and sheet.max_row == 4
        assert anonymous.get("/credit/violators/manage", follow_redirects=False).status_code in (303, 401)


def test_managing_the_list(site, server):
    db = site
    county = login(server, "county_officer")
    token = csrf_from(county.get("/credit/violators/manage").text)
    form = {"csrf_token": token, "credit_code": A, "name": "甲公司", "unit_code": "110101", "case_nature": "偷税",
            "facts": "少缴税款", "amount_unpaid": "2000000", "amount_penalty": "1000000",
            "published_on": str(TODAY - timedelta(days=3))}
    no_date = county.post("/credit/violators", data=form)
    assert no_date.status_code == 400 and "请填写撤出日期" in no_date.text
    outside = county.post("/credit/violators", data={**form, "unit_code": "110102", "off_on": str(TODAY + timedelta(days=9))})
    assert outside.status_code == 403
    added = county.post("/credit/violators", data={**form, "off_on": str(TODAY + timedelta(days=9))})
    assert added.status_code == 303
    with db.read() as s:
        entry_id = s.scalar(select(Violator.id))
    neighbour = login(server, "county2_officer")
    ntoken = csrf_from(neighbour.get("/credit/violators/manage").text)
    assert "甲公司" not in neighbour.get("/credit/violators/manage").text
    assert neighbour.post(f"/credit/violators/{entry_id}/remove",
                          data={"csrf_token": ntoken, "reason": "repaired", "note": "x"}).status_code == 404
    assert county.post(f"/credit/violators/{entry_id}/remove",
                       data={"csrf_token": token, "reason": "expired", "note": "x"}).status_code == 400
    assert county.post(f"/credit/violators/{entry_id}/remove",
                       data={"csrf_token": token, "reason": "repaired", "note": "修复决定书 3 号"}).status_code == 303
    page = county.get("/credit/violators/manage").text
    assert "撤出(信用修复)" in page and "提前撤出</button>" not in page
    viewer = login(server, "viewer")
    assert 'href="/credit/violators"' in viewer.get("/plan/measures/120").text  # the measure links what serves it
    assert 'href="/credit/catalogue"' in viewer.get("/plan/measures/116").text
    assert viewer.post("/credit/violators", data={**form, "csrf_token": csrf_from(viewer.get("/credit").text)}).status_code == 403
    with db.read() as s:
        assert s.scalar(select(Violator.removal_reason)) == "repaired"
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("credit.violator.%"))) == 2
