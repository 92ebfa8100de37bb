"""`chunfeng calendar`: the yearly routine (import the State Council's notice, set the STA's deadlines) and the
interface the checks read (`show YEAR --json`, `add-workdays DATE N`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from chunfeng.calendar import services
from chunfeng.cli_support import actor, console, database, fail

app = typer.Typer(help="工作日历:节假日安排与申报纳税期限", no_args_is_help=True)


@app.command("import")
def import_command(file: Path = typer.Argument(..., help="the State Council's holiday notice, as text or as its web page"),
                   year: Optional[int] = typer.Option(None, help="the year, if the copy does not say it")):
    """Replace a year's calendar with the arrangement the notice publishes (each date checked against its weekday
    and each span against its day count)."""
    if not file.is_file():
        fail(f"找不到文件 {file}")
    db = database()
    with db.write() as session:
        result = services.import_notice(session=session, actor=actor(session), data=file.read_bytes(),
                                        source_name=file.name, year=year)
    notice = result.notice
    console.print(f"已{'替换' if result.replaced else '导入'} {notice.year} 年工作日历:{notice.title}", highlight=False)
    for clause in notice.clauses:
        off = f"{clause.holidays[0]} 至 {clause.holidays[-1]}" if len(clause.holidays) > 1 else f"{clause.holidays[0]}"
        worked = ("、".join(str(d) for d in clause.makeup_days) + " 上班") if clause.makeup_days else ""
        console.print(f"  {clause.no}、{clause.festivals}:{off} 放假 {len(clause.holidays)} 天 {worked}", highlight=False)
    if result.kept_deadlines:
        console.print(f"保留了已公布的申报纳税期限 {len(result.kept_deadlines)} 个月。", highlight=False)
    for month, (kept, computed) in result.disagreements.items():
        console.print(f"[yellow]注意:[/] {month} 保留的申报期限为 {kept},按新安排计算为 {computed};"
                      f"请核对税务总局的通知,必要时运行 chunfeng calendar deadline {month} 日期", highlight=False)
    if not result.kept_deadlines:
        console.print("税务总局公布该年度申报纳税期限后,请逐月核对,用 chunfeng calendar deadline YYYY-MM YYYY-MM-DD 设定。")


@app.command("deadline")
def deadline_command(month: str = typer.Argument(..., help="the month, e.g. 2027-02"),
                     day: str = typer.Argument(..., help="its filing deadline as the STA published it, e.g. 2027-02-22"),
                     source: str = typer.Option("", help="the STA's notice, e.g. 税总办征科函〔2026〕NN号")):
    """Set one month's filing deadline as the STA published it."""
    db = database()
    with db.write() as session:
        deadline = services.set_deadline(session=session, actor=actor(session), month=month, deadline=day, source=source)
    console.print(f"{month} 的申报纳税期限已设为 {deadline}。", highlight=False)


@app.command("show")
def show_command(year: int = typer.Argument(...), as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """A year's days off, weekend days worked and monthly filing deadlines; exit status 1 if it is not covered."""
    db = database()
    with db.read() as session:
        view = services.year_view(services.effective_calendar(session=session), year)
    if as_json:
        typer.echo(json.dumps(view, ensure_ascii=False))
        return
    console.print(f"{view['year']} 年工作日历 — {view['source']}", highlight=False)
    console.print("放假:" + "、".join(view["holidays"]), highlight=False)
    console.print("调休上班:" + ("、".join(view["workdays"]) or "无"), highlight=False)
    console.print("申报纳税期限:" + "  ".join(f"{m[5:]}月 {d[5:]}" for m, d in view["deadlines"].items()), highlight=False)


@app.command("add-workdays")
def add_workdays_command(day: str = typer.Argument(..., help="the start, YYYY-MM-DD"),
                         n: int = typer.Argument(..., help="how many working days on")):
    """Print the date N working days after DATE (the day itself does not count)."""
    db = database()
    with db.read() as session:
        start = services.parse_day(day)
        typer.echo(services.add_workdays(services.effective_calendar(session=session), start, n).isoformat())
