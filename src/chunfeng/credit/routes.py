"""Pages of taxpayer credit: the officials' register and its import, a taxpayer's credit history, the rules with
their sources, the public list of major violators (anonymous, searchable, exportable) and its management."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse

from chunfeng import jobs
from chunfeng.bounds import bounded_day, check_lengths
from chunfeng.credit import annual, evaluation, incentives, policy, repair, risk, services
from chunfeng.credit.errors import CreditNotFound
from chunfeng.credit.models import EVALUATION_STATES, LEVELS, REMOVAL_REASONS, RISK_TIERS
from chunfeng.errors import ChunfengError, Invalid, ValidationFailed
from chunfeng.paging import clamp_page
from chunfeng.tabular import MB
from chunfeng.web import forms
from chunfeng.web import jobs as jobs_pages
from chunfeng.web.contract import FormId, Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, ImportLimitsDep, SessionDep, SettingsDep, optional_user, render, require
from chunfeng.web.downloads import XLSX, temporary_file, write_personal_xlsx
from chunfeng.xlsx import download_path, write_table

router = APIRouter(tags=["credit"])
PER_PAGE = 50
EXPORT_HEADERS = ["失信主体名称", "统一社会信用代码", "案件性质", "主要违法事实", "违法金额(元)", "罚款及滞纳金(元)",
                  "公布日期", "撤出日期"]


def _today() -> date:
    return jobs.local_day(datetime.now(UTC).replace(tzinfo=None))


@router.get("/credit", dependencies=[require("credit.view")])
def register(request: Request, session: SessionDep, user: CurrentUser, q: str = "",
             year: Annotated[int | None, Query(ge=services.FIRST_YEAR, le=2100)] = None, level: str = "", page: PageNo = 1):
    level = level if level in LEVELS else ""
    page, per_page = clamp_page(page, PER_PAGE)
    result = services.list_ratings(session=session, actor=user, q=q[:200], year=year, level=level, page=page,
                                   per_page=per_page)
    return render(request, "credit/register.html", {"result": result, "q": q, "year": year or "", "level": level,
                                                    "levels": LEVELS, "departments": services.partner_departments(),
                                                    "last_year": date.today().year - 1}, user=user)


@router.post("/credit/import", dependencies=[require("credit.import")])
async def import_ratings(db: DatabaseDep, user: CurrentUser, limits: ImportLimitsDep, settings: SettingsDep,
                         file: UploadFile = File(...)):
    cap = limits.max_file_mb * MB
    data = await file.read(cap + 1)
    if len(data) > cap:
        raise ValidationFailed(f"{file.filename}:文件超过 {limits.max_file_mb} MB")
    suffix = ".xlsx" if data[:4] == b"PK\x03\x04" else ".csv"
    name = Path(file.filename or "upload").stem + suffix
    today = _today()

    def work(progress) -> jobs.TaskResult:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            progress(0, 0, "正在读取和检查文件")
            with db.read() as session:  # parse and check outside the write transaction
                plan = services.check_ratings(session=session, actor=user, path=path, today=today, limits=limits)
            with db.write() as session:
                added, replaced = services.import_ratings(session=session, actor=user, path=path, today=today,
                                                          plan=plan, limits=limits, progress=progress)
            with db.read() as session:  # push rules see the new levels (credit_level)
                evaluation.publish_levels(session=session, store=Path(settings.push_store))
        return jobs.TaskResult(f"已导入 {added} 条评价结果,更新 {replaced} 条", f"/credit?imported={added + replaced}")

    return jobs_pages.start(db, user, name="credit.ratings.import", title=f"导入纳税缴费信用评价结果 {name}"[:200],
                            work=work)


@router.post("/credit/evaluate-year", dependencies=[require("credit.evaluate")])
def evaluate_year(db: DatabaseDep, user: CurrentUser, settings: SettingsDep,
                  year: Annotated[int, Form(ge=services.FIRST_YEAR, le=2100, title="评价年度")] = 0,
                  unit: str = Form("")):
    """The annual evaluation of the official's subtree (or a unit in it) for a year already over, as a task."""
    check_lengths({"单位代码": (unit, 12)})
    today, store, unit_code = _today(), Path(settings.push_store), unit.strip() or None
    with db.read() as session:  # refused here, before a task starts: 403 (audited) or 400, nothing written
        annual.scope(session, user, unit_code)
    annual.check_year(year, today)

    def work(progress) -> jobs.TaskResult:
        with db.write() as session:
            figures = annual.evaluate_year(session=session, actor=user, store=store, year=year, today=today,
                                           unit_code=unit_code, progress=progress, engine=settings.credit_risk_engine)
        with db.read() as session:  # push rules see the new levels (credit_level) once committed
            evaluation.publish_levels(session=session, store=store)
        return jobs.TaskResult(annual.summary(figures), f"/credit?year={year}")

    return jobs_pages.start(db, user, name="credit.annual.evaluate", title=f"{year} 年度纳税缴费信用集中评价", work=work)


