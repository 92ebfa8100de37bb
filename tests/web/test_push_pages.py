"""Policy push over HTTP: catalogue, rule editor, match explorer, campaigns, the taxpayer's message centre
and bill; every refusal by role, region and CSRF."""

from __future__ import annotations

import html
import io
import re
from datetime import date

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.jobs import JobRun
from chunfeng.org.access import SystemActor
from chunfeng.org.models import AuditEntry, Unit, User
from chunfeng.outbox import Delivery
from chunfeng.push import rules, schedule, services, stages, store, synthetic
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage
from chunfeng.settings import Settings
from tests.conftest import TEST_DATA_KEY, csrf_from, exported, finished, login, serving
from tests.push.test_campaigns import Gateway
from tests.push.test_schedule import approve


@pytest.fixture(scope="module")
def taxpayer_store(server_files, tmp_path_factory):
    path = server_files / "taxpayers.duckdb"
    out = tmp_path_factory.mktemp("web-extract")
    synthetic.generate(out, taxpayers=2000, seed=11, claim_rules=services.synthetic_claim_rules())
    store.import_extract(out, path)
    return path


@pytest.fixture
def site(db, add_users, taxpayer_store, _password_hash):
    with db.write() as session:
        services.seed_policies(session)
    add_users({"officer": ("000000", ["service_officer"]), "bj_officer": ("110000", ["service_officer"]),
               "gd_officer": ("440000", ["service_officer"]), "viewer": ("110000", ["viewer"])})
    with store.connect_store(taxpayer_store) as conn:
        codes = [c for (c,) in conn.execute(
            "SELECT r.credit_code FROM registry r JOIN contacts k ON k.credit_code = r.credit_code AND k.role = '法定代表人' "
            "AND k.channel = 'inapp' AND NOT k.opted_out JOIN claims c ON c.credit_code = r.credit_code "
            "WHERE r.region LIKE '11%' AND r.size IN ('小型', '微型') GROUP BY r.credit_code ORDER BY r.credit_code "
            "LIMIT 2").fetchall()]
    with db.write() as session:
        beijing = session.scalar(select(Unit).where(Unit.code == "110000"))
        for name, code in zip(("tp", "tp2"), codes, strict=True):
            session.add(User(username=name, display_name=name, unit=beijing, roles="taxpayer", password_hash=_password_hash,
                             taxpayer_code=code, taxpayer_role="法定代表人"))
    return {"db": db, "store": taxpayer_store, "codes": codes}


def preview_form(client: httpx.Client, url: str) -> dict:
    """The confirmation the campaign's preview page posts: its stage and code, as the page holds them."""
    page = client.get(url + "/preview")
    assert page.status_code == 200, page.text[:500]
    fields = dict(re.findall(r'<input type="hidden" name="(stage|code|csrf_token)" value="([^"]*)"', page.text))
    assert set(fields) == {"stage", "code", "csrf_token"}, page.text[-1500:]
    return fields


def confirm(client: httpx.Client, url: str) -> httpx.Response:
    """Preview the next stage and confirm it, as an official does on the page."""
    return client.post(url + "/run", data=preview_form(client, url))


def _count(store_file, rule: str, region: str = "") -> int:
    where = rules.parse(rule).sql()
    if region:
        where += f" AND region LIKE '{region}%'"
    with store.connect_store(store_file) as conn:
        return conn.execute(f"SELECT count(*) FROM registry WHERE {where}").fetchone()[0]


def test_catalogue_search_and_export(site, server):
    officer = login(server, "officer")
    page = officer.get("/push/policies").text
    assert "XWQY-CIT-2027" in page and "示例内容" in page
    found = officer.get("/push/policies", params={"q": "六税两费"}).text
    assert "LSLF-FJ-2023" in found and "XWQY-CIT-2027" not in found
    book = load_workbook(io.BytesIO(officer.get("/push/policies/export.xlsx").content), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][0] == "编号" and len(rows) - 1 >= 20


