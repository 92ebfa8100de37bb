"""How well the consultation answers: top-1, top-3 and MRR of the retrieval on a TSV of questions and the entries that
answer them; and, on real taxpayer phrasings (JSONL: question, source, expected entry ids or null for "a person should
answer this"), what the asker gets from `services.ask` — answered precision, coverage, hand-off rate and top-1."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from chunfeng.consult.errors import ConsultInvalid
from chunfeng.consult.index import Index
from chunfeng.tabular import decode_text


@dataclass
class EvalResult:
    questions: int = 0
    top1: int = 0
    top3: int = 0
    reciprocal: float = 0.0
    misses: list[tuple[str, str, list[str]]] = field(default_factory=list)

    @property
    def figures(self) -> dict[str, float]:
        n = self.questions or 1
        return {"questions": self.questions, "top1": self.top1 / n, "top3": self.top3 / n, "mrr": self.reciprocal / n}


def read_eval(path: Path) -> list[tuple[str, set[str]]]:
    lines = decode_text(Path(path).read_bytes()).splitlines()
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.lower().startswith("question")):
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
            raise ConsultInvalid(f"{Path(path).name} 第 {number} 行:应为“问题<Tab>期望条目”")
        pairs.append((parts[0].strip(), {e.strip() for e in parts[1].split("|") if e.strip()}))
    if not pairs:
        raise ConsultInvalid(f"{Path(path).name}:没有评测问题")
    return pairs


def evaluate(index: Index, pairs: list[tuple[str, set[str]]], *, today: date | None = None, k: int = 10) -> EvalResult:
    result = EvalResult()
    for question, expected in pairs:
        refs = [h.doc.ref for h in index.search(question, today=today, k=k)]
        result.questions += 1
        rank = next((i for i, ref in enumerate(refs, start=1) if ref in expected), None)
        if rank == 1:
            result.top1 += 1
        if rank is not None and rank <= 3:
            result.top3 += 1
        if rank is not None:
            result.reciprocal += 1 / rank
        if rank != 1:
            result.misses.append((question, "|".join(sorted(expected)), refs[:3]))
    return result


@dataclass
class Phrasing:
    question: str
    source: str
    expected: frozenset[str]  # empty: no entry answers it rightly, a person should


def read_phrasings(path: Path) -> list[Phrasing]:
    """A set of real phrasings, one JSON object a line: {"question", "source", "expected": [ids] or null}."""
    name, items = Path(path).name, []
    for number, line in enumerate(decode_text(Path(path).read_bytes()).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, source, expected = row["question"].strip(), row["source"].strip(), row["expected"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConsultInvalid(f"{name} 第 {number} 行:应为含 question、source、expected 的 JSON 对象") from None
        if not question or not source or not (expected is None or (isinstance(expected, list) and expected)):
            raise ConsultInvalid(f"{name} 第 {number} 行:问题和来源不能为空,expected 应为条目编号列表或 null")
        items.append(Phrasing(question, source, frozenset(expected or ())))
    if not items:
        raise ConsultInvalid(f"{name}:没有评测问题")
    return items


@dataclass
class AnswerResult:
    """What askers got: `answered` questions were answered (not handed off), `right` of them rightly; `top1`
    counts first candidates that were right whether or not they were shown as the answer."""
    questions: int = 0
    answered: int = 0
    right: int = 0
    top1: int = 0
    wrong: list[tuple[str, str, str]] = field(default_factory=list)      # answered wrongly: question, expected, got
    handed_off: list[tuple[str, str, str]] = field(default_factory=list)  # question, expected, first candidate

    @property
    def figures(self) -> dict[str, float]:
        n = self.questions or 1
        return {"questions": self.questions, "answered": self.answered,
                "precision": self.right / self.answered if self.answered else 0.0,
                "coverage": self.answered / n, "handoff_rate": 1 - self.answered / n, "top1": self.top1 / n}


def evaluate_answers(ask, items: list[Phrasing]) -> AnswerResult:
    """Put each question to `ask` (a question → services.Answer, the code path of `chunfeng ask`) and score what
    the asker was given: an answer is right when its first entry is one the rule names; an answer to a question
    no entry answers rightly is wrong; a hand-off is neither right nor wrong, it lowers coverage."""
    result = AnswerResult()
    for item in items:
        answer = ask(item.question)
        first = answer.hits[0].doc.ref if answer.hits else ""
        expected = "|".join(sorted(item.expected)) or "(转人工)"
        result.questions += 1
        result.top1 += first in item.expected
        if answer.handoff:
            result.handed_off.append((item.question, expected, first))
            continue
        result.answered += 1
        if first in item.expected:
            result.right += 1
        else:
            result.wrong.append((item.question, expected, first))
    return result