@router.post("/credit/a-list.xlsx", dependencies=[require("credit.view")])
def a_list_export(db: DatabaseDep, user: CurrentUser, settings: SettingsDep,
                  year: Annotated[int, Form(ge=services.FIRST_YEAR, le=2100, title="年度")], department: str = Form("")):
    # Measure 121: the A-level list for a partner department, written by a task (so started by a POST behind the
    # form's CSRF token, never by a link); refusals come first.
    with db.read() as session:
        services.a_list(session=session, actor=user, year=year, department=department)
    receiver = services.partner_departments()[department]
    filename = f"{user.unit.code}-{year}年度A级纳税人名单-{receiver}.xlsx"

    def write(path: Path, progress) -> str:
        with db.read() as session:
            rows = services.a_list(session=session, actor=user, year=year, department=department)
            count = write_personal_xlsx(db, user, path, action="credit.alist.exported", purpose=f"提供{receiver}开展联合激励",
                                        filters={"year": year, "department": department, "unit": user.unit.code},
                                        filename=filename, sheet="A级纳税人", headers=services.A_LIST_HEADERS,
                                        rows=rows, widths=[22, 40, 10, 10, 10, 30])
        return f"已导出 {count} 户A级纳税人"

    return jobs_pages.start_export(db, user, settings, name="credit.alist.export", title=filename[:200],
                                   filename=filename, write=write)


@router.get("/credit/mine", dependencies=[require("credit.self")])
def mine(user: CurrentUser):
    if not user.taxpayer_code:
        raise CreditNotFound("您的账户没有绑定纳税人,无法查看纳税缴费信用")
    return RedirectResponse(f"/credit/taxpayers/{user.taxpayer_code}", status_code=303)


@router.get("/credit/taxpayers/{credit_code}", dependencies=[require("credit.view", "credit.self")])
def taxpayer(request: Request, credit_code: str, session: SessionDep, user: CurrentUser):
    ratings = services.taxpayer_history(session=session, actor=user, credit_code=credit_code)
    return render(request, "credit/taxpayer.html", {"ratings": ratings, "credit_code": ratings[0].credit_code,
                                                    "name": ratings[0].name, "level_rules": services.level_rules(),
                                                    "earned": incentives.for_level(ratings[0].level),
                                                    **repair.history_context(session, user, ratings)}, user=user)


@router.get("/credit/rules")
def rules_page(request: Request, db: DatabaseDep):
    return render(request, "credit/rules.html", {"rules": services.rules(), "repair": repair.repair_rules()},
                  user=optional_user(request, db, request.app.state.settings))


@router.get("/credit/catalogue")
def catalogue(request: Request, db: DatabaseDep):
    return render(request, "credit/catalogue.html", {"rules": services.rules()},
                  user=optional_user(request, db, request.app.state.settings))


@router.get("/credit/catalogue.xlsx")
def catalogue_export():
    rules = services.rules()
    rows = ([e["name"], "、".join(e["fields"]), e["open_to"],
             rules["sources"][e["source"]]["number"] + (f" {e['article']}" if e["article"] else ""),
             "待复核" if e["review"] else "", e.get("note", "")] for e in rules["catalogue"]["entries"])
    path = write_table(download_path(), sheet="公共信用信息目录", headers=["信息名称", "主要内容", "公开对象", "依据", "复核", "说明"],
                       rows=rows, widths=[28, 60, 24, 30, 8, 60])
    return temporary_file(path, "税务领域公共信用信息目录.xlsx", XLSX)


@router.get("/credit/violators")
def public_list(request: Request, session: SessionDep, db: DatabaseDep, q: str = "", after: str | None = None,
                before: str | None = None):
    result = services.public_violators(session=session, q=q[:200], today=_today(), after=after, before=before,
                                       per_page=PER_PAGE)
    return render(request, "credit/violators.html", {
        "result": result, "q": q[:200], "first": not (after or before), "next": services.format_cursor(result.next),
        "previous": services.format_cursor(result.previous)}, user=optional_user(request, db, request.app.state.settings))


