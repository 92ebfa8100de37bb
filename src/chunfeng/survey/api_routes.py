"""The survey JSON API: the officials' list, a questionnaire and its results (the session cookie and the same
permissions as the pages: a unit sees its subtree's surveys), and a respondent's own invitation or open link, read
and answered once with the same server-side checks as the public page (rate-limited in the `survey` bucket)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from chunfeng.survey import analysis, answering, crosstabs, report, services
from chunfeng.survey.models import Survey, SurveyQuestion, row_code
from chunfeng.survey.routes import store_answer
from chunfeng.web.contract import API_ERRORS, ApiError, Id, OptionalNo, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, SessionDep, require

router = APIRouter(tags=["survey"])
public_router = APIRouter(tags=["survey"])  # a respondent's own token: included first, as survey.routes' (why: there)
PER_PAGE = 30

SIGNED_IN_ERRORS: dict[int | str, dict] = {
    **API_ERRORS,
    401: {"model": ApiError, "description": "请先登录"},
    403: {"model": ApiError, "description": "无权查看(不在本单位及下级单位范围内)"},
}
FOUND_ERRORS: dict[int | str, dict] = {**SIGNED_IN_ERRORS, 404: {"model": ApiError, "description": "没有这份问卷"}}
TOKEN_ERRORS: dict[int | str, dict] = {
    **API_ERRORS,
    404: {"model": ApiError, "description": "问卷链接无效"},
    409: {"model": ApiError, "description": "问卷已结束,或这个邀请已经提交过答卷"},
}


class ApiSurvey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    title: str
    version: int
    state: str
    unit: str
    created_at: str  # ISO 8601, UTC without an offset, as stored
    published_at: str | None


class ApiSurveyPage(BaseModel):
    """One page of the questionnaires of the caller's subtree, every version, newest first."""
    model_config = ConfigDict(extra="forbid")
    page: int
    pages: int
    total: int
    items: list[ApiSurvey]


class ApiQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    kind: str
    text: str
    choices: list[str]
    required: bool
    show_if: str
    show_values: list[str]
    rows: list[dict[str, str]] = Field(default_factory=list, description=(
        "矩阵题的各子项:label 为子项名称,code 为提交答案时该子项所用的键(如 Q5.1),各子项在 choices 中选一项"))


class ApiQuestionnaire(ApiSurvey):
    intro: str
    questions: list[ApiQuestion]


class ApiPublicQuestionnaire(BaseModel):
    """What a respondent's token opens: the questions, and whether it is a one-time invitation."""
    model_config = ConfigDict(extra="forbid")
    title: str
    intro: str
    version: int
    invited: bool
    questions: list[ApiQuestion]


