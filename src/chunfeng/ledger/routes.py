"""Pages of the ledger: dashboard with drill-down, a unit's tasks, an assignment with its reports,
the to-do list, the review queue, the assignment editor, the xlsx ledger (supervision: supervision_routes)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.datastructures import UploadFile as StarletteUpload

from chunfeng.bounds import bounded_day
from chunfeng.calendar.services import coverage_warning
from chunfeng.charts import bar_chart, light_bars
from chunfeng.errors import Forbidden, Invalid, NotFound
from chunfeng.jobs import TaskResult
from chunfeng.ledger import briefing, bulk, exports, files, league, policy, reporting, reviews, services, supervision
from chunfeng.ledger.dashboard import by_measure as dashboard_by_measure
from chunfeng.ledger.dashboard import rollup
from chunfeng.ledger.errors import LedgerInvalid, StaleReport
from chunfeng.ledger.models import CYCLES, NOTICE_STATES, REPORT_STATES, ROLES, STATUSES
from chunfeng.ledger.periods import period_of
from chunfeng.ledger.services import Terms
from chunfeng.ledger.warnings import LIGHTS, WarningRules, badge, describe, last_finished_period
from chunfeng.org.access import allowed, authorize
from chunfeng.org.roles import LEVELS
from chunfeng.org.services import get_unit, unit_chain
from chunfeng.paging import Page
from chunfeng.plan import services as plan
from chunfeng.web import forms
from chunfeng.web import jobs as jobs_pages
from chunfeng.web.contract import INT_MAX, Id, OptionalNo, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, ImportLimitsDep, SessionDep, SettingsDep, render, require, templates
from chunfeng.web.downloads import XLSX, document, stored_file, temporary_file
from chunfeng.xlsx import download_path, write_table

router = APIRouter(prefix="/ledger", tags=["ledger"])
templates.env.globals.update(STATUSES=STATUSES, LIGHTS=LIGHTS, CYCLES=CYCLES, REPORT_ROLES=ROLES,
                             REPORT_STATES=REPORT_STATES, NOTICE_STATES=NOTICE_STATES, describe=describe,
                             light_badge=badge)


def day_of(text: str, what: str, field: str | None = None) -> date | None:
    """The date typed in a form field, if any; a bad one is refused naming the field it belongs beside."""
    return bounded_day(text, what, form_field=field) if text else None


@router.get("", dependencies=[require("ledger.view")])
def dashboard(request: Request, session: SessionDep, user: CurrentUser, unit: str = ""):
    root = get_unit(session=session, actor=user, code=unit or user.unit.code)
    rows = rollup(session=session, actor=user, unit=root)
    notice = plan.current_notice(session=session, actor=user)
    categories = plan.plan_tree(session=session, notice=notice)
    own = services.list_assignments(session=session, actor=user, unit=root, per_page=1)
    means = []
    for c in categories:  # each child unit counts once, as in the roll-up
        cells = [r.by_category[c.no] for r in rows if c.no in r.by_category and r.by_category[c.no].held]
        means.append(round(sum(cell.progress for cell in cells) / len(cells), 1) if cells else 0.0)
    return render(request, "ledger/dashboard.html", {
        "root": root, "chain": unit_chain(root), "rows": rows, "categories": categories, "own_total": own.total,
        "calendar_warning": coverage_warning(session=session, today=date.today()),
        "category_chart": bar_chart([c.name for c in categories], means) if rows else "",
        "lights_chart": light_bars([r.unit.name for r in rows[:40]], [r.overall.lights for r in rows[:40]])
        if rows else "",
    }, user=user)


@router.get("/units/{code}", dependencies=[require("ledger.view")])
def unit_tasks(request: Request, code: str, session: SessionDep, user: CurrentUser, light: str = "",
               measure: OptionalNo = None, page: PageNo = 1):
    unit = get_unit(session=session, actor=user, code=code)
    result = services.list_assignments(session=session, actor=user, unit=unit, measure_no=measure, light=light or None,
                                       page=max(1, page))
    return render(request, "ledger/unit.html", {"unit": unit, "chain": unit_chain(unit), "result": result,
                                                "light": light, "measure": measure, "today": date.today()}, user=user)


@router.get("/measures", dependencies=[require("ledger.view")])
def measures(request: Request, session: SessionDep, user: CurrentUser, unit: str = ""):
    root = get_unit(session=session, actor=user, code=unit or user.unit.code)
    tree = dashboard_by_measure(session=session, actor=user, unit=root)
    return render(request, "ledger/measures.html", {"root": root, "chain": unit_chain(root), "tree": tree}, user=user)


def assignment_page_with(request: Request, session, user, assignment_id: int, *, typed: dict | None = None,
                     error: Exception | None = None, refused: forms.Refused | None = None):
    """The assignment page; after a refused report (`typed`, `error`) or another refused form of the page
    (`refused`), with the refusal beside its field and what was typed kept."""
    a = services.get_assignment(session=session, actor=user, assignment_id=assignment_id)
    today = date.today()
    may_break_down = policy.may_break_down(user, a)
    reports = reporting.reports_of(session=session, assignment=a)
    editable = next((r for r in reports if r.state in ("submitted", "returned")), None)
    approved = {r.period for r in reports if r.state == "approved"}
    periods = [p for p in dict.fromkeys([period_of(today, a.cycle), last_finished_period(today, a.cycle)[0]])
               if p not in approved]
    indicator_charts = []
    for indicator in services.indicators_of(session=session, assignment=a):
        points = [(r.period, v.value) for r in reversed(reports) if r.state == "approved" for v in r.values
                  if v.indicator_id == indicator.id]
        if points:
            top = max([v for _, v in points] + [indicator.target, indicator.baseline or 0]) * 1.2
            indicator_charts.append((indicator, bar_chart([p for p, _ in points], [v for _, v in points], maximum=top,
                                                          suffix=indicator.unit_label, width=560)))
    children = services.children_of(session=session, assignment=a)
    return render(request, "ledger/assignment.html", {
        "a": a, "indicator_charts": indicator_charts, "chain": unit_chain(a.unit), "children": children,
        "reports": reports, "indicators": services.indicators_of(session=session, assignment=a), "today": today,
        "may_report": policy.may_report(user, a) and bool(periods), "editable": editable, "periods": periods,
        "rolled_up": bool(children),
        "may_break_down": may_break_down, "may_change_deadline": policy.may_change_deadline(user, a),
        "break_down_units": services.units_to_break_down_to(session=session, assignment=a) if may_break_down else [],
        "reviewable": {r.id for r in reports if policy.may_review(user, r)},
        "may_supervise": policy.may_supervise(user, a),
        "notices": supervision.notices_for(session=session, actor=user, assignment_id=a.id).items,
        "typed": typed, "form_error": str(error) if error else "", "refused": refused,
        "error_field": getattr(error, "field", None) or ("" if error is None else "form"),
    }, status_code=refused.status if refused else getattr(error, "status", 200), user=user)


@router.get("/assignments/{assignment_id}", dependencies=[require("ledger.view")])
def assignment_page(request: Request, assignment_id: Id, session: SessionDep, user: CurrentUser):
    return assignment_page_with(request, session, user, assignment_id)


def _number(text: str, what: str, field: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise LedgerInvalid(f"{what}“{text[:20]}”不是数字", field=field) from None


@router.post("/assignments/{assignment_id}/reports", dependencies=[require("ledger.report")])
async def submit_report(request: Request, assignment_id: Id, db: DatabaseDep, user: CurrentUser):
    form = await request.form()
    typed = {k: str(v) for k, v in form.items() if not isinstance(v, StarletteUpload)}
    try:
        await _submit_report(request, assignment_id, db, user, form)
    except (LedgerInvalid, StaleReport) as error:
        # The form again, not a bare error page: the message beside its field, the narrative as typed. After a
        # conflict the form carries the version now stored, so that sending it again is a decision taken with the
        # other save in view (the message names who saved it, the report table shows it), not a blind overwrite.
        if isinstance(error, StaleReport):
            typed.pop("version", None)
        with db.read() as session:
            return assignment_page_with(request, session, user, assignment_id, typed=typed, error=error)
    return RedirectResponse(f"/ledger/assignments/{assignment_id}?submitted=1", status_code=303)


async def _submit_report(request: Request, assignment_id: int, db, user, form) -> None:
    values = {}
    for key, value in form.items():
        if key.startswith("indicator_") and str(value).strip():
            number = _number(str(value), "指标值", key)
            try:
                values[int(key.removeprefix("indicator_"))] = number
            except ValueError:
                raise LedgerInvalid(f"指标“{key}”无效", field=key) from None
    # Absent on a rolled-up assignment's form (a narrative only); the service refuses them there.
    percent = _number(str(form.get("percent", "")), "完成百分比", "percent")
    status = str(form.get("status", "")).strip() or None
    version = str(form.get("version", "")).strip()
    settings = request.app.state.settings
    uploads = [f for f in form.getlist("evidence") if isinstance(f, StarletteUpload) and f.filename]
    limit = settings.evidence_max_mb * 1048576
    files_data = [(f.filename, await f.read(limit + 1)) for f in uploads]
    for filename, data in files_data:  # every file checked before anything is written
        files.check_file(filename, data, limit)
    with db.write() as session:  # the report and its files (written at commit): all of it or nothing
        report = reporting.submit_report(session=session, actor=user, assignment_id=assignment_id,
                                        status=status, percent=percent,
                                        narrative=str(form.get("narrative", "")),
                                        period=str(form.get("period", "")) or None, values=values,
                                        expected_version=int(version) if version.isdigit() else None,
                                        grace_days=settings.warn_report_grace_days)
        for filename, data in files_data:
            files.attach(session=session, actor=user, report_id=report.id, filename=filename, data=data,
                         store=Path(settings.data_dir) / "evidence", max_bytes=limit)


@router.get("/evidence/{evidence_id}", dependencies=[require("ledger.view")])
def evidence(request: Request, evidence_id: Id, session: SessionDep, user: CurrentUser):
    path, item = files.open_evidence(session=session, actor=user, evidence_id=evidence_id,
                                     store=Path(request.app.state.settings.data_dir) / "evidence")
    # Always a download with the type checked at upload: an uploaded file is never rendered by the browser.
    return stored_file(path, item.filename, item.content_type)


@router.post("/reports/{report_id}/review", dependencies=[require("ledger.review")])
def review(report_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep, decision: str = Form(""),
           comment: str = Form(""), version: int | None = Form(None, title="版本号"), back: str = Form("")):
    if decision not in ("approve", "return"):
        raise LedgerInvalid("请选择“通过”或“退回”")
    with db.write() as session:
        report = reporting.review_report(session=session, actor=user, report_id=report_id, approve=decision == "approve",
                                        comment=comment, expected_version=version,
                                        rules=WarningRules.from_settings(settings))
        target = back if back.startswith("/ledger/") else f"/ledger/assignments/{report.assignment_id}"
    return RedirectResponse(f"{target}{'&' if '?' in target else '?'}reviewed={decision}", status_code=303)


@router.post("/assignments/{assignment_id}/break-down", dependencies=[require("ledger.assign")])
def break_down(request: Request, assignment_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep,
               units: list[str] = Form([]),
               deadline: str = Form(""), owner: str = Form(""), cycle: str = Form("monthly")):
    try:
        with db.write() as session:
            parent = services.get_assignment(session=session, actor=user, assignment_id=assignment_id)
            services.break_down(session=session, actor=user, assignment_id=assignment_id, unit_codes=units,
                                terms=Terms(owner=owner.strip(), deadline=day_of(deadline, "完成时限", "deadline"),
                                            ongoing=parent.ongoing, cycle=cycle, role=parent.role),
                                rules=WarningRules.from_settings(settings))
    except (Invalid, NotFound) as exc:
        # The assignment page again, its break-down form showing the message and what was chosen and typed.
        refused = forms.refused(db, request, user, exc, form="break_down", fields=("units", "deadline", "cycle"),
                                values={"units": units, "deadline": deadline, "owner": owner, "cycle": cycle})
        with db.read() as session:
            return assignment_page_with(request, session, user, assignment_id, refused=refused)
    return RedirectResponse(f"/ledger/assignments/{assignment_id}?broken_down={len(units)}", status_code=303)


@router.post("/assignments/{assignment_id}/deadline", dependencies=[require("ledger.assign")])
def change_deadline(request: Request, assignment_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep,
                    deadline: str = Form("")):
    try:
        day = day_of(deadline, "完成时限", "deadline")
        if day is None:
            raise LedgerInvalid("请填写新的完成时限", field="deadline")
        with db.write() as session:
            services.change_deadline(session=session, actor=user, assignment_id=assignment_id, deadline=day,
                                     rules=WarningRules.from_settings(settings))
    except Invalid as exc:
        refused = forms.refused(db, request, user, exc, form="deadline", fields=("deadline",),
                                values={"deadline": deadline})
        with db.read() as session:
            return assignment_page_with(request, session, user, assignment_id, refused=refused)
    return RedirectResponse(f"/ledger/assignments/{assignment_id}?rescheduled=1", status_code=303)


@router.get("/todo", dependencies=[require("ledger.view")])
def todo(request: Request, session: SessionDep, user: CurrentUser):
    items = services.todo(session=session, actor=user)
    queue = reviews.review_queue(session=session, actor=user) if allowed(user, "ledger.review", user.unit) else None
    to_answer = [n for n in supervision.notices_for(session=session, actor=user, per_page=200).items
                 if n.to_unit_id == user.unit.id and n.state in ("open", "escalated")]
    return render(request, "ledger/todo.html", {"todo": items, "queue": queue, "to_answer": to_answer}, user=user)


@router.post("/todo/upload", dependencies=[require("ledger.report")])
async def upload_reports(request: Request, db: DatabaseDep, user: CurrentUser, limits: ImportLimitsDep,
                         file: UploadFile = File(...), period: str = Form("")):
    settings = request.app.state.settings
    data = await file.read(settings.evidence_max_mb * 1048576 + 1)
    if len(data) > settings.evidence_max_mb * 1048576:
        raise LedgerInvalid(f"{file.filename}:文件超过 {settings.evidence_max_mb} MB")
    name = Path(file.filename or "ledger").stem + (".xlsx" if data[:4] == b"PK\x03\x04" else ".csv")

    def work(progress) -> TaskResult:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            progress(0, 0, "正在读取和检查文件")
            with db.read() as session:  # parse and check outside the write lock every page view needs
                plan = bulk.check_reports(session=session, actor=user, path=path, period=period.strip() or None,
                                          limits=limits)
            with db.write() as session:
                result = bulk.import_reports(session=session, actor=user, path=path, plan=plan,
                                             grace_days=settings.warn_report_grace_days, limits=limits, progress=progress)
        return TaskResult(f"已提交 {result.submitted} 份报告", f"/ledger/todo?uploaded={result.submitted}")

    return jobs_pages.start(db, user, name="ledger.reports.import", title=f"批量填报 {name}"[:200], work=work)


def xlsx_response(name: str, sheet: str, headers: list[str], rows) -> FileResponse:
    path = write_table(download_path(), sheet=sheet, headers=headers, rows=rows)
    return temporary_file(path, name, XLSX)


def _queue_filters(unit: str, measure: str, category: str, period: str) -> dict:
    """The queue's filters as given (a filter form sends its empty choices too), without the empty ones."""
    numbers = {}
    for name, text, what in (("measure", measure, "措施序号"), ("category", category, "任务类别")):
        if text.strip():
            if not text.strip().isdigit() or not 1 <= int(text) <= INT_MAX:
                raise LedgerInvalid(f"{what}“{text[:20]}”无效")
            numbers[name] = int(text)
    return {k: v for k, v in {"unit": unit.strip(), **numbers, "period": period.strip()[:16]}.items() if v != ""}


