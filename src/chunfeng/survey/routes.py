"""Pages of questionnaires: the officials' list, import, preview, publishing, invitations, results and the analysis;
the public answer page (an open link or a one-time invitation), which works without JavaScript; and direct reports
(measure 19): the forms sent, the roll-up, a contact unit's own report."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from anyio import to_thread
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from chunfeng.bounds import bounded_day, bounded_int
from chunfeng.errors import ChunfengError, Invalid
from chunfeng.org.access import allowed
from chunfeng.paging import clamp_page
from chunfeng.preload import Preloaded
from chunfeng.survey import (
    analysis,
    answering,
    crosstabs,
    direct_reports,
    findings,
    policy,
    poster,
    report,
    services,
    unit_invitations,
)
from chunfeng.survey.direct_models import REPORT_FIELDS, REPORT_STATES
from chunfeng.survey.errors import SurveyInvalid, SurveyNotFound
from chunfeng.survey.models import KINDS, STATES
from chunfeng.web import forms
from chunfeng.web.contract import INT_MAX, Id, OptionalNo, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, ImportLimitsDep, SessionDep, render, require, templates
from chunfeng.web.downloads import document, temporary_file
from chunfeng.xlsx import download_path

router = APIRouter(tags=["survey"])
# The public answer page on a router of its own, which the app includes before all others: FastAPI tries an
# included router's routes one by one, and the two hundred of the officials' pages ahead of it cost a respondent's
# request about a millisecond of CPU (issue 18: the page at 50 respondents).
public_router = APIRouter(tags=["survey"])
UNIT_PICKERS = ("unit_a", "unit_b", "unit_c")  # the direct report form's unit pickers


# --- public ------------------------------------------------------------------------------------------------


# At most this many answers in one transaction: the others wait for the next.
ANSWER_GROUP = 64


class _AnswerGroups:
    """An app's answers waiting for the writer (made in its event loop). One group at a time is written, off the
    event loop, in one transaction and one commit: a commit waits for the disk (≈ 5 ms), and answers committed one
    by one queued behind each other's (issue 18: at 50 respondents as fast as answered, the answers' p99 766 ms on
    one process; 379 ms grouped, and 0.8 ms of CPU an answer instead of 2)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[str, dict[str, list[str]], asyncio.Future]] = []
        self.writer: asyncio.Task | None = None


async def store_answer(request: Request, db, token: str, raw: dict[str, list[str]]) -> int:
    """One response stored with the others waiting (its wait for the writer and the disk stalled every request of
    the process when it ran on the event loop); its id once the commit holding it has returned, or AnswerInvalid /
    the token's refusal."""
    state = request.app.state
    if getattr(state, "survey_answers", None) is None:
        state.survey_answers = _AnswerGroups()
    groups = state.survey_answers
    future = asyncio.get_running_loop().create_future()
    groups.waiting.append((token, raw, future))
    if groups.writer is None:
        groups.writer = asyncio.create_task(_write_groups(db, groups))
    return await future


async def _write_groups(db, groups: _AnswerGroups) -> None:
    """Write what waits, a group at a time, until nothing does; each answer's future gets its id or its refusal,
    or, if the group's transaction failed, that error (none of the group is stored)."""
    group: list = []
    try:
        while groups.waiting:
            group, groups.waiting = groups.waiting[:ANSWER_GROUP], groups.waiting[ANSWER_GROUP:]
            group = [item for item in group if not item[2].done()]  # a respondent gone before it was written
            try:
                outcomes = await to_thread.run_sync(_store_group, db, [(token, raw) for token, raw, _ in group])
            except Exception as exc:
                outcomes = [exc] * len(group)
            for (_, _, future), outcome in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            group = []
    finally:
        groups.writer = None
        for _, _, future in group + groups.waiting:  # cancelled with the app: none of them is answered 201
            if not future.done():
                future.cancel()
        groups.waiting = []


def _store_group(db, answers: list[tuple[str, dict[str, list[str]]]]) -> list[int | Exception]:
    with db.write() as session:
        return answering.submit_many(session=session, answers=answers)


