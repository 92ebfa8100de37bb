"""Credit repair over HTTP: a signed-in taxpayer applies from its own register with evidence and follows the
application; an official applies on a taxpayer's behalf; the competent unit's queue filters and pages, and its
decision page approves with the official's score and level while the rules await review, after which the
taxpayer's credit page shows the restored level. Refusals are 4xx in Chinese, change nothing, and a refused access
is in the audit log as denied."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from chunfeng.credit.models import CreditRating, CreditRepair
from chunfeng.org.models import AuditEntry, Unit
from tests.conftest import csrf_from, login
from tests.credit.test_repair import PDF, register  # noqa: F401  (the fixture)
from tests.credit.test_services import A, B, code


def form(token: str, **fields) -> dict:
    values = {"csrf_token": token, "rating": "2025:未按期申报", "path": "correction", "failed_on": "2025-05-15",
              "corrected_on": "2025-05-16", "correction": "已补办申报并缴清税款"}
    values.update(fields)
    return values


def count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(CreditRepair))


def test_apply_follow_and_decide(register, server):  # noqa: F811
    db = register
    payer = login(server, "payer")
    page = payer.get("/credit/repairs/new")
    assert page.status_code == 200 and 'value="2025:未按期申报"' in page.text and "扣 20.0 分" in page.text
    token = csrf_from(page.text)

    missing = payer.post("/credit/repairs", data=form(token))
    assert missing.status_code == 400 and "请上传纠正失信行为的佐证材料" in missing.text
    wrong_type = payer.post("/credit/repairs", data=form(token),
                            files={"file_correction": ("a.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")})
    assert wrong_type.status_code == 400 and "a.pdf:不是允许的文件类型" in wrong_type.text
    # The code a taxpayer's form carries is not theirs to choose: the account's own taxpayer is the applicant.
    other = payer.post("/credit/repairs", data=form(token, credit_code=B, rating="2025:逃避缴纳税款"),
                       files={"file_correction": ("补报.pdf", PDF, "application/pdf")})
    assert other.status_code == 400 and "没有“逃避缴纳税款”的扣分" in other.text
    assert count(db) == 0

    made = payer.post("/credit/repairs", data=form(token), files={"file_correction": ("补报.pdf", PDF, "application/pdf")})
    assert made.status_code == 303
    status = payer.get(made.headers["location"])
    assert status.status_code == 200 and 'id="state">待核定' in status.text
    assert "待人工核定" in status.text and "待复核" in status.text and 'id="due"' in status.text
    assert 'id="decide-form"' not in status.text  # the applicant follows, never decides
    repair_id = int(made.headers["location"].split("/")[-1].split("?")[0])
    mine = payer.get("/credit/repairs/mine")
    assert f'href="/credit/repairs/{repair_id}"' in mine.text
    evidence_link = status.text.split('href="/credit/repairs/evidence/')[1].split('"')[0]
    download = payer.get(f"/credit/repairs/evidence/{evidence_link}")
    assert download.status_code == 200 and download.content == PDF and "attachment" in download.headers["content-disposition"]

    # Another taxpayer and the neighbouring county are told there is none; deciding is refused and audited.
    other_payer = login(server, "other_payer")
    assert other_payer.get(f"/credit/repairs/{repair_id}").status_code == 404
    assert other_payer.get(f"/credit/repairs/evidence/{evidence_link}").status_code == 404
    neighbour = login(server, "county2_officer")
    assert neighbour.get(f"/credit/repairs/{repair_id}").status_code == 404
    assert f'/credit/repairs/{repair_id}"' not in neighbour.get("/credit/repairs").text.split('id="queue"')[1]
    ntoken = csrf_from(neighbour.get("/credit/repairs").text)
    assert neighbour.post(f"/credit/repairs/{repair_id}/decide", data={
        "csrf_token": ntoken, "decision": "refuse", "reason": "越权"}).status_code == 404
    assert payer.post(f"/credit/repairs/{repair_id}/decide", data={
        "csrf_token": token, "decision": "approve", "reason": "自己批准"}).status_code == 403
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "access.denied", AuditEntry.outcome == "denied", AuditEntry.actor == "payer")) == 1
        assert s.get(CreditRepair, repair_id).state == "pending"

    officer = login(server, "county_officer")
    queue = officer.get("/credit/repairs")
    assert queue.status_code == 200 and f'href="/credit/repairs/{repair_id}"' in queue.text
    decision_page = officer.get(f"/credit/repairs/{repair_id}")
    assert 'id="decide-form"' in decision_page.text and "请按《纳税缴费信用修复范围及标准》原文核定" in decision_page.text
    otoken = csrf_from(decision_page.text)
    manual = officer.post(f"/credit/repairs/{repair_id}/decide", data={
        "csrf_token": otoken, "decision": "approve", "reason": "已核实"})
    assert manual.status_code == 400 and "待人工核定" in manual.text
    done = officer.post(f"/credit/repairs/{repair_id}/decide", data={
        "csrf_token": otoken, "decision": "approve", "reason": "已核实补报记录", "score": "80", "level": "B"})
    assert done.status_code == 303
    after = payer.get(f"/credit/repairs/{repair_id}")
    assert 'id="state">已修复' in after.text and 'id="level-after">B级' in after.text and "已核实补报记录" in after.text
    history = payer.get(f"/credit/taxpayers/{A}")
    assert "<td>80.0</td>" in history.text and 'id="repair-history"' in history.text and "已修复" in history.text
    again = officer.post(f"/credit/repairs/{repair_id}/decide", data={
        "csrf_token": otoken, "decision": "refuse", "reason": "重复"})
    assert again.status_code == 409 and "不能再次核定" in again.text


def test_an_official_applies_for_a_taxpayer_and_the_queue_filters_and_pages(register, server):  # noqa: F811
    db = register
    officer = login(server, "county_officer")
    found = officer.get("/credit/repairs/new", params={"code": B})
    assert found.status_code == 200 and 'value="2025:逃避缴纳税款"' in found.text
    token = csrf_from(found.text)
    made = officer.post("/credit/repairs", data=form(token, credit_code=B, rating="2025:逃避缴纳税款", path="bankruptcy",
                                                     failed_on="2025-02-01", corrected_on="2025-10-10",
                                                     court="北京市第一中级人民法院", ruling_number="(2025)京01破12号",
                                                     ruling_on="2025-09-30"),
                        files={"file_ruling": ("裁定书.pdf", PDF, "application/pdf")})
    assert made.status_code == 303, made.text
    status = officer.get(made.headers["location"]).text
    assert "破产重整企业修复" in status and "(2025)京01破12号" in status and "税务人员 county_officer 代为申请" in status
    outside = login(server, "county2_officer")
    otoken = csrf_from(outside.get("/credit/repairs").text)
    refused = outside.post("/credit/repairs", data=form(otoken, credit_code=B, rating="2025:逃避缴纳税款"),
                           files={"file_correction": ("补报.pdf", PDF, "application/pdf")})
    assert refused.status_code == 403 and "不在您所在单位" in refused.text

    # Thirty-one more decided ones: the pending application leads, and the queue pages.
    with db.write() as s:
        county = s.scalar(select(Unit).where(Unit.code == "110101"))
        for n in range(31):
            rating = CreditRating(credit_code=code(100 + n), name=f"丙{n}公司", year=2025, score=60, level="C",
                                  deductions={"发票违规": 11}, unit=county)
            s.add(CreditRepair(credit_code=rating.credit_code, name=rating.name, rating=rating, year=2025,
                               path="correction", indicator="发票违规", points=11, failed_on=date(2025, 3, 1),
                               corrected_on=date(2025, 3, 2), correction="已纠正", unit=county, state="refused",
                               applicant="county_officer", applied_on=date(2026, 11, 2), proposal={},
                               score_before=60, level_before="C", reason="不符"))
    everything = officer.get("/credit/repairs", params={"state": "all"}).text
    assert "第 1 / 2 页,共 32 条" in everything and "乙公司" in everything.split('id="queue"')[1][:2000]
    second = officer.get("/credit/repairs", params={"state": "all", "page": 2}).text
    assert "第 2 / 2 页" in second
    pending = officer.get("/credit/repairs", params={"state": "pending", "path": "bankruptcy"}).text
    assert "乙公司" in pending and "丙0公司" not in pending and "共 1 条" in pending
    assert "乙公司" not in officer.get("/credit/repairs", params={"state": "all", "q": "丙1"}).text


def test_the_rules_and_the_measures_say_what_serves_them(register, server):  # noqa: F811
    viewer = login(server, "viewer")
    for no in (117, 118):
        assert 'href="/credit/repairs"' in viewer.get(f"/plan/measures/{no}").text
    rules = viewer.get("/credit/rules").text.split('id="repair-rules"')[1]
    assert "破产重整企业信用修复" in rules and "待复核" in rules and "受理后 15 个工作日" in rules


def test_a_repair_reaches_the_push_rules_when_it_is_filed_and_when_it_is_decided(register, _database, tmp_path):  # noqa: F811
    """The rules' view (`credit_repair`, `credit_level`) follows the repair at each step, without waiting for the
    periodic job: 待核定 once filed, then 已修复 with the restored level once approved."""
    from chunfeng.push import store
    from chunfeng.settings import Settings
    from tests.conftest import TEST_DATA_KEY, serving
    from tests.credit.test_levels_publish import import_store

    taxpayers = import_store(tmp_path)
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(tmp_path / "files"),
                        push_store=str(taxpayers), rate_limits={}, rate_ceilings={}, totp_required_roles=[])

    def seen() -> tuple:
        with store.connect_store(taxpayers) as conn:
            return conn.execute("SELECT credit_level, credit_repair FROM registry WHERE credit_code = $c",
                                {"c": A}).fetchone()

    assert seen() == ("M", "无")  # nothing published yet: the extract's level
    with serving(_database, settings) as url:
        payer = login(url, "payer")
        token = csrf_from(payer.get("/credit/repairs/new").text)
        made = payer.post("/credit/repairs", data=form(token), files={"file_correction": ("补报.pdf", PDF, "application/pdf")})
        assert made.status_code == 303
        assert seen() == ("B", "待核定")
        repair_id = int(made.headers["location"].split("/")[-1].split("?")[0])
        officer = login(url, "county_officer")
        otoken = csrf_from(officer.get(f"/credit/repairs/{repair_id}").text)
        done = officer.post(f"/credit/repairs/{repair_id}/decide", data={
            "csrf_token": otoken, "decision": "approve", "reason": "已核实补报记录", "score": "80", "level": "A"})
        assert done.status_code == 303
        assert seen() == ("A", "已修复")
