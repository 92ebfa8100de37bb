"""The 12366 consultation on real taxpayer wording: questions copied word for word from public Q&A pages
(bench/data/real_phrasings_*.jsonl, each with its source and the entries that answer it rightly, or null where a
person should), put through `services.ask` — the code path of `chunfeng ask` — against the shipped knowledge base
and the plan's 121 measures. Prints answered precision, coverage, hand-off rate and top-1 for each part, beside the
targets and the rule before issue 15 (first candidate answers when its confidence is 0.30 or more, measures
included) measured in the same run.

Development: real_phrasings_dev.jsonl (181, a hash of the question put them there), real_phrasings_heldout.jsonl
(80), real_phrasings_fresh.jsonl (126) and real_phrasings_heldout3.jsonl (131) — the first three held-out parts,
each retired into development once it had been measured and fitted on (labels extended after its entries were
written, thresholds chosen, entries written for its gaps), so it can no longer say how the system does on questions
it has not seen. Held-out: real_phrasings_heldout4.jsonl (the fourth, collected from yet other pages, none in the
others, labelled blind and committed before any run); it is looked at only to report — its misses are not printed
and nothing is fitted on it.

With --fit it searches the hand-off rule of `services.clear` on the development parts alone (FIT_GRID: thresholds and
whether each signal hands off): the rule answering the most questions rightly at a floor of precision, for each floor
in FLOORS, and the same choice made on four fifths and scored on the fifth left out (five-fold), and made on two of
the development files and scored on the third (leave one set out: other pages, other hands — five-fold mixes the
files and was far too kind to new wording). The shipped constants in consult/services.py are its output at
FIT_FLOOR on the first three development files, the floor with the most coverage whose leave-one-set-out precision
stayed at 90 % or more on each file. With the third held-out file in development no floor does: rules chosen on the
other files keep 67–74 % on it whatever the floor (the first files' wording is nearer each other than new wording is
to any of them), so the constants were kept, not refitted on it.

With --counts it prints, for each part, how the answers fall against the labels (answered or handed off; right, right
entry second or third, wrong with a right entry existing, no right entry) — counts only, so it may be run on the
held-out part without printing a question.

Run: .venv/bin/python bench/consult_real.py [--misses] [--fit] [--counts]
"""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from consult_docs import measure_docs, starter_docs  # bench/consult_docs.py

from chunfeng.consult import services
from chunfeng.consult.evaluation import evaluate_answers, read_phrasings
from chunfeng.consult.index import Index
from chunfeng.consult.tokenize import shared_tokenizer

DATA = Path(__file__).parent / "data"
DEVELOPMENT = [("development", DATA / "real_phrasings_dev.jsonl"),
               ("development, retired first held-out", DATA / "real_phrasings_heldout.jsonl"),
               ("development, retired second held-out", DATA / "real_phrasings_fresh.jsonl"),
               ("development, retired third held-out", DATA / "real_phrasings_heldout3.jsonl")]
HELD_OUT = ("held-out, fourth", DATA / "real_phrasings_heldout4.jsonl")
SETS = [*DEVELOPMENT, HELD_OUT]
TODAY = date(2026, 12, 7)  # the day the fresh labels were judged against the law in force (the others: a day before)
TARGET = "target on held-out: precision ≥ 90% with coverage ≥ 70%"
FIT_GRID = {"confidence": (0.0, 0.1, 0.15, 0.2, 0.25, 0.3), "covered": (0.0, 0.5, 0.6, 0.7, 0.75, 0.8),
            "margin": (0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2),
            "other_aspect_margin": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, float("inf")),
            "other_subject": (False, True), "local_amount": (False, True)}
# Chosen when development was the first three files (with four no floor qualifies: see the module's docstring).
# Seven points above the target: of the floors in FLOORS, the one with the most coverage whose rules chosen on two
# development files keep at least 90 % precision on each third (leave one set out) — the criterion; at 96 %
# the first retired file fell to 89.5 %, at 94 % the fresh one to 84.9 %.
FIT_FLOOR = 0.97
FLOORS = (0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98)  # --fit also shows what each floor would choose and keep