def test_the_catalogue_lists_policies_in_force_and_the_ended_ones_apart(site, server):
    """Issue 12: 22 of the 32 shipped policies had ended, listed as if in force."""
    officer = login(server, "officer")
    current = officer.get("/push/policies").text
    assert "XGM-VAT-2027" in current and "XWQY-CIT-2019" not in current and "SBQJ-2021" not in current
    ended = officer.get("/push/policies", params={"standing": "expired", "q": "设备"}).text
    assert "SBQJ-2021" in ended and "已于 2023-12-31 失效" in ended and "SBQJ-2027" not in ended
    assert officer.get("/push/policies", params={"standing": "nonsense"}).status_code == 400


def test_a_campaign_outside_a_policys_validity_is_refused_over_http(site, server):
    bj = login(server, "bj_officer")
    page = bj.get("/push/campaigns").text
    refused = bj.post("/push/campaigns", data={"csrf_token": csrf_from(page), "name": "12月征期提醒", "month": "2026-12",
                                               "policies": ["XWQY-CIT-2019"], "channels": ["inapp"]})
    assert refused.status_code == 400
    assert "XWQY-CIT-2019" in refused.text and "2021年12月31日" in refused.text and "2026年度" in refused.text
    with site["db"].read() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    early = bj.get("/push/policies/LSLF-FJ-2023/match", params={"period": "2022Q2"})
    assert early.status_code == 400 and "2023年1月1日起才施行" in early.text


def test_rule_editor_checks_live_and_saves_with_audit(site, server):
    officer = login(server, "officer")
    page = officer.get("/push/policies/XGM-VAT-2023").text
    token = csrf_from(page)
    rule = 'vat_type == "小规模" and monthly_sales <= 8万'
    ok = officer.post("/push/rules/check", data={"rule": rule}, headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert "规则正确" in ok.text
    assert re.search(r'class="match-count">([\d,]+)<', ok.text)[1].replace(",", "") == str(_count(site["store"], rule))
    bad = officer.post("/push/rules/check", data={"rule": "monthly_sale <= 1"}, headers={"X-CSRF-Token": token})
    assert "第 1 个字符处" in bad.text and "monthly_sales" in bad.text
    refused = officer.post("/push/policies/XGM-VAT-2023/rule", data={"rule": "headcount <=", "csrf_token": token})
    assert refused.status_code == 400 and "规则结尾" in refused.text
    saved = officer.post("/push/policies/XGM-VAT-2023/rule", data={"rule": rule, "csrf_token": token})
    assert saved.status_code == 303
    with site["db"].read() as session:
        assert session.get(Policy, "XGM-VAT-2023").rule == rule
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "push.policy.rule_changed"))
        assert entry.actor == "officer" and "8万" in entry.after


def test_only_national_service_officers_edit_rules_and_forms_need_csrf(site, server):
    officer = login(server, "officer")
    assert officer.post("/push/policies/XGM-VAT-2023/rule", data={"rule": "high_tech"}).status_code == 403
    bj = login(server, "bj_officer")
    page = bj.get("/push/policies/XGM-VAT-2023").text
    assert "保存规则" not in page
    assert bj.post("/push/policies/XGM-VAT-2023/rule",
                   data={"rule": "high_tech", "csrf_token": csrf_from(page)}).status_code == 403
    with site["db"].read() as session:
        assert session.get(Policy, "XGM-VAT-2023").rule != "high_tech"


