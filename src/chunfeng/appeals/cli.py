"""`chunfeng appeals …`: import hotline records, run the time-limit scan, list items."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from chunfeng.appeals import intake, services
from chunfeng.appeals.models import KINDS, STATES
from chunfeng.cli_support import actor, console, database, import_limits, settings
from chunfeng.parallel import cores

app = typer.Typer(help="诉求与投诉:导入、时限扫描、清单", no_args_is_help=True)


@app.command("import")
def import_(file: Path):
    """Import 12366 hotline records (xlsx or CSV: 类型, 内容, 地区代码, 来电人, 电话, 来电日期 …), all or nothing."""
    db = database()
    with db.read() as session:  # parse, check and classify outside the write lock
        # A command runs no threads of its own: every core classifies (the web's task thread classifies alone).
        plan = intake.check_hotline(session=session, actor=actor(session), path=file, limits=import_limits(),
                                    workers=cores())
    with db.write() as session:
        made = intake.import_hotline(session=session, actor=actor(session), path=file, plan=plan,
                                     limits=import_limits(), rules=services.AppealRules.from_settings(settings()))
    console.print(f"已导入 {len(made)} 条热线记录。")


@app.command("scan")
def scan(today: Optional[str] = typer.Option(None, help="the day to scan for (default today)")):
    """Remind units of limits due within a working day; escalate items past a limit to the parent unit; erase the
    contact details of items closed longer ago than the retention period."""
    db = database()
    with db.write() as session:
        day = date.fromisoformat(today) if today else date.today()
        result = services.scan(session=session, today=day)
        erased = services.erase_expired_contacts(session=session, today=day, days=settings().appeal_retention_days)
    console.print(f"临期提醒 {result.reminded} 件,超期升级 {result.escalated} 件,删除到期个人信息 {erased} 件。")


@app.command("list")
def list_(state: str = "", kind: str = "", q: str = ""):
    """Items in the acting user's subtree (the operator sees all), newest first."""
    db = database()
    with db.read() as session:
        page = services.list_appeals(session=session, actor=actor(session), state=state, kind=kind, q=q, per_page=200)
        table = Table("编号", "类型", "标题", "状态", "答复时限", title=f"共 {page.total} 件")
        for a in page.items:
            table.add_row(a.number, KINDS[a.kind], a.title, STATES[a.state], str(a.due_reply))
        console.print(table)
