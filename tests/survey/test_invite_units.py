"""Invitations for a list of units: each unit's inbox gets its own one-time link, sent on through its channels by
the outbox (to a real webhook on loopback); a unit outside the subtree or an unknown code invites nobody."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from chunfeng.channels import ChannelRules
from chunfeng.errors import Forbidden
from chunfeng.inbox import services as inbox
from chunfeng.inbox.models import InboxMessage
from chunfeng.settings import Settings
from chunfeng.survey import services
from chunfeng.survey.errors import SurveyConflict, SurveyInvalid
from chunfeng.survey.models import SurveyInvitation
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
        made = services.invite_units(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                                     unit_codes=["110100", "110101", "110101"], base_url="https://cf.example.cn/")
        assert [i.label for i in made] == ["110100 北京测试市税务局", "110101 北京测试县税务局"]
    with office.read() as s:
        bodies = list(s.scalars(select(InboxMessage.body).where(InboxMessage.kind == "survey")))
    tokens = [re.search(r"https://cf\.example\.cn/s/([\w-]+)", b)[1] for b in bodies]
    assert len(set(tokens)) == 2
    assert inbox.deliver_pending(office, settings=Settings(channel_hosts_allowed=["127.0.0.1"])).sent == 1
    [sent] = hook.received
    assert sent["title"] == "问卷邀请:纳税人需求调查" and tokens[1] in sent["message"]
    with office.write() as s:
        services.submit(session=s, token=tokens[1], raw={"Q1": ["否"]})
    with office.write() as s, pytest.raises(SurveyConflict):
        services.submit(session=s, token=tokens[1], raw={"Q1": ["否"]})


def test_a_unit_outside_the_subtree_or_unknown_invites_nobody(office, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="county_officer")
    with office.write() as s, pytest.raises(Forbidden):
        services.invite_units(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                              unit_codes=["110101", "110100"], base_url="http://x")
    with office.write() as s, pytest.raises(SurveyInvalid, match="999999"):
        services.invite_units(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                              unit_codes=["110101", "999999"], base_url="http://x")
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyInvitation)) == 0
        assert s.scalar(select(func.count()).select_from(InboxMessage)) == 0