def test_match_explorer_is_limited_to_the_officers_region(site, server):
    policy = "LSLF-FJ-2022"
    with site["db"].read() as session:
        rule = session.get(Policy, policy).rule
    bj = login(server, "bj_officer")
    page = bj.get(f"/push/policies/{policy}/match").text
    eligible = int(re.search(r'id="eligible">([\d,]+)<', page)[1].replace(",", ""))
    assert eligible == _count(site["store"], rule, "11") > 0
    assert "北京市" in page and "广东省" not in page
    national = login(server, "officer").get(f"/push/policies/{policy}/match").text
    assert int(re.search(r'id="eligible">([\d,]+)<', national)[1].replace(",", "")) == _count(site["store"], rule)
    listing = bj.get(f"/push/policies/{policy}/taxpayers", params={"not_claimed": "true"}).text
    assert "应享未享的纳税人" in listing and "未享受" in listing and "已享受</td>" not in listing
    # The list page's own export form: a POST behind the CSRF token (a task must not start from a link).
    form = re.search(r'<form class="search toolbar" method="post" action="([^"]+/taxpayers/export)">', listing)
    assert form, listing[:2000]
    fields = {"csrf_token": csrf_from(listing), "not_claimed": "false"}
    for purpose in ("", "核对"):  # personal data: a purpose first, refused on the request before any task starts
        unexplained = bj.post(form[1], data={**fields, "purpose": purpose})
        assert unexplained.status_code == 400 and "须写明用途" in unexplained.text
    assert bj.get(f"/push/policies/{policy}/taxpayers", params={"export": "true", "purpose": "核对北京应享政策名单"}
                  ).status_code == 200  # the old link only shows the list now
    assert bj.post(form[1], data={"not_claimed": "false", "purpose": "核对北京应享政策名单"}).status_code == 403
    with site["db"].read() as s:
        assert s.scalar(select(func.count()).select_from(JobRun)) == 0
    started = bj.post(form[1], data={**fields, "purpose": "核对北京应享政策名单"})
    assert started.status_code == 303 and bj.get(started.headers["location"]).status_code == 200
    page, download = exported(bj, started)
    assert f"已导出 {eligible} 户纳税人" in page.text
    link = re.search(r'href="(/jobs/runs/\d+/download)"', page.text)[1]
    assert login(server, "officer").get(link).status_code == 404  # the national officer did not start it
    assert download.status_code == 200 and policy in download.headers["content-disposition"]
    book = load_workbook(io.BytesIO(download.content), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))[1:]
    assert len(rows) == eligible and all(str(r[2]).startswith("11") for r in rows)
    with site["db"].read() as s:
        logged = s.scalars(select(AuditEntry).where(AuditEntry.action == "push.taxpayers.exported")).all()
        assert len(logged) == 1 and logged[0].actor == "bj_officer" and logged[0].source == "127.0.0.1"
        assert '"purpose":"核对北京应享政策名单"' in logged[0].after and f'"rows":{eligible}' in logged[0].after
    assert login(server, "viewer").get(f"/push/policies/{policy}/match").status_code == 403


def test_campaign_from_the_planner_to_the_taxpayers_message_centre(site, server):
    bj = login(server, "bj_officer")
    page = bj.get("/push/campaigns").text
    made = bj.post("/push/campaigns", data={"csrf_token": csrf_from(page), "name": "7月征期提醒", "month": "2022-07",
                                            "policies": ["LSLF-FJ-2022", "XGM-VAT-2021", "JYFJ-MZ-2016"],
                                            "channels": ["inapp"]})
    assert made.status_code == 303
    campaign_url = made.headers["location"].split("?")[0]
    campaign_page = bj.get(campaign_url).text
    assert "2022-07-15" in campaign_page and "待批准·已到期" in campaign_page  # its days are past, none approved
    assert finished(bj, confirm(bj, campaign_url)).status_code == 200
    after = bj.get(campaign_url).text
    assert "已发送" in after
    with site["db"].read() as session:
        sent = session.scalar(select(func.count()).select_from(PushMessage).where(PushMessage.credit_code == site["codes"][0],
                                                                                  PushMessage.role == "法定代表人"))
    assert sent >= 1
    assert login(server, "gd_officer").get(campaign_url).status_code == 403

    tp = login(server, "tp")
    assert tp.get("/").headers["location"] == "/push/inbox"
    inbox = tp.get("/push/inbox").text
    assert inbox.count('class="unread"') == sent
    with site["db"].read() as session:
        mine = session.scalar(select(PushMessage.id).where(PushMessage.credit_code == site["codes"][0]).limit(1))
        other = session.scalar(select(PushMessage.id).where(PushMessage.credit_code != site["codes"][0]).limit(1))
    opened = tp.post(f"/push/inbox/{mine}/read", data={"csrf_token": csrf_from(inbox)})
    assert opened.status_code == 303 and "依据" in tp.get(opened.headers["location"]).text
    assert tp.get("/push/inbox").text.count('class="unread"') == sent - 1
    assert tp.get(f"/push/inbox/{other}").status_code == 404
    assert tp.get("/push/policies").status_code == 403 and tp.get("/plan").status_code == 403
    assert bj.get("/push/inbox").status_code == 403