@router.get("/credit/violators/export.xlsx")
def public_export(session: SessionDep, q: str = ""):
    today = _today()
    rows = ([v.name, v.credit_code, v.case_nature, v.facts, v.amount_unpaid, v.amount_penalty, str(v.published_on),
             str(v.off_on)] for v in session.scalars(services.public_query(q=q[:200], today=today)).yield_per(1000))
    path = write_table(download_path(), sheet="重大税收违法失信主体", headers=EXPORT_HEADERS, rows=rows,
                       widths=[36, 22, 16, 60, 16, 16, 12, 12])
    return temporary_file(path, f"重大税收违法失信主体-{today}.xlsx", XLSX)


@router.get("/credit/violators/manage", dependencies=[require("credit.violators.manage")])
def manage(request: Request, session: SessionDep, user: CurrentUser, q: str = "", page: PageNo = 1):
    return _manage_page(request, session, user, q=q, page=page)


def _manage_page(request: Request, session, user, *, q: str = "", page: int = 1, refused: forms.Refused | None = None):
    page, per_page = clamp_page(page, PER_PAGE)
    result = services.list_violators(session=session, actor=user, q=q[:200], page=page, per_page=per_page)
    return render(request, "credit/manage.html", {
        "result": result, "q": q[:200], "reasons": {k: v for k, v in REMOVAL_REASONS.items() if k != "expired"},
        "all_reasons": REMOVAL_REASONS, "may_remove": policy.may_remove, "today": _today(), "refused": refused,
        "period_rule": services.rules()["violators"]["standard_period"]}, user=user,
        status_code=refused.status if refused else 200)


VIOLATOR_FIELDS = ("credit_code", "name", "unit_code", "case_nature", "facts", "amount_unpaid", "amount_penalty",
                   "published_on", "off_on")


@router.post("/credit/violators", dependencies=[require("credit.violators.manage")])
def add(request: Request, db: DatabaseDep, user: CurrentUser, credit_code: str = Form(""), name: str = Form(""),
        unit_code: str = Form(""), case_nature: str = Form(""), facts: str = Form(""),
        amount_unpaid: str = Form("0"), amount_penalty: str = Form("0"), published_on: str = Form(""),
        off_on: str = Form("")):
    typed = dict(zip(VIOLATOR_FIELDS, (credit_code, name, unit_code, case_nature, facts, amount_unpaid, amount_penalty,
                                       published_on, off_on), strict=True))
    try:
        check_lengths({"失信主体名称": (name, 200), "案件性质": (case_nature, 100), "主要违法事实": (facts, 5000),
                       "单位代码": (unit_code, 32), "统一社会信用代码": (credit_code, 18)})
        published = bounded_day(published_on, "公布日期", form_field="published_on")
        off = bounded_day(off_on, "撤出日期", form_field="off_on") if off_on.strip() else None
        with db.write() as session:
            services.add_violator(session=session, actor=user, credit_code=credit_code, name=name,
                                  unit_code=unit_code or user.unit.code, case_nature=case_nature, facts=facts,
                                  amount_unpaid=amount_unpaid, amount_penalty=amount_penalty, published_on=published,
                                  off_on=off, today=_today())
    except ChunfengError as exc:
        if exc.field is None and not isinstance(exc, Invalid):  # a refusal not about what was typed: the error page
            raise
        with db.read() as session:  # the register again, the form as typed, the fault beside its field
            return _manage_page(request, session, user, refused=forms.refused(
                db, request, user, exc, form="add", values=typed, fields=VIOLATOR_FIELDS))
    return RedirectResponse("/credit/violators/manage?added=1", status_code=303)


@router.post("/credit/violators/{violator_id}/remove", dependencies=[require("credit.violators.manage")])
def remove(request: Request, violator_id: Id, db: DatabaseDep, user: CurrentUser, reason: str = Form(""),
           note: str = Form(""), q: str = Form(""), page: FormId = 1):
    try:
        check_lengths({"依据": (note, 2000)})
        with db.write() as session:
            services.remove_violator(session=session, actor=user, violator_id=violator_id, reason=reason, note=note,
                                     today=_today())
    except Invalid as exc:  # the register page it was on again, that row's form as typed with the message
        with db.read() as session:
            return _manage_page(request, session, user, q=q, page=page, refused=forms.refused(
                db, request, user, exc, form=f"remove-{violator_id}", fields=("reason", "note"),
                values={"reason": reason, "note": note}))
    return RedirectResponse("/credit/violators/manage?removed=1", status_code=303)


# --- voluntary evaluation (measure 115) and what each level earns (119, 121) ---------------------------------------


