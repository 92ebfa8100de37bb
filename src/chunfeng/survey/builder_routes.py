"""Pages that build a questionnaire without a spreadsheet: a new draft, its questions added, changed, moved and
deleted (each refusal shown beside the field it is about, what was typed kept), the next version of a published one,
and the preview as a respondent sees it on a phone and on a desk. Works without JavaScript."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from chunfeng.errors import ChunfengError
from chunfeng.survey import builder, policy, services
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import KINDS, STATES
from chunfeng.web import forms
from chunfeng.web.contract import Id, OptionalNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, SessionDep, render, require

router = APIRouter(tags=["survey"])
PREVIEW_WIDTHS = {"phone": 390, "desktop": 1280}


@router.post("/survey/drafts", dependencies=[require("survey.manage")])
def draft_create(request: Request, db: DatabaseDep, user: CurrentUser, title: str = Form(""), intro: str = Form("")):
    try:
        with db.write() as session:
            survey_id = builder.create_draft(session=session, actor=user, title=title, intro=intro).id
    except ChunfengError as exc:
        refused = forms.refused(db, request, user, exc, form="draft", values={"title": title, "intro": intro},
                                fields=("title",))
        with db.read() as session:
            result = services.list_surveys(session=session, actor=user, page=1, per_page=30)
            return render(request, "survey/list.html", {"result": result, "q": "", "states": STATES,
                                                        "refused": refused}, user=user, status_code=refused.status)
    return RedirectResponse(f"/survey/{survey_id}/build", status_code=303)


@router.get("/survey/{survey_id}/build", dependencies=[require("survey.manage")])
def build_page(request: Request, survey_id: Id, session: SessionDep, user: CurrentUser,
               edit: OptionalNo = None):
    return _build_page(request, session, user, survey_id, edit=edit or 0)


def _build_page(request: Request, session, user, survey_id: int, *, edit: int = 0,
                refused: forms.Refused | None = None):
    """The draft's questions with their buttons and the question form (a new one, or `edit`'s); a refused form
    again with what was typed."""
    survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
    if refusal := policy.manage_refusal(user, survey):
        raise refusal
    editing = next((q for q in survey.questions if q.id == edit), None)
    if refused is not None and refused.form == "question":
        values = refused.values
    elif editing is not None:
        values = services.spec_of(editing).as_values()
    else:
        values = {"kind": "single", "required": "是"}
    return render(request, "survey/build.html", {
        "survey": survey, "states": STATES, "kinds": KINDS, "editing": editing, "values": values,
        "refused": refused, "draft": survey.state == "draft"}, user=user,
        status_code=refused.status if refused else 200)


def _refused_question(request: Request, db: DatabaseDep, user, survey_id: int, exc: ChunfengError, values: dict,
                      edit: int = 0):
    with db.read() as session:
        refused = forms.refused(db, request, user, exc, form="question", values=values, fields=builder.FIELDS)
        return _build_page(request, session, user, survey_id, edit=edit, refused=refused)


async def _typed(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: str(form.get(name) or "") for name in builder.FIELDS}


@router.post("/survey/{survey_id}/title", dependencies=[require("survey.manage")])
def draft_rename(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser, title: str = Form(""),
                 intro: str = Form("")):
    try:
        with db.write() as session:
            builder.rename(session=session, actor=user, survey_id=survey_id, title=title, intro=intro)
    except ChunfengError as exc:
        if exc.field is None:
            raise
        with db.read() as session:
            refused = forms.refused(db, request, user, exc, form="title", values={"title": title, "intro": intro},
                                    fields=("title",))
            return _build_page(request, session, user, survey_id, refused=refused)
    return RedirectResponse(f"/survey/{survey_id}/build?saved=1", status_code=303)


@router.post("/survey/{survey_id}/questions", dependencies=[require("survey.manage")])
async def question_add(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser):
    values = await _typed(request)
    try:
        with db.write() as session:
            question_id = builder.save_question(session=session, actor=user, survey_id=survey_id, values=values).id
    except ChunfengError as exc:
        if exc.field is None and not getattr(exc, "by_field", None):
            raise  # the draft itself (published, not the official's): the error page
        return _refused_question(request, db, user, survey_id, exc, values)
    return RedirectResponse(f"/survey/{survey_id}/build?saved=1#question-{question_id}", status_code=303)


@router.post("/survey/{survey_id}/questions/{question_id}", dependencies=[require("survey.manage")])
async def question_save(request: Request, survey_id: Id, question_id: Id, db: DatabaseDep, user: CurrentUser):
    values = await _typed(request)
    try:
        with db.write() as session:
            builder.save_question(session=session, actor=user, survey_id=survey_id, values=values,
                                  question_id=question_id)
    except ChunfengError as exc:
        if exc.field is None and not getattr(exc, "by_field", None):
            raise
        return _refused_question(request, db, user, survey_id, exc, values, edit=question_id)
    return RedirectResponse(f"/survey/{survey_id}/build?saved=1#question-{question_id}", status_code=303)


@router.post("/survey/{survey_id}/questions/{question_id}/move", dependencies=[require("survey.manage")])
def question_move(request: Request, survey_id: Id, question_id: Id, db: DatabaseDep, user: CurrentUser,
                  direction: str = Form("")):
    if direction not in ("up", "down"):
        raise SurveyInvalid("移动方向只能是上移或下移")
    return _reorder(request, db, user, survey_id, f"/survey/{survey_id}/build#question-{question_id}",
                    lambda session: builder.move_question(session=session, actor=user, survey_id=survey_id,
                                                          question_id=question_id,
                                                          step=-1 if direction == "up" else 1))


@router.post("/survey/{survey_id}/questions/{question_id}/delete", dependencies=[require("survey.manage")])
def question_delete(request: Request, survey_id: Id, question_id: Id, db: DatabaseDep, user: CurrentUser):
    return _reorder(request, db, user, survey_id, f"/survey/{survey_id}/build?deleted=1",
                    lambda session: builder.delete_question(session=session, actor=user, survey_id=survey_id,
                                                            question_id=question_id))


def _reorder(request: Request, db, user, survey_id: int, done: str, change):
    """A move or a deletion; refused because it would break another question's condition, the builder again with
    the reason above the list (the order's form), not an error page."""
    try:
        with db.write() as session:
            change(session)
    except ChunfengError as exc:
        if not getattr(exc, "by_field", None):
            raise
        with db.read() as session:
            refused = forms.refused(db, request, user, exc, form="order", values={}, fields=())
            return _build_page(request, session, user, survey_id, refused=refused)
    return RedirectResponse(done, status_code=303)


@router.post("/survey/{survey_id}/next-version", dependencies=[require("survey.manage")])
def survey_next_version(survey_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        draft_id = builder.next_version(session=session, actor=user, survey_id=survey_id).id
    return RedirectResponse(f"/survey/{draft_id}/build", status_code=303)


@router.get("/survey/{survey_id}/preview", dependencies=[require("survey.view")])
def survey_preview(request: Request, survey_id: Id, session: SessionDep, user: CurrentUser, width: str = "phone"):
    """The answer form as a respondent sees it, at a phone's width or a desk's; nothing it holds is sent anywhere."""
    survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
    width = width if width in PREVIEW_WIDTHS else "phone"
    return render(request, "survey/preview.html", {
        "survey": survey, "width": width, "widths": PREVIEW_WIDTHS, "values": {}, "problems": {},
        "may_manage": policy.may_manage(user, survey)}, user=user)
