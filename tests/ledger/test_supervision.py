"""Supervision notices, answers, escalation and reminders on a real database, with the inbox they feed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from chunfeng.inbox import services as inbox
from chunfeng.inbox.models import InboxMessage
from chunfeng.ledger import supervision
from chunfeng.ledger.errors import LedgerInvalid
from chunfeng.ledger.models import SupervisionNotice
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry
from tests.conftest import TODAY, person
from tests.ledger.test_services import chain


def issue(db, who, assignment_id, respond_by=TODAY + timedelta(days=5)):
    with db.write() as s:
        return supervision.issue_notice(session=s, actor=person(s, who), assignment_id=assignment_id, subject="进度滞后",
                                        text="请说明滞后原因和整改措施", respond_by=respond_by, today=TODAY).id


def inbox_titles(db, who):
    with db.read() as s:
        return [m.title for m in inbox.messages(session=s, actor=person(s, who)).items]


def test_notice_answer_close(bureau):
    bj, city, c1, c2 = chain(bureau)
    nid = issue(bureau, "bj_office", c1)  # the province supervises a county directly
    assert inbox_titles(bureau, "county_reporter") == ["督办单:进度滞后"]
    with bureau.write() as s:
        with pytest.raises(Forbidden, match="被督办的单位"):
            supervision.answer_notice(session=s, actor=person(s, "city_reporter"), notice_id=nid, text="代答")
    with bureau.write() as s:
        notice = supervision.answer_notice(session=s, actor=person(s, "county_reporter"), notice_id=nid,
                                           text="人员调整,已补充两名专人,月底前完成")
        assert notice.state == "answered"
    assert inbox_titles(bureau, "bj_office") == ["督办单已答复:进度滞后"]
    with bureau.write() as s:
        with pytest.raises(Forbidden):
            supervision.close_notice(session=s, actor=person(s, "city_office"), notice_id=nid)
    with bureau.write() as s:
        supervision.close_notice(session=s, actor=person(s, "bj_office"), notice_id=nid, text="同意")
    with bureau.read() as s:
        notice = s.get(SupervisionNotice, nid)
        assert notice.state == "closed" and [m.kind for m in notice.messages] == ["request", "answer", "close"]
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "notice").order_by(AuditEntry.seq)))
        assert actions == ["ledger.notice.issued", "ledger.notice.answered", "ledger.notice.closed"]
    with bureau.write() as s:
        with pytest.raises(LedgerInvalid, match="已办结"):
            supervision.answer_notice(session=s, actor=person(s, "county_reporter"), notice_id=nid, text="再答")


def test_refusals(bureau):
    bj, city, c1, c2 = chain(bureau)
    with pytest.raises(Forbidden, match="本单位"):
        issue(bureau, "city_office", city)
    with pytest.raises(Forbidden):
        issue(bureau, "county_reporter", c1)       # reporters do not supervise
    with pytest.raises(Forbidden):
        issue(bureau, "gd_office", c1)              # another province
    with pytest.raises(LedgerInvalid, match="应晚于今天"):
        issue(bureau, "city_office", c1, respond_by=TODAY)
    with bureau.read() as s:
        assert s.scalar(select(SupervisionNotice.id)) is None and s.scalar(select(InboxMessage.id)) is None


def test_unanswered_notice_escalates_level_by_level(bureau):
    bj, city, c1, c2 = chain(bureau)
    nid = issue(bureau, "city_office", c1, respond_by=TODAY + timedelta(days=3))
    with bureau.write() as s:
        assert supervision.escalate_overdue(session=s, today=TODAY + timedelta(days=3)) == 0  # due today: not late
        assert supervision.escalate_overdue(session=s, today=TODAY + timedelta(days=4), extra_days=5) == 1
    with bureau.read() as s:
        notice = s.get(SupervisionNotice, nid)
        assert (notice.state, notice.supervising_unit.code, notice.escalations) == ("escalated", "110000", 1)
        assert notice.respond_by == TODAY + timedelta(days=9)
    assert "升级督办:进度滞后" in inbox_titles(bureau, "bj_office")
    assert inbox_titles(bureau, "county_reporter")[0] == "升级督办:进度滞后"
    with bureau.write() as s:
        supervision.escalate_overdue(session=s, today=TODAY + timedelta(days=10))
        supervision.escalate_overdue(session=s, today=TODAY + timedelta(days=20))
        supervision.escalate_overdue(session=s, today=TODAY + timedelta(days=30))  # no level above the national bureau
    with bureau.read() as s:
        notice = s.get(SupervisionNotice, nid)
        assert (notice.supervising_unit.code, notice.escalations) == ("000000", 4)
    with bureau.write() as s:
        supervision.answer_notice(session=s, actor=person(s, "county_reporter"), notice_id=nid, text="已整改")
        assert supervision.escalate_overdue(session=s, today=TODAY + timedelta(days=60)) == 0  # answered: stays


def test_reminder_reaches_the_inbox(bureau):
    *_, c1, _ = chain(bureau)
    with bureau.write() as s:
        supervision.remind(session=s, actor=person(s, "city_office"), assignment_id=c1, text="本周五前报送")
    with bureau.read() as s:
        page = inbox.messages(session=s, actor=person(s, "county_reporter"))
        assert [(m.kind, m.body) for m in page.items] == [("reminder", "北京甲市税务局:本周五前报送")]
        assert inbox.unread_count(session=s, actor=person(s, "county_reporter")) == 1
        assert inbox.messages(session=s, actor=person(s, "county2_reporter")).total == 0
        message_id = page.items[0].id
    with bureau.write() as s:
        with pytest.raises(Exception, match="没有编号"):
            inbox.mark_read(session=s, actor=person(s, "county2_reporter"), message_id=message_id)
    with bureau.write() as s:
        inbox.mark_read(session=s, actor=person(s, "county_reporter"), message_id=message_id)
    with bureau.read() as s:
        assert inbox.unread_count(session=s, actor=person(s, "county_reporter")) == 0
    with pytest.raises(Forbidden):
        with bureau.write() as s:
            supervision.remind(session=s, actor=person(s, "county_reporter"), assignment_id=c1)


def test_notices_list(bureau):
    *_, c1, c2 = chain(bureau)
    first = issue(bureau, "city_office", c1)
    second = issue(bureau, "city_office", c2)
    with bureau.read() as s:
        assert supervision.notices_for(session=s, actor=person(s, "city_office")).total == 2
        assert supervision.notices_for(session=s, actor=person(s, "county_reporter")).total == 1
        assert supervision.notices_for(session=s, actor=person(s, "city_office"), assignment_id=c2).total == 1
        listed = supervision.notices_for(session=s, actor=person(s, "city_office")).items
        assert [n.id for n in listed] == [second, first]  # newest first
