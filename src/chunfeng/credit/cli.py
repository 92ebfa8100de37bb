"""`chunfeng credit …`: import the yearly ratings, list the register, and the major-violator list (list, add,
remove early, and take off what is due — what the periodic job does)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chunfeng.cli_support import actor, console, database, import_limits, settings
from chunfeng.credit import annual, evaluation, repair_cli, services
from chunfeng.credit.models import REMOVAL_REASONS

app = typer.Typer(help="纳税缴费信用:评价结果与重大税收违法失信主体", no_args_is_help=True)
violators_app = typer.Typer(help="重大税收违法失信主体名单", no_args_is_help=True)
app.add_typer(violators_app, name="violators")
app.add_typer(repair_cli.app, name="repair")
evaluations_app = typer.Typer(help="个体工商户自愿申请信用评价(措施115)", no_args_is_help=True)
app.add_typer(evaluations_app, name="evaluations")


def _day(text: Optional[str], what: str) -> Optional[date]:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise typer.BadParameter(f"{what}“{text}”不是 YYYY-MM-DD 格式的日期") from None


@app.command("import")
def import_command(file: Path = typer.Argument(..., help="CSV or xlsx: 统一社会信用代码, 纳税人名称, 评价年度, 评价得分, "
                                                        "信用级别, 扣分明细, 主管税务机关代码")):
    """Import a year's evaluation results: every row, or none (each problem named with its row)."""
    db, today = database(), date.today()
    with db.read() as session:  # parse and check outside the write transaction
        plan = services.check_ratings(session=session, actor=actor(session), path=file, today=today,
                                      limits=import_limits())
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar, db.write() as session:
        task = bar.add_task("写入评价结果", total=len(plan.rows))
        added, replaced = services.import_ratings(session=session, actor=actor(session), path=file, today=today,
                                                  plan=plan, limits=import_limits(),
                                                  progress=lambda done, total, _: bar.update(task, completed=done))
    with db.read() as session:
        evaluation.publish_levels(session=session, store=Path(settings().push_store))
    console.print(f"已导入 {added} 条评价结果,更新 {replaced} 条。", highlight=False)


@app.command("evaluate-year")
def evaluate_year_command(year: int = typer.Option(..., "--year", help="评价年度(已结束的年度)"),
                          unit: Optional[str] = typer.Option(None, "--unit", help="单位代码:评价其管辖范围(默认本单位)")):
    """Evaluate a year already over for every taxpayer of a unit's subtree; writes only the changed results."""
    db, config = database(), settings()
    store = Path(config.push_store)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar, db.write() as session:
        task = bar.add_task("年度评价", total=None)
        figures = annual.evaluate_year(
            session=session, actor=actor(session), store=store, year=year, today=date.today(), unit_code=unit,
            engine=config.credit_risk_engine,
            progress=lambda done, total, what: bar.update(task, completed=done, total=total or None, description=what))
    with db.read() as session:
        evaluation.publish_levels(session=session, store=store)
    console.print(annual.summary(figures), highlight=False)


@app.command("list")
def list_command(query: str = typer.Option("", "--search", "-q"), year: Optional[int] = None,
                 level: str = typer.Option("", help="A, B, M, C or D"), page: int = 1):
    """The register of the acting user's subtree, newest year first."""
    db = database()
    with db.read() as session:
        result = services.list_ratings(session=session, actor=actor(session), q=query, year=year,
                                       level=level.upper(), page=max(1, page))
        table = Table(title=f"纳税缴费信用评价结果 第 {result.page}/{result.pages} 页,共 {result.total} 条")
        for col in ("信用代码", "纳税人", "年度", "得分", "级别", "主管税务机关"):
            table.add_column(col)
        for r in result.items:
            table.add_row(r.credit_code, r.name, str(r.year), f"{r.score:.1f}", r.level, r.unit.name)
    console.print(table)


@violators_app.command("list")
def violators_list(query: str = typer.Option("", "--search", "-q"), page: int = 1):
    """Every entry of the acting user's subtree, on the list or off it."""
    db = database()
    with db.read() as session:
        result = services.list_violators(session=session, actor=actor(session), q=query, page=max(1, page))
        table = Table(title=f"重大税收违法失信主体 第 {result.page}/{result.pages} 页,共 {result.total} 条")
        for col in ("编号", "信用代码", "名称", "案件性质", "公布日期", "撤出日期", "状态"):
            table.add_column(col)
        for v in result.items:
            state = f"{v.removed_on} 撤出({REMOVAL_REASONS[v.removal_reason]})" if v.removed_on else "公布中"
            table.add_row(str(v.id), v.credit_code, v.name, v.case_nature, str(v.published_on), str(v.off_on), state)
    console.print(table)


