"""Retrieval over many texts at once — a hotline file's thousands of records — with the ranking of
`Index.search`: the BM25 sums and the rerank's wording overlap are computed for a block of texts together
(numpy and scipy instead of a Python loop per text), then each text is ranked by `Index.ranked`, the one rule
`Index.search` ranks by.

The sums are added in the same order and precision as bm25s adds them for one query, so the answers are the
same, not merely close; `tests/consult/test_batch.py` holds the two to the same answers over every evaluation set.
"""

from __future__ import annotations

from datetime import date
from weakref import WeakKeyDictionary

import numpy as np
from scipy import sparse

from chunfeng.consult.index import NATIONAL, Hit, Index, _Field, character_grams
from chunfeng.consult.tokenize import TaxTokenizer

BLOCK = 1024  # texts scored together: a block's score matrices stay a few MB even over a large knowledge base


class _Phrases:
    """Every entry's question and phrasings as rows of character grams, for the rerank's overlap in bulk."""

    def __init__(self, index: Index):
        vocab: dict[str, int] = {}
        rows, cols, sizes, starts = [], [], [], []
        for grams_of_doc in index.grams:
            starts.append(len(sizes))
            for grams in grams_of_doc:
                for gram in grams:
                    rows.append(len(sizes))
                    cols.append(vocab.setdefault(gram, len(vocab)))
                sizes.append(len(grams))
        self.vocab = vocab
        self.matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)),
                                        shape=(len(sizes), max(len(vocab), 1))).T.tocsr()
        self.sizes = np.array(sizes, dtype=np.int64)
        self.starts = np.array(starts, dtype=np.int64)

    def overlap(self, queries: list[frozenset[str]]) -> np.ndarray:
        """For each query and entry: the best Dice coefficient between the query's grams and one of the entry's
        phrasings — `Index.search`'s `max(2 * |q ∩ g| / (|q| + |g|))`, computed exactly (integers, then one division)."""
        rows, cols = [], []
        for r, grams in enumerate(queries):
            for gram in grams:
                if (c := self.vocab.get(gram)) is not None:
                    rows.append(r)
                    cols.append(c)
        q = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)),
                              shape=(len(queries), self.matrix.shape[0]))
        shared = (q @ self.matrix).toarray().astype(np.int64)
        q_sizes = np.array([len(g) for g in queries], dtype=np.int64)
        dice = 2 * shared / (q_sizes[:, None] + self.sizes[None, :])
        return np.maximum.reduceat(dice, self.starts, axis=1)


_phrases: WeakKeyDictionary[Index, _Phrases] = WeakKeyDictionary()


def _bm25(field: _Field, id_lists: list[list[int]], n: int) -> np.ndarray:
    """One row of scores per query, summed token by token in the query's order in the index's precision:
    what `field.scores(ids, n)` gives for each query, without a Python loop over queries."""
    data, indices, indptr = (field.bm25.scores[name] for name in ("data", "indices", "indptr"))
    out = np.zeros((len(id_lists), n), dtype=np.dtype(field.bm25.dtype))
    flat = out.reshape(-1)
    for position in range(max((len(ids) for ids in id_lists), default=0)):
        rows = np.array([r for r, ids in enumerate(id_lists) if len(ids) > position], dtype=np.int64)
        tokens = np.array([id_lists[r][position] for r in rows], dtype=np.int64)
        starts, lengths = indptr[tokens], indptr[tokens + 1] - indptr[tokens]
        total = int(lengths.sum())
        if not total:
            continue
        # Each row's run of postings, gathered at once: run starts repeated, plus a counter within each run.
        at = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        # One token per row per position: no cell is hit twice here, so += adds exactly as np.add.at would.
        flat[np.repeat(rows * n, lengths) + indices[at]] += data[at]
    return out


def _tokens(tokenizer: TaxTokenizer, texts: list[str]) -> list[tuple[list[str], list[str]]]:
    """Each text's search tokens and its own words (what an answer must cover: Index.covered)."""
    return [(tokenizer.tokens(t), tokenizer.words(t)) for t in texts]


def search_many(index: Index, queries: list[str], *, today: date | None = None, k: int = 5) -> list[list[Hit]]:
    """`[index.search(q, today=today, k=k) for q in queries]` (national, each region named in a text taken
    as its region), faster."""
    if index.vectors is not None:  # the dense stage encodes each query on its own anyway
        return [index.search(q, today=today, k=k) for q in queries]
    today = today or date.today()
    phrases = _phrases.get(index)
    if phrases is None:
        phrases = _phrases[index] = _Phrases(index)
    answers: list[list[Hit]] = []
    all_tokens = _tokens(index.tokenizer, queries)
    for begin in range(0, len(queries), BLOCK):
        block = queries[begin:begin + BLOCK]
        tokens, words = [t for t, _ in all_tokens[begin:begin + BLOCK]], [w for _, w in all_tokens[begin:begin + BLOCK]]
        ids = [[f.ids(t) for f in index.fields] for t in tokens]
        n = len(index.docs)
        combined = sum(w * _bm25(f, [i[j] for i in ids], n)
                       for j, (w, f) in enumerate(zip(index.weights, index.fields, strict=True)))
        grams = [character_grams(q) for q in block]
        overlap = phrases.overlap(grams)
        answers += [index.ranked(query, tokens[r], words[r], ids[r], combined[r], overlap[r].item, region=NATIONAL,
                                 today=today, k=k)
                    for r, query in enumerate(block)]
    return answers
