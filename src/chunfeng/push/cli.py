"""`chunfeng push …`: generate and import taxpayer extracts, check rules, match policies, run campaigns."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chunfeng.cli_support import actor, console, database, fail, settings
from chunfeng.push import bills, campaigns, matching, periods, rules, schedule, services, stages, store, synthetic
from chunfeng.push import policy as permissions
from chunfeng.push.models import CAMPAIGN_STATES

app = typer.Typer(help="精准推送:纳税人数据、政策规则、匹配、分阶段提醒、红利账单", no_args_is_help=True)
campaign_app = typer.Typer(help="推送活动", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")

ENGINES = ("duckdb", "postgres", "spark")


@app.command("gen")
def gen(taxpayers: int = typer.Option(..., help="how many taxpayers"), out: Path = typer.Option(..., help="directory"),
        seed: int = typer.Option(2022, help="same seed and size, same extract"),
        fmt: str = typer.Option("parquet", "--format", help="parquet or csv")):
    """Write a reproducible synthetic extract (registry, contacts, claims, filings) of the core tax system's shape."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("生成", total=taxpayers)

        def progress(table: str, done: int, total: int) -> None:
            bar.update(task, description=f"生成 {table}", completed=done, total=total)

        counts = synthetic.generate(out, taxpayers=taxpayers, seed=seed, fmt=fmt, claim_rules=services.synthetic_claim_rules(),
                                    progress=progress)
    console.print("已生成 " + ",".join(f"{k} {v:,} 行" for k, v in counts.items()) + f":{out}")


@app.command("import")
def import_(directory: Path):
    """Check an extract directory (CSV, Parquet or xlsx per table) and make it the taxpayer store, all or nothing."""
    target = Path(settings().push_store)
    with console.status("正在导入…") as status:
        result = store.import_extract(directory, target, progress=status.update)
    console.print("已导入 " + ",".join(f"{k} {v:,} 行" for k, v in result.rows.items()) + f" → {result.store}")


def _engine(engine: str, data: Path | None):
    """The engine to match on, over `data` (an extract directory) or the imported store."""
    if engine not in ENGINES:
        fail(f"未知引擎“{engine}”,可用:{'、'.join(ENGINES)}", 2)
    duck = store.connect_directory(data) if data else store.connect_store(Path(settings().push_store))
    if engine == "duckdb":
        return matching.DuckDBEngine(duck)
    if engine == "postgres":
        from chunfeng.push.engines import PostgresEngine

        db = database()
        if db.engine.dialect.name != "postgresql":
            fail("PostgreSQL 引擎需要 CHUNFENG_DATABASE_URL 指向 PostgreSQL 数据库", 2)
        pg = PostgresEngine(db.engine)
        pg.load(duck)
        return pg
    import tempfile

    from chunfeng.push.engines import SparkEngine, export_parquet

    parquet = export_parquet(duck, Path(tempfile.mkdtemp(prefix="chunfeng-spark-")))
    return SparkEngine.local(parquet)


@app.command("match")
def match(policy: list[str] = typer.Option(None, "--policy", help="policy id; repeat for several; none = all"),
          data: Optional[Path] = typer.Option(None, help="an extract directory read as it is; default: the imported store"),
          period: Optional[str] = typer.Option(None, help="the period claims are looked for: 2022, 2022Q2, 2022-06"),
          engine: str = typer.Option("duckdb", help="duckdb, postgres or spark"),
          as_json: bool = typer.Option(False, "--json", help="one JSON object per policy")):
    """Eligible and eligible-but-not-claimed taxpayers of policies, by region and industry."""
    db = database()
    with db.write() as session:
        services.seed_policies(session)
    with db.read() as session:
        who = actor(session)
        ids = policy or [p.id for p in services.list_policies(session=session, actor=who, per_page=1000).items]
        found = [services.get_policy(session=session, actor=who, policy_id=pid) for pid in ids]
        if policy:
            for p in found:
                services.check_match_period(p, period)
        elif period:  # all policies: those the period lies within
            found = [p for p in found if periods.validity_problem(p, period) is None]
        chosen = [(p.id, p.rule) for p in found]
        region = services.actor_region(who)
    runner = _engine(engine, data)
    audience = matching.Audience(region=region)
    if len(chosen) == 1:
        results = [matching.match(runner, policy_id=chosen[0][0], rule_text=chosen[0][1], period=period,
                                  audience=audience)]
    else:  # one pass for all: see matching.match_all
        results = matching.match_all(runner, chosen, audience=audience,
                                     periods={pid: period for pid, _ in chosen} if period else None)
    for result in results:
        if as_json:
            print(json.dumps(result.as_json(), ensure_ascii=False))
        else:
            console.print(f"[bold]{result.policy}[/] 所属期 {result.period or '—'}:符合条件 {result.eligible:,} 户,"
                          f"其中应享未享 {result.not_claimed:,} 户", highlight=False)


