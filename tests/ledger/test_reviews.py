"""The review queue's filters and batch approval (chunfeng.ledger.reviews) on a real database."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from chunfeng.ledger import reviews
from chunfeng.ledger.errors import LedgerInvalid, LedgerNotFound
from chunfeng.ledger.models import Assignment, ProgressReport
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry
from tests.conftest import person
from tests.ledger.test_services import assign, report

DEADLINE = date(2022, 12, 31)


def pending(db):
    """Measures 54 and 82 down to both counties of 甲市 (and 54 to 乙市); four reports waiting for review."""
    for measure in (54, 82):
        assign(db, "nat_office", measure, "110000")
        assign(db, "bj_office", measure, "110100")
    assign(db, "bj_office", 54, "110200")
    c1 = assign(db, "city_office", 54, "110101")
    c2 = assign(db, "city_office", 54, "110102")
    c1b = assign(db, "city_office", 82, "110101")
    with db.read() as s:
        city2 = s.scalar(select(Assignment.id).where(Assignment.unit.has(code="110200")))
    return {"c1": report(db, "county_reporter", c1, "in_progress", 10)[0],
            "c2": report(db, "county2_reporter", c2, "in_progress", 20)[0],
            "c1b": report(db, "county_reporter", c1b, "in_progress", 30, period="2022-04")[0],
            "city2": report(db, "city2_reporter", city2, "in_progress", 40)[0]}


def ids(db, who, **filters):
    with db.read() as s:
        return {r.id for r in reviews.review_queue(session=s, actor=person(s, who), **filters).items}


def test_filters_narrow_the_queue(bureau):
    r = pending(bureau)
    assert ids(bureau, "city_office") == {r["c1"], r["c2"], r["c1b"]}
    assert ids(bureau, "city_office", unit_code="110101") == {r["c1"], r["c1b"]}
    assert ids(bureau, "city_office", measure_no=54) == {r["c1"], r["c2"]}
    with bureau.read() as s:
        category_82 = s.scalar(select(Assignment.category_no).where(Assignment.measure_no == 82))
        category_54 = s.scalar(select(Assignment.category_no).where(Assignment.measure_no == 54))
    assert category_54 != category_82
    assert ids(bureau, "city_office", category_no=category_82) == {r["c1b"]}
    assert ids(bureau, "city_office", period="2022-04") == {r["c1b"]}
    assert ids(bureau, "city_office", unit_code="110102", measure_no=82) == set()
    # The national office's whole subtree below 北京 is 北京's children's: a subtree filter, not only direct children.
    assert ids(bureau, "bj_office", unit_code="110200") == {r["city2"]}
    with pytest.raises(LedgerNotFound, match="999999") as missing:
        ids(bureau, "city_office", unit_code="999999")
    assert missing.value.field == "unit"
    with pytest.raises(Forbidden):
        ids(bureau, "city_office", unit_code="440000")


def test_options_name_what_is_waiting(bureau):
    pending(bureau)
    with bureau.read() as s:
        options = reviews.queue_options(session=s, actor=person(s, "city_office"))
    assert options.units == [("110101", "甲市一县税务局", 2), ("110102", "甲市二县税务局", 1)]
    assert [(no, n) for no, _, n in options.measures] == [(54, 2), (82, 1)]
    assert all(text for _, text, _ in options.measures)  # the title, not only the number
    assert sum(n for *_, n in options.categories) == 3 and all(name for _, name, _ in options.categories)
    assert [p for p, *_ in options.periods][-1] == "2022-04"


def test_batch_approves_each_and_names_each_refusal(bureau):
    r = pending(bureau)
    with bureau.read() as s:
        versions = {k: s.get(ProgressReport, v).version for k, v in r.items()}
    picks = [(r["c1"], versions["c1"]), (r["c2"], versions["c2"] + 1),  # c2 changed since the page was read
             (r["city2"], versions["city2"]),                             # 乙市's, outside 甲市
             (r["c1b"], None), (987654, None)]
    with bureau.write() as s:
        result = reviews.approve_batch(session=s, actor=person(s, "city_office"), picks=picks, comment="同意")
    assert result.status == 200
    assert result.approved == [f"甲市一县税务局 第 54 条 {_period(bureau, r['c1'])} 的报告(编号 {r['c1']})",
                               f"甲市一县税务局 第 82 条 2022-04 的报告(编号 {r['c1b']})"]
    refused = dict(result.refused)
    assert "刷新" in refused[f"甲市二县税务局 第 54 条 {_period(bureau, r['c2'])} 的报告(编号 {r['c2']})"]
    assert "北京乙市" not in str(result.refused)  # a unit outside the reviewer's subtree is not named
    assert refused[f"编号 {r['city2']} 的报告"]
    assert "987654" in refused["编号 987654 的报告"]
    with bureau.read() as s:
        states = {k: s.get(ProgressReport, v).state for k, v in r.items()}
        assert states == {"c1": "approved", "c2": "submitted", "c1b": "approved", "city2": "submitted"}
        assert s.get(ProgressReport, r["c1"]).review_comment == "同意"
        assert s.get(ProgressReport, r["c1"]).assignment.progress == 10  # rolled up like a single approval
        entries = s.execute(select(AuditEntry.object_id, AuditEntry.outcome)
                            .where(AuditEntry.action == "ledger.report.approved")).all()
    assert sorted(entries) == sorted([(str(r["c1"]), "success"), (str(r["c1b"]), "success"),
                                      (str(r["c2"]), "failure"), (str(r["city2"]), "denied"), ("987654", "failure")])


def _period(db, report_id):
    with db.read() as s:
        return s.get(ProgressReport, report_id).period


def test_batch_with_nothing_done_answers_with_the_refusal(bureau):
    r = pending(bureau)
    with bureau.write() as s:
        result = reviews.approve_batch(session=s, actor=person(s, "city_office"), picks=[(r["city2"], None)])
    assert result.approved == [] and result.status == 403
    with pytest.raises(LedgerInvalid, match="至少勾选"):
        with bureau.write() as s:
            reviews.approve_batch(session=s, actor=person(s, "city_office"), picks=[])
    with pytest.raises(LedgerInvalid, match="最多"):
        with bureau.write() as s:
            reviews.approve_batch(session=s, actor=person(s, "city_office"),
                                  picks=[(i, None) for i in range(1, reviews.MAX_BATCH + 2)])