@router.get("/credit/evaluations", dependencies=[require("credit.evaluate", "credit.self")])
def evaluations(request: Request, session: SessionDep, user: CurrentUser, state: str = "", page: PageNo = 1):
    state = state if state in EVALUATION_STATES else ""
    page, per_page = clamp_page(page, PER_PAGE)
    if policy.is_taxpayer(user):
        result, own = None, evaluation.own_evaluations(session=session, actor=user, credit_code=user.taxpayer_code or "")
    else:
        result = evaluation.list_evaluations(session=session, actor=user, state=state, page=page, per_page=per_page)
        own = []
    return render(request, "credit/evaluations.html", {
        "result": result, "own": own, "state": state, "states": EVALUATION_STATES, "rules": evaluation.rules(),
        "last_year": _today().year - 1}, user=user)


@router.post("/credit/evaluations", dependencies=[require("credit.evaluate", "credit.self")])
def apply_evaluation(db: DatabaseDep, user: CurrentUser, settings: SettingsDep, credit_code: str = Form(""),
                     year: Annotated[int, Form(ge=services.FIRST_YEAR, le=2100, title="年度")] = 0):
    check_lengths({"统一社会信用代码": (credit_code, 18)})
    with db.write() as session:
        evaluation.apply(session=session, actor=user, store=Path(settings.push_store),
                         credit_code=credit_code or (user.taxpayer_code or ""), year=year, today=_today())
    return RedirectResponse("/credit/evaluations?applied=1", status_code=303)


@router.post("/credit/evaluations/{evaluation_id}/evaluate", dependencies=[require("credit.evaluate")])
def run_evaluation(evaluation_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep):
    store = Path(settings.push_store)
    with db.write() as session:
        done = evaluation.evaluate(session=session, actor=user, store=store, evaluation_id=evaluation_id, today=_today())
        outcome, credit_code = done.state, done.credit_code
    if outcome == "evaluated":
        with db.read() as session:  # the new level reaches push rules (credit_level) once committed
            evaluation.publish_taxpayer(session=session, store=store, credit_code=credit_code)
    return RedirectResponse(f"/credit/evaluations?{outcome}=1", status_code=303)


@router.get("/credit/incentives")
def incentives_page(request: Request, db: DatabaseDep):
    return render(request, "credit/incentives.html", {
        "data": incentives.data(), "levels": LEVELS, "measures": incentives.measures(),
        "sources": services.rules()["sources"]}, user=optional_user(request, db, request.app.state.settings))


# --- risk tiers (measure 95) --------------------------------------------------------------------------------------


@router.get("/credit/risk", dependencies=[require("credit.view")])
def risk_page(request: Request, session: SessionDep, user: CurrentUser, tier: str = "", q: str = "", page: PageNo = 1):
    tier = tier if tier in RISK_TIERS else ""
    page, per_page = clamp_page(page, PER_PAGE)
    result = risk.list_risks(session=session, actor=user, tier=tier, q=q[:200], page=page, per_page=per_page)
    return render(request, "credit/risk.html", {"result": result, "tier": tier, "q": q[:200], "tiers": RISK_TIERS,
                                                "data": risk.data(), "consequence": risk.consequence}, user=user)


@router.post("/credit/risk/compute", dependencies=[require("credit.risk")])
def risk_compute(db: DatabaseDep, user: CurrentUser, settings: SettingsDep):
    today, store = _today(), Path(settings.push_store)

    def work(progress) -> jobs.TaskResult:
        with db.write() as session:
            counts = risk.compute(session=session, actor=user, store=store, today=today, progress=progress,
                                  engine=settings.credit_risk_engine)
        return jobs.TaskResult("已计算风险等级:" + ",".join(f"{t}风险 {n} 户" for t, n in counts.items()), "/credit/risk")

    return jobs_pages.start(db, user, name="credit.risk.compute", title="计算纳税人风险等级", work=work)


@router.post("/credit/risk/export.xlsx", dependencies=[require("credit.view")])
def risk_export(db: DatabaseDep, user: CurrentUser, settings: SettingsDep, tier: str = Form(""), q: str = Form("")):
    tier, q = (tier if tier in RISK_TIERS else ""), q[:200]
    filename = f"{user.unit.code}-纳税人风险等级{('-' + tier + '风险') if tier else ''}.xlsx"

    def write(path: Path, progress) -> str:
        with db.read() as session:
            count = write_personal_xlsx(db, user, path, action="credit.risk.exported", purpose="风险等级核查",
                                        filters={"tier": tier, "q": q, "unit": user.unit.code}, filename=filename,
                                        sheet="风险等级", headers=risk.EXPORT_HEADERS,
                                        rows=risk.export_rows(session=session, actor=user, tier=tier, q=q),
                                        widths=[22, 40, 10, 16, 60, 30, 18])
        return f"已导出 {count} 户"

    return jobs_pages.start_export(db, user, settings, name="credit.risk.export", title=filename[:200],
                                   filename=filename, write=write)
