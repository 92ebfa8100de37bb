"""Samples drawn from a list the official uploads, on a real database: the list's columns are the strata, the draw is
reproducible by file and seed (whatever the row order), quotas are honoured, a bad file is refused naming each row
and column with nothing written, a row of another province's unit is refused naming its row, the drawn members are
invited through the push outbox at the list's contacts, and the answers weight back to the list's counts."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from chunfeng.errors import Forbidden, ValidationFailed
from chunfeng.org.models import AuditEntry
from chunfeng.outbox import Delivery
from chunfeng.push.models import PushMessage
from chunfeng.survey import answering, invitations, list_sampling, report
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.sample_models import LIST_ROLE, SurveyListContact, SurveySample, SurveySampleMember, SurveyStratum
from chunfeng.tabular import TableError, TableLimits
from chunfeng.xlsx import write_table
from tests.conftest import person
from tests.survey.test_services import make_survey, office  # noqa: F401  (the fixture)

HEADERS = ["纳税人识别号", "主管单位代码", "名称", "联系人", "手机号码", "规模", "办税服务厅"]
SIZES = ["小型"] * 5 + ["中型"] * 3 + ["大型"] * 2


def listed(n: int = 60) -> list[list[str]]:
    return [[f"91110000MA{i:08d}", "110101" if i % 2 else "110100", f"企业{i}", f"联系人{i}", f"139{i:08d}",
             SIZES[i % 10], "东城" if i % 3 else "西城"] for i in range(n)]


def write_list(tmp_path, rows, name="名单.xlsx", headers=HEADERS):
    return write_table(tmp_path / name, sheet="名单", headers=headers, rows=rows)


def parse(path):
    return list_sampling.parse_list(path, limits=TableLimits())


def _draw(db, survey_id, listing, user="bj_officer", **kw) -> int:
    kw.setdefault("dimensions", [])
    kw.setdefault("allocation", "proportional")
    with db.write() as s:
        return list_sampling.draw(session=s, actor=person(s, user), survey_id=survey_id, listing=listing, **kw).id


def _members(db, sample_id) -> list[tuple[str, str]]:
    with db.read() as s:
        return list(s.execute(select(SurveySampleMember.credit_code, SurveyStratum.key)
                              .join(SurveyStratum, SurveyStratum.id == SurveySampleMember.stratum_id)
                              .where(SurveySampleMember.sample_id == sample_id).order_by(SurveySampleMember.credit_code)))


def test_the_lists_columns_are_its_strata_and_the_preview_writes_nothing(office, tmp_path, monkeypatch):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    listing = parse(write_list(tmp_path, listed()))
    assert listing.columns == ["规模", "办税服务厅"]
    with office.read() as s:
        p = list_sampling.preview(session=s, actor=person(s, "bj_officer"), survey_id=survey_id, listing=listing,
                                  dimensions=[], allocation="proportional", size=20, seed=5)
    counts = {}
    for row in listed():
        counts[f"{row[5]}|{row[6]}"] = counts.get(f"{row[5]}|{row[6]}", 0) + 1
    assert {s.key: s.frame_size for s in p.strata} == counts and p.frame_total == 60 and p.total == 20
    assert all(abs(s.quota - 20 * s.frame_size / 60) < 1 for s in p.strata)  # the registry's allocation
    assert any(s.label == "小型 · 东城" for s in p.strata)
    with office.read() as s:
        p = list_sampling.preview(session=s, actor=person(s, "bj_officer"), survey_id=survey_id, listing=listing,
                                  dimensions=["规模"], allocation="proportional", size=20, seed=5)
        assert [s.key for s in p.strata] == ["中型", "大型", "小型"]
        with pytest.raises(SurveyInvalid, match="名单中没有分层列“行业”"):
            list_sampling.preview(session=s, actor=person(s, "bj_officer"), survey_id=survey_id, listing=listing,
                                  dimensions=["行业"], allocation="proportional", size=20)
    monkeypatch.setattr(list_sampling, "MAX_STRATA", 50)
    listing.columns.append("名称序号")  # a column with a value per row would make a stratum of each row
    for row in listing.rows:
        row.strata["名称序号"] = row.code
    with office.read() as s, pytest.raises(SurveyInvalid, match="把名单分成 60 层,超过上限 50 层"):
        list_sampling.preview(session=s, actor=person(s, "bj_officer"), survey_id=survey_id, listing=listing,
                              dimensions=["名称序号"], allocation="proportional", size=20)
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveySample)) == 0


def test_the_same_file_and_seed_draw_the_same_members_whatever_the_row_order(office, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    rows = listed()
    first = _draw(office, survey_id, parse(write_list(tmp_path, rows)), size=24, seed=2026)
    random.Random(1).shuffle(rows)
    shuffled = _draw(office, survey_id, parse(write_list(tmp_path, rows, name="打乱.csv")), size=24, seed=2026)
    other = _draw(office, survey_id, parse(write_list(tmp_path, rows)), size=24, seed=7)
    assert _members(office, first) == _members(office, shuffled) and len(_members(office, first)) == 24
    assert _members(office, first) != _members(office, other)
    stratum = {r[0]: f"{r[5]}|{r[6]}" for r in rows}
    assert all(stratum[code] == key for code, key in _members(office, first))
    with office.read() as s:
        sample = s.get(SurveySample, first)
        assert (sample.source, sample.list_name, sample.seed, sample.frame_total, sample.drawn) == (
            "list", "名单.xlsx", 2026, 60, 24)
        assert len(sample.list_digest) == 64
        for st in sample.strata:
            assert st.frame_size == sum(1 for k in stratum.values() if k == st.key) and st.drawn == st.quota
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "survey.sample.drawn").order_by(AuditEntry.id)
                         .limit(1))
        assert '"source":"list"' in entry.after and sample.list_digest in entry.after and '"seed":2026' in entry.after
        # only the drawn members' contacts are kept
        assert s.scalar(select(func.count(func.distinct(SurveyListContact.member_id)))) == 24 * 3


def test_given_quotas_are_honoured_and_an_impossible_one_names_its_stratum(office, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    listing = parse(write_list(tmp_path, listed()))
    sample_id = _draw(office, survey_id, listing, dimensions=["规模"], allocation="given",
                      quotas={"大型": 12, "小型": 3}, seed=1)
    assert sorted(k for _, k in _members(office, sample_id)) == ["大型"] * 12 + ["小型"] * 3  # all 12 大型
    with pytest.raises(SurveyInvalid, match="“大型”配额 13 应在 0 到该层总数 12 之间"):
        _draw(office, survey_id, listing, dimensions=["规模"], allocation="given", quotas={"大型": 13})
    with pytest.raises(SurveyInvalid, match="“特大型”不是抽样框中的层"):
        _draw(office, survey_id, listing, dimensions=["规模"], allocation="given", quotas={"特大型": 1})
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveySample)) == 1


def test_a_bad_file_is_refused_naming_each_row_and_column(office, tmp_path):  # noqa: F811
    rows = listed(6)
    rows[1][4] = "12345"  # row 3: not a mobile number
    rows[3][5] = ""  # row 5: an empty stratum
    rows[4][0] = rows[2][0]  # row 6: the identifier of row 4 again
    with pytest.raises(ValidationFailed) as refused:
        parse(write_list(tmp_path, rows))
    text = str(refused.value)
    assert "名单.xlsx:名单有 3 处问题,未抽取样本" in text
    assert "第 3 行 手机号码:“12345”不是手机号码" in text and "第 5 行 规模:分层列不能为空" in text
    assert f"第 6 行 纳税人识别号:“{rows[2][0]}”与第 4 行重复" in text and "第 2 行" not in text
    with pytest.raises(TableError, match="表头缺少列 主管单位代码"):
        parse(write_list(tmp_path, [r[:1] + r[2:] for r in rows], headers=HEADERS[:1] + HEADERS[2:]))


def test_a_row_of_another_provinces_unit_is_refused_naming_it_and_nothing_is_written(office, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    rows = listed(10)
    rows[6][1] = "440000"
    listing = parse(write_list(tmp_path, rows))
    with office.write() as s, pytest.raises(Forbidden, match="第 8 行 主管单位代码“440000”"):
        list_sampling.draw(session=s, actor=person(s, "bj_officer"), survey_id=survey_id, listing=listing,
                           dimensions=[], allocation="proportional", size=5)
    rows[6][1] = "999999"
    with office.write() as s, pytest.raises(SurveyInvalid, match="第 8 行 主管单位代码“999999”"):
        list_sampling.draw(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                           listing=parse(write_list(tmp_path, rows)), dimensions=[], allocation="proportional", size=5)
    county_survey = make_survey(office, tmp_path, user="county_officer")
    with office.write() as s, pytest.raises(Forbidden, match="第 2 行 主管单位代码“110100”"):  # a county: its own rows only
        list_sampling.draw(session=s, actor=person(s, "county_officer"), survey_id=county_survey,
                           listing=parse(write_list(tmp_path, listed(10))), dimensions=[], allocation="proportional",
                           size=5)
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveySample)) == 0
        assert s.scalar(select(func.count()).select_from(SurveyListContact)) == 0


def test_drawn_members_are_invited_at_the_lists_contacts_and_weighted_back_to_the_list(office, tmp_path):  # noqa: F811
    survey_id = make_survey(office, tmp_path, user="bj_officer")
    rows = listed()
    sample_id = _draw(office, survey_id, parse(write_list(tmp_path, rows)), dimensions=["规模"], size=20, seed=3)
    invite = dict(conn=None, sample_id=sample_id, channels=["inapp", "sms"], personal_data=["taxpayer", "person"],
                  base_url="https://cf.example.cn/", configured=("inapp", "sms"))
    with office.write() as s, pytest.raises(SurveyInvalid, match="请选择站内消息发给纳税人的哪些账号"):
        invitations.invite(session=s, actor=person(s, "bj_officer"), roles=[], **invite)
    with office.write() as s:
        invitations.invite(session=s, actor=person(s, "bj_officer"), roles=["法定代表人", "办税人员"], **invite)
    by_code = {r[0]: r for r in rows}
    with office.read() as s:
        messages = list(s.scalars(select(PushMessage)))
        deliveries = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.origin == "push.message"))
        tokens = {m.credit_code: m.token for m in s.scalars(select(SurveySampleMember).where(
            SurveySampleMember.sample_id == sample_id))}
        assert s.get(SurveySample, sample_id).roles == ["法定代表人", "办税人员", LIST_ROLE]
    # each member: the message centre of its two chosen accounts, and an SMS to the listed contact at the listed number
    assert len(messages) == 60 and deliveries == 20
    for m in messages:
        row = by_code[m.credit_code]
        assert m.taxpayer_name == row[2] and f"/s/{tokens[m.credit_code]}" in m.body and "/stop" in m.body
        if m.channel == "sms":
            assert (m.role, m.person, m.address) == (LIST_ROLE, row[3], row[4]) and row[3] in m.body
        else:  # the listed person may not be whoever signs in as the legal representative: not greeted there
            assert m.role in ("法定代表人", "办税人员") and (m.person, m.address) == ("", "") and row[3] not in m.body
    with office.read() as s:
        frame = {st.label: st.frame_size for st in s.scalars(select(SurveyStratum)
                                                            .where(SurveyStratum.sample_id == sample_id))}
    assert frame == {"小型": 30, "中型": 18, "大型": 12}
    for token in list(tokens.values())[:9]:
        with office.write() as s:
            answering.submit(session=s, token=token, raw={"Q1": ["否"]})
    with office.read() as s:
        a = report.analyse(session=s, actor=person(s, "bj_officer"), survey_id=survey_id, with_suggestions=False)
        assert report.population(s, survey_id) == frame  # the list's counts are the population
    assert a.weighting.applies and a.weighting.weighted == 9
    with office.read() as s:
        v = invitations.preview_reminders(session=s, actor=person(s, "bj_officer"), sample_id=sample_id)
    assert (v.members, v.answered) == (11, 9)
    with office.write() as s:  # reminders as for a registry sample: the same contacts, those who have not answered
        assert invitations.send_reminders(session=s, actor=person(s, "bj_officer"), sample_id=sample_id,
                                          code=v.code) == 33
    with office.read() as s:
        reminded = list(s.scalars(select(PushMessage).where(PushMessage.stage == "remind1", PushMessage.channel == "sms")))
    assert len(reminded) == 11 and all(m.address == by_code[m.credit_code][4] for m in reminded)
