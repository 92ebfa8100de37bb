"""`chunfeng survey …`: import a questionnaire, list questionnaires, print or export results."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from chunfeng.cli_support import actor, console, database, import_limits
from chunfeng.survey import analysis, services
from chunfeng.survey.models import STATES

app = typer.Typer(help="问卷调查:导入、清单、结果", no_args_is_help=True)


@app.command("import")
def import_(file: Path, title: str = typer.Option(..., help="the questionnaire's title"),
            unit: str = typer.Option("", help="the unit that runs it (code; default the acting user's unit)"),
            edit_of: Optional[int] = typer.Option(None, help="a questionnaire id: this file becomes its new content "
                                                   "(a published version stays frozen: a new version is made)"),
            publish: bool = typer.Option(False, help="publish it at once")):
    """Import a questionnaire from xlsx/CSV (题号, 题型, 题目, 选项, 必答, 显示条件题号, 显示条件选项), all or nothing."""
    questions = services.parse_questionnaire(file, limits=import_limits())
    db = database()
    with db.write() as session:
        who = actor(session)
        survey = services.import_questionnaire(session=session, actor=who, title=title, questions=questions,
                                               unit_code=unit, edit_of=edit_of)
        if publish:
            services.publish(session=session, actor=who, survey_id=survey.id)
        console.print(f"问卷 {survey.id}(第 {survey.version} 版,{STATES[survey.state]}):已导入 {len(questions)} 道题。"
                      + (f" 公开链接令牌:{survey.link}" if survey.link else ""))


@app.command("list")
def list_(q: str = ""):
    """Questionnaires of the acting user's subtree (the operator sees all), newest first."""
    db = database()
    with db.read() as session:
        page = services.list_surveys(session=session, actor=actor(session), q=q, per_page=200)
        table = Table("编号", "标题", "版本", "状态", "单位", title=f"共 {page.total} 份")
        for s in page.items:
            table.add_row(str(s.id), s.title, str(s.version), STATES[s.state], s.unit.name)
        console.print(table)


@app.command("results")
def results(survey_id: int, xlsx: Optional[Path] = typer.Option(None, help="also write the workbook here")):
    """Response counts, each question's distribution, mean scores with 95 % intervals and NPS."""
    db = database()
    with db.write() if xlsx else db.read() as session:
        r = analysis.results(session=session, actor=actor(session), survey_id=survey_id)
        console.print(f"{r.survey.title}(第 {r.survey.version} 版):答卷 {r.responses} 份,公开链接 {r.by_link},"
                      f"邀请 {r.by_invitation}/{r.invited}")
        for q in r.questions:
            line = f"{q.question.code} {q.question.text}:{q.answered} 人作答"
            if q.counts:
                line += ";" + ",".join(f"{c} {k}" for c, k, _ in q.counts)
            if q.mean:
                line += f";平均 {q.mean.mean:.2f}" + (f"(95% {q.mean.low:.2f}–{q.mean.high:.2f})" if q.mean.low is not None else "")
            if q.nps:
                line += f";NPS {q.nps.score:.1f}"
            console.print(line, highlight=False, soft_wrap=True)
        if xlsx:
            analysis.export_xlsx(session=session, actor=actor(session), r=r, path=xlsx)
            console.print(f"已导出 {xlsx}")
