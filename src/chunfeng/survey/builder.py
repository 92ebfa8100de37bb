"""Building a questionnaire on a page: an empty draft, then its questions added, changed, moved and deleted one at a
time. Every change is checked as the whole questionnaire it would make, by the import's own rules
(services.check_questions), so a question moved above the question its condition names, or a question deleted while
another's condition names it, is refused just as a sheet in that order would be. Only a draft changes; a published
version is changed by making the next version, which starts as a copy of it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from chunfeng.org import audit
from chunfeng.org.access import Actor
from chunfeng.survey import policy
from chunfeng.survey.errors import QuestionInvalid, SurveyInvalid, SurveyNotFound
from chunfeng.survey.models import STATES, Survey, SurveyQuestion
from chunfeng.survey.services import COLUMNS, check_questions, check_title, get_survey, import_questionnaire, spec_of

FIELDS = ("code", "kind", "text", "options", "rows", "required", "show_if", "show_values")
MAX_INTRO = 2000


def create_draft(*, session: Session, actor: Actor, title: str, intro: str = "", unit_code: str = "") -> Survey:
    """A new questionnaire with no questions yet, as a draft of the actor's unit (or `unit_code`, in their subtree)."""
    return import_questionnaire(session=session, actor=actor, title=title, intro=intro.strip()[:MAX_INTRO],
                                questions=[], unit_code=unit_code, action="survey.questionnaire.created")


def editable(*, session: Session, actor: Actor, survey_id: int) -> Survey:
    """The draft the actor may change; a published or closed version is refused, naming the way on."""
    survey = get_survey(session=session, actor=actor, survey_id=survey_id)
    if refused := policy.manage_refusal(actor, survey):
        raise refused
    if survey.state != "draft":
        raise SurveyInvalid(f"问卷第 {survey.version} 版已{STATES[survey.state][1:]},题目不能再改;"
                            "请用“修改为新版本”生成下一版草稿后再改")
    return survey


def next_version(*, session: Session, actor: Actor, survey_id: int) -> Survey:
    """The next version of a published or closed questionnaire, a draft holding a copy of its questions."""
    base = get_survey(session=session, actor=actor, survey_id=survey_id)
    return import_questionnaire(session=session, actor=actor, title=base.title, intro=base.intro,
                                questions=[spec_of(q) for q in base.questions], edit_of=base.id,
                                action="survey.questionnaire.new_version")


def rename(*, session: Session, actor: Actor, survey_id: int, title: str, intro: str) -> Survey:
    survey = editable(session=session, actor=actor, survey_id=survey_id)
    before = {"title": survey.title, "intro": survey.intro}
    survey.title, survey.intro = check_title(title), intro.strip()[:MAX_INTRO]
    audit.record(session, actor=actor, action="survey.questionnaire.renamed", object_type="survey",
                 object_id=survey.id, before=before, after={"title": survey.title, "intro": survey.intro})
    return survey


def _question(survey: Survey, question_id: int) -> tuple[int, SurveyQuestion]:
    for i, q in enumerate(survey.questions):
        if q.id == question_id:
            return i, q
    raise SurveyNotFound(f"问卷第 {survey.version} 版没有编号为 {question_id} 的题")


def _label(name: str) -> str:
    return COLUMNS[name][0] if name in COLUMNS else "题目"


def _refusal(typed: list[dict[str, str]], index: int | None, doing: str) -> QuestionInvalid | None:
    """What is wrong with the questionnaire `typed` would make: problems of the question at `index` beside its
    fields; any other question's (a condition the change breaks) as the form's message, naming that question."""
    _, problems = check_questions(typed)
    if not problems:
        return None
    by_field = [(name if i == index else "form",
                 message if i == index else f"第 {i + 1} 题({typed[i].get('code', '')})的{_label(name)}:{message}")
                for i, name, message in problems]
    if index is None:  # a move or a deletion: no field to show a problem beside, so the message says it all
        return QuestionInvalid(f"{doing}:{';'.join(message for _, message in by_field)}", by_field)
    return QuestionInvalid(f"{doing}:{len(problems)} 处问题,未保存", by_field)


def save_question(*, session: Session, actor: Actor, survey_id: int, values: dict[str, str],
                  question_id: int | None = None) -> SurveyQuestion:
    """Add a question at the end (`question_id` None) or change one; `values` as typed, field by field (FIELDS)."""
    survey = editable(session=session, actor=actor, survey_id=survey_id)
    typed = [spec_of(q).as_values() for q in survey.questions]
    values = {name: str(values.get(name) or "") for name in FIELDS}
    if question_id is None:
        index, question, before = len(typed), None, None
        typed.append(values)
    else:
        index, question = _question(survey, question_id)
        before = typed[index]
        typed[index] = values
    if refused := _refusal(typed, index, "这道题没有保存" if question_id is None else "修改没有保存"):
        raise refused
    spec = check_questions(typed)[0][index]
    if question is None:
        question = SurveyQuestion(survey_id=survey.id, position=index + 1)
        session.add(question)
    question.code, question.kind, question.text, question.options = spec.code, spec.kind, spec.text, spec.options
    question.required, question.show_if, question.show_values, question.rows = (
        spec.required, spec.show_if, spec.show_values, spec.rows)
    session.flush()
    session.expire(survey, ["questions"])
    audit.record(session, actor=actor, action="survey.question.added" if before is None else "survey.question.changed",
                 object_type="survey", object_id=survey.id, before=before, after=spec.as_values())
    return question


def _reorder(session: Session, actor: Actor, survey: Survey, order: list[SurveyQuestion], doing: str,
             action: str, before: dict | None, after: dict) -> None:
    if refused := _refusal([spec_of(q).as_values() for q in order], None, doing):
        raise refused
    for position, q in enumerate(order, start=1):
        q.position = position
    session.flush()
    session.expire(survey, ["questions"])
    audit.record(session, actor=actor, action=action, object_type="survey", object_id=survey.id, before=before,
                 after=after)


def move_question(*, session: Session, actor: Actor, survey_id: int, question_id: int, step: int) -> None:
    """Move a question one place up (step −1) or down (+1); at either end nothing moves."""
    survey = editable(session=session, actor=actor, survey_id=survey_id)
    order = list(survey.questions)
    index, question = _question(survey, question_id)
    other = index + (1 if step > 0 else -1)
    if not 0 <= other < len(order):
        return
    order[index], order[other] = order[other], order[index]
    _reorder(session, actor, survey, order, f"题 {question.code} 不能移到这里", "survey.question.moved",
             {"code": question.code, "position": index + 1}, {"code": question.code, "position": other + 1})


def delete_question(*, session: Session, actor: Actor, survey_id: int, question_id: int) -> None:
    survey = editable(session=session, actor=actor, survey_id=survey_id)
    _, question = _question(survey, question_id)
    session.delete(question)
    _reorder(session, actor, survey, [q for q in survey.questions if q.id != question_id],
             f"题 {question.code} 不能删除", "survey.question.deleted", spec_of(question).as_values(), None)
