"""Pages of the organisation: a unit with its children and users, unit import, the audit log, the security
administrator's accounts page."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from chunfeng.db import utcnow
from chunfeng.inbox import services as inbox
from chunfeng.jobs import TaskResult
from chunfeng.org import audit, audit_names, lockout, services, unit_import
from chunfeng.org.access import allowed, authorize, subtree_filter
from chunfeng.org.errors import Forbidden, ValidationFailed
from chunfeng.org.models import AuditEntry, Unit
from chunfeng.org.roles import LEVELS, ROLES, SEPARATED
from chunfeng.paging import clamp_page, paginate
from chunfeng.web import forms
from chunfeng.web import jobs as jobs_pages
from chunfeng.web.contract import PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, ImportLimitsDep, SessionDep, render, require
from chunfeng.web.downloads import XLSX, temporary_file
from chunfeng.xlsx import download_path, write_table

router = APIRouter(tags=["org"])

MAX_UPLOAD = 5 * 1024 * 1024


@router.get("/org", dependencies=[require("org.unit.view")])
def my_unit(user: CurrentUser):
    return RedirectResponse(f"/org/units/{user.unit.code}", status_code=303)


@router.get("/org/unit-picker", dependencies=[require("org.unit.view")])
def unit_picker(request: Request, session: SessionDep, user: CurrentUser, q: str = ""):
    """The unit picker's choices (<option>s for its datalist): units of the user's subtree matching a name or a
    code prefix, or the user's unit and its children before anything is typed."""
    q = q.strip()[:40]
    found = services.list_child_units(session=session, actor=user, unit=user.unit, query=q, per_page=30).items
    units = found if q else [user.unit, *found]
    return render(request, "org/_unit_options.html", {"units": units}, user=user)


@router.get("/org/units/{code}", dependencies=[require("org.unit.view")])
def unit_page(request: Request, code: str, session: SessionDep, user: CurrentUser, q: str = "", page: PageNo = 1):
    return render_unit_page(request, session, user, code, q=q, page=page)


def render_unit_page(request: Request, session, user, code: str, *, q: str = "", page: int = 1,
                     refused: forms.Refused | None = None):
    """The unit's page; after a refused form of it (a new user, a channel), that form as typed with the message."""
    unit = services.get_unit(session=session, actor=user, code=code)
    children = services.list_child_units(session=session, actor=user, unit=unit, query=q.strip(), page=max(1, page))
    users = services.list_users(session=session, actor=user, unit=unit, per_page=20) \
        if allowed(user, "org.user.view", unit) else None
    return render(request, "org/unit.html", {
        "unit": unit, "chain": services.unit_chain(unit), "children": children, "users": users, "q": q.strip(),
        "can_import": allowed(user, "org.unit.import", unit) and unit.level in {"province", "municipal", "county"},
        "can_add_user": allowed(user, "org.user.manage", unit), "separated": SEPARATED, "refused": refused,
        "channels": inbox.list_channels(session=session, actor=user, unit=unit)
        if allowed(user, "inbox.channel", unit) else [],
    }, user=user, status_code=refused.status if refused else 200)


@router.get("/org/units/{code}/export.xlsx", dependencies=[require("org.unit.view")])
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
    path = write_table(download_path(), sheet="单位", headers=["代码", "上级代码", "名称", "层级", "演示数据"],
                       rows=rows, widths=[12, 12, 50, 14, 10])
    return temporary_file(path, f"{unit.code}-下级单位.xlsx", XLSX)


@router.post("/org/units/{code}/import", dependencies=[require("org.unit.import")])
async def import_units(request: Request, code: str, db: DatabaseDep, user: CurrentUser, limits: ImportLimitsDep,
                       file: UploadFile = File(...)):
    with db.read() as session:
        unit = services.get_unit(session=session, actor=user, code=code)
        authorize(user, "org.unit.import", unit)
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ValidationFailed(f"{file.filename}:文件超过 {MAX_UPLOAD // 1024 // 1024} MB")
    suffix = ".xlsx" if data[:4] == b"PK\x03\x04" else ".csv"
    name = Path(file.filename or "upload").stem + suffix

    def work(progress) -> TaskResult:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            progress(0, 0, "正在读取和检查文件")
            with db.read() as session:  # parse and check outside the write lock every page view needs
                plan = unit_import.check_units(session=session, actor=user, path=path, limits=limits)
            with db.write() as session:
                count = unit_import.import_units(session=session, actor=user, path=path, plan=plan, limits=limits,
                                                 progress=progress)
        return TaskResult(f"已导入 {count} 个单位", f"/org/units/{code}?imported={count}")

    return jobs_pages.start(db, user, name="org.units.import", title=f"导入下级单位 {name}"[:200], work=work)


@router.post("/org/units/{code}/users", dependencies=[require("org.user.manage")])
def add_user(request: Request, code: str, db: DatabaseDep, user: CurrentUser, username: str = Form(""),
             display_name: str = Form(""), password: str = Form(""), roles: list[str] = Form([])):
    try:
        with db.write() as session:
            created = services.add_user(session=session, actor=user, username=username.strip(),
                                        display_name=display_name.strip(), unit_code=code, roles=roles,
                                        password=password, min_length=request.app.state.settings.password_min_length)
    except ValidationFailed as exc:  # the unit page again, the names as typed (never the password) and every fault
        with db.read() as session:
            return render_unit_page(request, session, user, code, refused=forms.refused(
                db, request, user, exc, form="user", fields=(), values={"username": username,
                                                                         "display_name": display_name}))
    return RedirectResponse(f"/org/units/{code}?added={created.username}", status_code=303)