@app.command("policies")
def policies(q: str = typer.Option("", help="search in name, basis and summary")):
    """List the policy catalogue."""
    db = database()
    with db.write() as session:
        services.seed_policies(session)
    with db.read() as session:
        page = services.list_policies(session=session, actor=actor(session), q=q, per_page=1000)
        table = Table("编号", "税种", "名称", "依据", "有效期")
        for p in page.items:
            table.add_row(p.id, p.tax_type, p.name, p.basis, f"{p.effective_from}–{p.effective_until or '长期'}")
        console.print(table)


@app.command("check")
def check(rule: str):
    """Parse and type-check a rule; print its SQL and how many taxpayers in the store it selects."""
    result = services.check_rule(rule, Path(settings().push_store))
    if not result["ok"]:
        fail(f"{result['error']}\n{result['pointer']}")
    for dialect in ("duckdb", "postgres", "spark"):
        console.print(f"[dim]{dialect}:[/] {rules.parse(rule).sql(dialect)}", highlight=False)
    if result["matches"] is not None:
        console.print(f"当前数据中符合的纳税人:{result['matches']:,} 户")


@app.command("set-rule")
def set_rule(policy: str, rule: str):
    """Replace a policy's eligibility rule (refused, with the position, when it does not check)."""
    db = database()
    with db.write() as session:
        services.seed_policies(session)
        services.update_rule(session=session, actor=actor(session), policy_id=policy, rule=rule)
    console.print(f"已更新 {policy} 的规则。")


@campaign_app.command("create")
def campaign_create(name: str = typer.Option(...), unit: str = typer.Option(..., help="owner unit code: its region is the audience"),
                    policy: list[str] = typer.Option(..., "--policy"), channel: list[str] = typer.Option(["inapp"], "--channel"),
                    month: str = typer.Option(..., help="the filing month, 2022-07"), audience: str = "",
                    reminder_day: int = 10, last_days: int = 2):
    """Create a campaign with its staged reminders along the month's filing period."""
    year, _, mon = month.partition("-")
    if not (year.isdigit() and mon.isdigit()):
        fail(f"--month 应写成 2022-07,而不是“{month}”", 2)
    db = database()
    with db.write() as session:
        services.seed_policies(session)
        c = campaigns.create_campaign(session=session, actor=actor(session), name=name, unit_code=unit,
                                      policy_ids=policy, channels=channel, year=int(year), month=int(mon),
                                      audience=audience, reminder_day=reminder_day, last_days=last_days,
                                      configured=campaigns.configured_channels(settings()))
        session.flush()
        deadline, due = campaigns.stage_dates(year=c.year, month=c.month, reminder_day=c.reminder_day,
                                              last_days=c.last_days, session=session)
        cid = c.id
    console.print(f"已创建推送活动 {cid}:申报截止 {deadline};" +
                  ",".join(f"{campaigns.STAGES[s]} {d}" for s, d in due.items()))


@campaign_app.command("list")
def campaign_list():
    """Campaigns with their state, and why a failed one failed."""
    db = database()
    with db.read() as session:
        page = campaigns.list_campaigns(session=session, actor=actor(session), per_page=1000)
        table = Table("编号", "名称", "申报月份", "状态", "失败原因")
        for c in page.items:
            table.add_row(str(c.id), c.name, f"{c.year}-{c.month:02d}", CAMPAIGN_STATES.get(c.state, c.state),
                          c.last_error)
    console.print(table)


def _change(change, campaign_id: int, done: str) -> None:
    db = database()
    with db.write() as session:
        change(session=session, actor=actor(session), campaign_id=campaign_id)
    console.print(f"推送活动 {campaign_id} {done}。")


@campaign_app.command("pause")
def campaign_pause(campaign_id: int):
    """Stop planning stages (what the outbox holds is still delivered)."""
    _change(campaigns.pause_campaign, campaign_id, "已暂停")


@campaign_app.command("resume")
def campaign_resume(campaign_id: int):
    """Back on the schedule, after its rules check again."""
    _change(campaigns.resume_campaign, campaign_id, "已恢复")


@campaign_app.command("cancel")
def campaign_cancel(campaign_id: int):
    """No more stages; messages still waiting in the outbox are withdrawn."""
    _change(campaigns.cancel_campaign, campaign_id, "已取消,待发消息已撤回")


