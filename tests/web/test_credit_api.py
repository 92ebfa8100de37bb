"""The credit JSON API over a real HTTP server, on SQLite and PostgreSQL: the public list of major violators
anonymously, searched and paged like its page; a taxpayer's ratings, the repair applications and the risk tiers
for the officials of the unit's subtree and for the taxpayer itself only. Each refusal as the pages give it:
another taxpayer and a unit outside the subtree are told there is none (404), a role without the permission is
refused (403, in the audit log as denied), an anonymous caller on a signed-in route is asked to log in (401)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select

from chunfeng.credit.models import CreditRisk, Violator
from chunfeng.org.models import AuditEntry, Unit
from tests.conftest import login
from tests.credit.test_repair import file, register  # noqa: F401  (the fixture)
from tests.credit.test_services import A, B, code

TODAY = date.today()


@pytest.fixture
def credit(register, add_users, tmp_path):  # noqa: F811
    db = register
    add_users({"county_agent": ("110101", ["agent"])})
    with db.write() as s:
        county = s.scalar(select(Unit).where(Unit.code == "110101"))
        county2 = s.scalar(select(Unit).where(Unit.code == "110102"))
        s.add_all([Violator(credit_code=code(100 + n), name=f"失信公司{n:02d}", unit=county, case_nature="偷税",
                            facts="虚假申报", amount_unpaid=Decimal("1000000.50"), amount_penalty=Decimal("500000"),
                            published_on=TODAY - timedelta(days=n + 1), off_on=TODAY + timedelta(days=365),
                            removal_note="") for n in range(7)])
        s.add(Violator(credit_code=code(200), name="已撤出公司", unit=county, case_nature="偷税", facts="",
                       amount_unpaid=Decimal("1"), amount_penalty=Decimal("1"), published_on=TODAY - timedelta(days=30),
                       off_on=TODAY + timedelta(days=30), removed_on=TODAY, removal_reason="paid", removal_note="缴清"))
        s.add_all([CreditRisk(credit_code=A, name="甲公司", unit=county, tier="高", indicators=["近12个月逾期申报"]),
                   CreditRisk(credit_code=B, name="乙公司", unit=county, tier="低", indicators=[]),
                   CreditRisk(credit_code=code(9), name="丙公司", unit=county2, tier="中", indicators=["样例"])])
    repair_id = file(db, "payer", tmp_path)
    return db, repair_id


def denied(db, username: str) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "access.denied", AuditEntry.outcome == "denied", AuditEntry.actor == username))


def test_public_violator_list_anonymously_paged_and_searched(credit, server):
    with httpx.Client(base_url=server) as anonymous:
        first = anonymous.get("/api/credit/violators", params={"per_page": 3})
        assert first.status_code == 200 and first.headers["content-type"].startswith("application/json")
        body = first.json()
        assert (body["total"], body["total_exact"], body["per_page"], body["previous"]) == (7, True, 3, None)
        assert [v["name"] for v in body["items"]] == ["失信公司00", "失信公司01", "失信公司02"]  # newest first
        assert body["items"][0]["amount_unpaid"] == "1000000.50" and body["items"][0]["credit_code"] == code(100)
        # Keyset paging: a page's `next` is the following page's `after`, its `previous` the one above's `before`.
        second = anonymous.get("/api/credit/violators", params={"per_page": 3, "after": body["next"]}).json()
        assert [v["name"] for v in second["items"]] == ["失信公司03", "失信公司04", "失信公司05"]
        last = anonymous.get("/api/credit/violators", params={"per_page": 3, "after": second["next"]}).json()
        assert [v["name"] for v in last["items"]] == ["失信公司06"] and last["next"] is None
        back = anonymous.get("/api/credit/violators", params={"per_page": 3, "before": last["previous"]}).json()
        assert back["items"] == second["items"] and back["next"] == second["next"]
        top = anonymous.get("/api/credit/violators", params={"per_page": 3, "before": back["previous"]}).json()
        assert top["items"] == body["items"] and top["previous"] is None
        # A cursor from a hand-edited or truncated link is refused naming it, never a 500 or a silent first page.
        for params in ({"after": "2026-12-01"}, {"after": "2026-13-01.5"}, {"before": "x.1"},
                       {"after": "2026-12-01.1'--"}, {"after": "0000-01-01.1"}, {"after": "9999-12-31.99999999999999"},
                       {"after": body["next"], "before": body["next"]}):
            refused = anonymous.get("/api/credit/violators", params=params)
            assert refused.status_code == 400, params
            assert ("after" in refused.json()["detail"] or "before" in refused.json()["detail"]), params
        huge = anonymous.get("/api/credit/violators", params={"after": "9999-12-31.999999999"})
        assert huge.status_code == 200 and len(huge.json()["items"]) == 7
        found = anonymous.get("/api/credit/violators", params={"q": "公司03"}).json()
        assert found["total"] == 1 and found["items"][0]["name"] == "失信公司03"
        by_code = anonymous.get("/api/credit/violators", params={"q": code(104)[:12].lower()}).json()
        assert by_code["total"] == 7  # a code's start, any case
        assert "已撤出公司" not in anonymous.get("/api/credit/violators", params={"q": "已撤出"}).text
        # The page shows the same entries.
        page = anonymous.get("/credit/violators", params={"q": "公司03"}).text
        assert "失信公司03" in page and "失信公司04" not in page
        bad = anonymous.get("/api/credit/violators", params={"per_page": 0})
        assert bad.status_code == 400 and "per_page" in bad.json()["detail"]


SIGNED_IN = ("/api/credit/taxpayers/{A}", "/api/credit/repairs", "/api/credit/repairs/{id}", "/api/credit/risk")


def test_officials_see_their_subtree(credit, server):
    db, repair_id = credit
    for username in ("county_officer", "city_officer"):  # the unit and the one above it
        official = login(server, username)
        taxpayer = official.get(f"/api/credit/taxpayers/{A.lower()}").json()
        assert taxpayer["credit_code"] == A and taxpayer["ratings"][0]["level"] == "B"
        assert taxpayer["ratings"][0]["deductions"] == {"未按期申报": 5.0, "发票违规": 20.0}
        queue = official.get("/api/credit/repairs").json()
        assert queue["total"] == 1 and queue["items"][0]["id"] == repair_id
        one = official.get(f"/api/credit/repairs/{repair_id}").json()
        assert (one["state"], one["state_name"], one["credit_code"], one["unit"]) == ("pending", "待核定", A, "110101")
    county, city = login(server, "county_officer"), login(server, "city_officer")
    risks = county.get("/api/credit/risk").json()
    assert [r["credit_code"] for r in risks["items"]] == [A, B]  # the other county's is not the county's
    assert risks["items"][0]["indicators"] == ["近12个月逾期申报"] and risks["items"][0]["flag"]
    assert county.get("/api/credit/risk", params={"tier": "低"}).json()["total"] == 1
    # The city sees both counties, 高 before 中 before 低 (not the characters' order, which puts 低 before 中).
    assert [r["tier"] for r in city.get("/api/credit/risk").json()["items"]] == ["高", "中", "低"]


def test_a_unit_outside_the_subtree_is_told_there_is_none(credit, server):
    db, repair_id = credit
    neighbour = login(server, "county2_officer")
    missing = neighbour.get(f"/api/credit/taxpayers/{A}")
    assert missing.status_code == 404 and missing.json()["detail"] == f"没有信用代码为 {A} 的纳税缴费信用记录"
    gone = neighbour.get(f"/api/credit/repairs/{repair_id}")
    assert gone.status_code == 404 and gone.json()["detail"] == f"没有编号为 {repair_id} 的信用修复申请"
    assert neighbour.get("/api/credit/repairs").json()["total"] == 0
    risks = neighbour.get("/api/credit/risk").json()
    assert [r["credit_code"] for r in risks["items"]] == [code(9)]
    assert denied(db, "county2_officer") == 0  # not a refused permission: there is nothing of theirs


def test_a_taxpayer_sees_only_itself(credit, server):
    db, repair_id = credit
    payer = login(server, "payer")
    assert payer.get(f"/api/credit/taxpayers/{A}").json()["ratings"][0]["year"] == 2025
    own = payer.get("/api/credit/repairs").json()
    assert own["total"] == 1 and own["items"][0]["id"] == repair_id
    assert payer.get(f"/api/credit/repairs/{repair_id}").status_code == 200
    assert payer.get(f"/api/credit/taxpayers/{B}").status_code == 404
    other = login(server, "other_payer")
    assert other.get(f"/api/credit/taxpayers/{A}").status_code == 404
    refused = other.get(f"/api/credit/repairs/{repair_id}")
    assert refused.status_code == 404 and "信用修复申请" in refused.json()["detail"]
    assert other.get("/api/credit/repairs").json()["total"] == 0
    # The risk tiers are the officials' (measure 95's warnings): a taxpayer is refused, and that is audited.
    risk = other.get("/api/credit/risk")
    assert risk.status_code == 403 and "查看纳税缴费信用" in risk.json()["detail"]
    assert denied(db, "other_payer") == 1


def test_anonymous_and_roles_without_the_permission_are_refused(credit, server):
    db, repair_id = credit
    with httpx.Client(base_url=server) as anonymous:
        for path in SIGNED_IN:
            response = anonymous.get(path.format(A=A, id=repair_id))
            assert response.status_code == 401 and response.json() == {"detail": "请先登录"}, path
    agent = login(server, "county_agent")
    for path in SIGNED_IN:
        response = agent.get(path.format(A=A, id=repair_id))
        assert response.status_code == 403 and "甲公司" not in response.text, path
    assert denied(db, "county_agent") == len(SIGNED_IN)


def test_what_no_database_stores_is_not_a_500(credit, server):
    """A NUL character, which PostgreSQL refuses in a string, in the search and in the code named by the path."""
    db, repair_id = credit
    with httpx.Client(base_url=server) as anonymous:
        searched = anonymous.get("/api/credit/violators", params={"q": "公司\x00"})
        assert searched.status_code < 500 and searched.headers["content-type"].startswith("application/json")
    official = login(server, "county_officer")
    for path in (f"/api/credit/taxpayers/{A}%00", "/api/credit/taxpayers/%00"):
        refused = official.get(path)  # none there (SQLite), or refused before the database is asked (PostgreSQL)
        assert refused.status_code in (400, 404) and refused.json()["detail"], path
    assert official.get("/api/credit/risk", params={"q": "\x00"}).status_code < 500
    assert official.get("/api/credit/repairs", params={"q": "\x00"}).status_code < 500
