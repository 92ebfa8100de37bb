"""Top-1, top-3 and MRR of the retrieval on a TSV of questions and the entries that answer them."""

from __future__ import annotations

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