@dataclass
class _Before:
    hits: list
    handoff: bool


def before(index: Index, question: str) -> _Before:
    """The rule before issue 15: the first candidate, measures included, answers at confidence 0.30 or more."""
    hits = index.search(question, today=TODAY, k=3)
    return _Before(hits, not hits or hits[0].confidence < 0.3)


def _line(label: str, items: list, now, old) -> str:
    f, b = now.figures, old.figures
    return (f"real phrasings, {label} ({f['questions']} questions, {sum(not i.expected for i in items)} with no right "
            f"entry): answered precision {f['precision']:.1%}, coverage {f['coverage']:.1%}, hand-off "
            f"{f['handoff_rate']:.1%}, top-1 {f['top1']:.1%}  (before: precision {b['precision']:.1%}, coverage "
            f"{b['coverage']:.1%}, top-1 {b['top1']:.1%}; {TARGET})")


def real_figures(index: Index, misses: bool = False) -> None:
    def now(items):
        return evaluate_answers(lambda q: services.ask(session=None, query=q, index=index, log=False, today=TODAY),
                                items)

    def old(items):
        return evaluate_answers(lambda q: before(index, q), items)

    development = []
    for label, path in SETS:
        if (label, path) == HELD_OUT:
            print(_line("development, all parts", development, now(development), old(development)))
            if not path.exists():
                print(f"{label}: {path.name} not collected yet")
                continue
        items = read_phrasings(path)
        if (label, path) != HELD_OUT:
            development += items
        result = now(items)
        print(_line(label, items, result, old(items)))
        if misses and (label, path) != HELD_OUT:  # the held-out part's misses are not read: it would stop being held out
            for question, expected, got in result.wrong:
                print(f"    wrong: {question}  expected {expected}, answered {got}")


def counts(index: Index) -> None:
    for label, path in SETS:
        if not path.exists():
            continue
        tally = Counter()
        for item in read_phrasings(path):
            answer = services.ask(session=None, query=item.question, index=index, log=False, today=TODAY)
            refs = [hit.doc.ref for hit in answer.hits[:3]]
            fate = ("no right entry" if not item.expected else "right" if refs[:1] and refs[0] in item.expected
                    else "right entry 2nd/3rd" if set(refs) & set(item.expected) else "wrong, a right entry exists")
            tally["handed off" if answer.handoff else "answered", fate] += 1
        print(f"{label}: " + "; ".join(f"{way}, {fate}: {n}" for (way, fate), n in sorted(tally.items())))


def _rules() -> list[dict]:
    return [dict(zip(FIT_GRID, values, strict=True)) for values in itertools.product(*FIT_GRID.values())]