def _review_page(request: Request, session, user, filters: dict, page: int, batch: reviews.BatchResult | None = None,
                 status_code: int = 200):
    def queue_page(number: int):
        return reviews.review_queue(session=session, actor=user, page=number, unit_code=filters.get("unit", ""),
                                     measure_no=filters.get("measure"), category_no=filters.get("category"),
                                     period=filters.get("period", ""))

    queue = queue_page(page)
    if queue.page > queue.pages:  # a batch emptied the last page: show the one now last
        queue = queue_page(queue.pages)
    # The filters ride along on every link and form of the page, so paging, exporting and deciding keep them.
    query = urlencode(filters)
    here = urlencode({**filters, "page": queue.page} if queue.page > 1 else filters)  # where a decision returns to
    return render(request, "ledger/review.html", {
        "queue": queue, "filters": filters, "query": query, "batch": batch,
        "options": reviews.queue_options(session=session, actor=user),
        "back": f"/ledger/review?{here}" if here else "/ledger/review",
    }, user=user, status_code=status_code)


@router.get("/review", dependencies=[require("ledger.review")])
def review_queue(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1, export: bool = False,
                 unit: str = "", measure: str = "", category: str = "", period: str = ""):
    filters = _queue_filters(unit, measure, category, period)
    if export:
        queue = reviews.review_queue(session=session, actor=user, per_page=100000, unit_code=filters.get("unit", ""),
                                      measure_no=filters.get("measure"), category_no=filters.get("category"),
                                      period=filters.get("period", ""))
        return xlsx_response("待审核报告.xlsx", "待审核报告", ["单位", "序号", "报告期", "状态", "完成百分比", "进展情况", "提交人", "提交时间"],
                              ([r.assignment.unit.name, r.assignment.measure_no, r.period, STATUSES[r.status], r.percent,
                                r.narrative, r.submitted_by, r.submitted_at.strftime("%Y-%m-%d %H:%M")] for r in queue.items))
    return _review_page(request, session, user, filters, max(1, page))


