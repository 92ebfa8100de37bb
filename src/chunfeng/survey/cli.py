"""`chunfeng survey …`: import a questionnaire, list questionnaires, print or export results; draw a sample, invite
it, remind those who have not answered."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from chunfeng.cli_support import actor, console, database, import_limits, settings
from chunfeng.push import campaigns, store
from chunfeng.survey import analysis, invitations, list_sampling, poster, report, sampling, services, unit_invitations
from chunfeng.survey.models import STATES

app = typer.Typer(help="问卷调查:导入、清单、结果、抽样、邀请、提醒", no_args_is_help=True)


@app.command("import")
def import_(file: Path, title: str = typer.Option(..., help="the questionnaire's title"),
            unit: str = typer.Option("", help="the unit that runs it (code; default the acting user's unit)"),
            edit_of: Optional[int] = typer.Option(None, help="a questionnaire id: this file becomes its new content "
                                                   "(a published version stays frozen: a new version is made)"),
            publish: bool = typer.Option(False, help="publish it at once")):
    """Import a questionnaire from xlsx/CSV (题号, 题型, 题目, 选项, 子项 for a matrix, 必答, 显示条件题号, 显示条件选项),
    all or nothing."""
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


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", ",").split(",") if part.strip()]


@app.command("sample")
def sample(survey_id: int, dimensions: str = typer.Option(
               "", help="registry: province, size, industry, type (default province,size); a list: its stratum "
                        "columns (default all of them)"),
           size: int = typer.Option(400, help="the sample size (in proportion to each stratum)"),
           seed: Optional[int] = typer.Option(None, help="the random seed (default: a new one, printed and recorded)"),
           from_list: Optional[Path] = typer.Option(None, "--from-list", help="draw from this xlsx/CSV list (纳税人识别号, "
                                                    "主管单位代码, other columns its strata) instead of the registry"),
           draw: bool = typer.Option(False, "--draw", help="draw it (without: only the preview of the strata)")):
    """A stratified sample of the taxpayer registry, or of a list, for a survey: the strata with their frame sizes
    and quotas, and with --draw the sample itself, reproducible by the seed it records."""
    db = database()
    listing = list_sampling.parse_list(from_list, limits=import_limits()) if from_list else None
    chosen = _names(dimensions) or ([] if listing else ["province", "size"])
    choice = dict(dimensions=chosen, allocation="proportional", size=size, seed=seed)
    frame = nullcontext() if listing else store.connect_store(Path(settings().push_store))  # a list needs no store
    with (db.write() if draw else db.read()) as session, frame as conn:
        who = actor(session)
        if listing:
            p = list_sampling.preview(session=session, actor=who, survey_id=survey_id, listing=listing, **choice)
            console.print(f"名单 {listing.name}(SHA-256 {listing.digest[:12]}…)", highlight=False)
        else:
            p = sampling.preview(session=session, conn=conn, actor=who, survey_id=survey_id, **choice)
        console.print(f"抽样框 {p.frame_total:,} 户,抽取 {p.total:,} 户,随机种子 {p.seed}", highlight=False)
        table = Table("层", "抽样框(户)", "配额")
        for s in p.strata:
            table.add_row(s.label, f"{s.frame_size:,}", f"{s.quota:,}")
        console.print(table)
        if draw:
            choice["seed"] = p.seed
            made = (list_sampling.draw(session=session, actor=who, survey_id=survey_id, listing=listing, **choice)
                    if listing else sampling.draw(session=session, conn=conn, actor=who, survey_id=survey_id, **choice))
            console.print(f"样本 {made.id}:已抽取 {made.drawn:,} 户(随机种子 {made.seed})")


@app.command("invite")
def invite(sample_id: int, base_url: str = typer.Option(..., help="the site's address respondents open links at"),
           channels: str = typer.Option("inapp", help="configured channels, e.g. inapp,sms"),
           roles: str = typer.Option("办税人员", help="contacts: 法定代表人, 财务负责人, 办税人员"),
           personal_data: str = typer.Option("", help="taxpayer, person (empty: anonymous)"),
           max_reminders: int = typer.Option(2), remind_after_days: int = typer.Option(3)):
    """Invite a drawn sample through the push outbox: one one-time link per taxpayer, an opt-out link in each."""
    db = database()
    with db.write() as session, store.connect_store(Path(settings().push_store)) as conn:
        done = invitations.invite(session=session, conn=conn, actor=actor(session), sample_id=sample_id,
                                  channels=_names(channels), roles=_names(roles), personal_data=_names(personal_data),
                                  base_url=base_url, configured=campaigns.configured_channels(settings()),
                                  max_reminders=max_reminders, remind_after_days=remind_after_days)
        console.print(f"样本 {sample_id}:已发出邀请(推送活动 {done.campaign_id}),由推送消息发送任务发出")


@app.command("remind")
def remind(sample_id: int, yes: bool = typer.Option(False, "--yes", help="send (without: only the preview)")):
    """Remind the sampled taxpayers who have not answered (never those who answered or opted out)."""
    db = database()
    with db.read() as session:
        v = invitations.preview_reminders(session=session, actor=actor(session), sample_id=sample_id)
        console.print(f"将提醒 {v.members} 户({v.messages} 条消息);已作答 {v.answered},已退订 {v.opted_out},"
                      f"已达上限 {v.exhausted}", highlight=False)
    if yes and v.members:
        with db.write() as session:
            sent = invitations.send_reminders(session=session, actor=actor(session), sample_id=sample_id, code=v.code)
        console.print(f"已生成 {sent} 条提醒消息")


@app.command("invite-units")
def invite_units(survey_id: int, base_url: str = typer.Option(..., help="the site's address respondents open links at"),
                 units: str = typer.Option("", help="unit codes, comma-separated"),
                 file: Optional[Path] = typer.Option(None, help="an xlsx/CSV with a 单位代码 column")):
    """One one-time invitation per unit (its inbox and channels); all of the list or none of it."""
    rows = {code: n for n, code in reversed(unit_invitations.parse_unit_list(file, limits=import_limits()))} \
        if file else None
    codes = _names(units) + list(rows or {})
    db = database()
    with db.write() as session:
        made = unit_invitations.invite_units(session=session, actor=actor(session), survey_id=survey_id,
                                             unit_codes=codes, base_url=base_url, rows=rows)
        console.print(f"已向 {len(made)} 个单位发出邀请(已邀请过的单位不重复发送)。")


@app.command("remind-units")
def remind_units(survey_id: int, base_url: str = typer.Option(..., help="the site's address the links point to")):
    """Remind the invited units that have not answered, with their own link again."""
    db = database()
    with db.write() as session:
        count = unit_invitations.remind_units(session=session, actor=actor(session), survey_id=survey_id,
                                              base_url=base_url)
        console.print(f"已提醒 {count} 个未作答的单位。")


@app.command("qr")
def qr(survey_id: int, out: Path, base_url: str = typer.Option(..., help="the site's address")):
    """Write the open link's QR code (OUT ending .svg or .png), drawn offline, for a service hall's poster."""
    kind = out.suffix.lower().lstrip(".")
    if kind not in poster.FORMATS:
        raise typer.BadParameter("OUT 应以 .svg 或 .png 结尾")
    db = database()
    with db.read() as session:
        survey = services.get_survey(session=session, actor=actor(session), survey_id=survey_id)
        url = poster.open_link(survey, base_url)
    out.write_bytes(poster.qr(url, kind=kind))
    console.print(f"二维码已写入 {out}:{url}")
