"""A finding of a survey becomes a ledger assignment in one step, so the improvement is tracked like any measure.

The survey side checks the survey and the finding; the ledger's own service gives the measure to the unit (with
its rules: who may assign, to which unit, within which deadline). When the measure is already the unit's, the
finding joins that assignment instead of refusing: the improvement is then tracked where the measure already is.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.ledger import policy as ledger_policy
from chunfeng.ledger import services as ledger
from chunfeng.ledger.models import Assignment
from chunfeng.org import audit
from chunfeng.org.access import Actor
from chunfeng.org.services import find_unit
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import SurveyFinding
from chunfeng.survey.services import get_survey


def to_assignment(*, session: Session, actor: Actor, survey_id: int, text: str, measure_no: int, unit_code: str,
                  deadline: date, question_code: str = "") -> SurveyFinding:
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    text = text.strip()
    if not text or len(text) > 2000:
        raise SurveyInvalid("发现的问题:不能为空,且不超过 2000 字", field="text")
    if question_code and question_code not in {q.code for q in survey.items}:
        raise SurveyInvalid(f"题号“{question_code[:20]}”不是这份问卷的题", field="question_code")
    unit = find_unit(session=session, code=unit_code.strip(), field="unit_code")
    if refused := ledger_policy.assign_refusal(actor, unit):
        refused.field = "unit_code"  # a unit outside the official's subtree, typed in the form
        raise refused
    assignment = session.scalar(select(Assignment).where(Assignment.measure_no == measure_no,
                                                         Assignment.unit_id == unit.id))
    if assignment is None:
        assignment = ledger.assign(session=session, actor=actor, measure_no=measure_no, unit_code=unit.code,
                                   terms=ledger.Terms(deadline=deadline))
    finding = SurveyFinding(survey_id=survey.id, question_code=question_code, text=text, measure_no=measure_no,
                            assignment_id=assignment.id, created_by=actor.username)
    session.add(finding)
    session.flush()
    audit.record(session, actor=actor, action="survey.finding.created", object_type="survey", object_id=survey.id,
                 after={"text": text[:200], "measure": measure_no, "unit": unit.code, "assignment": assignment.id})
    return finding


def of_survey(session: Session, survey_id: int) -> list[SurveyFinding]:
    return list(session.scalars(select(SurveyFinding).where(SurveyFinding.survey_id == survey_id)
                                .order_by(SurveyFinding.id)))