@router.post("/review/batch", dependencies=[require("ledger.review")])
def review_batch(request: Request, db: DatabaseDep, user: CurrentUser, reports: list[str] = Form([]),
                 comment: str = Form(""), unit: str = Form(""), measure: str = Form(""), category: str = Form(""),
                 period: str = Form(""), page: str = Form("1")):
    picks = []
    for value in reports:  # "id:version", the version the reviewer read
        report_id, _, version = value.partition(":")
        if not (report_id.isdigit() and int(report_id) <= INT_MAX) or not (version == "" or version.isdigit()
                                                                             and int(version) <= INT_MAX):
            raise LedgerInvalid(f"勾选的报告“{value[:40]}”无效")
        picks.append((int(report_id), int(version) if version else None))
    filters = _queue_filters(unit, measure, category, period)
    with db.write() as session:
        batch = reviews.approve_batch(session=session, actor=user, picks=picks, comment=comment,
                                      rules=WarningRules.from_settings(request.app.state.settings))
    with db.read() as session:
        return _review_page(request, session, user, filters, int(page) if page.isdigit() and len(page) < 7 else 1,
                            batch=batch, status_code=batch.status)


def _assign_page(request: Request, session, user, form: dict | None = None, errors: dict | None = None,
                 status_code: int = 200):
    authorize(user, "ledger.assign", user.unit)
    notice = plan.current_notice(session=session, actor=user)
    return render(request, "ledger/assign.html", {
        "categories": plan.plan_tree(session=session, notice=notice),
        "levels": {k: v for k, v in LEVELS.items() if k in ("province", "municipal", "county", "branch")},
        "form": form or {}, "errors": errors or {},
    }, user=user, status_code=status_code)


