"""Pages of the organisation: a unit with its children and users, unit import, the audit log."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import func, select
from starlette.background import BackgroundTask

from chunfeng.org import audit, services
from chunfeng.org.access import allowed, authorize, subtree_filter
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.models import AuditEntry, Unit
from chunfeng.org.roles import LEVELS
from chunfeng.paging import Page
from chunfeng.web.deps import CurrentUser, DatabaseDep, SessionDep, render
from chunfeng.xlsx import temp_xlsx_path, write_table

router = APIRouter(tags=["org"])

MAX_UPLOAD = 5 * 1024 * 1024


@router.get("/org")
def my_unit(user: CurrentUser):
    return RedirectResponse(f"/org/units/{user.unit.code}", status_code=303)


@router.get("/org/units/{code}")
def unit_page(request: Request, code: str, session: SessionDep, user: CurrentUser, q: str = "", page: int = 1):
    unit = services.get_unit(session=session, actor=user, code=code)
    children = services.list_child_units(session=session, actor=user, unit=unit, query=q.strip(), page=max(1, page))
    users = services.list_users(session=session, actor=user, unit=unit, per_page=20) \
        if allowed(user, "org.user.view", unit) else None
    return render(request, "org/unit.html", {
        "unit": unit, "chain": services.unit_chain(unit), "children": children, "users": users, "q": q.strip(),
        "can_import": allowed(user, "org.unit.import", unit) and unit.level in {"province", "municipal", "county"},
        "can_add_user": allowed(user, "org.user.manage", unit), "user_error": None,
    }, user=user)


@router.get("/org/units/{code}/export.xlsx")
def export_units(code: str, session: SessionDep, user: CurrentUser, q: str = ""):
    unit = services.get_unit(session=session, actor=user, code=code)
    rows = []
    page = 1
    while True:
        result = services.list_child_units(session=session, actor=user, unit=unit, query=q.strip(), page=page,
                                           per_page=1000)
        rows += [[u.code, u.parent.code if u.parent else "", u.name, LEVELS.get(u.level, u.level),
                  "是" if u.synthetic else ""] for u in result.items]
        if page >= result.pages:
            break
        page += 1
    path = write_table(temp_xlsx_path(), sheet="单位", headers=["代码", "上级代码", "名称", "层级", "演示数据"],
                       rows=rows, widths=[12, 12, 50, 14, 10])
    return FileResponse(path, filename=f"{unit.code}-下级单位.xlsx", background=BackgroundTask(path.unlink, missing_ok=True),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@router.post("/org/units/{code}/import")
async def import_units(request: Request, code: str, db: DatabaseDep, user: CurrentUser,
                       file: UploadFile = File(...)):
    with db.read() as session:
        unit = services.get_unit(session=session, actor=user, code=code)
        authorize(user, "org.unit.import", unit)
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ValidationFailed(f"{file.filename}:文件超过 {MAX_UPLOAD // 1024 // 1024} MB")
    suffix = ".xlsx" if data[:4] == b"PK\x03\x04" else ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(file.filename or "upload").stem + suffix)
        path.write_bytes(data)
        with db.write() as session:
            count = services.import_units(session=session, actor=user, path=path)
    return RedirectResponse(f"/org/units/{code}?imported={count}", status_code=303)


@router.post("/org/units/{code}/users")
def add_user(request: Request, code: str, db: DatabaseDep, user: CurrentUser, username: str = Form(""),
             display_name: str = Form(""), password: str = Form(""), roles: list[str] = Form([])):
    with db.write() as session:
        created = services.add_user(session=session, actor=user, username=username.strip(), display_name=display_name.strip(),
                                    unit_code=code, roles=roles, password=password)
    return RedirectResponse(f"/org/units/{code}?added={created.username}", status_code=303)


def _audit_query(user, action: str):
    # An administrator sees what was done from inside their own subtree.
    where = [AuditEntry.actor_unit.in_(select(Unit.code).where(subtree_filter(user)))]
    if action:
        where.append(AuditEntry.action.startswith(action, autoescape=True))
    return where


@router.get("/audit/export.xlsx")
def audit_export(session: SessionDep, user: CurrentUser, action: str = ""):
    authorize(user, "audit.view")
    entries = session.scalars(select(AuditEntry).where(*_audit_query(user, action)).order_by(AuditEntry.seq)
                              .execution_options(yield_per=2000))
    rows = ([e.seq, e.at, e.actor, e.actor_unit, e.action, e.object_type, e.object_id, e.before, e.after, e.digest]
            for e in entries)
    path = write_table(temp_xlsx_path(), sheet="审计日志",
                       headers=["序号", "时间(UTC)", "操作人", "单位", "操作", "对象类型", "对象", "变更前", "变更后", "摘要(SM3)"],
                       rows=rows, widths=[8, 28, 12, 10, 28, 12, 16, 40, 40, 20])
    return FileResponse(path, filename="审计日志.xlsx", background=BackgroundTask(path.unlink, missing_ok=True),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@router.get("/audit")
def audit_page(request: Request, session: SessionDep, user: CurrentUser, page: int = 1, action: str = ""):
    authorize(user, "audit.view")
    where = _audit_query(user, action)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    result = Page([], total, max(1, page), 50)
    result.items = list(session.scalars(select(AuditEntry).where(*where).order_by(AuditEntry.seq.desc())
                                        .offset(result.offset).limit(result.per_page)))
    return render(request, "audit/index.html", {"result": result, "action": action,
                                                "report": audit.verify(session) if user.unit.level == "national" else None},
                  user=user)
