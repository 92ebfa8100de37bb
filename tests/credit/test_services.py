"""The credit register and the major-violator list on a real database: rules carry their sources or a review flag;
an import is all of it or none, row-numbered, and stays inside the importer's subtree; a taxpayer's history is theirs
and their bureau's alone; entries come off on their date (the job) or early on repair, each change audited."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from chunfeng import jobs
from chunfeng.credit import jobs as credit_jobs
from chunfeng.credit import services
from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import CreditRating, Violator
from chunfeng.org.errors import Forbidden, ValidationFailed
from chunfeng.org.models import AuditEntry
from chunfeng.push.schema import credit_code_check_char
from tests.conftest import person

TODAY = date(2026, 12, 6)


def code(n: int) -> str:
    first = f"91110000{n:09d}"
    return first + credit_code_check_char(first)


A, B, C = code(1), code(2), code(3)
HEADER = "统一社会信用代码,纳税人名称,评价年度,评价得分,信用级别,扣分明细,主管税务机关代码\n"


@pytest.fixture
def officers(bureau, add_users):
    add_users({"city_officer": ("110100", ["service_officer"]), "county_officer": ("110101", ["service_officer"]),
               "county2_officer": ("110102", ["service_officer"]), "payer": ("000000", ["taxpayer"])})
    with bureau.write() as s:
        person(s, "payer").taxpayer_code = A
    return bureau


def write(tmp_path, body: str, name: str = "ratings.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def do_import(db, username: str, path):
    with db.read() as s:
        plan = services.check_ratings(session=s, actor=person(s, username), path=path, today=TODAY)
    with db.write() as s:
        return services.import_ratings(session=s, actor=person(s, username), path=path, today=TODAY, plan=plan)


def test_every_rule_names_its_source_and_what_is_unconfirmed_says_why():
    rules = services.rules()
    entries = [rules["evaluation"], *rules["levels"], rules["violators"]["publication"],
               rules["violators"]["standard_period"], rules["violators"]["early_removal"],
               *rules["incentives"].values(), rules["catalogue"]["measure"], rules["catalogue"]["official"],
               *rules["catalogue"]["entries"]]
    for entry in entries:
        assert entry["source"] in rules["sources"], entry
        assert entry["review"] or entry["article"], entry  # confirmed means: the article is named
        assert not entry["review"] or len(entry["note"]) > 20, entry
    assert [lvl["level"] for lvl in rules["levels"]] == ["A", "B", "M", "C", "D"]
    assert rules["sources"]["credit-2025"]["number"] == "国家税务总局公告2025年第12号"
    assert rules["sources"]["order-54"]["number"] == "国家税务总局令第54号"
    # No publication period was confirmed: none is applied, so nothing comes off by a guessed date.
    assert rules["violators"]["standard_period_years"] is None
    assert services.standard_off_date(date(2026, 1, 1)) is None
    # Measure 121 names the partner departments; what each level earns is not confirmed, so nothing is listed.
    assert set(services.partner_departments().values()) == {"市场监管部门", "人力资源社会保障部门", "医疗保障部门"}
    assert all(v is None for k, v in rules["incentives"]["by_level"].items() if len(k) == 1)


def test_import_history_and_reevaluation(officers, tmp_path):
    db = officers
    path = write(tmp_path, f"{A},甲公司,2024,92,A,,110101\n{A},甲公司,2025,85.5,B级,未按期申报:5;发票违规:9.5,110101\n"
                           f"{B},乙公司,2025,35,D,逃避缴纳税款:65,110102\n")
    assert do_import(db, "city_officer", path) == (3, 0)
    with db.read() as s:
        history = services.taxpayer_history(session=s, actor=person(s, "county_officer"), credit_code=A.lower())
        assert [(r.year, r.level, r.score) for r in history] == [(2025, "B", 85.5), (2024, "A", 92.0)]
        assert history[0].deductions == {"未按期申报": 5.0, "发票违规": 9.5}
        # The other county neither sees 甲 nor learns it has a rating.
        with pytest.raises(CreditNotFound):
            services.taxpayer_history(session=s, actor=person(s, "county2_officer"), credit_code=A)
        mine = services.taxpayer_history(session=s, actor=person(s, "payer"), credit_code=A)
        assert len(mine) == 2
        with pytest.raises(CreditNotFound):
            services.taxpayer_history(session=s, actor=person(s, "payer"), credit_code=B)
        listed = services.list_ratings(session=s, actor=person(s, "county2_officer"))
        assert [r.credit_code for r in listed.items] == [B]
    # A re-evaluation replaces the year; the audit entry keeps what it was.
    assert do_import(db, "city_officer", write(tmp_path, f"{A},甲公司,2025,91,A,,110101\n")) == (0, 1)
    with db.read() as s:
        assert s.scalar(select(CreditRating.level).where(CreditRating.credit_code == A, CreditRating.year == 2025)) == "A"
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "credit.ratings.imported")
                          .order_by(AuditEntry.seq.desc())).first()
        assert '"before":["B",85.5]' in entry.after and entry.actor == "city_officer"


def test_a_bad_file_is_refused_whole_with_each_row_named(officers, tmp_path):
    db = officers
    path = write(tmp_path, f"{A},甲公司,2025,92,A,,110101\n"
                           f"{A[:17]}0,乙,2025,80,B,,110101\n"
                           f"{C},丙,2026,80,B,,110101\n"
                           f"{C},丙,2025,180,E,少扣分,999999\n"
                           f"{A},甲公司,2025,92,A,,110101\n")
    with pytest.raises(ValidationFailed) as refused:
        do_import(db, "city_officer", path)
    text = str(refused.value)
    assert "未写入任何数据" in text and "共 7 处问题" in text
    for expected in ("第 3 行:统一社会信用代码", "第 4 行:评价年度 2026", "第 5 行:评价得分“180”",
                     "第 5 行:信用级别“E”", "第 5 行:扣分明细“少扣分”", "第 5 行:主管税务机关代码“999999”不是已有单位",
                     "第 6 行:" + f"{A} 的 2025 年度评价与第 2 行重复"):
        assert expected in text, expected
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditRating)) == 0


def test_an_import_reaching_outside_the_subtree_is_refused(officers, tmp_path):
    db = officers
    with pytest.raises(Forbidden) as refused:
        do_import(db, "county_officer", write(tmp_path, f"{A},甲公司,2025,92,A,,110101\n{B},乙公司,2025,80,B,,110102\n"))
    assert "第 3 行" in str(refused.value) and "不在您的管辖范围内" in str(refused.value)
    # Nor may a county overwrite a year its neighbour registered, by naming its own unit.
    do_import(db, "county2_officer", write(tmp_path, f"{B},乙公司,2025,80,B,,110102\n"))
    with pytest.raises(Forbidden):
        do_import(db, "county_officer", write(tmp_path, f"{B},乙公司,2025,95,A,,110101\n"))
    with db.read() as s:
        assert s.scalars(select(CreditRating.level)).all() == ["B"]


def add(db, username: str, **fields):
    values = dict(credit_code=A, name="甲公司", unit_code="110101", case_nature="虚开增值税专用发票", facts="虚开发票 120 份",
                  amount_unpaid="1,200,000.5", amount_penalty="600000", published_on=TODAY - timedelta(days=10),
                  off_on=TODAY + timedelta(days=20), today=TODAY)
    values.update(fields)
    with db.write() as s:
        return services.add_violator(session=s, actor=person(s, username), **values).id


def test_violators_are_published_until_their_date_or_until_repaired(officers):
    db = officers
    with pytest.raises(CreditInvalid, match="请填写撤出日期"):
        add(db, "county_officer", off_on=None)
    with pytest.raises(CreditInvalid, match="应晚于公布日期"):
        add(db, "county_officer", off_on=TODAY - timedelta(days=10))
    with pytest.raises(CreditInvalid, match="不是金额"):
        add(db, "county_officer", amount_penalty="很多")
    with pytest.raises(Forbidden):
        add(db, "county_officer", unit_code="110102")
    first = add(db, "county_officer")
    second = add(db, "county_officer", credit_code=B, name="乙公司", off_on=TODAY + timedelta(days=400))
    with db.read() as s:
        shown = services.public_violators(session=s, today=TODAY)
        assert {v.id for v in shown.items} == {first, second}
        assert s.get(Violator, first).amount_unpaid == Decimal("1200000.50")
        assert [v.id for v in services.public_violators(session=s, q="乙", today=TODAY).items] == [second]
    # The job takes the first off on its date, and only it.
    with db.write() as s:
        assert services.expire_violators(session=s, today=TODAY + timedelta(days=19)) == 0
    later = TODAY + timedelta(days=20)
    with db.write() as s:
        assert services.expire_violators(session=s, today=later) == 1
    with db.read() as s:
        assert [v.id for v in services.public_violators(session=s, today=later).items] == [second]
        assert s.get(Violator, first).removal_reason == "expired"
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "credit.violator.expired")) == 1
    # Early removal on repair: by the publishing unit's subtree only, with its basis, once.
    with pytest.raises(CreditNotFound), db.write() as s:
        services.remove_violator(session=s, actor=person(s, "county2_officer"), violator_id=second, reason="repaired",
                                 note="修复决定 1 号", today=later)
    with pytest.raises(CreditInvalid, match="写明"), db.write() as s:
        services.remove_violator(session=s, actor=person(s, "city_officer"), violator_id=second, reason="repaired",
                                 note=" ", today=later)
    with db.write() as s:
        services.remove_violator(session=s, actor=person(s, "city_officer"), violator_id=second, reason="paid",
                                 note="缴款凭证 2026-001", today=later)
    with pytest.raises(CreditInvalid, match="已于"), db.write() as s:
        services.remove_violator(session=s, actor=person(s, "city_officer"), violator_id=second, reason="repaired",
                                 note="再来一次", today=later)
    with db.read() as s:
        assert services.public_violators(session=s, today=later).total == 0
        removed = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit.violator.removed"))
        assert removed.actor == "city_officer" and '"removal_reason":"paid"' in removed.after


def test_the_expiry_job_is_registered_and_runs(officers):
    db = officers
    add(db, "county_officer", off_on=TODAY + timedelta(days=1))
    job = jobs.get_job("credit.violators.expire")
    assert job is not None and job.run is credit_jobs.expire_violators
    from datetime import datetime

    summary = job.run(db, None, datetime(2027, 1, 10, 4))
    assert summary == {"期满撤出失信主体": 1}
