"""The 12366 consultation on real taxpayer wording: questions copied word for word from public Q&A pages
(bench/data/real_phrasings_*.jsonl, each with its source and the entries that answer it rightly, or null where a
person should), put through `services.ask` — the code path of `chunfeng ask` — against the shipped knowledge base
and the plan's 121 measures. Prints answered precision, coverage, hand-off rate and top-1 on the development part
(used for every tuning decision) and on the held-out part (looked at only to report), beside the targets and the
rule before this change (first candidate answers when its confidence is 0.30 or more, measures included) measured
in the same run.

The split was fixed before any tuning by a hash of the question (a third held out).

Run: .venv/bin/python bench/consult_real.py [--misses]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from consult_docs import measure_docs, starter_docs  # bench/consult_docs.py

from chunfeng.consult import services
from chunfeng.consult.evaluation import evaluate_answers, read_phrasings
from chunfeng.consult.index import Index
from chunfeng.consult.tokenize import shared_tokenizer

DATA = Path(__file__).parent / "data"
SETS = [("development", DATA / "real_phrasings_dev.jsonl"), ("held-out", DATA / "real_phrasings_heldout.jsonl")]
TODAY = date(2026, 12, 6)  # the day the labels were judged against the law in force
TARGET = "target on held-out: precision ≥ 90% with coverage ≥ 70%"


@dataclass
class _Before:
    hits: list
    handoff: bool


def before(index: Index, question: str) -> _Before:
    """The rule before issue 15: the first candidate, measures included, answers at confidence 0.30 or more."""
    hits = index.search(question, today=TODAY, k=3)
    return _Before(hits, not hits or hits[0].confidence < 0.3)


def real_figures(index: Index, misses: bool = False) -> None:
    for label, path in SETS:
        items = read_phrasings(path)
        now = evaluate_answers(lambda q: services.ask(session=None, query=q, index=index, log=False, today=TODAY), items)
        old = evaluate_answers(lambda q: before(index, q), items).figures
        f = now.figures
        print(f"real phrasings, {label} ({f['questions']} questions, {sum(not i.expected for i in items)} with no right "
              f"entry): answered precision {f['precision']:.1%}, coverage {f['coverage']:.1%}, hand-off "
              f"{f['handoff_rate']:.1%}, top-1 {f['top1']:.1%}  (before: precision {old['precision']:.1%}, coverage "
              f"{old['coverage']:.1%}, top-1 {old['top1']:.1%}; {TARGET})")
        if misses and label == "development":  # the held-out part's misses are not read: it would stop being held out
            for question, expected, got in now.wrong:
                print(f"    wrong: {question}  expected {expected}, answered {got}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list the development questions answered wrongly")
    args = parser.parse_args()
    real_figures(Index(starter_docs() + measure_docs(), shared_tokenizer()), misses=args.misses)


if __name__ == "__main__":
    main()
