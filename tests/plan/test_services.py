"""Importing, replacing, reading and searching the plan on a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chunfeng.org import audit
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry, User
from chunfeng.plan import services
from chunfeng.plan.errors import NoticeError, PlanExists
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure, PlanNotice
from chunfeng.plan.parser import parse_notice


def counts(db) -> tuple[int, int, int, int, int]:
    with db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in
                     (PlanNotice, PlanCategory, PlanItem, PlanMeasure, AuditEntry))


def test_import_stores_what_the_parser_reads(with_plan, seed_bytes, system):
    assert counts(with_plan)[:4] == (1, 5, 20, 121)
    with with_plan.read() as s:
        notice = services.current_notice(session=s, actor=system)
        assert services.notice_as_dict(session=s, notice=notice) == parse_notice(seed_bytes).to_dict()
        assert s.scalar(select(func.count()).select_from(PlanMeasure).where(PlanMeasure.new_no.is_not(None))) == 16
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry.action == "plan.notice.imported" and '"measures":121' in entry.after


def test_second_import_is_refused_and_changes_nothing(with_plan, seed_bytes, system):
    before = counts(with_plan)
    with pytest.raises(PlanExists, match="已于.*--replace"):
        with with_plan.write() as s:
            services.import_notice(session=s, actor=system, data=seed_bytes)
    assert counts(with_plan) == before


def test_replace_updates_in_place(with_plan, seed_bytes, system):
    with with_plan.read() as s:
        ids = dict(s.execute(select(PlanMeasure.no, PlanMeasure.id)).all())
    changed = seed_bytes.decode().replace("推进办税缴费软件适老化改造。", "推进办税缴费软件和网站适老化改造。").encode()
    with with_plan.write() as s:
        services.import_notice(session=s, actor=system, data=changed, replace=True)
    with with_plan.read() as s:
        assert dict(s.execute(select(PlanMeasure.no, PlanMeasure.id)).all()) == ids
        notice = services.current_notice(session=s, actor=system)
        assert services.get_measure(session=s, notice=notice, no=27).text == "推进办税缴费软件和网站适老化改造。"
        assert audit.verify(s).ok
    assert counts(with_plan)[:4] == (1, 5, 20, 121)


def _missing_category(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if "执法监管更公正。包括" not in line)


BROKEN = {
    "missing category": lambda t: _missing_category(t).encode(),
    "count that does not match": lambda t: t.replace("提速退税办理527条", "提速退税办理528条").encode(),
    "empty file": lambda t: b"",
    "binary file": lambda t: b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_broken_notice_leaves_the_stored_plan_as_it_was(with_plan, seed_bytes, system, kind):
    def snapshot():
        with with_plan.read() as s:
            return counts(with_plan), list(s.execute(select(PlanMeasure.no, PlanMeasure.text, PlanMeasure.item_id)
                                                     .order_by(PlanMeasure.no)))

    before = snapshot()
    with pytest.raises(NoticeError):
        with with_plan.write() as s:
            services.import_notice(session=s, actor=system, data=BROKEN[kind](seed_bytes.decode()), replace=True)
    assert snapshot() == before


def test_broken_notice_changes_nothing(db, seed_bytes, system):
    before = counts(db)
    broken = seed_bytes.decode().replace("427条", "428条").replace("425条", "426条").encode()
    with pytest.raises(NoticeError, match="分类服务更精细"):
        with db.write() as s:
            services.import_notice(session=s, actor=system, data=broken)
    assert counts(db) == before


@pytest.mark.parametrize("roles, unit", [(["action_office"], "110000"), (["viewer"], "000000"),
                                          (["unit_reporter"], "000000")])
def test_only_the_national_office_imports(db, make_user, seed_bytes, roles, unit):
    make_user("someone", unit, roles)
    before = counts(db)
    with pytest.raises(Forbidden):
        with db.write() as s:
            user = s.scalar(select(User).where(User.username == "someone"))
            services.import_notice(session=s, actor=user, data=seed_bytes)
    assert counts(db) == before


def test_national_office_imports(db, make_user, seed_bytes):
    make_user("office", "000000", ["action_office"])
    with db.write() as s:
        user = s.scalar(select(User).where(User.username == "office"))
        notice = services.import_notice(session=s, actor=user, data=seed_bytes)
        assert notice.imported_by == "office"


def test_search(with_plan, system):
    with with_plan.read() as s:
        notice = services.current_notice(session=s, actor=system)
        hotline = services.search_measures(session=s, notice=notice, query="12366")
        assert {6, 7, 19} <= {m.no for m in hotline.items} and all("12366" in m.text for m in hotline.items)
        assert [m.no for m in services.search_measures(session=s, notice=notice, query="54").items] == [54]
        both = services.search_measures(session=s, notice=notice, query="留抵退税 个体工商户")
        assert [m.no for m in both.items] == [115]
        new = services.search_measures(session=s, notice=notice, new_only=True, per_page=10)
        assert new.total == 16 and new.pages == 2 and all(m.is_new for m in new.items)
        second = services.search_measures(session=s, notice=notice, new_only=True, per_page=10, page=2)
        assert len(second.items) == 6
        by_item = services.search_measures(session=s, notice=notice, query="提速退税办理")
        assert [m.no for m in by_item.items] == [54, 55, 56]
        assert services.search_measures(session=s, notice=notice, query="100%_").total == 0
