"""The public answering: what a token opens, a published version's questions as the page reads them, the skip logic
enforced here, on the server, whatever the page did or did not run, and answers stored — one at a time or, when
several wait for the writer, together in one commit."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chunfeng.db import utcnow
from chunfeng.errors import ChunfengError
from chunfeng.survey.errors import SurveyConflict, SurveyInvalid, SurveyNotFound
from chunfeng.survey.models import SCALES, Survey, SurveyInvitation, SurveyQuestion, SurveyResponse, row_code
from chunfeng.survey.services import MAX_TEXT_ANSWER, _digest

ANSWERED_ONCE = "这个邀请链接已经提交过答卷,每个邀请只能提交一次。感谢您的参与"


def resolve(session: Session, token: str) -> tuple[Survey, SurveyInvitation | None]:
    """The questionnaire a public token opens: an invitation's one-time token, or the open link. A draft is not
    public; a closed version and a used invitation are refused with a reason."""
    # The open link first: it is what fifty respondents at once come by, each of them one query instead of two.
    survey, invitation = session.scalar(select(Survey).where(Survey.link == token)), None
    if survey is None:
        invitation = session.scalar(select(SurveyInvitation).where(SurveyInvitation.token_digest == _digest(token)))
        survey = session.get(Survey, invitation.survey_id) if invitation is not None else None
    if survey is None or survey.state == "draft":
        raise SurveyNotFound("问卷链接无效:请核对链接是否完整")
    if survey.state == "closed":
        raise SurveyConflict("这份问卷已结束,不再接收答卷。感谢您的关注")
    if invitation is not None and invitation.answered_at is not None:
        raise SurveyConflict(ANSWERED_ONCE)
    return survey, invitation


@dataclass(frozen=True, eq=False)
class FrozenQuestion:
    """A published version's question as the public page and the answer check read it: plain values, shared by
    the process's requests (a published version's questions never change; builder.editable refuses)."""

    code: str
    kind: str
    text: str
    options: tuple
    required: bool
    show_if: str
    show_values: tuple
    rows: tuple
    choices: tuple


_PUBLISHED: dict[tuple[int, str], tuple[FrozenQuestion, ...]] = {}
PUBLISHED_KEPT = 256  # versions open at once are few: one per questionnaire


def public_questions(survey: Survey) -> tuple[FrozenQuestion, ...]:
    """The questions of a published (or closed) version, read from the database once per process: each public
    page and answer loaded and built them again (a query and its objects per request, at 50 respondents a
    second). Keyed by the version's id and its open link, drawn at random when it was published, so a database
    emptied or restored under a running process (ids reused) never meets another version's questions."""
    key = (survey.id, survey.link or "")
    found = _PUBLISHED.get(key)
    if found is None:
        if survey.state == "draft":  # a draft still changes: never kept
            return tuple(_frozen(q) for q in survey.questions)
        if len(_PUBLISHED) >= PUBLISHED_KEPT:
            _PUBLISHED.clear()
        found = _PUBLISHED[key] = tuple(_frozen(q) for q in survey.questions)
    return found


def _frozen(q: SurveyQuestion) -> FrozenQuestion:
    return FrozenQuestion(q.code, q.kind, q.text, tuple(q.options), q.required, q.show_if, tuple(q.show_values),
                          tuple(q.rows), tuple(q.choices))


class AnswerInvalid(SurveyInvalid):
    """Some answers are missing or not allowed: `problems` maps each question's code to what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__(f"有 {len(problems)} 道题需要修改,请看题目下方的提示")


def shown(questions: list[SurveyQuestion], answers: dict) -> list[SurveyQuestion]:
    """The questions a respondent with these answers is shown: a question with a condition only when its earlier
    question was itself shown and answered with one of the listed options."""
    visible: list[SurveyQuestion] = []
    codes: set[str] = set()
    for q in questions:
        if q.show_if:
            given = answers.get(q.show_if)
            given = {str(x) for x in given} if isinstance(given, list) else {str(given)} if given is not None else set()
            if q.show_if not in codes or not given & set(q.show_values):
                continue
        visible.append(q)
        codes.add(q.code)
    return visible


def clean_answers(questions: list[SurveyQuestion], raw: dict[str, list[str]]) -> dict:
    """The answers to keep, from the form's fields (question code → the values sent): answers to questions the
    respondent is not shown are dropped, every answer must be one of its question's choices, required ones must
    be there. Raises AnswerInvalid naming each question that is wrong."""
    answers: dict = {}
    problems: dict[str, str] = {}
    visible: set[str] = set()
    for q in questions:
        if q not in shown(questions, answers):  # decided on the answers kept so far: conditions look backwards only
            continue
        visible.add(q.code)
        values = [v.strip() for v in raw.get(q.code, []) if v and v.strip()]
        if q.kind == "multi":
            picked = list(dict.fromkeys(values))
            if unknown := [v for v in picked if v not in q.choices]:
                problems[q.code] = f"“{unknown[0][:40]}”不是本题的选项"
            elif picked:
                answers[q.code] = picked
        elif q.kind == "matrix":
            if problem := _clean_matrix(q, raw, answers):
                problems[q.code] = problem
            continue
        elif q.kind == "text":
            if values and len(values[0]) > MAX_TEXT_ANSWER:
                problems[q.code] = f"回答不能超过 {MAX_TEXT_ANSWER} 字(现有 {len(values[0])} 字)"
            elif values:
                answers[q.code] = values[0]
        elif values:
            if len(set(values)) > 1 or values[0] not in q.choices:
                problems[q.code] = "请从给出的选项中选择一项"
            else:
                answers[q.code] = int(values[0]) if q.kind in SCALES else values[0]
        if q.required and q.code not in answers and q.code not in problems:
            problems[q.code] = "此题为必答题"
    if problems:
        raise AnswerInvalid(problems)
    return answers


def _clean_matrix(q: SurveyQuestion, raw: dict[str, list[str]], answers: dict) -> str | None:
    """A matrix's rows into `answers`, each under its own key (row_code); what is wrong, naming the rows."""
    missing, wrong = [], []
    for n, label in enumerate(q.rows, start=1):
        values = [v.strip() for v in raw.get(row_code(q.code, n), []) if v and v.strip()]
        if not values:
            missing.append(label)
        elif len(set(values)) > 1 or values[0] not in q.choices:
            wrong.append(label)
        else:
            answers[row_code(q.code, n)] = values[0] if q.options else int(values[0])
    if wrong:
        return f"“{'”“'.join(wrong)}”:请从给出的选项中选择一项"
    if q.required and missing:
        return f"此题为必答题,每一项都要选择;还没有回答:{'、'.join(missing)}"
    return None


