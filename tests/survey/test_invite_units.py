"""Invitations for a list of units: each unit's inbox gets its own one-time link, sent on through its channels by
the outbox (to a real webhook on loopback); a unit outside the subtree or an unknown code invites nobody, also from
an imported list (named by row); reminders reach only the units that have not answered; the response per unit."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from chunfeng.channels import ChannelRules
from chunfeng.errors import Forbidden, ValidationFailed
from chunfeng.inbox import services as inbox
from chunfeng.inbox.models import InboxMessage
from chunfeng.org.models import Unit
from chunfeng.settings import Settings
from chunfeng.survey import answering, unit_invitations
from chunfeng.survey.errors import SurveyConflict, SurveyInvalid
from chunfeng.survey.models import SurveyInvitation
from chunfeng.survey.unit_models import SurveyUnitInvitation
from chunfeng.tabular import TableLimits
from chunfeng.xlsx import write_table
from tests.conftest import Webhook, person
from tests.survey.test_services import make_survey, office  # noqa: F401  (the fixture)


@pytest.fixture
def hook():
    h = Webhook()
    yield h
    h.close()


def test_each_unit_gets_its_own_link_in_its_inbox_and_channels(office, system, tmp_path, hook):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    with office.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=hook.url, label="县局值班群",
                          channel_rules=ChannelRules(hosts_allowed=("127.0.0.1",)))
        made = unit_invitations.invite_units(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                                     unit_codes=["110100", "110101", "110101"], base_url="https://cf.example.cn/")
        assert [f"{i.unit.code} {i.unit.name}" for i in made] == ["110100 北京测试市税务局", "110101 北京测试县税务局"]
    with office.read() as s:
        bodies = list(s.scalars(select(InboxMessage.body).where(InboxMessage.kind == "survey")))
    tokens = [re.search(r"https://cf\.example\.cn/s/([\w-]+)", b)[1] for b in bodies]
    assert len(set(tokens)) == 2
    assert inbox.deliver_pending(office, settings=Settings(channel_hosts_allowed=["127.0.0.1"])).sent == 1
    [sent] = hook.received
    assert sent["title"] == "问卷邀请:纳税人需求调查" and tokens[1] in sent["message"]
    with office.write() as s:
        answering.submit(session=s, token=tokens[1], raw={"Q1": ["否"]})
    with office.write() as s, pytest.raises(SurveyConflict):
        answering.submit(session=s, token=tokens[1], raw={"Q1": ["否"]})


def test_a_unit_outside_the_subtree_or_unknown_invites_nobody(office, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="county_officer")
    with office.write() as s, pytest.raises(Forbidden):
        unit_invitations.invite_units(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                              unit_codes=["110101", "110100"], base_url="http://x")
    with office.write() as s, pytest.raises(SurveyInvalid, match="999999"):
        unit_invitations.invite_units(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                              unit_codes=["110101", "999999"], base_url="http://x")
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyInvitation)) == 0
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 0


def test_reminders_reach_only_the_units_that_have_not_answered_with_their_own_link(office, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    with office.write() as s:
        unit_invitations.invite_units(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                                      unit_codes=["110100", "110101"], base_url="https://cf.example.cn")
    with office.read() as s:
        first = {m.unit_id: re.search(r"/s/([\w-]+)", m.body)[1] for m in s.scalars(select(InboxMessage))}
    county = next(t for u, t in first.items() if u == office_unit(office, "110101"))
    with office.write() as s:
        answering.submit(session=s, token=county, raw={"Q1": ["否"]})
    with office.write() as s:  # inviting the same unit again sends nothing new
        assert unit_invitations.invite_units(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                                             unit_codes=["110101"], base_url="https://cf.example.cn") == []
    with office.write() as s:
        assert unit_invitations.remind_units(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                                             base_url="https://cf.example.cn") == 1
    with office.read() as s:
        [reminder] = s.scalars(select(InboxMessage).where(InboxMessage.title.startswith("问卷提醒")))
        assert reminder.unit_id == office_unit(office, "110100")
        assert first[reminder.unit_id] in reminder.body  # the same one-time link again
        units = unit_invitations.figures(s, survey_id)
        assert [(u.unit.code, u.answered_at is not None, u.reminders) for u in units] == [
            ("110100", False, 1), ("110101", True, 0)]
        assert sorted((g.invited, g.answered) for g in unit_invitations.rollup(s, units)) == [(1, 0), (1, 1)]
    for _ in range(unit_invitations.MAX_UNIT_REMINDERS - 1):
        with office.write() as s:
            unit_invitations.remind_units(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                                          base_url="https://cf.example.cn")
    with office.write() as s, pytest.raises(SurveyInvalid, match="没有需要提醒"):
        unit_invitations.remind_units(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                                      base_url="https://cf.example.cn")


def office_unit(db, code: str) -> int:
    with db.read() as s:
        return s.scalar(select(Unit.id).where(Unit.code == code))


def test_an_imported_list_is_all_or_nothing_with_each_fault_named_by_its_row(office, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="county_officer")
    limits = TableLimits()
    bad = write_table(tmp_path / "units.xlsx", sheet="单位", headers=["单位代码", "单位名称"],
                      rows=[["110101", "县局"], ["", "空行"], ["11 01", "坏代码"]])
    with pytest.raises(ValidationFailed) as refused:
        unit_invitations.parse_unit_list(bad, limits=limits)
    assert "第 3 行" in str(refused.value) and "第 4 行" in str(refused.value) and "第 2 行" not in str(refused.value)
    outside = tmp_path / "outside.csv"
    outside.write_text("单位代码\n110101\n110100\n", encoding="utf-8")
    rows = dict(unit_invitations.parse_unit_list(outside, limits=limits))
    with office.write() as s, pytest.raises(Forbidden, match="第 3 行"):
        unit_invitations.invite_units(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                                      unit_codes=list(rows.values()), base_url="http://x",
                                      rows={code: n for n, code in rows.items()})
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyUnitInvitation)) == 0
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 0