PUBLIC_TEMPLATES = ("survey/answer.html", "survey/_questions.html", "base.html", "survey/thanks.html", "error.html")


def _warm(session, _key) -> bool:
    """What the answer page's first request would otherwise compile — its templates (≈ 0.1 s of Jinja) and the
    token's queries — done at start-up: fifty respondents arriving together at a fresh process each waited for it
    (issue 18: the slowest pages of a load run were all in its first half-second)."""
    for name in PUBLIC_TEMPLATES:
        templates.env.get_template(name)
    try:
        answering.resolve(session, "")  # no survey has an empty link nor an invitation that token
    except SurveyNotFound:
        pass
    return True


PUBLIC_PAGE = Preloaded("survey answer page", lambda _session: None, _warm)


@public_router.get("/s/{token}")
async def answer_form(request: Request, token: str, db: DatabaseDep, done: bool = False):
    if done:  # after a submit (redirected, so a refresh does not send the answers again)
        return render(request, "survey/thanks.html", {}, user=None)
    # On SQLite the page is read and rendered in the event loop: the read is one indexed row of a local file in WAL
    # mode, which no writer blocks (≈ 0.4 ms with the page's questions, measured), and the page is CPU either way.
    # As a plain `def` with a session dependency it took four trips to a thread and back (the session opened, the
    # page, the session closed), and the pages queued on 40 threads contending for the GIL with the loop: flat out
    # at 50 respondents, 190 → 267 rounds a second and the page p99 266 → 198 ms (issue 18). Only with an idle
    # connection in the pool, so that the loop never waits for one; PostgreSQL's read is a round trip on the
    # network, so there one trip to a thread.
    if db.is_sqlite and db.engine.pool.checkedin():
        return _answer_page(request, db, token)
    return await to_thread.run_sync(_answer_page, request, db, token)


def _answer_page(request: Request, db, token: str):
    with db.read() as session:
        survey, invitation = answering.resolve(session, token)
        questions = answering.public_questions(survey)
        return render(request, "survey/answer.html", {
            "survey": survey, "questions": questions, "blank_form": _blank_form(questions), "token": token,
            "values": {}, "problems": {}, "invited": invitation is not None}, user=None)


_BLANK_FORMS: dict[tuple, Markup] = {}


def _blank_form(questions: tuple) -> Markup:
    """A published version's questions as an unanswered form, rendered once per process: every respondent's page
    shows the same (about half of the page's CPU; issue 18). Keyed by the tuple answering.public_questions keeps for
    the version, which is never changed, only replaced."""
    found = _BLANK_FORMS.get(questions)
    if found is None:
        if len(_BLANK_FORMS) >= answering.PUBLISHED_KEPT:
            _BLANK_FORMS.clear()
        found = _BLANK_FORMS[questions] = Markup(templates.env.get_template("survey/_questions.html").render(
            questions=questions, values={}, problems={}, inert=False))
    return found