@router.post("/org/users/{username}/active", dependencies=[require("org.user.manage")])
def user_active(username: str, db: DatabaseDep, user: CurrentUser, active: bool = Form(...)):
    with db.write() as session:
        changed = services.set_active(session=session, actor=user, username=username, active=active)
        code = changed.unit.code
    return RedirectResponse(f"/org/units/{code}?{'enabled' if active else 'disabled'}={quote(username)}", status_code=303)


def _audit_query(user, action: str, outcome: str):
    # An audit administrator sees what was done from inside their own subtree; at the national unit, everything,
    # including attempts to log in as users that do not exist (they belong to no unit).
    where = [] if user.unit.level == "national" else [AuditEntry.actor_unit.in_(select(Unit.code).where(subtree_filter(user)))]
    if action:
        where.append(AuditEntry.action.startswith(action, autoescape=True))
    if outcome:
        if outcome not in audit.OUTCOMES:
            raise ValidationFailed(f"未知结果“{outcome}”,可选:{'、'.join(audit.OUTCOMES)}")
        where.append(AuditEntry.outcome == outcome)
    return where


AUDIT_OUTCOMES = {"success": "成功", "failure": "失败", "denied": "拒绝"}
AUDIT_HEADERS = ["序号", "时间(UTC)", "操作人", "单位", "操作", "结果", "来源地址", "对象类型", "对象", "变更前", "变更后", "摘要(SM3)"]


@router.get("/audit/export.xlsx", dependencies=[require("audit.view")])
def audit_export(db: DatabaseDep, user: CurrentUser, action: str = "", outcome: str = ""):
    path = download_path()
    with db.write() as session:
        entries = session.scalars(select(AuditEntry).where(*_audit_query(user, action, outcome)).order_by(AuditEntry.seq)
                                  .execution_options(yield_per=2000))
        rows = ([e.seq, e.at, e.actor, e.actor_unit, e.action, e.outcome, e.source, e.object_type, e.object_id, e.before,
                 e.after, e.digest] for e in entries)
        write_table(path, sheet="审计日志", headers=AUDIT_HEADERS, rows=rows,
                    widths=[8, 28, 12, 10, 28, 8, 16, 12, 16, 40, 40, 20])
        audit.record(session, actor=user, action="audit.exported", object_type="xlsx",
                     after={"action": action, "outcome": outcome})
    return temporary_file(path, "审计日志.xlsx", XLSX)


@router.get("/audit/archive", dependencies=[require("audit.view")])
def audit_archive(db: DatabaseDep, user: CurrentUser, since: str = "", until: str = ""):
    """The whole log, or a period, as a verifiable archive (national audit administrator: the chain is national)."""
    if user.unit.level != "national":
        raise Forbidden("归档导出整条哈希链,只有总局的审计管理员可以导出")
    audit.check_period(since, until)
    path = download_path(".jsonl.gz")
    with db.write() as session:
        count = audit.export_archive(session, path, since=since, until=until)
        audit.record(session, actor=user, action="audit.exported", object_type="archive",
                     after={"entries": count, "since": since, "until": until})
    return temporary_file(path, f"审计日志归档-{since or '开始'}-{until or '至今'}.jsonl.gz", "application/gzip")


@router.get("/audit", dependencies=[require("audit.view")])
def audit_page(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1, action: str = "", outcome: str = ""):
    where = _audit_query(user, action, outcome)
    result = paginate(session, select(AuditEntry).where(*where).order_by(AuditEntry.seq.desc()), max(1, page), 50)
    return render(request, "audit/index.html", {"result": result, "action": action, "outcome": outcome,
                                                "outcomes": AUDIT_OUTCOMES, "names": audit_names,
                                                "report": audit.verify(session) if user.unit.level == "national" else None},
                  user=user)


# --- the security administrator ---------------------------------------------------------------------------


@router.get("/security", dependencies=[require("org.user.roles")])
def security_page(request: Request, session: SessionDep, user: CurrentUser, q: str = "", page: PageNo = 1):
    """Accounts of the administrator's subtree — roles, lockouts, second factors — and the policies in force."""
    page, _ = clamp_page(page, 30)
    users = services.list_users(session=session, actor=user, unit=user.unit, query=q, page=page, per_page=30,
                                permission="org.user.roles")
    return render(request, "org/security.html", {
        "users": users, "q": q.strip(), "settings": request.app.state.settings, "now": utcnow(),
        "roles": ROLES, "separated": SEPARATED,
        "role_refusal": lambda account: services.role_change_refusal(user, account),
        "locks": lockout.states(session, usernames=[u.username for u in users.items], now=utcnow())}, user=user)


@router.post("/security/users/{username}/roles", dependencies=[require("org.user.roles")])
def security_roles(username: str, db: DatabaseDep, user: CurrentUser, roles: list[str] = Form([])):
    with db.write() as session:
        services.set_roles(session=session, actor=user, username=username, roles=roles)
    return RedirectResponse(f"/security?q={quote(username)}&done=roles", status_code=303)


@router.post("/security/users/{username}/unlock", dependencies=[require("org.user.roles")])
def security_unlock(username: str, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        services.unlock(session=session, actor=user, username=username)
    return RedirectResponse(f"/security?q={quote(username)}&done=unlocked", status_code=303)


@router.post("/security/users/{username}/totp-reset", dependencies=[require("org.user.roles")])
def security_totp_reset(username: str, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        services.reset_second_factor(session=session, actor=user, username=username)
    return RedirectResponse(f"/security?q={quote(username)}&done=totp", status_code=303)
