"""Pages of questionnaires: the officials' list, import, preview, publishing, invitations and results; and the
public answer page (an open link or a one-time invitation), which works without JavaScript."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import segno
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse

from chunfeng.bounds import bounded_day
from chunfeng.errors import ChunfengError, Invalid
from chunfeng.paging import clamp_page
from chunfeng.survey import analysis, findings, policy, services
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import KINDS, STATES
from chunfeng.web import forms
from chunfeng.web.contract import INT_MAX, FormId, Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, ImportLimitsDep, SessionDep, render, require
from chunfeng.web.downloads import temporary_file
from chunfeng.xlsx import download_path

router = APIRouter(tags=["survey"])


# --- public ------------------------------------------------------------------------------------------------


@router.get("/s/{token}")
def answer_form(request: Request, token: str, session: SessionDep, done: bool = False):
    if done:  # after a submit (redirected, so a refresh does not send the answers again)
        return render(request, "survey/thanks.html", {}, user=None)
    survey, invitation = services.resolve(session, token)
    return render(request, "survey/answer.html", {"survey": survey, "token": token, "values": {}, "problems": {},
                                                  "invited": invitation is not None}, user=None)


@router.post("/s/{token}")
async def answer_submit(request: Request, token: str, db: DatabaseDep):
    form = await request.form()
    raw = {key: [str(v) for v in form.getlist(key)] for key in form.keys()}
    try:
        with db.write() as session:
            services.submit(session=session, token=token, raw=raw)
    except services.AnswerInvalid as exc:
        with db.read() as session:
            survey, invitation = services.resolve(session, token)
            return render(request, "survey/answer.html", {
                "survey": survey, "token": token, "values": raw, "problems": exc.problems, "error": str(exc),
                "invited": invitation is not None}, user=None, status_code=400)
    return RedirectResponse(f"/s/{token}?done=1", status_code=303)


# --- officials ---------------------------------------------------------------------------------------------


@router.get("/survey", dependencies=[require("survey.view")])
def survey_list(request: Request, session: SessionDep, user: CurrentUser, q: str = "", page: PageNo = 1):
    page, _ = clamp_page(page, 30)
    result = services.list_surveys(session=session, actor=user, q=q, page=page, per_page=30)
    return render(request, "survey/list.html", {"result": result, "q": q, "states": STATES}, user=user)


@router.post("/survey/import", dependencies=[require("survey.manage")])
async def survey_import(db: DatabaseDep, user: CurrentUser, limits: ImportLimitsDep, title: str = Form(""),
                        intro: str = Form(""), edit_of: Annotated[int | None, Form(ge=1, le=INT_MAX)] = None,
                        file: UploadFile = File(...)):
    cap = limits.max_file_mb * 1048576
    data = await file.read(cap + 1)
    if len(data) > cap:
        raise SurveyInvalid(f"{file.filename}:文件超过 {limits.max_file_mb} MB")
    if Path(file.filename or "").suffix.lower() not in (".xlsx", ".csv"):
        raise SurveyInvalid(f"{file.filename}:只能导入 xlsx 或 CSV")
    with tempfile.TemporaryDirectory() as tmp:  # parsed before the write transaction opens
        path = Path(tmp) / Path(file.filename or "问卷.xlsx").name
        path.write_bytes(data)
        questions = services.parse_questionnaire(path, limits=limits)
    with db.write() as session:
        survey = services.import_questionnaire(session=session, actor=user, title=title, intro=intro.strip()[:2000],
                                               questions=questions, edit_of=edit_of)
        survey_id = survey.id
    return RedirectResponse(f"/survey/{survey_id}?imported=1", status_code=303)


@router.get("/survey/{survey_id}", dependencies=[require("survey.view")])
def survey_page(request: Request, survey_id: Id, session: SessionDep, user: CurrentUser):
    return _survey_page(request, session, user, survey_id)


def _survey_page(request: Request, session, user, survey_id: int, *, refused: forms.Refused | None = None):
    """The questionnaire as a respondent sees it (the same form, inert), with its versions and what may be done;
    after a refused invitation of units, that form as typed with the message."""
    survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
    public = str(request.url_for("answer_form", token=survey.link)) if survey.link else ""
    return render(request, "survey/survey.html", {
        "survey": survey, "versions": services.versions(session, survey), "states": STATES, "kinds": KINDS,
        "public": public, "qr": segno.make(public, error="m").svg_inline(scale=3) if public else "",
        "may_manage": policy.may_manage(user, survey), "may_publish": policy.may_publish(user, survey),
        "may_invite": policy.may_invite(user, survey), "values": {}, "problems": {}, "refused": refused}, user=user,
        status_code=refused.status if refused else 200)


@router.post("/survey/{survey_id}/publish", dependencies=[require("survey.manage")])
def survey_publish(survey_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        services.publish(session=session, actor=user, survey_id=survey_id)
    return RedirectResponse(f"/survey/{survey_id}?published=1", status_code=303)


@router.post("/survey/{survey_id}/invitations", dependencies=[require("survey.manage")])
def survey_invite(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser, labels: str = Form(""),
                  count: int = Form(0, ge=0, le=services.MAX_INVITATIONS)):
    """One-time links, shown this once: the page is where they are copied from (the outbox sending is not built)."""
    names = [line.strip() for line in labels.splitlines() if line.strip()] or [""] * count
    with db.write() as session:
        made = services.create_invitations(session=session, actor=user, survey_id=survey_id, labels=names)
        survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
        title, version = survey.title, survey.version
    links = [(label, str(request.url_for("answer_form", token=token))) for label, token in made]
    return render(request, "survey/invitations.html", {"survey_id": survey_id, "title": title, "version": version,
                                                       "links": links}, user=user)


@router.post("/survey/{survey_id}/invitations/units", dependencies=[require("survey.manage")])
def survey_invite_units(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser, units: str = Form("")):
    """One invitation per listed unit, into its inbox and out through its channels (the outbox sends after commit)."""
    codes = units.replace(",", " ").replace(",", " ").replace("、", " ").split()
    try:
        with db.write() as session:
            made = services.invite_units(session=session, actor=user, survey_id=survey_id, unit_codes=codes,
                                         base_url=str(request.base_url))
    except ChunfengError as exc:
        if exc.field is None:  # the survey itself (not published, not the official's): the error page
            raise
        with db.read() as session:
            return _survey_page(request, session, user, survey_id, refused=forms.refused(
                db, request, user, exc, form="units", fields=("units",), values={"units": units}))
    return RedirectResponse(f"/survey/{survey_id}?sent={len(made)}", status_code=303)


@router.post("/survey/{survey_id}/findings", dependencies=[require("ledger.assign")])
def survey_finding(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser, measure_no: FormId,
                   text: str = Form(""), unit_code: str = Form(""), deadline: str = Form(""),
                   question_code: str = Form("")):
    """A finding becomes a ledger assignment (or joins the unit's assignment of that measure)."""
    try:
        day = bounded_day(deadline, "完成时限", form_field="deadline")
        with db.write() as session:
            finding = findings.to_assignment(session=session, actor=user, survey_id=survey_id, text=text,
                                             measure_no=measure_no, unit_code=unit_code, deadline=day,
                                             question_code=question_code.strip())
            assignment_id = finding.assignment_id
    except ChunfengError as exc:
        # The results page again, the finding as typed with the fault beside its field (a unit outside the
        # official's subtree too, recorded as denied); a refusal about the survey itself stays the error page.
        if exc.field is None and not isinstance(exc, Invalid):
            raise
        typed = {"text": text, "measure_no": measure_no, "unit_code": unit_code, "deadline": deadline,
                 "question_code": question_code}
        refused = forms.refused(db, request, user, exc, form="finding", values=typed, fields=tuple(typed))
        return _results_page(request, db, user, survey_id, refused=refused)
    return RedirectResponse(f"/ledger/assignments/{assignment_id}", status_code=303)


@router.get("/survey/{survey_id}/results", dependencies=[require("survey.view")])
def survey_results(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser, format: str = "html"):
    if format == "xlsx":
        with db.write() as session:  # the export is recorded in the audit log
            r = analysis.results(session=session, actor=user, survey_id=survey_id)
            path = analysis.export_xlsx(session=session, actor=user, r=r, path=download_path())
            name = f"问卷结果-{r.survey.title}-第{r.survey.version}版.xlsx"
        return temporary_file(path, name)
    return _results_page(request, db, user, survey_id)


def _results_page(request: Request, db, user, survey_id: int, *, refused: forms.Refused | None = None):
    with db.read() as session:
        r = analysis.results(session=session, actor=user, survey_id=survey_id)
        return render(request, "survey/results.html", {"r": r, "charts": analysis.charts(r), "kinds": KINDS,
                                                       "findings": findings.of_survey(session, survey_id),
                                                       "refused": refused}, user=user,
                      status_code=refused.status if refused else 200)
