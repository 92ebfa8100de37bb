"""`chunfeng ledger …`: assign, scan warnings, export."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chunfeng.cli_support import actor, console, database, import_limits, settings
from chunfeng.inbox.services import deliver_pending
from chunfeng.ledger import briefing, bulk, exports, league, services, supervision, warnings
from chunfeng.ledger.dashboard import rollup
from chunfeng.ledger.services import Terms
from chunfeng.org.builtin import NATIONAL
from chunfeng.org.services import get_unit

app = typer.Typer(help="台账:任务分解、进展、预警、导出", no_args_is_help=True)


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def _day(text: Optional[str], what: str) -> Optional[date]:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise typer.BadParameter(f"{what}“{text}”不是 YYYY-MM-DD 格式的日期") from None


@app.command()
def assign(
    measures: list[int] = typer.Option(None, "--measure", "-m", help="measure number (序号); repeat for several"),
    category: Optional[int] = typer.Option(None, "--category", "-c", help="every measure of a category (1–5)"),
    unit: Optional[str] = typer.Option(None, "--unit", help="one unit's code"),
    level: Optional[str] = typer.Option(None, "--level", help="every unit at this level: province, municipal, county, branch"),
    deadline: Optional[str] = typer.Option(None, help="YYYY-MM-DD"),
    ongoing: bool = typer.Option(False, "--ongoing", help="长期坚持: no deadline, report every cycle"),
    cycle: str = typer.Option("monthly", help="weekly, monthly or quarterly"),
    owner: str = typer.Option("", help="责任人"),
    role: str = typer.Option("lead", help="lead (牵头) or supporting (配合)"),
    start: Optional[str] = typer.Option(None, help="start date YYYY-MM-DD (default today): progress is expected from here"),
):
    """Assign measures to one unit (--unit) or to every unit at a level below you (--level)."""
    terms = Terms(owner=owner, deadline=_day(deadline, "完成时限"), ongoing=ongoing, cycle=cycle, role=role,
                  start_date=_day(start, "开始日期"))
    rules = warnings.WarningRules.from_settings(settings())
    db = database()
    with db.write() as session:
        who = actor(session)
        if level:
            count = services.assign_bulk(session=session, actor=who, level=level, terms=terms,
                                         measure_nos=measures or None, category_no=category, rules=rules)
        elif unit and measures:
            count = len([services.assign(session=session, actor=who, measure_no=m, unit_code=unit,
                                         terms=Terms(**vars(terms)), rules=rules) for m in measures])
        else:
            raise typer.BadParameter("请用 --unit 加 --measure 分配给一个单位,或用 --level 加 --measure/--category 批量分配")
    console.print(f"已分配 {count} 项任务。")


@app.command()
def scan(today: Optional[str] = typer.Option(None, help="scan as of this day (YYYY-MM-DD); default today")):
    """Recompute every light, escalate overdue supervision notices, send pending messages (the server does this on a schedule)."""
    day = _day(today, "扫描日期") or date.today()
    db = database()
    with _bar() as bar, db.write() as session:
        task = bar.add_task("计算预警", total=None)
        result = warnings.scan(session=session, today=day, rules=warnings.WarningRules.from_settings(settings()),
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
        escalated = supervision.escalate_overdue(session=session, today=day,
                                                 extra_days=settings().notice_escalation_days)
    delivered = deliver_pending(db, settings=settings())
    console.print(f"已扫描 {result.scanned} 项任务,{result.changed} 项预警有变化:红灯 {result.counts['red']},"
                  f"黄灯 {result.counts['yellow']},绿灯 {result.counts['green']}。"
                  f"升级督办 {escalated} 件;外部通道发送 {delivered.sent} 条,失败 {delivered.failed} 条。")


@app.command()
def export(out: Path, unit: str = typer.Option(NATIONAL[0], help="the subtree's root unit code")):
    """Write the ledger of a subtree to an xlsx file (constant memory, any size)."""
    db = database()
    with db.read() as session, _bar() as bar:
        root = get_unit(session=session, actor=actor(session), code=unit)
        task = bar.add_task("导出台账", total=exports.count_rows(session, root))
        rows = exports.export_ledger(session=session, actor=actor(session), unit=root, path=out,
                                     progress=lambda n: bar.update(task, completed=n))
    console.print(f"已导出 {rows} 行到 {out}")


@app.command()
def dashboard(unit: str = typer.Option(NATIONAL[0], help="show this unit's children")):
    """Lights and progress per child unit and category."""
    db = database()
    with db.read() as session:
        root = get_unit(session=session, actor=actor(session), code=unit)
        rows = rollup(session=session, actor=actor(session), unit=root)
    table = Table(title=f"{root.name} 台账汇总")
    for col in ("单位", "任务数", "红灯", "黄灯", "绿灯", "未开始", "进度%", *(f"类别{n}进度%" for n in range(1, 6))):
        table.add_column(col)
    for row in rows:
        o = row.overall
        table.add_row(row.unit.name, str(o.total), str(o.red), str(o.yellow), str(o.green), str(o.idle),
                      f"{o.progress:.1f}",
                      *(f"{row.by_category[n].progress:.1f}" if n in row.by_category else "" for n in range(1, 6)))
    console.print(table)


@app.command("league")
def league_command(level: str = typer.Option("province", help="province, municipal, county or branch"),
                   unit: str = typer.Option(NATIONAL[0], help="rank the units at LEVEL below this unit"),
                   today: Optional[str] = typer.Option(None, help="as of this day (YYYY-MM-DD)")):
    """The effect-evaluation league table, with each score's inputs."""
    db = database()
    with db.read() as session:
        root = get_unit(session=session, actor=actor(session), code=unit)
        rows = league.league_table(session=session, actor=actor(session), level=level, within=root,
                                   today=_day(today, "日期") or date.today())
    table = Table(title=f"{root.name} · {level} 排名")
    for col in ("名次", "单位", "得分", *league.PARTS.values()):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.rank), r.unit.name, f"{r.score:.1f}",
                      *("—" if r.rates[k] is None else f"{100 * r.rates[k]:.1f}%" for k in league.PARTS))
    console.print(table)