def _decisions(rows: list, rules: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Which rows each rule answers (rules × rows) and which rows' first candidate is right: computed once by
    `services.clear` itself, so every fit below (in-sample, folds, sets left out) is a sum over columns."""
    answered = np.array([[not services.too_short(question) and services.clear(hits, **rule)
                          for question, hits, _ in rows] for rule in rules], dtype=bool)
    return answered, np.array([first_right for _, _, first_right in rows], dtype=bool)


def _best(answered: np.ndarray, right: np.ndarray, on: np.ndarray, floor: float) -> int | None:
    """The rule (its row in `answered`) answering the most of the rows `on` rightly at `floor` precision or more (not
    the most answered: one more wrong answer is not a gain); of rules alike in that, the more precise, then the
    stricter (the later in the grid): what the development set cannot tell apart is decided for the taxpayer who asks
    something it never saw."""
    count = answered[:, on].sum(axis=1)
    good = (answered[:, on] & right[on]).sum(axis=1)
    precision = np.where(count > 0, good / np.maximum(count, 1), 0.0)
    best, key = None, (-1, -1.0)
    for i in np.flatnonzero((count > 0) & (precision >= floor)):
        if (good[i], precision[i]) >= key:
            best, key = int(i), (int(good[i]), float(precision[i]))
    return best


def _scored(answered: np.ndarray, right: np.ndarray, rule: int | None, on: np.ndarray) -> tuple[int, int]:
    """(answered, right) of `rule` over the rows `on`; none chosen answers nothing."""
    if rule is None:
        return 0, 0
    return int(answered[rule, on].sum()), int((answered[rule, on] & right[on]).sum())


def _figure(answered: int, right: int, total: int) -> str:
    return f"precision {right / max(answered, 1):.1%}, coverage {answered / max(total, 1):.1%} ({right}/{answered})"


def fit(index: Index, floor: float = FIT_FLOOR) -> None:
    rows, sets = [], []
    for number, (_, path) in enumerate(DEVELOPMENT):  # the development parts only
        for item in read_phrasings(path):
            hits = services.ask(session=None, query=item.question, index=index, log=False, today=TODAY).hits
            rows.append((item.question, hits, bool(hits) and hits[0].doc.ref in item.expected))
            sets.append(number)
    rules, sets = _rules(), np.array(sets)
    answered, right = _decisions(rows, rules)
    everything = np.ones(len(rows), dtype=bool)
    shipped = _decisions(rows, [{}])[0][0]
    print(f"shipped constants on the development part ({len(rows)} questions): "
          f"{_figure(int(shipped.sum()), int((shipped & right).sum()), len(rows))}")
    for label, part in ((label, sets == number) for number, (label, _) in enumerate(DEVELOPMENT)):
        print(f"    on {label}: {_figure(int(shipped[part].sum()), int((shipped & right)[part].sum()), int(part.sum()))}")
    for level in sorted({floor, *FLOORS}):
        chosen = _best(answered, right, everything, level)
        if chosen is None:
            print(f"floor {level:.0%}: no rule of the grid reaches it on the development part")
            continue
        print(f"floor {level:.0%}, fitted on the development part: {rules[chosen]} — "
              f"{_figure(*_scored(answered, right, chosen, everything), len(rows))}")
        # Five-fold: chosen on four fifths, scored on the fifth left out.
        order = np.random.default_rng(15).permutation(len(rows))
        total = [0, 0]
        for fold in range(5):
            left_out = np.zeros(len(rows), dtype=bool)
            left_out[order[fold::5]] = True
            a, r = _scored(answered, right, _best(answered, right, ~left_out, level), left_out)
            total = [total[0] + a, total[1] + r]
        print(f"    five-fold (chosen on four fifths, scored on the fifth): {_figure(*total, len(rows))}")
        # Leave one set out: chosen on the other files, scored on the one left out — wording from other pages, other hands,
        # the nearest the development part comes to questions nobody fitted anything on.
        total = [0, 0]
        for number, (label, _) in enumerate(DEVELOPMENT):
            left_out = sets == number
            rule = _best(answered, right, ~left_out, level)
            a, r = _scored(answered, right, rule, left_out)
            total = [total[0] + a, total[1] + r]
            print(f"    left out {label}: {_figure(a, r, int(left_out.sum()))}  (chosen on the other files: "
                  f"{rules[rule] if rule is not None else 'none'})")
        print(f"    leave-one-set-out, every file: {_figure(*total, len(rows))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list the development questions answered wrongly")
    parser.add_argument("--counts", action="store_true", help="how the answers fall against the labels, counts only")
    parser.add_argument("--fit", action="store_true", help="search the hand-off thresholds on the development part")
    args = parser.parse_args()
    index = Index(starter_docs() + measure_docs(), shared_tokenizer())
    if args.fit:
        fit(index)
        return
    if args.counts:
        counts(index)
        return
    real_figures(index, misses=args.misses)


if __name__ == "__main__":
    main()
