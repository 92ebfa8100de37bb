"""Pages of direct reports (measure 19): the forms sent and a new one, the roll-up of what came back (with xlsx
and reminders), and a contact unit's own report."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import or_, select

from chunfeng.org.access import allowed
from chunfeng.paging import clamp_page
from chunfeng.push.models import Policy
from chunfeng.survey import direct_reports
from chunfeng.survey.direct_models import REPORT_FIELDS, REPORT_STATES
from chunfeng.web.contract import Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, SessionDep, render, require
from chunfeng.web.downloads import temporary_file
from chunfeng.xlsx import download_path

router = APIRouter(tags=["survey"])
UNIT_PICKERS = ("unit_a", "unit_b", "unit_c")


def _policies(session) -> list[Policy]:
    """The catalogue's policies in force today: what a new report form may be about."""
    today = date.today()
    return list(session.scalars(select(Policy).where(Policy.effective_from <= today, or_(
        Policy.effective_until.is_(None), Policy.effective_until >= today)).order_by(Policy.effective_from.desc())))


@router.get("/direct-reports", dependencies=[require("survey.view", "survey.report")])
def forms_page(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1):
    page, _ = clamp_page(page, 30)
    sent = direct_reports.list_forms(session=session, actor=user, page=page) if allowed(user, "survey.view") else None
    return render(request, "survey/direct_list.html", {
        "sent": sent, "mine": direct_reports.my_reports(session=session, actor=user), "states": REPORT_STATES,
        "policies": _policies(session) if allowed(user, "survey.manage") else [], "pickers": UNIT_PICKERS,
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
