"""`chunfeng credit repair …`: the repair queue of the acting user's subtree, and a decision on one application."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from chunfeng.cli_support import actor, console, database, settings
from chunfeng.credit import evaluation, repair
from chunfeng.credit.models import REPAIR_PATHS, REPAIR_STATES

app = typer.Typer(help="纳税缴费信用修复申请", no_args_is_help=True)


@app.command("list")
def list_command(state: str = typer.Option("pending", help="pending, approved, refused or all"),
                 path: str = typer.Option("", help="correction or bankruptcy"),
                 query: str = typer.Option("", "--search", "-q"), overdue: bool = False, page: int = 1):
    """The applications decided in the acting user's subtree: pending first, soonest due first."""
    db, today = database(), date.today()
    with db.read() as session:
        result = repair.list_repairs(session=session, actor=actor(session), state=state, path=path, q=query,
                                     overdue=overdue, today=today, page=max(1, page))
        table = Table(title=f"信用修复申请 第 {result.page}/{result.pages} 页,共 {result.total} 条")
        for col in ("编号", "信用代码", "纳税人", "年度·扣分指标", "类型", "核定单位", "办理期限", "状态"):
            table.add_column(col)
        for r in result.items:
            due = str(r.due_on) if r.due_on else "无法计算(工作日历未覆盖)"
            table.add_row(str(r.id), r.credit_code, r.name, f"{r.year}·{r.indicator}", REPAIR_PATHS[r.path],
                          r.unit.name, due, REPAIR_STATES[r.state])
    console.print(table)


@app.command("decide")
def decide_command(repair_id: int, approve: bool = typer.Option(..., "--approve/--refuse"),
                   reason: str = typer.Option(..., help="核定理由"),
                   score: Optional[float] = typer.Option(None, help="修复后得分(规则未确认时必填)"),
                   level: str = typer.Option("", help="修复后级别 A/B/M/C/D(规则未确认时必填)"),
                   take_off_list: bool = typer.Option(False, "--take-off-list", help="同时提前撤出重大税收违法失信主体名单")):
    """Approve or refuse one application, with a reason."""
    db = database()
    with db.write() as session:
        r = repair.decide(session=session, actor=actor(session), repair_id=repair_id, approve=approve, reason=reason,
                          score=score, level=level.strip().upper(), take_off_list=take_off_list, today=date.today())
        outcome = f"修复后 {r.level_after}级 {r.score_after:g} 分" if r.state == "approved" else "不予修复"
        credit_code = r.credit_code
    with db.read() as session:  # push rules see the decision (credit_repair, credit_level) now
        evaluation.publish_taxpayer(session=session, store=Path(settings().push_store), credit_code=credit_code)
    console.print(f"信用修复申请 {r.id}({r.name} {r.year} 年度 {r.indicator}):{outcome}。", highlight=False)
