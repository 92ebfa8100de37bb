"""Pages of the plan: categories → items → measures, search, a page per measure, xlsx export."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse

from chunfeng.appeals.services import linked_to_measure
from chunfeng.org.access import allowed, authorize
from chunfeng.plan import services
from chunfeng.plan.errors import PlanError, PlanNotFound
from chunfeng.web.contract import Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, SessionDep, is_htmx, render, require
from chunfeng.web.downloads import XLSX, temporary_file
from chunfeng.xlsx import download_path, write_table

router = APIRouter(prefix="/plan", tags=["plan"])


MAX_NOTICE = 10 * 1024 * 1024


@router.get("", dependencies=[require("plan.view")])
def plan_index(request: Request, session: SessionDep, user: CurrentUser):
    try:
        notice = services.current_notice(session=session, actor=user)
    except PlanNotFound:
        return render(request, "plan/empty.html", {"can_import": allowed(user, "plan.import"), "error": None},
                      status_code=404, user=user)
    tree = services.plan_tree(session=session, notice=notice)
    measures = [m for c in tree for i in c.items for m in i.measures]
    return render(request, "plan/index.html", {
        "notice": notice, "tree": tree, "measure_count": len(measures),
        "new_count": sum(m.is_new for m in measures), "item_count": sum(len(c.items) for c in tree),
    }, user=user)


@router.get("/items/{no}", dependencies=[require("plan.view")])
def item_page(request: Request, no: Id, session: SessionDep, user: CurrentUser):
    notice = services.current_notice(session=session, actor=user)
    item = services.get_item(session=session, notice=notice, no=no)
    return render(request, "plan/item.html", {"notice": notice, "item": item}, user=user)


@router.get("/measures/{no}", dependencies=[require("plan.view")])
def measure_page(request: Request, no: Id, session: SessionDep, user: CurrentUser):
    notice = services.current_notice(session=session, actor=user)
    measure = services.get_measure(session=session, notice=notice, no=no)
    total = services.measure_count(session=session, notice=notice)
    linked, appeals = linked_to_measure(session=session, actor=user, measure_no=no)
    return render(request, "plan/measure.html", {"notice": notice, "measure": measure, "total": total,
                                                 "linked": linked, "appeals": appeals}, user=user)


@router.get("/search", dependencies=[require("plan.view")])
def search(request: Request, session: SessionDep, user: CurrentUser, q: str = "", new: bool = False,
           page: PageNo = 1, per_page: int = 20):
    notice = services.current_notice(session=session, actor=user)
    result = services.search_measures(session=session, notice=notice, query=q.strip(), new_only=new,
                                      page=max(1, page), per_page=min(max(1, per_page), 200))
    context = {"notice": notice, "result": result, "q": q.strip(), "new": new}
    if is_htmx(request):
        return render(request, "plan/_results.html", context, user=user)
    return render(request, "plan/search.html", context, user=user)


@router.get("/export.xlsx", dependencies=[require("plan.view")])
def export(session: SessionDep, user: CurrentUser):
    notice = services.current_notice(session=session, actor=user)
    path = write_table(download_path(), sheet="工作任务安排表",
                       headers=["序号", "任务类别", "任务事项", "具体措施", "新增措施"],
                       rows=services.plan_rows(session=session, notice=notice), widths=[6, 16, 16, 80, 12])
    filename = f"{notice.doc_number}-工作任务安排表.xlsx"
    return temporary_file(path, filename, XLSX)


@router.post("/import", dependencies=[require("plan.import")])
async def import_notice(request: Request, db: DatabaseDep, user: CurrentUser, file: UploadFile = File(...),
                        replace: bool = Form(False)):
    """The action office uploads the notice (HTML or text); a notice that does not check out is refused whole."""
    authorize(user, "plan.import")
    data = await file.read(MAX_NOTICE + 1)
    try:
        if len(data) > MAX_NOTICE:
            raise PlanError(f"文件超过 {MAX_NOTICE // 1024 // 1024} MB,不像是一份通知")
        with db.write() as session:
            services.import_notice(session=session, actor=user, data=data, source_name=file.filename or "",
                                   replace=replace)
    except PlanError as exc:
        with db.read() as session:
            has_plan = session.scalar(services.any_notice()) is not None
        return render(request, "plan/empty.html", {"can_import": True, "error": f"{file.filename}:{exc}",
                                                   "has_plan": has_plan}, status_code=400, user=user)
    return RedirectResponse("/plan?imported=1", status_code=303)
