"""Building a questionnaire without a spreadsheet, on a real database: an empty draft, questions of every kind added,
changed, moved and deleted, each change checked by the import's rules (the same messages), a change that would
break a condition refused whole, only a draft changed (a published version through its next version), the unit
subtree, and every change in the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chunfeng.errors import Forbidden
from chunfeng.org.models import AuditEntry
from chunfeng.survey import builder, services
from chunfeng.survey.errors import QuestionInvalid, SurveyInvalid
from chunfeng.survey.models import Survey
from chunfeng.tabular import TableLimits
from tests.conftest import person
from tests.survey.test_matrix import MATRIX, matrix_sheet

QUESTIONS = [
    {"code": "Q1", "kind": "single", "text": "您是否在办税服务厅办过业务?", "options": "是\n否", "required": "是"},
    {"code": "Q2", "kind": "matrix", "text": "您对以下各项服务的满意度", "rows": "办税服务厅\n12366\n电子税务局",
     "required": "是", "show_if": "Q1", "show_values": "是"},
    {"code": "Q3", "kind": "multi", "text": "您常用哪些渠道?", "options": "电子税务局|12366热线|掌上办税"},
    {"code": "Q4", "kind": "scale", "text": "总体满意度"},
    {"code": "Q5", "kind": "nps", "text": "推荐电子税务局的可能性"},
    {"code": "Q6", "kind": "text", "text": "还有什么建议?"},
]


@pytest.fixture
def office(with_plan, county, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "bj_officer": ("110000", ["service_officer"]),
               "gd_officer": ("440000", ["service_officer"]), "bj_viewer": ("110000", ["viewer"])})
    return with_plan


def built(db, user="county_officer", questions=QUESTIONS) -> int:
    with db.write() as s:
        survey_id = builder.create_draft(session=s, actor=person(s, user), title="服务满意度调查").id
        for values in questions:
            builder.save_question(session=s, actor=person(s, user), survey_id=survey_id, values=values)
    return survey_id


def codes(db, survey_id) -> list[str]:
    with db.read() as s:
        return [q.code for q in s.get(Survey, survey_id).questions]


def test_a_questionnaire_built_question_by_question_is_what_the_same_sheet_imports(office, tmp_path):
    survey_id = built(office)
    with office.read() as s:
        survey = s.get(Survey, survey_id)
        assert (survey.state, survey.version, survey.unit.code) == ("draft", 1, "110101")
        assert [(q.code, q.kind, q.required, q.position) for q in survey.questions] == [
            ("Q1", "single", True, 1), ("Q2", "matrix", True, 2), ("Q3", "multi", False, 3),
            ("Q4", "scale", False, 4), ("Q5", "nps", False, 5), ("Q6", "text", False, 6)]
        q2 = survey.questions[1]
        assert (q2.rows, q2.show_if, q2.show_values) == (["办税服务厅", "12366", "电子税务局"], "Q1", ["是"])
        actions = [a for a, in s.execute(select(AuditEntry.action).where(AuditEntry.object_id == str(survey_id)))]
        assert actions == ["survey.questionnaire.created"] + ["survey.question.added"] * 6
    # The same question typed in a sheet comes out the same (one set of rules, one spec).
    imported = services.parse_questionnaire(matrix_sheet(tmp_path, MATRIX), limits=TableLimits())[1]
    with office.read() as s:
        assert services.spec_of(s.get(Survey, survey_id).questions[1]).rows == imported.rows


def test_a_wrong_question_is_refused_with_the_import_messages_each_beside_its_field(office):
    survey_id = built(office, questions=QUESTIONS[:1])
    with pytest.raises(QuestionInvalid) as caught, office.write() as s:
        builder.save_question(session=s, actor=person(s, "county_officer"), survey_id=survey_id, values={
            "code": "Q1", "kind": "matrix", "text": "", "rows": "只有一项", "show_if": "Q9", "required": "也许"})
    assert dict(caught.value.by_field) == {
        "code": "“Q1”与前面的题重复", "text": "不能为空", "rows": "矩阵题至少要有两个不同的子项,用“|”分隔",
        "required": "“也许”应为“是”或“否”", "show_if": "“Q9”不是前面的题(条件只能引用排在前面的题)"}
    assert codes(office, survey_id) == ["Q1"]


def test_a_change_that_breaks_a_condition_is_refused_whole(office):
    survey_id = built(office)
    with office.read() as s:
        q1, q2 = s.get(Survey, survey_id).questions[:2]
        q1_id, q2_id = q1.id, q2.id
    officer = "county_officer"
    with pytest.raises(QuestionInvalid) as caught, office.write() as s:
        builder.move_question(session=s, actor=person(s, officer), survey_id=survey_id, question_id=q1_id, step=1)
    assert str(caught.value) == "题 Q1 不能移到这里:第 1 题(Q2)的显示条件题号:“Q1”不是前面的题(条件只能引用排在前面的题)"
    with pytest.raises(QuestionInvalid) as caught, office.write() as s:
        builder.delete_question(session=s, actor=person(s, officer), survey_id=survey_id, question_id=q1_id)
    assert str(caught.value) == "题 Q1 不能删除:第 1 题(Q2)的显示条件题号:“Q1”不是前面的题(条件只能引用排在前面的题)"
    with pytest.raises(QuestionInvalid) as caught, office.write() as s:  # Q1's options no longer hold Q2's "是"
        builder.save_question(session=s, actor=person(s, officer), survey_id=survey_id, question_id=q1_id,
                              values={**QUESTIONS[0], "options": "有\n没有"})
    assert caught.value.by_field == [("form", "第 2 题(Q2)的显示条件选项:“是”不是题 Q1 的选项")]
    assert codes(office, survey_id) == ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"]

    with office.write() as s:  # what the condition allows goes through: Q2 down, Q1 changed, Q3 deleted
        builder.move_question(session=s, actor=person(s, officer), survey_id=survey_id, question_id=q2_id, step=1)
        builder.save_question(session=s, actor=person(s, officer), survey_id=survey_id, question_id=q1_id,
                              values={**QUESTIONS[0], "options": "是\n否\n记不清"})
        third = s.get(Survey, survey_id).questions[1]
        builder.delete_question(session=s, actor=person(s, officer), survey_id=survey_id, question_id=third.id)
        builder.move_question(session=s, actor=person(s, officer), survey_id=survey_id, question_id=q1_id, step=-1)
    assert codes(office, survey_id) == ["Q1", "Q2", "Q4", "Q5", "Q6"]
    with office.read() as s:
        survey = s.get(Survey, survey_id)
        assert [q.position for q in survey.questions] == [1, 2, 3, 4, 5]
        assert survey.questions[0].options == ["是", "否", "记不清"]
        deleted = s.scalar(select(AuditEntry).where(AuditEntry.action == "survey.question.deleted"))
        assert "Q3" in str(deleted.before)


def test_only_a_draft_changes_and_a_published_one_changes_through_its_next_version(office):
    survey_id = built(office)
    with office.write() as s:
        services.publish(session=s, actor=person(s, "county_officer"), survey_id=survey_id)
        question_id = s.get(Survey, survey_id).questions[0].id
    with pytest.raises(SurveyInvalid, match="已发布,题目不能再改"), office.write() as s:
        builder.save_question(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                              question_id=question_id, values=QUESTIONS[0])
    with pytest.raises(SurveyInvalid, match="已发布"), office.write() as s:
        builder.delete_question(session=s, actor=person(s, "county_officer"), survey_id=survey_id,
                                question_id=question_id)
    with office.write() as s:
        draft = builder.next_version(session=s, actor=person(s, "county_officer"), survey_id=survey_id)
        draft_id = draft.id
        assert (draft.version, draft.state) == (2, "draft")
    assert codes(office, draft_id) == codes(office, survey_id)
    with office.read() as s:
        assert s.get(Survey, draft_id).questions[1].rows == ["办税服务厅", "12366", "电子税务局"]
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.object_id == str(draft_id))) == \
            "survey.questionnaire.new_version"
    with pytest.raises(SurveyInvalid, match="已有草稿"), office.write() as s:
        builder.next_version(session=s, actor=person(s, "county_officer"), survey_id=survey_id)


def test_the_unit_subtree_decides_who_builds(office):
    survey_id = built(office)  # a county's questionnaire
    with office.write() as s:  # the city above it may change it
        builder.save_question(session=s, actor=person(s, "bj_officer"), survey_id=survey_id,
                              values={"code": "Q7", "kind": "text", "text": "补充"})
    for user in ("gd_officer", "bj_viewer"):  # another province; a viewer
        with pytest.raises(Forbidden), office.write() as s:
            builder.save_question(session=s, actor=person(s, user), survey_id=survey_id,
                                  values={"code": "Q8", "kind": "text", "text": "补充"})
    with pytest.raises(Forbidden), office.write() as s:
        builder.create_draft(session=s, actor=person(s, "bj_viewer"), title="不该建立")
    assert codes(office, survey_id)[-1] == "Q7"