@router.get("/assign", dependencies=[require("ledger.assign")])
def assign_form(request: Request, session: SessionDep, user: CurrentUser):
    return _assign_page(request, session, user)


@router.post("/assign", dependencies=[require("ledger.assign")])
def assign(request: Request, db: DatabaseDep, user: CurrentUser, settings: SettingsDep, target: str = Form("level"),
           level: str = Form(""),
           unit: str = Form(""), measures: str = Form(""), category: str = Form(""), deadline: str = Form(""),
           ongoing: bool = Form(False), cycle: str = Form("monthly"), owner: str = Form(""), role: str = Form("lead"),
           start: str = Form("")):
    try:
        count = _assign(db, user, target=target, level=level, unit=unit, measures=measures, category=category,
                        rules=WarningRules.from_settings(settings),
                        terms=Terms(owner=owner.strip(), deadline=day_of(deadline, "完成时限", "deadline"), ongoing=ongoing,
                                    cycle=cycle, role=role, start_date=day_of(start, "开始日期", "start")))
    except (Invalid, NotFound, Forbidden) as exc:
        # The form again, the message beside the field it concerns and everything typed kept; a unit outside the
        # official's subtree is a mistyped code as often as a probe, so it is shown there too (and recorded).
        errors = forms.form_errors(db, request, user, exc,
                                   "unit" if target == "unit" and isinstance(exc, Forbidden) else "form")
        form = {"target": target, "level": level, "unit": unit, "measures": measures, "category": category,
                "deadline": deadline, "ongoing": ongoing, "cycle": cycle, "owner": owner, "role": role, "start": start}
        with db.read() as session:
            return _assign_page(request, session, user, form=form, errors=errors, status_code=exc.status)
    return RedirectResponse(f"/ledger?assigned={count}", status_code=303)


