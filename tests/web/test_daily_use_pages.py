"""Issue 14, items 7, 10 and 13 over HTTP: pickers instead of typed codes, finding an item again by number and
phone, the inbox sender in words, the briefing's way back, the anonymous asker's follow-up link."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from chunfeng.appeals.models import Appeal
from chunfeng.consult import services as consult
from chunfeng.consult.models import Handoff
from chunfeng.inbox import services as inbox
from chunfeng.org.models import Unit
from chunfeng.org.regions import document, region_name, regions
from tests.conftest import csrf_from, login, person
from tests.consult.test_services import kb  # noqa: F401  (the fixture)
from tests.web.test_appeals_pages import file_complaint, office  # noqa: F401  (the fixture)


def test_the_shipped_regions_are_every_province_prefecture_and_county():
    provinces = regions()
    assert len(provinces) == 31  # the five cities under separate state planning are cities of their province
    prefectures = [c for p in provinces if p.code[:2] not in ("11", "12", "31", "50") for c, _ in p.cities
                   if c[2:4] != "90"]  # x90xxx: county-level places directly under their province (仙桃, 济源)
    assert len(prefectures) == 333  # 293 cities, 7 地区, 30 自治州, 3 盟 (民政部, end of 2022 and 2023)
    counties = [c for p in provinces for c, _ in p.cities if p.code[:2] in ("11", "12", "31", "50") or c[2:4] == "90"]
    counties += [c for p in provinces for rows in p.counties.values() for c, _ in rows]
    # 民政部's 2844 county-level units at the end of 2023, then 和康县 and 和安县 (2024) and 两江新区 for 江北区 and
    # 渝北区 (2025): the count the data file states beside its source
    assert len(counties) == len(set(counties)) == 2845
    assert region_name("130100") == "河北省 石家庄市" and region_name("110105") == "北京市 朝阳区"
    assert region_name("130102") == "河北省 石家庄市 长安区" and region_name("429004") == "湖北省 仙桃市"
    assert region_name("440300") == "广东省 深圳市" and region_name("999999") == ""
    # the changes the file names are applied (a list right on its date, not the base it was built from)
    assert region_name("500157") == "重庆市 两江新区" and region_name("500105") == region_name("500112") == ""
    assert region_name("653228") == "新疆维吾尔自治区 和田地区 和康县" and region_name("540481").endswith("米林市")
    doc = document()
    assert doc["as_of"] == "2025-12-31" and "民政部" in doc["source"] and "岑岭县" in doc["review"]
    applied = {code for change in doc["changes"] for code in change.get("added", [])}
    assert all(region_name(code) for code in applied)
    assert not any(region_name(code) for change in doc["changes"] for code in change.get("removed", []))


def test_the_complaint_form_offers_regions_not_a_code_box(office, server):  # noqa: F811
    page = httpx.get(f"{server}/appeals/new").text
    select_ = re.search(r'<select name="region" data-region-picker>(.*?)</select>', page, re.S)[1]
    assert '<optgroup label="河北省">' in select_ and '<option value="130100" >河北省 石家庄市</option>' in select_
    assert 'pattern="\\d{6}"' not in page and "6位行政区划代码" not in page
    # What the picker sends routes the item: 110100 is a city bureau of the test tree.
    client, sent = file_complaint(office_server := server, region="110100")
    assert sent.status_code == 303
    with office.read() as s:
        appeal = s.scalar(select(Appeal).order_by(Appeal.id.desc()))
        assert appeal.region == "110100" and s.get(Unit, appeal.unit_id).code == "110100"
    tracked = client.get(sent.headers["location"]).text
    link = re.search(r'id="track-link"[^>]*>([^<]+)<', tracked)[1]
    assert link.startswith(office_server + "/appeals/track/")  # the whole address, not a path to guess the host of
    assert httpx.get(link).status_code == 200
    # A refused form keeps the region chosen.
    _, refused = file_complaint(server, region="130100", phone="", email="")
    assert refused.status_code == 400 and '<option value="130100" selected>' in refused.text


def test_the_complaint_form_offers_counties_and_files_their_code(office, server):  # noqa: F811
    """Issue 14 §7: province → city → county. A county's 6-digit code is what the form sends and keeps; it routes
    to the nearest bureau above it (here the province's: the test tree has no 广州 bureau)."""
    page = httpx.get(f"{server}/appeals/new").text
    select_ = re.search(r'<select name="region" data-region-picker>(.*?)</select>', page, re.S)[1]
    assert '<option value="440106" >广东省 广州市 天河区</option>' in select_
    assert '<option value="500157" >重庆市 两江新区</option>' in select_ and 'value="500105"' not in select_
    assert select_.index('value="440100"') < select_.index('value="440106"') < select_.index('value="440200"')
    client, sent = file_complaint(server, region="440106")
    assert sent.status_code == 303
    with office.read() as s:
        appeal = s.scalar(select(Appeal).order_by(Appeal.id.desc()))
        assert appeal.region == "440106" and s.get(Unit, appeal.unit_id).code == "440000"
    _, refused = file_complaint(server, region="440106", phone="", email="")
    assert refused.status_code == 400 and '<option value="440106" selected>' in refused.text
    _, typed = file_complaint(server, region="4401")  # a code typed by hand is still checked, not a 500
    assert typed.status_code == 400 and "6 位行政区划代码" in typed.text


def test_a_citizen_finds_the_item_again_by_number_and_phone(office, server):  # noqa: F811
    client, sent = file_complaint(server, phone="138-0013-8000")
    number = re.search(r'id="number">(\d+)<', client.get(sent.headers["location"]).text)[1]
    with httpx.Client(base_url=server) as someone:
        form = someone.get("/appeals/find").text
        found = someone.post("/appeals/find", data={"csrf_token": csrf_from(form), "number": number,
                                                    "phone": "13800138000"})
        assert found.status_code == 200 and f"<dd>{number}</dd>" in found.text and 'id="by-number"' in found.text
        assert "rate-form" not in found.text and "reopen-form" not in found.text  # those stay with the link
        other_id = f"{number[:8]}{int(number[8:]) + 1:06d}"
        for wrong in ({"number": number, "phone": "13800138001"}, {"number": other_id, "phone": "13800138000"},
                      {"number": "2026", "phone": "13800138000"}, {"number": number, "phone": ""},
                      {"number": "9" * 17, "phone": "13800138000"}):
            refused = someone.post("/appeals/find", data={"csrf_token": csrf_from(form), **wrong})
            assert refused.status_code == 404 and "编号或电话不正确" in refused.text, wrong
            assert f"<dd>{number}</dd>" not in refused.text


def test_the_unit_picker_offers_only_the_users_subtree(office, server, add_users):  # noqa: F811
    add_users({"gd_view": ("440000", ["viewer"])})
    handler = login(server, "handler")  # 北京 (110000)
    first = handler.get("/org/unit-picker").text
    assert '<option value="110000">' in first and '<option value="110100">' in first
    assert '<option value="110101">' in handler.get("/org/unit-picker", params={"q": "1101"}).text
    assert "440000" not in handler.get("/org/unit-picker", params={"q": "广东"}).text
    assert "<option" not in handler.get("/org/unit-picker", params={"q": "44"}).text
    assert "110100" not in login(server, "gd_view").get("/org/unit-picker", params={"q": "11"}).text
    appeal_form = handler.get("/appeals/analysis").text
    assert 'data-unit-picker="/org/unit-picker"' in appeal_form and 'list="unit-units"' in appeal_form
    assert "春风 Chunfeng 生成" not in appeal_form and "国家税务总局北京市税务局编制" in appeal_form  # names its issuer
    assert httpx.get(f"{server}/org/unit-picker").status_code in (303, 401)


def test_the_inbox_names_the_sender_in_chinese(office, server):  # noqa: F811
    with office.write() as s:
        unit = s.scalar(select(Unit).where(Unit.code == "110000"))
        inbox.post(s, unit=unit, kind="reminder", title="系统提醒")
        inbox.post(s, unit=unit, kind="notice", title="同事来信", sender=person(s, "agent").username)
    page = login(server, "handler").get("/inbox").text
    senders = re.findall(r'class="sender">([^<]*)<', page)
    assert sorted(senders) == sorted(["系统通知", "国家税务总局"]) and "· system" not in page


def test_the_anonymous_asker_reads_the_agents_answer_by_the_follow_up_link(kb, server):  # noqa: F811
    with httpx.Client(base_url=server) as asker:
        page = asker.get("/ask", params={"q": "我家小狗的疫苗怎么打", "region": "110000"}).text
        query_id = re.search(r'name="query_id" value="(\d+)"', page)[1]
        token = re.search(r'name="token" value="([^"]+)"', page)[1]
        made = asker.post("/ask/handoff", data={"csrf_token": csrf_from(page), "query_id": query_id, "token": token})
        followup = made.headers["location"]
        assert followup.startswith(f"/ask/followup/{query_id}/")
        first = asker.get(followup).text
        assert 'id="followup-link"' in first and 'id="handoff-state"' in first
    with kb.write() as s:
        handoff = s.scalar(select(Handoff))
        consult.answer_handoff(session=s, actor=person(s, "bj_agent"), handoff_id=handoff.id, answer="请咨询兽医")
    later = httpx.get(f"{server}{followup.split('?')[0]}").text
    assert re.search(r'id="handoff-answer">请咨询兽医<', later)
    assert httpx.get(f"{server}/ask/followup/{query_id}/guess").status_code == 403


def test_the_briefing_page_has_a_way_back_and_names_its_issuer(office, server, add_users):  # noqa: F811
    add_users({"bj_viewer": ("110000", ["viewer"])})
    page = login(server, "bj_viewer").get("/ledger/briefing").text
    assert 'id="briefing-back" href="/ledger/units/110000"' in page or 'href="/ledger/units/110000" id="briefing-back"' in page
    assert "春风 Chunfeng 生成" not in page and "国家税务总局北京市税务局编制" in page