@campaign_app.command("edit")
def campaign_edit(campaign_id: int, name: Optional[str] = typer.Option(None),
                  policy: list[str] = typer.Option(None, "--policy", help="replaces the policies; repeat for several"),
                  channel: list[str] = typer.Option(None, "--channel", help="replaces the channels"),
                  audience: Optional[str] = typer.Option(None, help="the extra rule; \"\" for none")):
    """Change what the stages not yet run send, and to whom (options left out stay as they are)."""
    db = database()
    with db.write() as session:
        who = actor(session)
        c = campaigns.get_campaign(session=session, actor=who, campaign_id=campaign_id)
        campaigns.edit_campaign(session=session, actor=who, campaign_id=campaign_id,
                                name=c.name if name is None else name, policy_ids=policy or list(c.policies),
                                channels=channel or list(c.channels), audience=c.audience if audience is None else audience,
                                configured=campaigns.configured_channels(settings()))
    console.print(f"推送活动 {campaign_id} 已修改,将用于尚未执行的阶段。")


@campaign_app.command("preview")
def campaign_preview(campaign_id: int, stage: Optional[str] = typer.Option(
        None, help="the stage to preview for approval (first, reminder, last); default the next one")):
    """Show who a stage would reach and what it would say, and the codes that confirm or approve it."""
    db = database()
    with db.read() as session, store.connect_store(Path(settings().push_store)) as conn:
        v = stages.preview_stage(session=session, conn=conn, actor=actor(session), campaign_id=campaign_id,
                                 configured=campaigns.configured_channels(settings()), stage=stage,
                                 cap=settings().push_cap_per_week)
        stage, due = v.stage.stage, v.stage.due
        may_approve = permissions.may_approve(actor(session), v.campaign, v.stage, date.today())
    console.print(f"{campaigns.STAGES[stage]}(定于 {due}):纳税人 {v.taxpayers:,} 户,消息 {v.messages:,} 条,"
                  f"频次限制 {v.capped:,},已退订 {v.opted_out:,}", highlight=False)
    console.print("按省份:" + ",".join(f"{name} {n:,}" for name, n in v.by_province), highlight=False)
    for m in v.samples:
        console.print(f"[dim]{m.policy} · {m.role} · {m.channel}[/] {m.title}\n  {m.body}", highlight=False)
    if v.unconfigured:
        fail("渠道尚未配置发送网关,不能发送:" + "、".join(v.unconfigured))
    if may_approve:
        console.print(f"批准按期发送(定时任务于 {due} 发送):chunfeng push campaign approve {campaign_id} {stage} {v.code}",
                      highlight=False)
    if not v.due_now:
        if may_approve:
            console.print(f"本阶段定于 {due} 发送,未到日期:现在可以批准按期发送,不能确认立即发送", highlight=False)
            return
        fail(f"本阶段定于 {due} 发送,未到日期,届时再确认")
    console.print(f"确认发送:chunfeng push campaign confirm {campaign_id} {stage} {v.code}", highlight=False)


@campaign_app.command("approve")
def campaign_approve(campaign_id: int, stage: str, code: str):
    """Approve the stage previewed for the schedule to send on its day (refused if who gets what changed)."""
    db = database()
    with db.write() as session, store.connect_store(Path(settings().push_store)) as conn:
        done = schedule.approve_stage(session=session, conn=conn, actor=actor(session), campaign_id=campaign_id,
                                      stage=stage, code=code, configured=campaigns.configured_channels(settings()),
                                      cap=settings().push_cap_per_week)
        console.print(f"已批准{campaigns.STAGES[done.stage]}于 {done.due} 按期发送:{done.approved_taxpayers:,} 户纳税人,"
                      f"{done.approved_messages:,} 条消息(届时对象变化超过 {settings().push_approval_margin:.0%} 则暂停)",
                      highlight=False)


@campaign_app.command("withdraw")
def campaign_withdraw(campaign_id: int, stage: str):
    """Withdraw a stage's approval before its day: the schedule will not send it."""
    db = database()
    with db.write() as session:
        done = schedule.withdraw_approval(session=session, actor=actor(session), campaign_id=campaign_id, stage=stage)
        console.print(f"已撤回{campaigns.STAGES[done.stage]}({done.due})的批准,定时任务不会发送", highlight=False)