def _assign(db, user, *, target: str, level: str, unit: str, measures: str, category: str, terms: Terms,
            rules: WarningRules) -> int:
    try:
        measure_nos = sorted({int(m) for m in measures.replace(",", " ").replace("，", " ").split()}) or None
    except ValueError:
        raise LedgerInvalid(f"措施序号“{measures[:40]}”应为以空格或逗号分隔的数字", field="measures") from None
    if category and not category.isdigit():
        raise LedgerInvalid(f"任务类别“{category[:40]}”无效", field="category")
    with db.write() as session:
        if target == "unit":
            if not measure_nos:
                raise LedgerInvalid("请填写要分配的措施序号", field="measures")
            return len([services.assign(session=session, actor=user, measure_no=m, unit_code=unit.strip(),
                                        terms=Terms(**vars(terms)), rules=rules) for m in measure_nos])
        return services.assign_bulk(session=session, actor=user, level=level, terms=terms, measure_nos=measure_nos,
                                    category_no=int(category) if category and not measure_nos else None,
                                    rules=rules)


@router.post("/export.xlsx", dependencies=[require("ledger.view")])
def export(db: DatabaseDep, user: CurrentUser, settings: SettingsDep, unit: str = Form("")):
    # A subtree's ledger (the whole country's, at the national unit) is written by a task: the refusal comes first.
    # A POST behind the form's CSRF token: a link another site planted must not set a national export running.
    with db.read() as session:
        root = get_unit(session=session, actor=user, code=unit or user.unit.code)
        authorize(user, "ledger.view", root)
        code, name = root.code, root.name

    def write(path: Path, progress) -> str:
        with db.read() as session:
            count = exports.export_ledger(session=session, actor=user, path=path,
                                          unit=get_unit(session=session, actor=user, code=code),
                                          progress=lambda n: progress(n, 0, f"已写出 {n} 行"))
        return f"已导出 {count} 行"

    return jobs_pages.start_export(db, user, settings, name="ledger.export", title=f"导出台账 {name}"[:200],
                                   filename=f"{code}-春风行动台账.xlsx", write=write)