@app.command("import-reports")
def import_reports(file: Path, period: Optional[str] = typer.Option(None, help="report period, e.g. 2022-05 (default: the last finished one)")):
    """Submit reports in bulk from the unit's ledger xlsx, filled in (act as the reporter with --as)."""
    db = database()
    with db.read() as session:  # parse and check outside the write lock
        plan = bulk.check_reports(session=session, actor=actor(session), path=file, period=period,
                                  limits=import_limits())
    with db.write() as session:
        result = bulk.import_reports(session=session, actor=actor(session), path=file, plan=plan,
                                     grace_days=settings().warn_report_grace_days, limits=import_limits())
    console.print(f"已提交 {result.submitted} 份报告;跳过其他单位的行 {result.skipped_other_units} 行、"
                  f"未填写的行 {result.skipped_empty} 行。")


@app.command("briefing")
def briefing_command(out: Path, unit: str = typer.Option(NATIONAL[0], help="the subtree's root unit code"),
                     today: Optional[str] = typer.Option(None, help="as of this day (YYYY-MM-DD)")):
    """Write the briefing (简报) of a subtree as PDF (OUT ends in .pdf) or HTML."""
    db = database()
    with db.read() as session, console.status("正在生成简报…"):
        root = get_unit(session=session, actor=actor(session), code=unit)
        data = briefing.build(session=session, actor=actor(session), unit=root, today=_day(today, "日期") or date.today())
        if out.suffix.lower() == ".pdf":
            out.write_bytes(briefing.render_pdf(data))
        else:
            out.write_text(briefing.render_html(data, inline_css=True), encoding="utf-8")
    console.print(f"简报已写入 {out}")
