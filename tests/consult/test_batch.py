"""Retrieval over many texts at once answers exactly as one text at a time: same entries, same order, same
confidence — over every evaluation set, the hotline-like texts of the appeals benchmark, regions named in the
text, entries past their end, and texts no entry matches."""

from __future__ import annotations

import csv
import random
import sys
from datetime import date
from pathlib import Path

import pytest

from chunfeng.consult import services, transfer
from chunfeng.consult.batch import search_many
from chunfeng.consult.index import Index
from chunfeng.consult.tokenize import shared_tokenizer

DATA = Path(__file__).parent / "data"
BENCH = Path(__file__).parents[2] / "bench"


def _questions() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("eval*.tsv")):
        with path.open(encoding="utf-8") as f:
            texts += [row["question"] for row in csv.DictReader(f, delimiter="\t")]
    sys.path.insert(0, str(BENCH))
    try:
        from appeals_scale import make_text
    finally:
        sys.path.remove(str(BENCH))
    rng = random.Random(13)
    texts += [make_text(rng)[0] for _ in range(300)]
    return texts + ["深圳个体户发票怎么领", "火星上有税务局吗", "", "的了吗", "2019年小规模纳税人免征增值税"]


def _same(index: Index, texts: list[str], today: date, k: int) -> None:
    one_by_one = [index.search(t, today=today, k=k) for t in texts]
    together = search_many(index, texts, today=today, k=k)
    for text, a, b in zip(texts, one_by_one, together, strict=True):
        assert [(h.doc.ref, h.score, h.confidence, h.current) for h in a] == \
               [(h.doc.ref, h.score, h.confidence, h.current) for h in b], text


@pytest.fixture
def documents(with_plan, system):
    with with_plan.write() as s:
        transfer.load_starter(session=s, actor=system)
    with with_plan.read() as s:
        return services.documents(s)


@pytest.mark.parametrize("today", [date(2022, 6, 1), date(2026, 12, 6)])
def test_the_measures_index_answers_alike(documents, today):
    index = Index([d for d in documents if d.source == "measure"], shared_tokenizer())
    _same(index, _questions(), today, k=3)


def test_the_whole_knowledge_base_answers_alike(documents):
    index = Index(documents, shared_tokenizer())
    _same(index, _questions(), date(2026, 12, 6), k=5)