@router.get("/league", dependencies=[require("ledger.view")])
def league_page(request: Request, session: SessionDep, user: CurrentUser, level: str = "", export: bool = False,
                page: PageNo = 1):
    root = user.unit
    order = list(LEVELS)  # national, department, province, municipal, county, branch
    levels = [lv for lv in order[2:] if order.index(lv) > order.index(root.level)]
    level = level or (levels[0] if levels else "branch")
    if level not in levels:
        raise LedgerInvalid(f"层级“{level}”无效")
    rows = league.league_table(session=session, actor=user, level=level, within=root, today=date.today())
    if export:
        path = download_path()
        write_table(path, sheet="排名", headers=["名次", "单位", "得分", *league.PARTS.values(), "任务数", "应报", "按时",
                                                 "已审核", "一次通过", "红灯", "黄灯", "指标值", "达标"],
                    rows=([r.rank, r.unit.name, r.score, *(None if r.rates[k] is None else round(100 * r.rates[k], 1)
                                                          for k in league.PARTS),
                           r.assignments, r.due, r.on_time, r.reviewed, r.first_pass, r.red, r.yellow, r.values, r.met]
                          for r in rows))
        return temporary_file(path, f"{root.code}-{level}-排名.xlsx", XLSX)
    page_rows = Page(rows[(max(1, page) - 1) * 50:max(1, page) * 50], len(rows), max(1, page), 50)
    return render(request, "ledger/league.html", {"rows": page_rows.items, "result": page_rows, "level": level,
                                                  "levels": levels, "root": root, "weights": league.WEIGHTS,
                                                  "parts": league.PARTS}, user=user)


@router.get("/briefing", dependencies=[require("ledger.view")])
def briefing_page(session: SessionDep, user: CurrentUser, unit: str = "", format: str = "html"):
    root = get_unit(session=session, actor=user, code=unit or user.unit.code)
    data = briefing.build(session=session, actor=user, unit=root, today=date.today())
    if format == "pdf":
        return document(briefing.render_pdf(data), f"{root.name}春风行动简报-{date.today()}.pdf")
    # A standalone document with its own print styles; the site's CSP still applies (no script in it).
    return HTMLResponse(briefing.render_html(data, back=f"/ledger/units/{root.code}"))
