"""`chunfeng ask …` and `chunfeng consult …`: ask, import and export the knowledge base, evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from chunfeng.cli_support import actor, console, database, fail, import_limits, settings
from chunfeng.consult import services, transfer
from chunfeng.consult.evaluation import evaluate, evaluate_answers, read_eval, read_phrasings

app = typer.Typer(help="12366 智能咨询:知识库、检索、评测", no_args_is_help=True)


def ask(
    question: Optional[str] = typer.Argument(None, help="the question"),
    region: str = typer.Option("national", help="the asker's province code, or national"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    batch: Optional[Path] = typer.Option(None, help="a file with one question per line: one JSON object per line"),
    k: int = typer.Option(3, help="how many answers"),
):
    """Answer a question from the knowledge base and the plan's measures (below the threshold: handed off)."""
    if (question is None) == (batch is None):
        fail("请给出一个问题,或用 --batch 指定问题文件", 2)
    db = database()
    with db.write() as session:
        index = services.index_for(session, embedding_model=settings().consult_embedding_model)  # once, also for a batch
        questions = [question] if batch is None else [q for q in batch.read_text(encoding="utf-8").splitlines() if q.strip()]
        for q in questions:
            answer = services.ask(session=session, query=q, region=region, channel="batch" if batch else "cli", k=k,
                                  index=index)
            if answer.handoff:  # the operator asking here is the asker: unsure answers go to the agents
                services.request_handoff(session=session, query_id=answer.query_id, token=answer.token)
            if as_json or batch:
                print(json.dumps(answer.as_dict(), ensure_ascii=False))
            else:
                _show(answer)


def _show(answer: services.Answer) -> None:
    if answer.handoff:
        console.print("[yellow]没有把握回答这个问题,已转人工坐席。[/]")
    for i, hit in enumerate(answer.hits, start=1):
        console.print(f"[bold]{i}. {hit.doc.title}[/]  ({hit.doc.ref},置信度 {hit.confidence:.2f})", highlight=False)
        if not hit.current:
            console.print(f"[yellow]该条内容已于 {hit.doc.effective_until} 到期,不是现行规定,仅供了解历史口径。[/]")
        console.print(hit.doc.answer, highlight=False)
        if hit.doc.basis:
            console.print(f"[dim]依据:{hit.doc.basis}[/]", highlight=False)


@app.command("import")
def import_(file: Path):
    """Import entries from xlsx, CSV, JSON or Markdown (existing ids are updated, keeping their history)."""
    db = database()
    with db.read() as session:  # parse and check outside the write lock
        plan = transfer.check_entries(session=session, actor=actor(session), path=file, limits=import_limits())
    with db.write() as session:
        created, updated = transfer.import_entries(session=session, actor=actor(session), path=file, plan=plan,
                                                   limits=import_limits())
    console.print(f"已导入:新增 {created} 条,更新 {updated} 条。")


@app.command()
def export(out: Path, fmt: Optional[str] = typer.Option(None, "--format", help="xlsx, csv, json or md (default: from OUT)")):
    """Export the whole knowledge base."""
    db = database()
    with db.read() as session:
        count = transfer.export_entries(session=session, actor=actor(session), fmt=fmt or out.suffix.lstrip(".").lower(), path=out)
    console.print(f"已导出 {count} 条到 {out}")


@app.command("load-starter")
def load_starter():
    """Load the sample knowledge base shipped with Chunfeng (once; marked as sample content)."""
    db = database()
    with db.write() as session:
        count = transfer.load_starter(session=session, actor=actor(session))
    console.print(f"已载入示例知识库 {count} 条。" if count else "知识库已有内容,未载入示例。")


@app.command("eval")
def eval_(file: Path, misses: bool = typer.Option(False, help="list the questions not answered first"),
          as_json: bool = typer.Option(False, "--json")):
    """Top-1, top-3 and MRR on a TSV of questions and expected entry ids or measure:N; on a JSONL set of real
    phrasings (question, source, expected ids or null), what askers get: answered precision, coverage, hand-offs."""
    db = database()
    with db.read() as session:
        index = services.index_for(session, embedding_model=settings().consult_embedding_model)
        if index is None:
            fail("知识库和行动方案都是空的,无可评测")
        if file.suffix.lower() == ".jsonl":
            _eval_answers(session, index, file, misses, as_json)
            return
        result = evaluate(index, read_eval(file))
    if as_json:
        print(json.dumps(result.figures, ensure_ascii=False))
        return
    f = result.figures
    console.print(f"{f['questions']} 个问题:top-1 {f['top1']:.1%},top-3 {f['top3']:.1%},MRR {f['mrr']:.3f}")
    if misses:
        table = Table(title="未排在第一的问题")
        for col in ("问题", "期望", "实际前三"):
            table.add_column(col)
        for q, expected, got in result.misses:
            table.add_row(q, expected, " ".join(got))
        console.print(table)


def _eval_answers(session, index, file: Path, misses: bool, as_json: bool) -> None:
    result = evaluate_answers(lambda q: services.ask(session=session, query=q, log=False, index=index),
                              read_phrasings(file))
    f = result.figures
    if as_json:
        print(json.dumps(f, ensure_ascii=False))
        return
    console.print(f"{f['questions']} 个问题:答复 {f['answered']} 个,答复准确率 {f['precision']:.1%},覆盖率 {f['coverage']:.1%},"
                  f"转人工 {f['handoff_rate']:.1%},首位正确 {f['top1']:.1%}")
    if misses:
        for title, rows in (("答错的问题", result.wrong), ("转人工的问题", result.handed_off)):
            table = Table(title=title)
            for col in ("问题", "期望", "首位"):
                table.add_column(col)
            for row in rows:
                table.add_row(*row)
            console.print(table)