@public_router.post("/s/{token}")
async def answer_submit(request: Request, token: str, db: DatabaseDep):
    form = await request.form()
    raw = {key: [str(v) for v in form.getlist(key)] for key in form.keys()}
    try:
        await store_answer(request, db, token, raw)
    except answering.AnswerInvalid as exc:
        with db.read() as session:
            survey, invitation = answering.resolve(session, token)
            return render(request, "survey/answer.html", {
                "survey": survey, "questions": answering.public_questions(survey), "token": token, "values": raw, "problems": exc.problems, "error": str(exc),
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
    data = await upload_bytes(file, limits, "问卷")
    questions = parse_upload(file.filename or "问卷.xlsx", data,  # parsed before the write transaction opens
                             lambda path: services.parse_questionnaire(path, limits=limits))
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
    units = unit_invitations.figures(session, survey.id)
    return render(request, "survey/survey.html", {
        "survey": survey, "versions": services.versions(session, survey), "states": STATES, "kinds": KINDS,
        "public": public, "qr": poster.inline_svg(public) if public else "", "unit_pickers": UNIT_PICKERS,
        "unit_invited": len(units), "unit_answered": sum(u.answered_at is not None for u in units),
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
                  count: int = Form(0, ge=0, le=services.MAX_INVITATIONS, title="链接数量")):
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
async def survey_invite_units(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser,
                              limits: ImportLimitsDep):
    """One invitation per unit picked, typed or listed in an imported file, into its inbox and out through its
    channels (the outbox sends after commit); a file is read and checked before the write transaction opens."""
    form = await request.form()
    typed = str(form.get("units") or "")[:100_000]
    codes = [str(form.get(name) or "").strip() for name in UNIT_PICKERS]
    codes += typed.replace(",", " ").replace(",", " ").replace("、", " ").split()
    rows = None
    try:
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str) and upload.filename:
            # each code with its row in the file; a code listed twice is named by its first row
            rows = {code: n for n, code in reversed(await _unit_list(upload, limits))}
            codes += list(rows)
        with db.write() as session:
            made = unit_invitations.invite_units(session=session, actor=user, survey_id=survey_id, unit_codes=codes,
                                                 base_url=str(request.base_url), rows=rows)
    except ChunfengError as exc:
        if exc.field is None and not isinstance(exc, Invalid):  # the survey itself (not the official's): error page
            raise
        exc.field = exc.field or "units"
        with db.read() as session:
            return _survey_page(request, session, user, survey_id, refused=forms.refused(
                db, request, user, exc, form="units", fields=("units",), values={"units": typed}))
    return RedirectResponse(f"/survey/{survey_id}?sent={len(made)}", status_code=303)


async def upload_bytes(upload: UploadFile, limits, what: str, *, field: str | None = None) -> bytes:
    """An uploaded xlsx/CSV's bytes, read no further than the size cap; refused naming the file otherwise."""
    cap = limits.max_file_mb * 1048576
    data = await upload.read(cap + 1)
    if len(data) > cap:
        raise SurveyInvalid(f"{upload.filename}:文件超过 {limits.max_file_mb} MB", field=field)
    if Path(upload.filename or "").suffix.lower() not in (".xlsx", ".csv"):
        raise SurveyInvalid(f"{upload.filename}:{what}只能是 xlsx 或 CSV", field=field)
    return data


def parse_upload(filename: str, data: bytes, parse):
    """`parse(path)` of the upload written to a private temporary file under its own name (named in errors)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(filename).name
        path.write_bytes(data)
        return parse(path)


async def _unit_list(upload: UploadFile, limits) -> list[tuple[int, str]]:
    data = await upload_bytes(upload, limits, "单位名单", field="units")
    return parse_upload(upload.filename or "单位名单.xlsx", data,
                        lambda path: unit_invitations.parse_unit_list(path, limits=limits))


@router.post("/survey/{survey_id}/invitations/units/remind", dependencies=[require("survey.manage")])
def survey_remind_units(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        count = unit_invitations.remind_units(session=session, actor=user, survey_id=survey_id,
                                              base_url=str(request.base_url))
    return RedirectResponse(f"/survey/{survey_id}?reminded={count}", status_code=303)


@router.get("/survey/{survey_id}/qr.{kind}", dependencies=[require("survey.view")])
def survey_qr(request: Request, survey_id: Id, kind: str, session: SessionDep, user: CurrentUser):
    """The open link's QR code as a file to download (SVG for print shops, PNG for anything else)."""
    if kind not in poster.FORMATS:
        raise SurveyInvalid("二维码只有 SVG 和 PNG 两种格式")
    survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
    url = poster.open_link(survey, str(request.base_url))
    return Response(poster.qr(url, kind=kind), media_type=poster.FORMATS[kind], headers={
        "Content-Disposition": f"attachment; filename=survey-{survey.id}-qr.{kind}"})


@router.get("/survey/{survey_id}/poster", dependencies=[require("survey.view")])
def survey_poster(request: Request, survey_id: Id, session: SessionDep, user: CurrentUser):
    """A printable A4 page for a service hall: the title, the QR code, the link as text."""
    survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
    url = poster.open_link(survey, str(request.base_url))
    return render(request, "survey/poster.html", {"survey": survey, "url": url,
                                                  "qr": poster.inline_svg(url, scale=8)}, user=user)


@router.post("/survey/{survey_id}/findings", dependencies=[require("ledger.assign")])
def survey_finding(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser, measure_no: str = Form(""),
                   text: str = Form(""), unit_code: str = Form(""), deadline: str = Form(""),
                   question_code: str = Form("")):
    """A finding becomes a ledger assignment (or joins the unit's assignment of that measure)."""
    try:  # the measure number as text: a word typed there comes back beside the field, not as a bare 400
        no = bounded_int(measure_no, "措施序号", low=1, high=INT_MAX, form_field="measure_no")
        day = bounded_day(deadline, "完成时限", form_field="deadline")
        with db.write() as session:
            finding = findings.to_assignment(session=session, actor=user, survey_id=survey_id, text=text,
                                             measure_no=no, unit_code=unit_code, deadline=day,
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


# --- direct reports (measure 19): the forms sent, the roll-up, a contact unit's own report -------------------



@router.get("/direct-reports", dependencies=[require("survey.view", "survey.report")])
def forms_page(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1):
    page, _ = clamp_page(page, 30)
    sent = direct_reports.list_forms(session=session, actor=user, page=page) if allowed(user, "survey.view") else None
    return render(request, "survey/direct_list.html", {
        "sent": sent, "mine": direct_reports.my_reports(session=session, actor=user), "states": REPORT_STATES,
        "policies": direct_reports.policy_choices(session) if allowed(user, "survey.manage") else [], "pickers": UNIT_PICKERS,
        "today": date.today()}, user=user)


@router.post("/direct-reports", dependencies=[require("survey.manage")])
async def form_create(request: Request, db: DatabaseDep, user: CurrentUser):
    form = await request.form()
    codes = [str(form.get(name) or "") for name in UNIT_PICKERS]
    codes += str(form.get("units") or "").replace(",", " ").replace(",", " ").replace("、", " ").split()
    raw_days = str(form.get("working_days") or "").strip()
    days = int(raw_days) if raw_days.isdigit() and len(raw_days) < 4 else 0
    with db.write() as session:
        made = direct_reports.create_form(
            session=session, actor=user, unit_codes=codes, working_days=days,
            policy_id=str(form.get("policy_id") or ""), policy_name=str(form.get("policy_name") or ""),
            title=str(form.get("title") or ""), instructions=str(form.get("instructions") or ""))
        form_id = made.id
    return RedirectResponse(f"/direct-reports/{form_id}?sent=1", status_code=303)


@router.get("/direct-reports/{form_id}", dependencies=[require("survey.view")])
def rollup_page(request: Request, form_id: Id, db: DatabaseDep, user: CurrentUser, format: str = "html"):
    if format == "xlsx":
        with db.write() as session:  # the export is recorded in the audit log
            r = direct_reports.rollup(session=session, actor=user, form_id=form_id)
            path = direct_reports.export_xlsx(session=session, actor=user, r=r, path=download_path())
            name = f"直联直报-{r.form.title}.xlsx"
        return temporary_file(path, name)
    with db.read() as session:
        r = direct_reports.rollup(session=session, actor=user, form_id=form_id)
        return render(request, "survey/direct_rollup.html", {
            "r": r, "fields": REPORT_FIELDS, "may_remind": allowed(user, "survey.manage", r.form.unit)}, user=user)


@router.post("/direct-reports/{form_id}/remind", dependencies=[require("survey.manage")])
def form_remind(form_id: Id, db: DatabaseDep, user: CurrentUser, unit_code: str = Form("")):
    with db.write() as session:
        count = direct_reports.remind(session=session, actor=user, form_id=form_id, unit_code=unit_code[:20])
    return RedirectResponse(f"/direct-reports/{form_id}?reminded={count}", status_code=303)


@router.get("/direct-reports/{form_id}/report", dependencies=[require("survey.report")])
def report_page(request: Request, form_id: Id, session: SessionDep, user: CurrentUser):
    form, report = direct_reports.own_report(session=session, actor=user, form_id=form_id)
    return render(request, "survey/direct_report.html", {"form": form, "report": report, "fields": REPORT_FIELDS,
                                                         "values": {k: getattr(report, k) for k in REPORT_FIELDS},
                                                         "today": date.today()}, user=user)


@router.post("/direct-reports/{form_id}/report", dependencies=[require("survey.report")])
def report_submit(form_id: Id, db: DatabaseDep, user: CurrentUser, problems: str = Form(""), reactions: str = Form(""),
                  suggestions: str = Form(""), free_text: str = Form("")):
    with db.write() as session:
        direct_reports.submit(session=session, actor=user, form_id=form_id, fields={
            "problems": problems, "reactions": reactions, "suggestions": suggestions, "free_text": free_text})
    return RedirectResponse(f"/direct-reports/{form_id}/report?saved=1", status_code=303)


# --- the analysis (measure 3): weighting, cross-tabs, themes linked to measures; xlsx and PDF ----------------

@router.get("/survey/{survey_id}/analysis", dependencies=[require("survey.view")])
def analysis_page(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser, row: str = "", col: str = "",
                  against: OptionalNo = None, format: str = "html"):
    row, col = row.strip()[:16], col.strip()[:16]
    if format == "xlsx":
        with db.write() as session:  # the export is recorded in the audit log
            a = report.analyse(session=session, actor=user, survey_id=survey_id, row=row, col=col, against=against,
                               with_suggestions=False)
            path = report.export_xlsx(session=session, actor=user, a=a, path=download_path())
            name = f"问卷分析-{a.survey.title}-第{a.survey.version}版.xlsx"
        return temporary_file(path, name)
    with db.read() as session:
        a = report.analyse(session=session, actor=user, survey_id=survey_id, row=row, col=col, against=against,
                           with_suggestions=format == "html")
        if format == "pdf":
            return document(report.render_pdf(a), f"问卷分析-{a.survey.title}-第{a.survey.version}版.pdf")
        query = urlencode({k: v for k, v in (("row", row), ("col", col), ("against", against or "")) if v})
        return render(request, "survey/analysis.html", {
            "a": a, "charts": report.charts(a), "KINDS": KINDS, "row": row, "col": col, "against": against,
            "query": query, "crossable": [q for q in a.survey.items if q.kind in crosstabs.CROSSABLE],
            "measures": report.measure_choices(session), "may_manage": policy.may_manage(user, a.survey),
            "units": (units := unit_invitations.figures(session, survey_id)),
            "unit_rollup": unit_invitations.rollup(session, units)}, user=user)


@router.post("/survey/{survey_id}/population", dependencies=[require("survey.manage")])
def population_save(survey_id: Id, db: DatabaseDep, user: CurrentUser, sizes: str = Form("")):
    if len(sizes) > 200_000:
        raise SurveyInvalid("总体数内容过长")
    parsed = report.parse_sizes(sizes)
    with db.write() as session:
        report.set_population(session=session, actor=user, survey_id=survey_id, sizes=parsed)
    return RedirectResponse(f"/survey/{survey_id}/analysis?saved=1#population", status_code=303)


@router.post("/survey/{survey_id}/themes", dependencies=[require("survey.manage")])
def theme_link(survey_id: Id, db: DatabaseDep, user: CurrentUser, label: str = Form(""), terms: str = Form(""),
               size: Annotated[int, Form(ge=0, le=INT_MAX, title="样本量")] = 0,
               measures: list[int] = Form([], title="措施序号")):
    with db.write() as session:
        report.link_theme(session=session, actor=user, survey_id=survey_id, label=label, terms=terms.split()[:10],
                          measures=list(measures), size=size)
    return RedirectResponse(f"/survey/{survey_id}/analysis?saved=1#theme-links", status_code=303)