@violators_app.command("add")
def violators_add(credit_code: str, name: str, unit: str = typer.Option(..., help="the publishing unit's code"),
                  case_nature: str = typer.Option(..., "--case", help="案件性质, e.g. 虚开增值税专用发票"),
                  facts: str = typer.Option("", help="主要违法事实"),
                  unpaid: str = typer.Option("0", help="违法金额(元)"), penalty: str = typer.Option("0", help="罚款及滞纳金(元)"),
                  published: str = typer.Option(..., help="公布日期 YYYY-MM-DD"),
                  off: Optional[str] = typer.Option(None, help="撤出日期 YYYY-MM-DD")):
    """Enter a published major violator."""
    db = database()
    with db.write() as session:
        v = services.add_violator(session=session, actor=actor(session), credit_code=credit_code, name=name,
                                  unit_code=unit, case_nature=case_nature, facts=facts, amount_unpaid=unpaid,
                                  amount_penalty=penalty, published_on=_day(published, "公布日期"),
                                  off_on=_day(off, "撤出日期"), today=date.today())
        console.print(f"已登记 {v.name}(编号 {v.id}),公布至 {v.off_on}。", highlight=False)


@violators_app.command("remove")
def violators_remove(violator_id: int, reason: str = typer.Option(..., help="repaired (信用修复) or paid (缴清)"),
                     note: str = typer.Option(..., help="依据:修复决定或缴款凭证编号")):
    """Take an entry off the public list early, on repair or payment."""
    db = database()
    with db.write() as session:
        v = services.remove_violator(session=session, actor=actor(session), violator_id=violator_id, reason=reason,
                                     note=note, today=date.today())
        console.print(f"{v.name} 已提前撤出公布名单({REMOVAL_REASONS[v.removal_reason]})。", highlight=False)


@violators_app.command("expire")
def violators_expire():
    """Take off every entry whose date has come (what the periodic job credit.violators.expire does)."""
    db = database()
    with db.write() as session:
        removed = services.expire_violators(session=session, today=date.today())
    console.print(f"期满撤出 {removed} 条。", highlight=False)


@evaluations_app.command("apply")
def evaluations_apply(credit_code: str, year: int = typer.Option(..., help="评价年度(已结束的公历年度)")):
    """Apply for an individual business's voluntary evaluation of `year`."""
    db = database()
    with db.write() as session:
        e = evaluation.apply(session=session, actor=actor(session), store=Path(settings().push_store),
                             credit_code=credit_code, year=year, today=date.today())
        console.print(f"已受理 {e.name} {e.year} 年度评价申请(编号 {e.id})。", highlight=False)


@evaluations_app.command("run")
def evaluations_run(evaluation_id: int):
    """Evaluate an application: a new year in the register, or the application refused with its reason."""
    db, store = database(), Path(settings().push_store)
    with db.write() as session:
        e = evaluation.evaluate(session=session, actor=actor(session), store=store, evaluation_id=evaluation_id,
                                today=date.today())
        shown = (f"{e.rating.level}级,{e.rating.score:.1f} 分" if e.rating else f"不予评价:{e.reason}")
        credit_code = e.credit_code
    with db.read() as session:
        evaluation.publish_taxpayer(session=session, store=store, credit_code=credit_code)
    console.print(f"编号 {evaluation_id}:{shown}", highlight=False)


@evaluations_app.command("list")
def evaluations_list(state: str = typer.Option("", help="applied, evaluated or refused"), page: int = 1):
    """The applications of the acting user's subtree, newest first."""
    db = database()
    with db.read() as session:
        result = evaluation.list_evaluations(session=session, actor=actor(session), state=state, page=max(1, page))
        table = Table(title=f"自愿评价申请 第 {result.page}/{result.pages} 页,共 {result.total} 条")
        for col in ("编号", "信用代码", "纳税人", "年度", "状态", "结果"):
            table.add_column(col)
        for e in result.items:
            table.add_row(str(e.id), e.credit_code, e.name, str(e.year), e.state,
                          f"{e.rating.level} {e.rating.score:.1f}" if e.rating else e.reason)
    console.print(table)


@app.command("publish-levels")
def publish_levels():
    """Write the register's latest levels for push rules (credit_level); what the job credit.levels.publish does."""
    db = database()
    with db.read() as session:
        written = evaluation.publish_levels(session=session, store=Path(settings().push_store))
    console.print(f"已发布 {written} 户的信用级别。", highlight=False)