@campaign_app.command("confirm")
def campaign_confirm(campaign_id: int, stage: str, code: str):
    """Send the stage previewed (refused if who gets what changed since the preview), then deliver the outbox."""
    db = database()
    with db.write() as session, store.connect_store(Path(settings().push_store)) as conn:
        done = stages.confirm_stage(session=session, conn=conn, actor=actor(session), campaign_id=campaign_id,
                                       stage=stage, code=code, configured=campaigns.configured_channels(settings()),
                                       cap=settings().push_cap_per_week)
        console.print(f"已确认发送{campaigns.STAGES[done.stage]}:{done.messages:,} 条消息", highlight=False)
    deliver(processes=1, limit=10_000)


@campaign_app.command("run")
def campaign_run(today: Optional[str] = typer.Option(None, help="plan the stages due by this day (default today; "
                                                                  "never a later day)")):
    """Send every due stage that was approved (the others are held or reported), then deliver the outbox."""
    day = date.fromisoformat(today) if today else date.today()
    db = database()
    with store.connect_store(Path(settings().push_store)) as conn:
        run = schedule.run_due(db, conn, today=day, cap=settings().push_cap_per_week,
                               margin=settings().push_approval_margin)
    for stage in run.planned:
        console.print(f"活动 {stage.campaign_id} {campaigns.STAGES[stage.stage]}:对象 {stage.audience:,} 户,"
                      f"消息 {stage.messages:,} 条,频次限制 {stage.capped:,},已退订 {stage.opted_out:,}")
    for stage in run.held:
        console.print(f"活动 {stage.campaign_id} {campaigns.STAGES[stage.stage]}:已暂停,{stage.held_reason}",
                      highlight=False)
    for stage in run.unapproved:
        console.print(f"活动 {stage.campaign_id} {campaigns.STAGES[stage.stage]}({stage.due}):未批准,未发送",
                      highlight=False)
    deliver(processes=1, limit=10_000)


def _deliver_share(limit: int) -> tuple[int, int, int]:
    """One sender process's run (its own settings, database and connections): sent, failed, uncertain."""
    run = campaigns.deliver(database(), settings=settings(), limit=limit)
    return run.sent, run.failed, run.uncertain


@app.command("deliver")
def deliver(processes: int = typer.Option(1, min=1, max=64, help="sender processes, each claiming its own batches "
                                          "(a sender is CPU-bound: about one per core the database leaves free)"),
            limit: int = typer.Option(10_000, min=1, help="at most this many messages in all, shared by the processes")):
    """Send the pending messages of the outbox through their channels (retries with back-off)."""
    shares = [limit // processes + (1 if n < limit % processes else 0) for n in range(processes)]
    if processes == 1:
        runs = [_deliver_share(limit)]
    else:
        # Spawned, not forked: each sender opens its own database connections and gateway sessions. Two never send
        # one message: a claim is conditional on the state it picked (SKIP LOCKED on PostgreSQL, one writer on SQLite).
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(_deliver_share, [share for share in shares if share]))
    sent, failed, uncertain = (sum(figures) for figures in zip(*runs, strict=True))
    console.print(f"发送成功 {sent},失败 {failed}(将重试),结果不明 {uncertain}(不重发)")
    if len(runs) > 1:
        console.print(f"{len(runs)} 个发送进程各发送:" + "、".join(str(run[0] + run[1]) for run in runs))


@app.command("bill")
def bill(credit_code: str, year: int = typer.Option(date.today().year - 1),
         pdf: Optional[Path] = typer.Option(None, help="also write the bill as a PDF")):
    """Print a small or micro enterprise's dividend bill for a year."""
    db = database()
    with db.write() as session, store.connect_store(Path(settings().push_store)) as conn:
        services.seed_policies(session)
        b = bills.bill_for_actor(conn, session=session, actor=actor(session), credit_code=credit_code, year=year)
    table = Table("政策", "依据", "税费种", "类别", "金额(元)", title=f"{b.name} {year} 年度红利账单 · {b.issuer}")
    for line in b.lines:
        table.add_row(line["name"], line["basis"], line["tax_type"], services.KINDS[line["kind"]],
                      f"{line['amount']:,.2f}")
    table.add_row("为您减免合计", "", "", "减免", f"{b.total:,.2f}")
    console.print(table)
    if b.deferrals:
        console.print(f"另延缓缴纳税费 {b.deferred_total:,.2f} 元(不是减免,到期仍需缴纳)")
    if b.timing:
        console.print(f"提前税前扣除使 {b.timing_total:,.2f} 元税款推迟到以后年度缴纳(不减少应纳税总额)")
    for note in b.left_out:
        console.print(f"未计入:{note['name']}({note['policy']}){note['amount']:,.2f} 元,{note['reason']}")
    if pdf:
        pdf.write_bytes(bills.render_pdf(b))
        console.print(f"已写入 {pdf}")



