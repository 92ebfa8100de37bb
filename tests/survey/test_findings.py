"""A survey's finding becomes a ledger assignment in one step (or joins the unit's assignment of that measure);
the ledger's own rules refuse what they refuse, and nothing is left half made."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from chunfeng.errors import Forbidden
from chunfeng.ledger.models import Assignment
from chunfeng.survey import findings
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import SurveyFinding
from tests.conftest import person
from tests.survey.test_services import make_survey, office  # noqa: F401  (the fixture)


@pytest.fixture
def offices(office, add_users):  # noqa: F811
    add_users({"bj_office": ("110000", ["action_office"]), "gd_office": ("440000", ["action_office"])})
    return office


def test_a_finding_becomes_an_assignment_and_a_second_joins_it(offices, tmp_path):
    survey_id = make_survey(offices, tmp_path)
    with offices.write() as s:
        first = findings.to_assignment(session=s, actor=person(s, "bj_office"), survey_id=survey_id,
                                       text="办税服务厅满意度偏低:排队时间长", measure_no=54, unit_code="110101",
                                       deadline=date(2027, 6, 30), question_code="Q2")
        second = findings.to_assignment(session=s, actor=person(s, "bj_office"), survey_id=survey_id,
                                        text="周末无法办理", measure_no=54, unit_code="110101", deadline=date(2027, 6, 30))
        assert first.assignment_id == second.assignment_id
        a = s.get(Assignment, first.assignment_id)
        assert (a.measure_no, a.unit.code, a.deadline) == (54, "110101", date(2027, 6, 30))
    with offices.read() as s:
        assert [f.text for f in findings.of_survey(s, survey_id)] == ["办税服务厅满意度偏低:排队时间长", "周末无法办理"]


def test_refusals_change_nothing(offices, tmp_path):
    survey_id = make_survey(offices, tmp_path)
    cases = [("gd_office", "110101", "Q2", Forbidden),  # the survey is outside Guangdong's subtree
             ("county_officer", "110101", "Q2", Forbidden),  # a service officer does not assign measures
             ("bj_office", "110101", "Q99", SurveyInvalid)]
    for user, unit, code, error in cases:
        with offices.write() as s, pytest.raises(error):
            findings.to_assignment(session=s, actor=person(s, user), survey_id=survey_id, text="排队时间长",
                                   measure_no=54, unit_code=unit, deadline=date(2027, 6, 30), question_code=code)
    with offices.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyFinding)) == 0
        assert s.scalar(select(func.count()).select_from(Assignment)) == 0
