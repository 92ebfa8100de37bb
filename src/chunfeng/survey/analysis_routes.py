"""The survey analysis page (measure 3): weighting, cross-tabs, themes linked to measures; xlsx and PDF."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from chunfeng.survey import crosstabs, policy, report
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.models import KINDS
from chunfeng.web.contract import INT_MAX, Id, OptionalNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, render, require
from chunfeng.web.downloads import document, temporary_file
from chunfeng.xlsx import download_path

router = APIRouter(tags=["survey"])


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
            "query": query, "crossable": [q for q in a.survey.questions if q.kind in crosstabs.CROSSABLE],
            "measures": report.measure_choices(session), "may_manage": policy.may_manage(user, a.survey)}, user=user)


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
               size: Annotated[int, Form(ge=0, le=INT_MAX)] = 0, measures: list[int] = Form([])):
    with db.write() as session:
        report.link_theme(session=session, actor=user, survey_id=survey_id, label=label, terms=terms.split()[:10],
                          measures=list(measures), size=size)
    return RedirectResponse(f"/survey/{survey_id}/analysis?saved=1#theme-links", status_code=303)