class ApiMean(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int
    mean: float
    low: float | None
    high: float | None


class ApiNps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    promoters: int
    passives: int
    detractors: int
    score: float


class ApiCount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choice: str
    count: int
    share: float


class ApiQuestionResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    kind: str
    text: str
    answered: int
    counts: list[ApiCount]
    mean: ApiMean | None
    nps: ApiNps | None


class ApiWeightedQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    answered: int
    shares: list[ApiCount]  # count: the population units the answers stand for
    mean: ApiMean | None
    nps: float | None


class ApiWeighting(BaseModel):
    """Whether the figures weight back to the population (post-stratification), and if not, why not."""
    model_config = ConfigDict(extra="forbid")
    applies: bool
    problem: str
    weighted: int
    unstratified: int
    uncovered: list[str]
    questions: list[ApiWeightedQuestion]


class ApiResults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    title: str
    version: int
    responses: int
    by_invitation: int
    by_link: int
    invited: int
    response_rate: float | None
    questions: list[ApiQuestionResult]
    weighting: ApiWeighting


class ApiChiSquare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    statistic: float
    df: int
    p: float
    sparse: bool  # more than a fifth of the expected counts under 5: the approximation is rough


class ApiCrosstab(BaseModel):
    """Two questions' answers against each other: counts (rows × columns), Pearson's chi-square, and the row
    shares weighted back to the population when the weighting applies (else null)."""
    model_config = ConfigDict(extra="forbid")
    row: str
    col: str
    rows: list[str]
    cols: list[str]
    counts: list[list[int]]
    test: ApiChiSquare | None
    weighted_shares: list[list[float]] | None


class ApiTheme(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    terms: list[str]
    current: int
    previous: int
    share: float
    previous_share: float | None
    rising: bool
    measures: list[int]


class ApiThemes(BaseModel):
    """The free-text answers clustered into themes, each against the survey compared with (null: none)."""
    model_config = ConfigDict(extra="forbid")
    id: int
    text_answers: int
    compared_with: int | None
    themes: list[ApiTheme]


class AnswersIn(BaseModel):
    """A respondent's answers by question code: one value, or a list for a multiple-choice question."""
    answers: dict[str, str | int | list[str | int]] = Field(max_length=services.MAX_QUESTIONS)


class ApiAnswered(BaseModel):
    model_config = ConfigDict(extra="forbid")
    response_id: int


class ApiAnswerRefused(BaseModel):
    """A refused answer: the message, and for each question that is wrong, what is wrong with it."""
    model_config = ConfigDict(extra="forbid")
    detail: str
    problems: dict[str, str] = {}


def _survey(s: Survey) -> dict:
    return {"id": s.id, "title": s.title, "version": s.version, "state": s.state, "unit": s.unit.code,
            "created_at": s.created_at.isoformat(), "published_at": s.published_at.isoformat() if s.published_at else None}


def _question(q: SurveyQuestion) -> dict:
    return {"code": q.code, "kind": q.kind, "text": q.text, "choices": list(q.choices), "required": q.required,
            "show_if": q.show_if, "show_values": list(q.show_values),
            "rows": [{"label": label, "code": row_code(q.code, n)} for n, label in enumerate(q.rows, start=1)]}


def _mean(m) -> dict | None:
    return None if m is None else {"n": m.n, "mean": m.mean, "low": m.low, "high": m.high}


@router.get("/api/surveys", dependencies=[require("survey.view")],
            responses={200: {"model": ApiSurveyPage}, **SIGNED_IN_ERRORS})
def surveys_api(session: SessionDep, user: CurrentUser, q: str = Query("", max_length=200), page: PageNo = 1):
    """The questionnaires of the caller's unit and the units below it, every version, newest first."""
    result = services.list_surveys(session=session, actor=user, q=q, page=page, per_page=PER_PAGE)
    return JSONResponse({"page": result.page, "pages": result.pages, "total": result.total,
                         "items": [_survey(s) for s in result.items]})


@router.get("/api/surveys/{survey_id}", dependencies=[require("survey.view")],
            responses={200: {"model": ApiQuestionnaire}, **FOUND_ERRORS})
def survey_api(survey_id: Id, session: SessionDep, user: CurrentUser):
    survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
    return JSONResponse({**_survey(survey), "intro": survey.intro, "questions": [_question(q) for q in survey.questions]})


@router.get("/api/surveys/{survey_id}/results", dependencies=[require("survey.view")],
            responses={200: {"model": ApiResults}, **FOUND_ERRORS})
def results_api(survey_id: Id, session: SessionDep, user: CurrentUser):
    """The results page's figures: counts and shares, means with their 95 % intervals, NPS, unweighted over every
    response; and the weighting back to the population, with the weighted figures when it applies."""
    read = analysis.Answers(session, services.get_survey(session=session, actor=user, survey_id=survey_id).id)
    r = analysis.results(session=session, actor=user, survey_id=survey_id, read=read)
    _, w, weighted = report.weighted_results(session, r.survey, read)
    questions = [{"code": q.question.code, "kind": q.question.kind, "text": q.question.text, "answered": q.answered,
                  "counts": [{"choice": c, "count": k, "share": s} for c, k, s in q.counts], "mean": _mean(q.mean),
                  "nps": q.nps.__dict__ if q.nps else None} for q in r.questions]
    return JSONResponse({
        "id": r.survey.id, "title": r.survey.title, "version": r.survey.version, "responses": r.responses,
        "by_invitation": r.by_invitation, "by_link": r.by_link, "invited": r.invited, "response_rate": r.response_rate,
        "questions": questions,
        "weighting": {"applies": w.applies, "problem": w.problem, "weighted": w.weighted, "unstratified": w.unstratified,
                      "uncovered": w.uncovered, "questions": [
                          {"code": q.code, "answered": q.answered, "nps": q.nps,
                           "shares": [{"choice": c, "count": round(units), "share": s} for c, units, s in q.shares],
                           "mean": _mean(q.estimate)} for q in weighted]}})


@router.get("/api/surveys/{survey_id}/crosstab", dependencies=[require("survey.view")],
            responses={200: {"model": ApiCrosstab}, **FOUND_ERRORS,
                       400: {"model": ApiError, "description": "题号不是这份问卷的题,或不能用于交叉表"}})
def crosstab_api(survey_id: Id, session: SessionDep, user: CurrentUser, row: str = Query(..., max_length=16),
                 col: str = Query(..., max_length=16)):
    """The analysis page's cross-tab of two single-answer questions (single choice, scale, NPS)."""
    survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
    read = analysis.Answers(session, survey.id)
    sizes, w, _ = report.weighted_results(session, survey, read)
    t = crosstabs.crosstab(session=session, actor=user, survey_id=survey_id, row_code=row.strip(), col_code=col.strip(),
                           population=sizes if w.applies else None, read=read)
    return JSONResponse({"row": t.row.code, "col": t.col.code, "rows": t.rows, "cols": t.cols, "counts": t.counts,
                         "test": t.test.__dict__ if t.test else None, "weighted_shares": t.weighted_shares})


@router.get("/api/surveys/{survey_id}/themes", dependencies=[require("survey.view")],
            responses={200: {"model": ApiThemes}, **FOUND_ERRORS})
def themes_api(survey_id: Id, session: SessionDep, user: CurrentUser, against: OptionalNo = None):
    """The analysis page's themes of the free-text answers, rising against `against` (a survey the caller sees;
    by default the questionnaire's previous version), with the measures an official linked to each."""
    a = report.analyse(session=session, actor=user, survey_id=survey_id, against=against, with_suggestions=False)
    rising = {id(t) for t in a.rising}
    return JSONResponse({"id": a.survey.id, "text_answers": a.text_answers,
                         "compared_with": a.compared_with.id if a.compared_with else None, "themes": [
                             {"label": t.label, "terms": list(t.terms), "current": t.current, "previous": t.previous,
                              "share": t.share, "previous_share": t.previous_share, "rising": id(t) in rising,
                              "measures": list(t.measures)} for t in a.themes]})


# --- respondents: their own token only ----------------------------------------------------------------------


@public_router.get("/api/s/{token}", responses={200: {"model": ApiPublicQuestionnaire}, **TOKEN_ERRORS})
def questionnaire_api(token: str, session: SessionDep):
    """The questionnaire an invitation's one-time token or the open link opens (a used invitation: 409)."""
    survey, invitation = answering.resolve(session, token)
    return JSONResponse({"title": survey.title, "intro": survey.intro, "version": survey.version,
                         "invited": invitation is not None,
                         "questions": [_question(q) for q in answering.public_questions(survey)]})


@public_router.post("/api/s/{token}", status_code=201, responses={
    201: {"model": ApiAnswered}, **TOKEN_ERRORS,
    400: {"model": ApiAnswerRefused, "description": "答案不完整或不在选项中(problems 按题号说明)"},
    403: {"model": ApiError, "description": "缺少防伪令牌(请求带有会话 Cookie,或不是 JSON)"}})
async def answer_api(request: Request, token: str, db: DatabaseDep, item: AnswersIn):
    """One response, checked as the public page checks it (skip logic, choices, required questions); an invitation
    answers once: a second answer is 409."""
    raw = {code: [str(v) for v in (value if isinstance(value, list) else [value])]
           for code, value in item.answers.items()}
    try:
        response_id = await store_answer(request, db, token, raw)
    except answering.AnswerInvalid as exc:
        return JSONResponse({"detail": str(exc), "problems": exc.problems}, status_code=400)
    return JSONResponse({"response_id": response_id}, status_code=201)
