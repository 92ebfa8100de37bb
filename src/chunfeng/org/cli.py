"""`chunfeng org …`, `chunfeng user …`, `chunfeng audit …`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import select

from chunfeng.cli_support import actor, console, database, fail, import_limits, settings
from chunfeng.org import audit, services, unit_import
from chunfeng.org.builtin import NATIONAL
from chunfeng.org.models import AuditEntry
from chunfeng.org.roles import LEVELS, ROLES

org_app = typer.Typer(help="单位:总局、省局及下级单位", no_args_is_help=True)
user_app = typer.Typer(help="用户与角色", no_args_is_help=True)
audit_app = typer.Typer(help="审计日志", no_args_is_help=True)


@org_app.command("import")
def import_units(file: Path):
    """Import municipal, county and branch units from CSV or xlsx (columns: code, parent_code, name, level)."""
    db = database()
    with db.read() as session:  # parse and check outside the write lock
        plan = unit_import.check_units(session=session, actor=actor(session), path=file, limits=import_limits())
    with db.write() as session:
        count = unit_import.import_units(session=session, actor=actor(session), path=file, plan=plan,
                                         limits=import_limits())
    console.print(f"已导入 {count} 个单位。")


@org_app.command("units")
def list_units(code: str = typer.Argument(NATIONAL[0], help="the unit whose children to list"),
               query: str = typer.Option("", "--search", "-q"), page: int = 1):
    """List a unit's children (or, with --search, matching units below it)."""
    db = database()
    with db.read() as session:
        who = actor(session)
        unit = services.get_unit(session=session, actor=who, code=code)
        result = services.list_child_units(session=session, actor=who, unit=unit, query=query, page=page)
        table = Table(title=f"{unit.name}({unit.code}) 第 {result.page}/{result.pages} 页,共 {result.total} 个")
        for col in ("代码", "名称", "层级"):
            table.add_column(col)
        for u in result.items:
            table.add_row(u.code, u.name + (" [合成]" if u.synthetic else ""), LEVELS.get(u.level, u.level))
    console.print(table)


@user_app.command("add")
def add_user(
    username: str,
    unit: str = typer.Option(..., "--unit", help="unit code"),
    role: list[str] = typer.Option([], "--role", help=f"one of: {', '.join(ROLES)}; repeat for several. Only the "
                                   "server's operator (no --as) gives roles here; otherwise the security administrator "
                                   "grants them with `user roles`"),
    name: str = typer.Option("", "--name", help="display name"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="CHUNFENG_NEW_PASSWORD"),
):
    """Create a user in a unit with one or more roles (the password is hashed with Argon2id)."""
    db = database()
    with db.write() as session:
        user = services.add_user(session=session, actor=actor(session), username=username, display_name=name,
                                 unit_code=unit, roles=role, password=password,
                                 min_length=settings().password_min_length)
        console.print(f"已创建用户 {user.username}({user.unit.name},"
                      f"{'、'.join(ROLES[r] for r in user.role_set) or '尚无角色:由安全管理员授予'})")


@user_app.command("roles")
def set_roles(username: str,
              role: list[str] = typer.Option(..., "--role", help=f"the roles to hold from now on: {', '.join(ROLES)}")):
    """Grant or withdraw roles (the security administrator's task; 三员分立 is enforced)."""
    db = database()
    with db.write() as session:
        user = services.set_roles(session=session, actor=actor(session), username=username, roles=role)
        console.print(f"{user.username} 现有角色:{'、'.join(ROLES[r] for r in user.role_set)}")


@user_app.command("disable")
def disable_user(username: str):
    """Disable an account no longer needed (its history stays; its sessions end)."""
    with database().write() as session:
        services.set_active(session=session, actor=actor(session), username=username, active=False)
    console.print(f"已停用 {username}。")


@user_app.command("enable")
def enable_user(username: str):
    """Enable a disabled account again."""
    with database().write() as session:
        services.set_active(session=session, actor=actor(session), username=username, active=True)
    console.print(f"已启用 {username}。")


@audit_app.command("verify")
def verify(archive: Path | None = typer.Option(None, "--archive", help="check an archive file instead of the log")):
    """Check the audit log's keyed hash chain and that its end matches the signed head kept outside the database;
    report the first broken link. With --archive, check an archive on its own and that the log still holds it."""
    if archive is not None:
        report = audit.verify_archive(archive)
        what = f"归档文件 {archive.name}"
        if report.ok:  # then the log must still hold what the archive holds
            with database().read() as session:
                if disagreement := audit.compare_with_archive(session, archive):
                    fail(f"审计日志与归档 {archive.name} 不符:{disagreement}。")
    else:
        with database().read() as session:
            report = audit.verify(session)
        what = "审计日志"
    if report.ok:
        anchored = "" if archive is not None else f",最新一条与库外的链头 {audit.head_path()} 一致"
        console.print(f"{what}完整:共 {report.checked} 条记录,哈希链(SM3,有密钥)逐条核对无误{anchored}。")
    else:
        fail(f"{what}被篡改:{report.reason}。此前 {report.checked} 条记录核对无误。")


@audit_app.command("export")
def export(out: Path = typer.Option(..., "--out", help="the archive to write (gzipped JSON Lines)"),
           since: str = typer.Option("", help="first day, e.g. 2026-01-01"),
           until: str = typer.Option("", help="the day after the last, e.g. 2026-07-01")):
    """Export the audit log, or a period of it, for archiving; `verify --archive` checks the file later."""
    with database().write() as session:
        audit.check_period(since, until)
        count = audit.export_archive(session, out, since=since, until=until)
        audit.record(session, actor=actor(session), action="audit.exported", object_type="archive", object_id=out.name,
                     after={"entries": count, "since": since, "until": until})
    console.print(f"已导出 {count} 条审计记录到 {out}。")



@audit_app.command("tail")
def tail(limit: int = 20):
    """Show the newest audit entries."""
    db = database()
    with db.read() as session:
        rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)))
    table = Table(title="审计日志(最新)")
    for col in ("序号", "时间(UTC)", "操作人", "操作", "对象"):
        table.add_column(col)
    for e in rows:
        table.add_row(str(e.seq), e.at, e.actor, e.action, f"{e.object_type}:{e.object_id}")
    console.print(table)
