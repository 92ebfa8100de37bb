"""`chunfeng survey …`: import a questionnaire, list questionnaires, print or export results."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from chunfeng.cli_support import actor, console, database, import_limits
from chunfeng.survey import analysis, report, services
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


@app.command("analyse")
def analyse(survey_id: int, row: str = typer.Option("", help="cross-tab: the row question's code"),
            col: str = typer.Option("", help="cross-tab: the column question's code"),
            xlsx: Optional[Path] = typer.Option(None, help="write the analysis workbook here"),
            pdf: Optional[Path] = typer.Option(None, help="write the PDF report here")):
    """Weighting to the population (when responses carry strata), a cross-tab with its chi-square test, themes."""
    db = database()
    with db.write() if xlsx else db.read() as session:
        who = actor(session)
        a = report.analyse(session=session, actor=who, survey_id=survey_id, row=row.strip(), col=col.strip(),
                           with_suggestions=False)
        w = a.weighting
        console.print(f"{a.survey.title}(第 {a.survey.version} 版):答卷 {a.results.responses} 份;"
                      + (f"按总体分层加权,参与加权 {w.weighted} 份,无分层 {w.unstratified} 份" if w.applies
                         else f"未加权({w.problem or '没有各层总体数或答卷没有分层'})"), highlight=False)
        for q in a.weighted:
            if q.estimate:
                console.print(f"{q.code} 加权平均 {q.estimate.mean:.2f}" + (
                    f"(95% {q.estimate.low:.2f}–{q.estimate.high:.2f})" if q.estimate.low is not None else ""),
                    highlight=False)
        if a.crosstab and a.crosstab.test:
            t = a.crosstab.test
            console.print(f"交叉表 {row}×{col}:χ²={t.statistic:.3f},自由度 {t.df},p={t.p:.4g}", highlight=False)
        for th in a.themes[:10]:
            console.print(f"主题({th.current} 条,{th.share:.1f}%):{th.label}", highlight=False, soft_wrap=True)
        if xlsx:
            report.export_xlsx(session=session, actor=who, a=a, path=xlsx)
            console.print(f"已导出 {xlsx}")
        if pdf:
            pdf.write_bytes(report.render_pdf(a))
            console.print(f"已导出 {pdf}")