def test_dividend_bill_for_the_taxpayer_and_the_officer(site, server):
    code = site["codes"][0]
    # 为您减免 is the reductions in force that year; deferrals and earlier deductions are shown apart.
    apart = [p["id"] for p in services.shipped_policies() if p.get("kind", "reduction") != "reduction"]
    with store.connect_store(site["store"]) as conn:
        total = conn.execute("SELECT coalesce(sum(amount), 0) FROM claims WHERE credit_code = ? AND period LIKE '2022%' "
                             "AND NOT list_contains(?, policy)", [code, apart]).fetchone()[0]
    tp = login(server, "tp")
    page = tp.get("/push/bill", params={"year": 2022}).text
    assert re.search(r'id="bill-total">([\d,.]+)<', page)[1] == f"{total:,.2f}"
    assert "出具单位:国家税务总局北京" in page and "春风 Chunfeng 生成" not in page
    pdf = tp.get("/push/bill", params={"year": 2022, "format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    bj = login(server, "bj_officer")
    assert f"{total:,.2f}" in bj.get(f"/push/bills/{code}", params={"year": 2022}).text
    assert login(server, "gd_officer").get(f"/push/bills/{code}", params={"year": 2022}).status_code == 404
    assert tp.get(f"/push/bills/{site['codes'][1]}", params={"year": 2022}).status_code == 404  # not disclosed

    page = bj.get("/push/campaigns").text
    for year in ("1128206633907", "1999"):  # beyond any column (PostgreSQL overflowed: found by the fuzz test)
        refused = bj.post("/push/bills/send", data={"csrf_token": csrf_from(page), "year": year})
        assert refused.status_code == 400 and "2000–2100" in refused.text
    assert tp.get("/push/bill", params={"year": 99999}).status_code == 400
    sent = bj.post("/push/bills/send", data={"csrf_token": csrf_from(page), "year": "2022"})
    assert sent.status_code == 303
    again = bj.post("/push/bills/send", data={"csrf_token": csrf_from(page), "year": "2022"})
    assert again.status_code == 400 and "已经推送过" in again.text
    assert "2022年度红利账单" in tp.get("/push/inbox").text
    with httpx.Client(base_url=server) as anonymous:
        assert anonymous.get("/push/bill").status_code == 303


HOSTILE_RULES = {  # each passed the check or gave a 500, and saved on a policy or a campaign stalled every run
    "38 digits": "monthly_sales > " + "9" * 38,
    "140 brackets": "(" * 140 + "headcount > 1" + ")" * 140,
    "160 ands": " and ".join(["headcount > 1"] * 160),
    "overflowing product": "monthly_sales * monthly_sales * monthly_sales * monthly_sales * monthly_sales * "
                           "monthly_sales * monthly_sales * 1000000000000 > 1",
}


def test_hostile_rules_are_refused_with_a_position_never_a_500(site, server):
    officer, bj = login(server, "officer"), login(server, "bj_officer")
    token = csrf_from(officer.get("/push/policies/XGM-VAT-2023").text)
    campaigns_page = bj.get("/push/campaigns").text
    with site["db"].read() as session:
        rule_before = session.get(Policy, "XGM-VAT-2023").rule
    for name, rule in HOSTILE_RULES.items():
        checked = officer.post("/push/rules/check", data={"rule": rule}, headers={"X-CSRF-Token": token})
        assert checked.status_code == 200 and "个字符处" in checked.text and "规则正确" not in checked.text, name
        saved = officer.post("/push/policies/XGM-VAT-2023/rule", data={"rule": rule, "csrf_token": token})
        assert saved.status_code == 400 and "个字符处" in saved.text, name
        made = bj.post("/push/campaigns", data={"csrf_token": csrf_from(campaigns_page), "name": "攻击", "month": "2022-07",
                                                "policies": ["XGM-VAT-2021"], "channels": ["inapp"], "audience": rule})
        assert made.status_code == 400 and "补充条件" in made.text, name
    assert bj.get("/push/policies/XGM-VAT-2023/match", params={"period": "9" * 30}).status_code == 400
    # the product that overflowed DuckDB's DECIMAL now runs (in DOUBLE) and counts
    fine = officer.post("/push/rules/check", headers={"X-CSRF-Token": token},
                        data={"rule": "monthly_sales * monthly_sales * monthly_sales * 1000000000000 > 1"})
    assert "规则正确" in fine.text and 'class="match-count"' in fine.text
    with site["db"].read() as session:
        assert session.get(Policy, "XGM-VAT-2023").rule == rule_before
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_failed_campaign_shows_why_and_can_be_edited_resumed_paused_and_cancelled(site, server):
    bj = login(server, "bj_officer")
    page = bj.get("/push/campaigns").text
    made = bj.post("/push/campaigns", data={"csrf_token": csrf_from(page), "name": "7月征期提醒", "month": "2022-07",
                                            "policies": ["XGM-VAT-2021"], "channels": ["inapp"]})
    url = made.headers["location"].split("?")[0]
    with store.connect_store(site["store"]) as conn:  # approved for its day
        approve(site["db"], conn, int(url.rsplit("/", 1)[1]), "first")
    with site["db"].write() as session:  # a rule saved before the bounds existed
        session.get(Campaign, int(url.rsplit("/", 1)[1])).audience = "monthly_sales > " + "9" * 38
    token = csrf_from(bj.get(url).text)
    with store.connect_store(site["store"]) as conn:  # the schedule runs the due stage
        schedule.run_due(site["db"], conn, today=date(2022, 7, 1), campaign_id=int(url.rsplit("/", 1)[1]))
    failed = bj.get(url).text
    assert "执行失败" in failed and "超出范围" in failed and 'id="edit-campaign"' in failed
    refused = bj.post(url + "/resume", data={"csrf_token": token})
    assert refused.status_code == 400 and "补充条件" in refused.text
    bad_edit = bj.post(url + "/edit", data={"csrf_token": token, "name": "7月征期提醒", "policies": ["XGM-VAT-2021"],
                                            "channels": ["inapp"], "audience": "(" * 30 + "high_tech" + ")" * 30})
    assert bad_edit.status_code == 400 and "嵌套过深" in bad_edit.text
    assert 'id="error-audience"' in bad_edit.text and "(" * 30 + "high_tech" in bad_edit.text  # kept, beside it
    edited = bj.post(url + "/edit", data={"csrf_token": token, "name": "7月征期提醒(改)", "policies": ["XGM-VAT-2021"],
                                          "channels": ["inapp"], "audience": 'credit in ("A", "B")'})
    assert edited.status_code == 303
    assert bj.post(url + "/resume", data={"csrf_token": token}).status_code == 303
    assert finished(bj, confirm(bj, url)).status_code == 200
    ran = bj.get(url).text
    assert "进行中" in ran and "已发送" in ran and "执行失败" not in ran
    assert bj.post(url + "/pause", data={"csrf_token": token}).status_code == 303
    assert "已暂停" in bj.get(url).text
    assert bj.post(url + "/cancel", data={"csrf_token": token}).status_code == 303
    assert "已取消" in bj.get(url).text
    again = bj.post(url + "/cancel", data={"csrf_token": token})
    assert again.status_code == 400 and "不能取消" in again.text
    gd = login(server, "gd_officer")
    assert gd.post(url + "/pause", data={"csrf_token": csrf_from(gd.get("/push/campaigns").text)}).status_code == 403
    with site["db"].read() as session:
        actions = [a for (a,) in session.execute(select(AuditEntry.action).where(
            AuditEntry.object_type == "campaign", AuditEntry.object_id == url.rsplit("/", 1)[1]).order_by(AuditEntry.seq))]
    assert actions == ["push.campaign.created", "push.stage.approved", "push.campaign.failed", "push.campaign.edited",
                       "push.stage.withdrawn", "push.campaign.resumed", "push.stage.planned", "push.stage.confirmed",
                       "push.campaign.paused", "push.campaign.cancelled"]


# --- issue 14.5 and 14.6: the campaign form, channels, preview and confirmation, failures -----------------


def test_a_bad_campaign_condition_keeps_the_form_and_points_at_the_fault(site, server):
    """Issue 14.5: a bad campaign condition gave a bare "400 · 无法处理" page, and the typed form was gone."""
    bj = login(server, "bj_officer")
    page = bj.get("/push/campaigns").text
    refused = bj.post("/push/campaigns", data={
        "csrf_token": csrf_from(page), "name": "7月征期提醒(A级)", "month": "2022-07",
        "policies": ["XGM-VAT-2021", "LSLF-FJ-2022"], "channels": ["inapp"], "audience": 'credit in ("A", "B"',
        "reminder_day": "12", "last_days": "3"})
    assert refused.status_code == 400
    text = refused.text
    assert 'id="new-campaign"' in text and 'id="campaign-form-error"' in text
    assert 'value="7月征期提醒(A级)"' in text and 'value="2022-07"' in text
    assert 'value="credit in (&#34;A&#34;, &#34;B&#34;"' in text and 'aria-invalid="true"' in text
    for pid in ("XGM-VAT-2021", "LSLF-FJ-2022"):
        assert f'value="{pid}" checked' in text
    assert 'name="reminder_day" value="12"' in text and 'name="last_days" value="3"' in text
    fault = re.search(r'<div class="field-error" id="error-audience".*?</div>', text, re.S)[0]
    assert "补充条件:第 " in fault and "个字符处" in fault and "^" in fault
    with site["db"].read() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0


def test_sms_is_not_offered_without_a_gateway(site, server):
    """Issue 14.6: SMS could be chosen with no gateway configured (the test server has none)."""
    bj = login(server, "bj_officer")
    page = bj.get("/push/campaigns").text
    assert 'name="channels" value="inapp"' in page and 'name="channels" value="sms"' not in page
    assert 'id="channels-unconfigured"' in page
    refused = bj.post("/push/campaigns", data={"csrf_token": csrf_from(page), "name": "短信提醒", "month": "2022-07",
                                               "policies": ["XGM-VAT-2021"], "channels": ["inapp", "sms"]})
    assert refused.status_code == 400 and "短信尚未配置发送网关" in refused.text
    assert 'id="error-channels"' in refused.text and 'value="短信提醒"' in refused.text
    with site["db"].read() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_stage_is_previewed_and_confirmed_and_never_sent_before_its_day(site, server):
    """Issue 14.6: "执行截至 2027-01-01" ran January's stage in December, with no preview of the audience. A
    December 2026 campaign (today is after its first stage, before its reminder) is previewed and confirmed stage by
    stage; the reminder cannot go out early, whatever is posted."""
    today = date.today()
    bj = login(server, "bj_officer")
    page = bj.get("/push/campaigns").text
    made = bj.post("/push/campaigns", data={"csrf_token": csrf_from(page), "name": "本月征期提醒",
                                            "month": f"{today.year}-{today.month:02d}", "policies": ["JYFJ-MZ-2016"],
                                            "channels": ["inapp"]})
    assert made.status_code == 303, made.text[-800:]
    url = made.headers["location"].split("?")[0]
    cid = int(url.rsplit("/", 1)[1])
    with site["db"].read() as s:
        due = {st.stage: st.due for st in s.scalars(select(CampaignStage).where(CampaignStage.campaign_id == cid))}
    if not due["first"] <= today < max(due.values()):
        pytest.skip(f"today ({today}) is not between this month's first and last stage: {due}")
    assert "执行截至" not in bj.get(url).text  # no date to run "up to"
    # the run without a preview, or with a made-up code, sends nothing
    token = csrf_from(bj.get(url).text)
    assert bj.post(url + "/run", data={"csrf_token": token}).status_code == 400
    wrong = finished(bj, bj.post(url + "/run", data={"csrf_token": token, "stage": "first", "code": "0" * 12}))
    assert wrong.status_code == 400 and "重新预览" in wrong.text

    preview = bj.get(url + "/preview").text
    shown = int(re.search(r'id="preview-messages">(\d+) 条', preview)[1])
    assert "北京市" in re.search(r'id="preview-provinces".*?</table>', preview, re.S)[0]
    assert 'class="sample-body"' in preview and "{" not in re.search(r'class="sample-body">([^<]*)<', preview)[1]
    with site["db"].read() as s:
        assert s.scalar(select(func.count()).select_from(PushMessage)) == 0  # looking sends nothing
    assert finished(bj, confirm(bj, url)).status_code == 200
    with site["db"].read() as s:
        assert s.scalar(select(func.count()).select_from(PushMessage)) == shown

    ahead = bj.get(url + "/preview").text  # the next stage, not yet due: shown, not sendable
    assert 'id="preview-refused"' in ahead and "不能提前发送" in ahead and 'id="confirm-form"' not in ahead
    with site["db"].read() as s, store.connect_store(site["store"]) as conn:
        code = stages.preview_stage(session=s, conn=conn, actor=SystemActor(), campaign_id=cid,
                                       configured=("inapp",)).code
    early = finished(bj, bj.post(url + "/run", data={"csrf_token": token, "stage": "reminder", "code": code}))
    assert early.status_code == 400 and "不能提前发送" in early.text
    with site["db"].read() as s:
        assert s.scalar(select(func.count()).select_from(PushMessage)) == shown
        assert s.get(Campaign, cid).state == "active"


@pytest.fixture
def sms_server(site, _database, server_files):
    """The site with an SMS gateway configured (a webhook on loopback), for what only a configured channel shows."""
    gateway = Gateway()
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(server_files),
                        push_store=str(site["store"]), rate_limits={}, rate_ceilings={}, totp_required_roles=[],
                        push_channels={"sms": gateway.url}, push_max_attempts=1,
                        channel_hosts_allowed=["127.0.0.1"])
    try:
        with serving(_database, settings) as url:
            yield url, gateway
    finally:
        gateway.server.shutdown()


def test_failed_messages_are_grouped_by_reason_and_retried(site, sms_server):
    """Issue 14.6: 3,524 SMS failed with no reason shown. The reason the gateway gave, counted, and a retry."""
    url, gateway = sms_server
    bj = login(url, "bj_officer")
    page = bj.get("/push/campaigns").text
    assert 'name="channels" value="sms"' in page  # offered once configured
    made = bj.post("/push/campaigns", data={"csrf_token": csrf_from(page), "name": "短信提醒", "month": "2022-07",
                                            "policies": ["XGM-VAT-2021"], "channels": ["sms"]})
    campaign = made.headers["location"].split("?")[0]
    gateway.status = 503
    assert finished(bj, confirm(bj, campaign)).status_code == 200
    with site["db"].read() as s:
        sms = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.channel == "sms"))
    assert sms > 0 and len(gateway.received) == sms
    shown = bj.get(campaign).text
    failures = re.search(r'<table class="grid" id="failures">.*?</table>', shown, re.S)[0]
    assert "短信" in failures and f"<td>{sms}</td>" in failures and 'class="failure-reason"' in failures
    reason = re.search(r'<input type="hidden" name="reason" value="([^"]*)"', failures)[1]
    assert reason and "没有发送失败" not in failures
    gateway.status = 200
    retried = bj.post(campaign + "/retry", data={"csrf_token": csrf_from(shown), "reason": html.unescape(reason),
                                                 "channel": "sms"})
    assert finished(bj, retried).status_code == 200
    assert "没有发送失败的消息" in bj.get(campaign).text
    with site["db"].read() as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "sent")) == sms
    again = bj.post(campaign + "/retry", data={"csrf_token": csrf_from(shown), "reason": reason, "channel": "sms"})
    assert again.status_code == 400 and "没有这一原因" in again.text
    gd = login(url, "gd_officer")
    assert gd.post(campaign + "/retry", data={"csrf_token": csrf_from(gd.get("/push/campaigns").text),
                                              "reason": reason, "channel": "sms"}).status_code == 403
