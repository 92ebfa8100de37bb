"""Questionnaires on a real database: the xlsx import (all or nothing, row-numbered errors), versions, the unit
subtree, answering with skip logic and required questions, one-time invitations (also raced on PostgreSQL), and
the analysis."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from chunfeng.db import Database
from chunfeng.errors import Forbidden, ValidationFailed
from chunfeng.survey import analysis, answering, services
from chunfeng.survey.errors import SurveyConflict, SurveyInvalid, SurveyNotFound
from chunfeng.survey.models import Survey, SurveyInvitation, SurveyQuestion, SurveyResponse
from chunfeng.tabular import TableLimits
from chunfeng.xlsx import write_table
from tests.conftest import person

HEADERS = ["题号", "题型", "题目", "选项", "必答", "显示条件题号", "显示条件选项"]
GOOD = [
    ["Q1", "单选", "您是否在办税服务厅办过业务?", "是|否", "是", "", ""],
    ["Q2", "量表", "您对办税服务厅的满意程度", "", "是", "Q1", "是"],
    ["Q3", "多选", "您常用哪些渠道?", "电子税务局|12366热线|办税服务厅|掌上办税", "否", "", ""],
    ["Q4", "NPS", "您有多大可能向朋友推荐电子税务局?", "", "否", "", ""],
    ["Q5", "填空", "还有什么建议?", "", "否", "", ""],
]


def sheet(tmp_path, rows, name="问卷.xlsx"):
    return write_table(tmp_path / name, sheet="问卷", headers=HEADERS, rows=rows)


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"bj_officer": ("110000", ["service_officer"]), "county_officer": ("110101", ["service_officer"]),
               "gd_officer": ("440000", ["service_officer"]), "bj_viewer": ("110000", ["viewer"]),
               "agent": ("000000", ["agent"])})
    return with_plan


def make_survey(db, tmp_path, *, user="county_officer", rows=GOOD, publish=True) -> int:
    specs = services.parse_questionnaire(sheet(tmp_path, rows), limits=TableLimits())
    with db.write() as s:
        survey = services.import_questionnaire(session=s, actor=person(s, user), title="纳税人需求调查", questions=specs)
        if publish:
            services.publish(session=s, actor=person(s, user), survey_id=survey.id)
        return survey.id


def link(db, survey_id) -> str:
    with db.read() as s:
        return s.get(Survey, survey_id).link


def answer(db, token, **fields):
    with db.write() as s:
        return answering.submit(session=s, token=token,
                               raw={k: v if isinstance(v, list) else [v] for k, v in fields.items()}).id


def test_an_xlsx_questionnaire_is_imported_with_kinds_options_and_conditions(office, tmp_path):
    survey_id = make_survey(office, tmp_path, publish=False)
    with office.read() as s:
        survey = s.get(Survey, survey_id)
        assert (survey.state, survey.version, survey.link) == ("draft", 1, None)
        assert [(q.code, q.kind, q.required) for q in survey.questions] == [
            ("Q1", "single", True), ("Q2", "scale", True), ("Q3", "multi", False), ("Q4", "nps", False),
            ("Q5", "text", False)]
        assert survey.questions[1].choices == ["1", "2", "3", "4", "5"]
        assert survey.questions[3].choices == [str(n) for n in range(11)]
        assert (survey.questions[1].show_if, survey.questions[1].show_values) == ("Q1", ["是"])
        assert survey.questions[2].options == ["电子税务局", "12366热线", "办税服务厅", "掌上办税"]


def test_a_bad_sheet_is_refused_whole_naming_each_row_and_column(office, tmp_path):
    bad = [
        ["Q1", "单选", "办过业务吗?", "是", "是", "", ""],  # one option
        ["Q1", "判断", "", "", "也许", "", ""],  # duplicate code, unknown kind, no text, bad required
        ["Q3", "量表", "满意度", "1|2", "否", "Q9", "是"],  # options on a scale, unknown condition
        ["Q4", "填空", "建议", "", "否", "Q1", "可能"],  # not an option of Q1
        ['Q"5', "填空", "其他", "", "否", "", ""],  # a quote: the analysis's JSON path could not name it
    ]
    with pytest.raises(ValidationFailed) as caught:
        services.parse_questionnaire(sheet(tmp_path, bad), limits=TableLimits())
    text = str(caught.value)
    for expected in ["第 2 行 选项", "第 3 行 题号:“Q1”与前面的题重复", "第 3 行 题型:“判断”不是可用的题型",
                     "第 3 行 题目:不能为空", "第 3 行 必答:“也许”", "第 4 行 选项:量表(1–5)题固定为 1–5",
                     "第 4 行 显示条件题号:“Q9”不是前面的题", "第 5 行 显示条件选项:“可能”不是题 Q1 的选项",
                     "第 6 行 题号:“Q\"5”不能含双引号或反斜杠"]:
        assert expected in text, expected
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyQuestion)) == 0


def test_a_published_version_is_frozen_and_editing_makes_the_next(office, tmp_path):
    first = make_survey(office, tmp_path)
    edited = services.parse_questionnaire(sheet(tmp_path, GOOD[:2], "v2.xlsx"), limits=TableLimits())
    with office.write() as s:
        actor = person(s, "county_officer")
        second = services.import_questionnaire(session=s, actor=actor, title="纳税人需求调查(修订)",
                                               questions=edited, edit_of=first)
        assert (second.id != first, second.version, second.state) == (True, 2, "draft")
        with pytest.raises(SurveyInvalid, match="已有草稿"):
            services.import_questionnaire(session=s, actor=actor, title="再改", questions=edited, edit_of=first)
        services.publish(session=s, actor=actor, survey_id=second.id)
    with office.read() as s:
        old, new = s.get(Survey, first), s.get(Survey, second.id)
        assert len(old.questions) == 5 and old.state == "closed"
        assert len(new.questions) == 2 and new.state == "published" and new.series == old.series
    with pytest.raises(SurveyConflict, match="已结束"):
        answer(office, old.link, Q1="否")


def test_a_unit_sees_and_manages_only_its_subtree(office, tmp_path):
    survey_id = make_survey(office, tmp_path)
    with office.read() as s:
        assert services.list_surveys(session=s, actor=person(s, "bj_officer")).total == 1  # above: sees it
        assert services.list_surveys(session=s, actor=person(s, "bj_viewer")).total == 1
        assert services.list_surveys(session=s, actor=person(s, "gd_officer")).total == 0
        with pytest.raises(Forbidden, match="管辖范围"):
            services.get_survey(session=s, actor=person(s, "gd_officer"), survey_id=survey_id)
        with pytest.raises(Forbidden, match="查看问卷"):
            services.list_surveys(session=s, actor=person(s, "agent"))
    with office.write() as s, pytest.raises(Forbidden):
        services.create_invitations(session=s, actor=person(s, "bj_viewer"), survey_id=survey_id, labels=["甲"])


def test_skip_logic_and_required_questions_are_enforced_on_the_server(office, tmp_path):
    token = link(office, make_survey(office, tmp_path))
    with pytest.raises(answering.AnswerInvalid) as caught:
        answer(office, token, Q1="是")  # Q2 is shown and required
    assert caught.value.problems == {"Q2": "此题为必答题"}
    with pytest.raises(answering.AnswerInvalid) as caught:
        answer(office, token, Q1="也许", Q2="9", Q3=["电子税务局", "<script>"])
    assert caught.value.problems == {"Q1": "请从给出的选项中选择一项", "Q3": "“<script>”不是本题的选项"}
    # Q2 is hidden when Q1 is 否: its answer is dropped, not stored, and not required.
    response_id = answer(office, token, Q1="否", Q2="1", Q3=["电子税务局", "电子税务局", "12366热线"], Q4="10", Q5=" 好 ")
    with office.read() as s:
        assert s.get(SurveyResponse, response_id).answers == {"Q1": "否", "Q3": ["电子税务局", "12366热线"], "Q4": 10,
                                                              "Q5": "好"}


def test_a_draft_is_not_public(office, tmp_path):
    survey_id = make_survey(office, tmp_path, publish=False)
    with office.read() as s, pytest.raises(SurveyNotFound):
        answering.resolve(s, "x" * 32)
    with office.write() as s, pytest.raises(SurveyInvalid, match="发布后才能生成邀请"):
        services.create_invitations(session=s, actor=person(s, "county_officer"), survey_id=survey_id, labels=["甲"])


def test_an_invitation_admits_one_response(office, tmp_path):
    survey_id = make_survey(office, tmp_path)
    with office.write() as s:
        [(label, token)] = services.create_invitations(session=s, actor=person(s, "county_officer"),
                                                      survey_id=survey_id, labels=["某某公司"])
        assert s.scalar(select(SurveyInvitation.token_digest)) != token  # kept as a digest only
    answer(office, token, Q1="否")
    with pytest.raises(SurveyConflict, match="只能提交一次"):
        answer(office, token, Q1="是", Q2="5")
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 1


def test_two_concurrent_submits_with_one_invitation_store_one_response(office, tmp_path, monkeypatch):
    """Two writers on separate connections, both past the "not yet answered" check before either claims the
    invitation (on PostgreSQL truly at once: there is no process-wide write lock; SQLite has one writer)."""
    survey_id = make_survey(office, tmp_path)
    with office.write() as s:
        [(_, token)] = services.create_invitations(session=s, actor=person(s, "county_officer"),
                                                  survey_id=survey_id, labels=[""])
    other = Database(office.engine.url.render_as_string(hide_password=False))
    barrier, outcomes = threading.Barrier(1 if office.is_sqlite else 2), []
    checked = answering.clean_answers

    def in_step(questions, raw):  # between resolve() and the claim: where a second submit would slip through
        barrier.wait(timeout=10)
        return checked(questions, raw)

    monkeypatch.setattr(answering, "clean_answers", in_step)

    def submit(db):
        try:
            with db.write() as s:
                answering.submit(session=s, token=token, raw={"Q1": ["否"]})
            outcomes.append("stored")
        except SurveyConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(db,)) for db in (office, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    other.dispose()
    assert sorted(outcomes) == ["refused", "stored"]
    with office.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 1


def test_results_count_distribute_and_score(office, tmp_path):
    survey_id = make_survey(office, tmp_path)
    token = link(office, survey_id)
    for q1, q2, q4 in [("是", "5", "10"), ("是", "4", "9"), ("是", "3", "6"), ("否", None, "8")]:
        answer(office, token, Q1=q1, **({"Q2": q2} if q2 else {}), Q4=q4)
    with office.write() as s:
        services.create_invitations(session=s, actor=person(s, "county_officer"), survey_id=survey_id, labels=["a", "b"])
    with office.read() as s:
        r = analysis.results(session=s, actor=person(s, "bj_viewer"), survey_id=survey_id)
        assert (r.responses, r.by_link, r.by_invitation, r.invited, r.response_rate) == (4, 4, 0, 2, 0.0)
        q1, q2, _, q4, _ = r.questions
        assert q1.counts == [("是", 3, 75.0), ("否", 1, 25.0)]
        # mean 4, sample sd 1, n 3: 4 ± 4.303 / √3
        assert (q2.mean.n, q2.mean.mean) == (3, 4.0)
        assert q2.mean.low == pytest.approx(4 - 4.303 / 3 ** 0.5) and q2.mean.high == pytest.approx(4 + 4.303 / 3 ** 0.5)
        assert (q4.nps.promoters, q4.nps.passives, q4.nps.detractors, q4.nps.score) == (2, 1, 1, 25.0)
        assert set(analysis.charts(r)) == {"Q1", "Q2", "Q3", "Q4"}


def test_t_quantiles_beyond_the_table_match_the_known_values():
    assert analysis.t975(30) == 2.042
    assert analysis.t975(40) == pytest.approx(2.021, abs=0.001)
    assert analysis.t975(120) == pytest.approx(1.980, abs=0.001)
    assert analysis.mean_ci([3.0]).low is None and analysis.mean_ci([]) is None


def test_the_audit_log_names_every_survey_operation_in_chinese(office, tmp_path):
    from chunfeng.org.audit_names import action_name
    from chunfeng.org.models import AuditEntry

    survey_id = make_survey(office, tmp_path)
    with office.write() as s:
        services.create_invitations(session=s, actor=person(s, "county_officer"), survey_id=survey_id, labels=["甲"])
        r = analysis.results(session=s, actor=person(s, "county_officer"), survey_id=survey_id)
        analysis.export_xlsx(session=s, actor=person(s, "county_officer"), r=r, path=tmp_path / "r.xlsx")
    with office.read() as s:
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("survey.%"))))
    assert actions == {"survey.questionnaire.imported", "survey.questionnaire.published", "survey.invitations.created",
                       "survey.results.exported"}
    assert all(action_name(a) != a for a in actions)


def test_answers_written_together_keep_each_refusal_to_its_own_answer(office, tmp_path):
    """Issue 18: the answers that waited for the writer are written in one transaction and one INSERT. A refused
    answer (not in the choices, an invitation answered twice in the group) is refused alone; and when the INSERT
    itself fails — here the last guard, the unique invitation of a response, on an invitation whose response was
    stored without the invitation being marked — the group is written again one answer at a time, so that answer
    alone is refused and the others are stored."""
    survey_id = make_survey(office, tmp_path)
    with office.write() as s:
        (_, first), (_, second), (_, third) = services.create_invitations(
            session=s, actor=person(s, "county_officer"), survey_id=survey_id, labels=["甲", "乙", "丙"])
    open_link = link(office, survey_id)
    good, bad = {"Q1": ["否"]}, {"Q1": ["也许"]}
    group = [(open_link, good), (first, good), (first, good), (open_link, bad), (open_link, good)]
    with office.write() as s:
        outcomes = answering.submit_many(session=s, answers=group)
    assert [type(o).__name__ for o in outcomes] == ["int", "int", "SurveyConflict", "AnswerInvalid", "int"]

    with office.write() as s:  # a response for the second invitation, the invitation left unmarked
        invitation = s.scalar(select(SurveyInvitation).where(SurveyInvitation.label == "乙"))
        s.add(SurveyResponse(survey_id=survey_id, invitation_id=invitation.id, answers={"Q1": "否"}))
    with office.write() as s:
        again = answering.submit_many(session=s, answers=[(open_link, good), (third, good), (second, good),
                                                         (open_link, good)])
    # The third invitation, claimed in the group that was undone, is claimed again and answered.
    assert [type(o).__name__ for o in again] == ["int", "int", "SurveyConflict", "int"]
    with office.read() as s:
        stored = set(s.scalars(select(SurveyResponse.id)))
        assert {o for o in outcomes + again if isinstance(o, int)} < stored and len(stored) == 7
        assert set(s.scalars(select(SurveyInvitation.label).where(SurveyInvitation.answered_at.is_not(None)))) == {
            "甲", "丙"}  # the second's claim was undone with its answer