def submit(*, session: Session, token: str, raw: dict[str, list[str]]) -> SurveyResponse:
    """Record one response. An invitation is claimed by a conditional update in this transaction: of two submits
    racing with the same token, the second finds it claimed (PostgreSQL re-reads the row after the first commits)
    and is refused; the unique invitation id of a response is the last guard."""
    survey, invitation = resolve(session, token)
    answers = clean_answers(list(public_questions(survey)), raw)
    if invitation is not None:
        _claim(session, invitation)
    response = SurveyResponse(survey_id=survey.id, invitation_id=invitation.id if invitation else None, answers=answers,
                              stratum=invitation.stratum if invitation else None)
    session.add(response)
    try:
        session.flush()
    except IntegrityError:
        raise SurveyConflict(ANSWERED_ONCE) from None
    return response


def _claim(session: Session, invitation: SurveyInvitation) -> None:
    claimed = session.execute(update(SurveyInvitation).where(SurveyInvitation.id == invitation.id,
                                                             SurveyInvitation.answered_at.is_(None))
                              .values(answered_at=utcnow())).rowcount
    if claimed != 1:
        raise SurveyConflict(ANSWERED_ONCE)


def submit_many(*, session: Session, answers: list[tuple[str, dict[str, list[str]]]]) -> list[int | Exception]:
    """Several responses in the session's transaction (the answers that waited for the writer together): for each,
    its response id, or its refusal (AnswerInvalid, a closed survey, an invitation already answered), which
    changes nothing for the others. Checked one by one as `submit` checks, the open link looked up once, and
    written by one bulk INSERT (multi-row on PostgreSQL; on SQLite one compiled statement run row by row, to read
    back each answer's id in order) rather than an ORM flush each; if that INSERT fails, the group is undone and
    each answer written alone (`submit`, in a savepoint of its own), so no answer's error is another's."""
    try:
        with session.begin_nested():
            return _submit_together(session, answers)
    except Exception:  # retried one by one below, where each error stays with its answer
        pass
    outcomes: list[int | Exception] = []
    for token, raw in answers:
        try:
            with session.begin_nested():
                outcomes.append(submit(session=session, token=token, raw=raw).id)
        except Exception as exc:  # one respondent's error is theirs; a broken transaction fails the commit
            outcomes.append(exc)
    return outcomes


def _submit_together(session: Session, answers: list[tuple[str, dict[str, list[str]]]]) -> list[int | Exception]:
    outcomes: list[int | Exception | None] = [None] * len(answers)
    rows: list[dict] = []
    written: list[int] = []  # the answers' places whose row is in `rows`
    links: dict[str, Survey] = {}  # an open link's survey: the same for every answer of the group
    for place, (token, raw) in enumerate(answers):
        try:
            survey, invitation = (links[token], None) if token in links else resolve(session, token)
            if invitation is None:
                links[token] = survey
            cleaned = clean_answers(list(public_questions(survey)), raw)
            if invitation is not None:
                _claim(session, invitation)
        except ChunfengError as exc:
            outcomes[place] = exc
            continue
        rows.append({"survey_id": survey.id, "invitation_id": invitation.id if invitation else None,
                     "answers": cleaned, "stratum": invitation.stratum if invitation else None,
                     "submitted_at": utcnow()})
        written.append(place)
    if rows:
        ids = session.scalars(insert(SurveyResponse).returning(SurveyResponse.id, sort_by_parameter_order=True), rows)
        for place, response_id in zip(written, ids, strict=True):
            outcomes[place] = response_id
    return outcomes  # type: ignore[return-value]  # every place filled above
