"""Credit repair on a real database: an application names a failure from the taxpayer's own register and backs it
with checked evidence; the rules' proposal says 待人工核定 wherever a rule awaits review (and computes where one is
confirmed); the competent unit decides within working days (a due day the calendar cannot count is left uncounted,
never guessed); an approval rewrites the rating with the application as its history row and can take the taxpayer
off the major-violator list; every refusal is a 4xx in Chinese and changes nothing; each step is audited."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from sqlalchemy import func, select

from chunfeng.credit import evaluation, repair, services
from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import REPAIR_STATES, CreditRating, CreditRepair, CreditRepairEvidence, Violator
from chunfeng.credit.repair import Application, RepairConflict
from chunfeng.files import stored_path
from chunfeng.models import referenced_files
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry, Unit
from chunfeng.push import matching, rules, store
from chunfeng.push.schema import REPAIR_STATUSES
from tests.conftest import person
from tests.credit.test_evaluation import REGISTRY, _row
from tests.credit.test_services import A, B, C, code

TODAY = date(2026, 11, 2)  # a Monday: 15 working days later is still in 2026, which the calendar covers
PDF = b"%PDF-1.4\n% evidence\n"
MB = 1048576


@pytest.fixture
def register(bureau, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "county2_officer": ("110102", ["service_officer"]),
               "city_officer": ("110100", ["service_officer"]), "payer": ("110000", ["taxpayer"]),
               "other_payer": ("110000", ["taxpayer"]), "county_viewer": ("110101", ["viewer"])})
    with bureau.write() as s:
        person(s, "payer").taxpayer_code = A
        person(s, "other_payer").taxpayer_code = B
        county = s.scalar(select(Unit).where(Unit.code == "110101"))
        s.add_all([CreditRating(credit_code=A, name="甲公司", year=2025, score=75.0, level="B",
                                deductions={"未按期申报": 5.0, "发票违规": 20.0}, unit=county),
                   CreditRating(credit_code=B, name="乙公司", year=2025, score=35.0, level="D",
                                deductions={"逃避缴纳税款": 65.0}, unit=county)])
    return bureau


def application(**fields) -> Application:
    values = dict(credit_code=A, year=2025, indicator="未按期申报", path="correction", failed_on=date(2025, 5, 15),
                  corrected_on=date(2025, 5, 16), correction="已补办申报并缴清税款", uploads=[("correction", "补报.pdf", PDF)])
    values.update(fields)
    return Application(**values)


def file(db, username: str, tmp_path, **fields) -> int:
    with db.write() as s:
        return repair.apply(session=s, actor=person(s, username), application=application(**fields),
                            store=tmp_path / "store", max_bytes=MB, today=TODAY).id


def count(db, model) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_apply_proposes_only_what_the_rules_confirm(register, tmp_path):
    db = register
    repair_id = file(db, "payer", tmp_path)
    with db.read() as s:
        r = s.get(CreditRepair, repair_id)
        assert (r.state, r.unit.code, r.on_behalf, r.points, r.score_before, r.level_before) == \
               ("pending", "110101", False, 5.0, 75.0, "B")
        assert r.due_on == date(2026, 11, 23)  # 15 working days after 2026-11-02
        # The shipped bands await review: nothing is proposed as a rule, and the proposal says why.
        assert r.proposal["status"] == "manual" and r.proposal["score"] is None and r.proposal["level"] is None
        assert any("待复核" in why for why in r.proposal["review"]) and "3日内纠正" in r.proposal["band"]
        [evidence] = r.evidence
        assert evidence.kind == "correction" and evidence.content_type == "application/pdf"
        assert stored_path(tmp_path / "store", evidence.sha256).read_bytes() == PDF  # written at commit
        assert evidence.sha256 in referenced_files(s)  # the orphan collector leaves it alone
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit.repair.applied"))
        assert entry.actor == "payer" and "未按期申报" in entry.after


def test_confirmed_rules_compute_the_restored_score_and_level(register):
    rules = copy.deepcopy(repair.repair_rules())
    rules["correction"]["review"] = False
    rules["bankruptcy"]["review"] = False
    with register.read() as s:
        rating = s.scalar(select(CreditRating).where(CreditRating.credit_code == A))
        late = repair.propose(rating=rating, indicator="发票违规", path="correction", failed_on=date(2025, 3, 1),
                              corrected_on=date(2025, 3, 21), rules=rules)
        assert (late["restored"], late["score"]) == (16.0, 91.0)  # 20 days late: the 80 % band
        assert late["level"] is None and any("分数线" in why for why in late["review"])  # the bands await review
        reorganised = repair.propose(rating=rating, indicator="发票违规", path="bankruptcy", failed_on=date(2025, 3, 1),
                                     corrected_on=date(2025, 12, 1), rules=rules)
        assert reorganised["restored"] == 20.0  # the 3-day standard, however late
    levels = {lvl: dict(rule, review=False) for lvl, rule in repair.level_rules().items()}  # the bands confirmed
    with register.read() as s:
        rating = s.scalar(select(CreditRating).where(CreditRating.credit_code == A))
        done = repair.propose(rating=rating, indicator="发票违规", path="correction", failed_on=date(2025, 3, 1),
                              corrected_on=date(2025, 3, 21), rules=rules, levels=levels)
    assert (done["status"], done["score"], done["level"]) == ("computed", 91.0, "A")


def test_refusals_are_clear_and_change_nothing(register, tmp_path):
    db = register
    cases = [
        ("other_payer", {}, Forbidden, "只能为您的账户绑定的纳税人"),  # not the taxpayer's own record
        ("county2_officer", {}, Forbidden, "不在您所在单位"),  # the rating's unit is outside the subtree
        ("county_viewer", {}, Forbidden, "申请纳税缴费信用修复"),  # no permission to apply
        ("payer", {"year": 2024}, CreditNotFound, "2024 年度"),
        ("payer", {"indicator": "虚构指标"}, CreditInvalid, "可申请修复的扣分项:未按期申报、发票违规"),
        ("payer", {"uploads": []}, CreditInvalid, "请上传纠正失信行为的佐证材料"),  # missing evidence
        ("payer", {"uploads": [("correction", "a.exe", b"MZ\x90\x00")]}, CreditInvalid, "a.exe:不是允许的文件类型"),
        ("payer", {"uploads": [("correction", "big.pdf", PDF + b"0" * MB)]}, CreditInvalid, "超过上限 1 MB"),
        ("payer", {"corrected_on": date(2026, 12, 1)}, CreditInvalid, "晚于今天"),  # not corrected yet
        ("payer", {"corrected_on": date(2025, 5, 1)}, CreditInvalid, "早于失信行为的应办日期"),
        ("payer", {"failed_on": date(2024, 12, 31)}, CreditInvalid, "不在 2025 评价年度内"),
        ("payer", {"path": "bankruptcy"}, CreditInvalid, "人民法院、裁定书文号和裁定日期"),
        ("payer", {"path": "bankruptcy", "court": "北京市第一中级人民法院", "ruling_number": "(2025)京01破1号",
                   "ruling_on": date(2025, 4, 1)}, CreditInvalid, "之后,不适用破产重整企业修复"),  # past the ruling
        ("payer", {"path": "bankruptcy", "court": "北京市第一中级人民法院", "ruling_number": "(2025)京01破1号",
                   "ruling_on": date(2025, 9, 1)}, CreditInvalid, "须上传人民法院裁定批准重整计划的裁定书"),
    ]
    for username, fields, error, words in cases:
        with pytest.raises(error) as refused:
            file(db, username, tmp_path, **fields)
        assert words in str(refused.value), (username, fields, str(refused.value))
        assert 400 <= refused.value.status < 500
    assert count(db, CreditRepair) == 0 and count(db, CreditRepairEvidence) == 0
    assert not (tmp_path / "store").exists()  # no refused file was kept
    # The same failure cannot be pending twice.
    file(db, "payer", tmp_path)
    with pytest.raises(RepairConflict, match="已有办理中或已通过的修复申请"):
        file(db, "county_officer", tmp_path)
    assert count(db, CreditRepair) == 1


def test_an_official_applies_for_a_reorganised_enterprise_on_the_courts_ruling(register, tmp_path):
    db = register
    repair_id = file(db, "county_officer", tmp_path, credit_code=B.lower(), indicator="逃避缴纳税款", path="bankruptcy",
                     failed_on=date(2025, 2, 1), corrected_on=date(2025, 10, 10), court="北京市第一中级人民法院",
                     ruling_number="(2025)京01破12号", ruling_on=date(2025, 9, 30),
                     uploads=[("ruling", "裁定书.pdf", PDF), ("correction", "清偿.png", b"\x89PNG\r\n\x1a\n0")])
    with db.read() as s:
        r = s.get(CreditRepair, repair_id)
        assert (r.path, r.on_behalf, r.applicant, r.ruling_on) == ("bankruptcy", True, "county_officer", date(2025, 9, 30))
        assert sorted(e.kind for e in r.evidence) == ["correction", "ruling"]
        assert r.proposal["status"] == "manual" and "破产重整企业的修复标准待复核" in r.proposal["review"]
        # The taxpayer follows it; another taxpayer and the neighbouring county are told there is none.
        assert repair.get_repair(session=s, actor=person(s, "other_payer"), repair_id=repair_id).id == repair_id
        for outsider in ("payer", "county2_officer"):
            with pytest.raises(CreditNotFound):
                repair.get_repair(session=s, actor=person(s, outsider), repair_id=repair_id)


def decide(db, username: str, repair_id: int, **fields):
    values = dict(approve=True, reason="已核实补报记录", today=TODAY)
    values.update(fields)
    with db.write() as s:
        return repair.decide(session=s, actor=person(s, username), repair_id=repair_id, **values)


def test_approval_rewrites_the_rating_with_its_history_and_the_list(register, tmp_path):
    db = register
    repair_id = file(db, "payer", tmp_path, indicator="发票违规", failed_on=date(2025, 3, 1),
                     corrected_on=date(2025, 3, 21))
    with db.write() as s:
        s.add(Violator(credit_code=A, name="甲公司", unit=s.scalar(select(Unit).where(Unit.code == "110101")),
                       case_nature="虚开发票", facts="", amount_unpaid=0, amount_penalty=0,
                       published_on=date(2026, 1, 1), off_on=date(2029, 1, 1), removal_note=""))
    refusals = [("county2_officer", {}, CreditNotFound, "没有编号为"),  # outside the subtree: not theirs to see
                ("payer", {}, Forbidden, "核定纳税缴费信用修复申请"),  # the applicant does not decide
                ("county_officer", {"reason": " "}, CreditInvalid, "请写明核定理由"),
                ("county_officer", {}, CreditInvalid, "待人工核定:请填写核定的修复后得分和信用级别"),
                ("county_officer", {"score": 96.0, "level": "A"}, CreditInvalid, "应在 75 与 95 之间"),
                ("county_officer", {"score": 80.0, "level": "Z"}, CreditInvalid, "请填写核定的修复后得分和信用级别")]
    for username, fields, error, words in refusals:
        with pytest.raises(error) as refused:
            decide(db, username, repair_id, **fields)
        assert words in str(refused.value), (username, str(refused.value))
    with db.read() as s:
        assert s.get(CreditRepair, repair_id).state == "pending"
        assert s.scalar(select(CreditRating.score).where(CreditRating.credit_code == A)) == 75.0

    decide(db, "city_officer", repair_id, score=91.0, level="A", take_off_list=True)  # the parent unit may decide
    with db.read() as s:
        rating = s.scalar(select(CreditRating).where(CreditRating.credit_code == A))
        assert (rating.level, rating.score, rating.deductions) == ("A", 91.0, {"未按期申报": 5.0, "发票违规": 4.0})
        r = s.get(CreditRepair, repair_id)  # the history row: before and after, who and why
        assert (r.state, r.level_before, r.score_before, r.level_after, r.score_after, r.decided_by) == \
               ("approved", "B", 75.0, "A", 91.0, "city_officer")
        violator = s.get(Violator, r.violator_id)
        assert violator.removal_reason == "repaired" and f"信用修复申请 {repair_id}" in violator.removal_note
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "city_officer")))
        assert {"credit.repair.approved", "credit.rating.repaired", "credit.violator.removed"} <= actions
    with pytest.raises(RepairConflict, match="已修复,不能再次核定"):
        decide(db, "county_officer", repair_id, approve=False)


def test_a_refusal_keeps_the_rating_and_a_stale_application_is_not_applied(register, tmp_path):
    db = register
    first = file(db, "payer", tmp_path)
    second = file(db, "payer", tmp_path, indicator="发票违规")
    decide(db, "county_officer", first, approve=False, reason="补报日期与系统记录不符")
    with db.read() as s:
        assert s.get(CreditRepair, first).state == "refused"
        assert s.scalar(select(CreditRating.level).where(CreditRating.credit_code == A)) == "B"
    # A later re-evaluation changed the year: the pending application no longer describes it.
    with db.write() as s:
        s.scalar(select(CreditRating).where(CreditRating.credit_code == A)).score = 80.0
    with pytest.raises(RepairConflict, match="在申请后已变更"):
        decide(db, "county_officer", second, score=90.0, level="A")
    # Taking a taxpayer off a list it is not on is refused, not ignored.
    with db.write() as s:
        s.scalar(select(CreditRating).where(CreditRating.credit_code == A)).score = 75.0
    with pytest.raises(CreditInvalid, match="不在重大税收违法失信主体公布名单上"):
        decide(db, "county_officer", second, score=90.0, level="A", take_off_list=True)


def test_a_due_day_the_calendar_does_not_cover_is_left_uncounted(register, tmp_path):
    db = register
    with db.write() as s:
        r = repair.apply(session=s, actor=person(s, "payer"), application=application(), store=tmp_path / "store",
                         max_bytes=MB, today=date(2026, 12, 21))
        assert r.due_on is None  # 15 working days from 2026-12-21 reach into 2027, not yet covered
        due, why = repair.due_date(s, r.applied_on)
        assert due is None and "2027年的工作日历尚未导入" in why
        listed = repair.list_repairs(session=s, actor=person(s, "county_officer"), today=date(2026, 12, 21))
        assert [x.id for x in listed.items] == [r.id]


def test_every_repair_rule_names_its_source_or_says_what_awaits_review():
    rules, sources = repair.repair_rules(), services.rules()["sources"]
    for key in ("application", "competent_unit", "decision_limit", "correction", "bankruptcy", "violator_removal"):
        entry = rules[key]
        assert entry["source"] in sources, key
        assert entry["review"] or entry["article"], key
        assert not entry["review"] or len(entry["note"]) > 40, key
    bands = rules["correction"]["bands"]
    assert bands[-1]["within_days"] is None and [b["within_days"] for b in bands[:-1]] == sorted(b["within_days"] for b in bands[:-1])
    assert rules["violator_removal"]["automatic"] is False  # unconfirmed: an official decides, never the system


def test_push_rules_select_taxpayers_by_their_latest_repair(register, tmp_path):
    """`credit_repair` (the latest application's state, published beside the push store with the levels) selects
    the right taxpayers in a rule; a taxpayer without an application, or without a register entry, reads 无."""
    assert REPAIR_STATUSES == ("无", *REPAIR_STATES.values())  # push's words are the credit domain's
    db, outside = register, code(4)
    with db.write() as s:
        s.add(CreditRating(credit_code=C, name="丙公司", year=2025, score=95.0, level="A", deductions={},
                           unit=s.scalar(select(Unit).where(Unit.code == "110101"))))
    extract = tmp_path / "extract"
    extract.mkdir()
    (extract / "registry.csv").write_text(REGISTRY + "".join(
        _row(c, n, "一般纳税人", False) for c, n in ((A, "甲公司"), (B, "乙公司"), (C, "丙公司"), (outside, "丁公司"))),
        encoding="utf-8")
    (extract / "contacts.csv").write_text("credit_code,role,person,channel,address,opted_out\n", encoding="utf-8")
    (extract / "claims.csv").write_text("credit_code,policy,period,amount\n", encoding="utf-8")
    (extract / "filings.csv").write_text("credit_code,return_type,period,filed_on\n", encoding="utf-8")
    taxpayers = tmp_path / "push" / "taxpayers.duckdb"
    store.import_extract(extract, taxpayers, workers=1)

    def selected(rule_text: str) -> list[str]:
        with store.connect_store(taxpayers) as conn:
            _, rows = matching.taxpayers(matching.DuckDBEngine(conn), policy_id="X", period=None, rule_text=rule_text)
        return [r["credit_code"] for r in rows]

    first = file(db, "payer", tmp_path)  # A: refused, then applies again for another failure (pending: the latest)
    decide(db, "county_officer", first, approve=False, reason="佐证不足")
    file(db, "payer", tmp_path, indicator="发票违规")
    refused = file(db, "other_payer", tmp_path, credit_code=B, indicator="逃避缴纳税款")
    decide(db, "county_officer", refused, approve=False, reason="不符合修复条件")
    with db.read() as s:
        evaluation.publish_levels(session=s, store=taxpayers)
    assert selected('credit_repair == "待核定"') == [A]
    assert selected('credit_repair == "不予修复"') == [B]
    assert selected('credit_repair == "无"') == sorted([C, outside])
    assert selected('credit_repair == "已修复" or credit_level == "A"') == [C]
    with pytest.raises(rules.RuleError, match="没有取值"):
        rules.check('credit_repair == "修复中"')


def test_the_queue_lists_pending_soonest_due_then_decided_newest_first_across_pages(register, tmp_path):
    """Every state's view reads the pending and the decided apart (for speed at national scale); the pages still
    run on as one list: pending first (soonest due, then the latest), then the decided, newest first."""
    db = register
    first = file(db, "payer", tmp_path)
    decide(db, "county_officer", first, approve=False, reason="佐证不足")
    second = file(db, "payer", tmp_path)
    decide(db, "county_officer", second, approve=False, reason="仍不足")
    waiting_a = file(db, "payer", tmp_path, indicator="发票违规")
    waiting_b = file(db, "other_payer", tmp_path, credit_code=B, indicator="逃避缴纳税款")
    with db.read() as s:
        actor = person(s, "city_officer")
        pages = [repair.list_repairs(session=s, actor=actor, today=TODAY, page=n, per_page=1) for n in (1, 2, 3, 4, 5)]
        assert [p.total for p in pages] == [4] * 5 and pages[0].pages == 4
        assert [r.id for p in pages for r in p.items] == [waiting_b, waiting_a, second, first]
        split = [repair.list_repairs(session=s, actor=actor, today=TODAY, page=n, per_page=3) for n in (1, 2)]
        assert [r.id for p in split for r in p.items] == [waiting_b, waiting_a, second, first]
        refused = repair.list_repairs(session=s, actor=actor, state="refused", today=TODAY)
        assert [r.id for r in refused.items] == [second, first] and refused.total == 2
        assert [r.id for r in repair.list_repairs(session=s, actor=actor, state="pending", today=TODAY).items] == \
               [waiting_b, waiting_a]
