"""Samples and invitations on a real database and a real taxpayer store: the preview's counts per stratum, quotas
(proportional and given), the draw reproducible by its seed, invitations through the push outbox with the
personal data the sample declares, one answer per invitation, opt-outs, and reminders that skip the answered and
the opted-out (by hand with a preview, and on the schedule)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from chunfeng.db import utcnow
from chunfeng.org.models import AuditEntry
from chunfeng.outbox import Delivery
from chunfeng.push.models import Campaign, PushMessage
from chunfeng.survey import answering, invitations, sampling
from chunfeng.survey.errors import SurveyConflict, SurveyInvalid
from chunfeng.survey.sample_models import SurveyOptOut, SurveySample, SurveySampleMember, SurveyStratum
from tests.conftest import person
from tests.push.conftest import extract_dir, store_file  # noqa: F401  (the fixtures)
from tests.survey.test_services import make_survey, office  # noqa: F401

CONFIGURED = ("inapp", "sms")
ROLES = ["法定代表人", "财务负责人", "办税人员"]


@pytest.fixture
def duck(store_file):  # noqa: F811
    from chunfeng.push import store

    with store.connect_store(store_file) as conn:
        yield conn


@pytest.fixture
def nation(office, add_users):  # noqa: F811
    add_users({"nat_officer": ("000000", ["service_officer"])})
    return office


def _draw(db, duck, survey_id, *, user="nat_officer", **kw) -> int:
    kw.setdefault("dimensions", ["province", "size"])
    kw.setdefault("allocation", "proportional")
    with db.write() as s:
        return sampling.draw(session=s, conn=duck, actor=person(s, user), survey_id=survey_id, **kw).id


def _members(db, sample_id) -> list[tuple[str, str]]:
    with db.read() as s:
        return list(s.execute(select(SurveySampleMember.credit_code, SurveyStratum.key)
                              .join(SurveyStratum, SurveyStratum.id == SurveySampleMember.stratum_id)
                              .where(SurveySampleMember.sample_id == sample_id).order_by(SurveySampleMember.credit_code)))


def test_the_preview_counts_each_stratum_of_the_frame_and_writes_nothing(nation, duck, tmp_path):
    survey_id = make_survey(nation, tmp_path, user="nat_officer")
    with nation.read() as s:
        p = sampling.preview(session=s, conn=duck, actor=person(s, "nat_officer"), survey_id=survey_id,
                             dimensions=["size", "province"], allocation="proportional", size=300, seed=42)
    expected = dict(duck.execute("SELECT substr(region, 1, 2) || '|' || size, count(*) FROM registry "
                                 "GROUP BY ALL").fetchall())
    assert {s.key: s.frame_size for s in p.strata} == expected  # dimensions in one order, whatever was ticked
    assert p.frame_total == 3000 and p.total == 300 and p.seed == 42
    for s in p.strata:  # in proportion, within one of the exact share
        assert abs(s.quota - 300 * s.frame_size / 3000) < 1
    assert any(s.label.startswith("广东") for s in p.strata)
    with nation.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveySample)) == 0


def test_the_same_seed_draws_the_same_sample_and_each_stratum_its_quota(nation, duck, tmp_path):
    survey_id = make_survey(nation, tmp_path, user="nat_officer")
    first = _draw(nation, duck, survey_id, size=200, seed=20221)
    again = _draw(nation, duck, survey_id, size=200, seed=20221)
    other = _draw(nation, duck, survey_id, size=200, seed=7)
    assert _members(nation, first) == _members(nation, again)
    assert _members(nation, first) != _members(nation, other)
    drawn = _members(nation, first)
    assert len(drawn) == 200 == len({code for code, _ in drawn})
    registry = {code: f"{region[:2]}|{size}" for code, region, size in
                duck.execute("SELECT credit_code, region, size FROM registry").fetchall()}
    assert all(registry[code] == key for code, key in drawn)  # each member lies in its stratum
    with nation.read() as s:
        sample = s.get(SurveySample, first)
        assert (sample.seed, sample.frame_total, sample.drawn) == (20221, 3000, 200)
        for stratum in sample.strata:  # frame sizes kept for weighting; drawn = quota
            assert stratum.frame_size == sum(1 for k in registry.values() if k == stratum.key)
            assert stratum.drawn == stratum.quota == sum(1 for _, k in drawn if k == stratum.key)
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "survey.sample.drawn").order_by(AuditEntry.id)
                         .limit(1))  # the first draw's entry: without an order PostgreSQL may return any of the three
        assert '"seed":20221' in entry.after


def test_given_quotas_are_taken_and_an_impossible_one_is_refused_naming_the_stratum(nation, duck, tmp_path):
    survey_id = make_survey(nation, tmp_path, user="nat_officer")
    sample_id = _draw(nation, duck, survey_id, dimensions=["type"], allocation="given",
                      quotas={"一般纳税人": 5, "小规模": 12}, seed=3)
    assert sorted(k for _, k in _members(nation, sample_id)) == ["一般纳税人"] * 5 + ["小规模"] * 12
    with pytest.raises(SurveyInvalid, match="“小规模”配额 5000 应在 0 到该层总数"):
        _draw(nation, duck, survey_id, dimensions=["type"], allocation="given", quotas={"小规模": 5000})
    with pytest.raises(SurveyInvalid, match="不是抽样框中的层"):
        _draw(nation, duck, survey_id, dimensions=["type"], allocation="given", quotas={"大型": 1})
    with pytest.raises(SurveyInvalid, match="分层维度"):
        _draw(nation, duck, survey_id, dimensions=["credit"], size=5)
    with nation.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveySample)) == 1


def test_a_unit_samples_only_its_region(office, duck, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    sample_id = _draw(office, duck, survey_id, user="bj_officer", dimensions=["size"], size=1000, seed=1)
    codes = {code for code, _ in _members(office, sample_id)}
    beijing = {c for (c,) in duck.execute("SELECT credit_code FROM registry WHERE region LIKE '11%'").fetchall()}
    assert codes == beijing  # asked for more than the frame: all of it, and nothing outside 北京


def _invite(db, duck, sample_id, **kw):
    kw.setdefault("channels", ["inapp", "sms"])
    kw.setdefault("roles", ROLES)
    kw.setdefault("personal_data", [])
    with db.write() as s:
        return invitations.invite(session=s, conn=duck, actor=person(s, "bj_officer"), sample_id=sample_id,
                                  base_url="https://cf.example.cn/", configured=CONFIGURED, **kw)


def _tokens(db, sample_id) -> dict[str, str]:
    with db.read() as s:
        return {m.credit_code: m.token for m in s.scalars(select(SurveySampleMember).where(
            SurveySampleMember.sample_id == sample_id, SurveySampleMember.invitation_id.is_not(None)))}


def test_invitations_go_through_the_outbox_anonymous_unless_declared_one_answer_each(office, duck, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    sample_id = _draw(office, duck, survey_id, user="bj_officer", dimensions=["size"], size=30, seed=5)
    with pytest.raises(SurveyInvalid, match="尚未配置发送网关"):
        _invite(office, duck, sample_id, channels=["inapp", "email"])
    _invite(office, duck, sample_id)
    with pytest.raises(SurveyInvalid, match="已经发过邀请"):
        _invite(office, duck, sample_id)
    tokens = _tokens(office, sample_id)
    assert len(tokens) == 30
    with office.read() as s:
        sample = s.get(SurveySample, sample_id)
        messages = list(s.scalars(select(PushMessage).where(PushMessage.campaign_id == sample.campaign_id)))
        assert s.get(Campaign, sample.campaign_id).kind == "survey"
        deliveries = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.origin == "push.message"))
        names = dict(duck.execute("SELECT credit_code, name FROM registry").fetchall())
    assert messages and {m.channel for m in messages} <= set(CONFIGURED)
    assert deliveries == sum(1 for m in messages if m.channel == "sms")  # the in-app ones are delivered by being written
    for m in messages:  # nothing personal declared: no names kept or said; each carries its own link and the opt-out
        assert m.person == "" and m.taxpayer_name == "" and names[m.credit_code] not in m.body
        assert f"https://cf.example.cn/s/{tokens[m.credit_code]}" in m.body and "/stop" in m.body
        assert m.link == ("" if m.channel == "sms" else m.link) and "/s/" not in m.link  # no token in plain text
    code, token = next(iter(tokens.items()))
    with office.write() as s:
        answering.submit(session=s, token=token, raw={"Q1": ["否"]})
    with office.write() as s, pytest.raises(SurveyConflict, match="只能提交一次"):
        answering.submit(session=s, token=token, raw={"Q1": ["否"]})


def test_named_invitations_carry_the_declared_names_only(office, duck, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    sample_id = _draw(office, duck, survey_id, user="bj_officer", dimensions=[], size=10, seed=9)
    _invite(office, duck, sample_id, personal_data=["taxpayer"])
    names = dict(duck.execute("SELECT credit_code, name FROM registry").fetchall())
    with office.read() as s:
        for m in s.scalars(select(PushMessage)):
            assert m.taxpayer_name == names[m.credit_code] and names[m.credit_code] in m.body and m.person == ""


def test_reminders_skip_the_answered_and_the_opted_out_and_stop_at_the_maximum(office, duck, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    sample_id = _draw(office, duck, survey_id, user="bj_officer", dimensions=["size"], size=12, seed=11)
    _invite(office, duck, sample_id, max_reminders=1)
    tokens = _tokens(office, sample_id)
    (answered, a_token), (leaving, l_token), *_ = sorted(tokens.items())
    with office.write() as s:
        answering.submit(session=s, token=a_token, raw={"Q1": ["否"]})
    with office.write() as s:
        assert invitations.opt_out(session=s, token=l_token) is True
    with office.write() as s:
        assert invitations.opt_out(session=s, token=l_token) is False  # once is enough
    with office.read() as s:
        v = invitations.preview_reminders(session=s, actor=person(s, "bj_officer"), sample_id=sample_id)
    assert (v.members, v.answered, v.opted_out, v.exhausted) == (len(tokens) - 2, 1, 1, 0)
    with office.write() as s, pytest.raises(SurveyInvalid, match="有了变化"):
        invitations.send_reminders(session=s, actor=person(s, "bj_officer"), sample_id=sample_id, code="stale")
    with office.write() as s:
        sent = invitations.send_reminders(session=s, actor=person(s, "bj_officer"), sample_id=sample_id, code=v.code)
    with office.read() as s:
        reminded = set(s.scalars(select(PushMessage.credit_code).where(PushMessage.stage == "remind1")))
        assert sent == s.scalar(select(func.count()).select_from(PushMessage).where(PushMessage.stage == "remind1"))
        body = s.scalar(select(PushMessage.body).where(PushMessage.stage == "remind1").limit(1))
    assert answered not in reminded and leaving not in reminded and reminded
    assert any(f"/s/{tokens[c]}" in body for c in reminded)  # the same link as the invitation
    with office.read() as s:  # one reminder each at most: nobody is left
        v = invitations.preview_reminders(session=s, actor=person(s, "bj_officer"), sample_id=sample_id)
    assert (v.members, v.exhausted) == (0, len(tokens) - 2)
    with office.write() as s, pytest.raises(SurveyInvalid, match="没有需要提醒的对象"):
        invitations.send_reminders(session=s, actor=person(s, "bj_officer"), sample_id=sample_id, code=v.code)


def test_the_schedule_reminds_after_the_interval_and_opt_outs_hold_for_later_surveys(office, duck, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    sample_id = _draw(office, duck, survey_id, user="bj_officer", dimensions=[], size=8, seed=13)
    _invite(office, duck, sample_id, max_reminders=2, remind_after_days=3)
    tokens = _tokens(office, sample_id)
    leaving, token = sorted(tokens.items())[0]
    with office.write() as s:
        invitations.opt_out(session=s, token=token)
    now = utcnow()
    assert invitations.run_due_reminders(office, now=now + timedelta(days=1)) == {}  # too early
    sent = invitations.run_due_reminders(office, now=now + timedelta(days=4))
    assert sent[sample_id] > 0
    assert invitations.run_due_reminders(office, now=now + timedelta(days=5)) == {}  # the next one waits again
    with office.read() as s:
        assert leaving not in set(s.scalars(select(PushMessage.credit_code).where(PushMessage.stage != "invite")))
        assert s.scalar(select(SurveyOptOut.survey_id).where(SurveyOptOut.credit_code == leaving)) == survey_id
    # A later survey draws the same taxpayers: the one that opted out is drawn but not invited.
    later = make_survey(office, tmp_path, user="bj_officer")
    again = _draw(office, duck, later, user="bj_officer", dimensions=[], size=8, seed=13)
    _invite(office, duck, again)
    with office.read() as s:
        member = s.scalar(select(SurveySampleMember).where(SurveySampleMember.sample_id == again,
                                                           SurveySampleMember.credit_code == leaving))
        assert member.opted_out and member.invitation_id is None
        campaign = s.get(SurveySample, again).campaign_id
        assert leaving not in set(s.scalars(select(PushMessage.credit_code).where(PushMessage.campaign_id == campaign)))


def test_answers_to_a_sample_are_weighted_back_by_the_frame_sizes_of_their_strata(office, duck, tmp_path):  # noqa: F811
    from chunfeng.survey import report

    survey_id = make_survey(office, tmp_path, user="bj_officer")
    sample_id = _draw(office, duck, survey_id, user="bj_officer", dimensions=["size"], size=30, seed=5)
    _invite(office, duck, sample_id)
    with office.read() as s:
        frame = {st.label: st.frame_size for st in s.scalars(select(SurveyStratum)
                                                            .where(SurveyStratum.sample_id == sample_id))}
        stratum_of = dict(s.execute(select(SurveySampleMember.credit_code, SurveyStratum.label)
                                    .join(SurveyStratum, SurveyStratum.id == SurveySampleMember.stratum_id)
                                    .where(SurveySampleMember.sample_id == sample_id)).all())
    assert len(frame) >= 2
    answered: dict[str, int] = {}
    for code, token in list(_tokens(office, sample_id).items())[:12]:
        with office.write() as s:
            answering.submit(session=s, token=token, raw={"Q1": ["否"]})
        answered[stratum_of[code]] = answered.get(stratum_of[code], 0) + 1
    with office.read() as s:
        a = report.analyse(session=s, actor=person(s, "bj_officer"), survey_id=survey_id, with_suggestions=False)
        assert report.population(s, survey_id) == frame  # nothing typed: the sample's frame sizes
    assert a.weighting.applies and a.weighting.weighted == 12 and a.weighting.unstratified == 0
    weights = {h.name: h.weight for h in a.weighting.strata if h.name in answered}
    for name, n in answered.items():  # each answer stands for its stratum's frame size over its answers
        assert weights[name] == pytest.approx(frame[name] / n)
