"""`chunfeng plan …`: parse, import and show the action plan."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from chunfeng.cli_support import actor, console, database, fail
from chunfeng.plan import services
from chunfeng.plan.parser import parse_notice

app = typer.Typer(help="行动方案:从通知解析类别、任务事项和具体措施", no_args_is_help=True)


def _read(path: Path) -> bytes:
    if not path.is_file():
        fail(f"文件不存在:{path}")
    return path.read_bytes()


def _summary_table(data: dict) -> Table:
    table = Table(title=f"{data['doc_number']}  {data['issued']}\n{data['title']}")
    for col in ("类别", "名称", "任务事项", "具体措施(正文说明)", "新增措施"):
        table.add_column(col)
    new_rows = {n["table_no"] for n in data["new_measures"]}
    for c in data["categories"]:
        measures = [m["no"] for i in c["items"] for m in i["measures"]]
        table.add_row(str(c["no"]), c["name"], str(len(c["items"])), f"{len(measures)}({c['stated_measures']})",
                      str(len(new_rows.intersection(measures))))
    return table


@app.command()
def parse(file: Path, as_json: bool = typer.Option(False, "--json", help="print the whole plan as JSON")):
    """Parse a notice (HTML or text, UTF-8 or GB18030) and check it against its own counts; stores nothing."""
    data = parse_notice(_read(file)).to_dict()
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
    else:
        console.print(_summary_table(data))


@app.command("import")
def import_(file: Path, replace: bool = typer.Option(False, "--replace", help="overwrite a notice with the same document number")):
    """Parse a notice and store its plan (one transaction: all of it or nothing)."""
    data = _read(file)
    db = database()
    with db.write() as session:
        notice = services.import_notice(session=session, actor=actor(session), data=data,
                                        source_name=file.name, replace=replace)
        summary = services.notice_as_dict(session=session, notice=notice)
    measures = sum(len(i["measures"]) for c in summary["categories"] for i in c["items"])
    console.print(f"已导入 {summary['doc_number']}:{len(summary['categories'])} 类、"
                  f"{sum(len(c['items']) for c in summary['categories'])} 项、{measures} 条具体措施,"
                  f"其中新增措施 {len(summary['new_measures'])} 条。")


@app.command()
def show(as_json: bool = typer.Option(False, "--json")):
    """Show the stored (newest) plan."""
    db = database()
    with db.read() as session:
        notice = services.current_notice(session=session, actor=actor(session))
        data = services.notice_as_dict(session=session, notice=notice)
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
    else:
        console.print(_summary_table(data))
