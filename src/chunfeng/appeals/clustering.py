"""Recurring issues: texts grouped by similarity, fast enough for a year of a nation's complaints.

Texts become TF-IDF vectors over pairs of adjacent Chinese characters and Latin words (jieba would take
17 s for 100,000 texts; the pairs take under one); a leader clustering in received order joins a text to
the first leader it resembles at cosine >= threshold, and candidate leaders are found by blocking on the
heaviest terms, which provably never misses a pair above the threshold (the tests compare with all pairs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_HAN_FIRST, _HAN_LAST = 0x4E00, 0x9FFF
_HAN_SPAN = _HAN_LAST - _HAN_FIRST + 1
HAN = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[a-z]{2,}")
_EPS = 1e-9


@dataclass
class Rows:
    """A sparse matrix by rows (CSR, column indices sorted within each row): the little of scipy.sparse that
    clustering needs, in numpy, so the application does not install scipy (113 MB of a 620 MB install) for it."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.data.size)

    def entry_rows(self) -> np.ndarray:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def _positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The entry positions of `rows`, in order, and for each the index into `rows` it belongs to."""
        counts = np.diff(self.indptr)[rows]
        owner = np.repeat(np.arange(rows.size), counts)
        positions = np.repeat(self.indptr[rows], counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return positions.astype(np.int64), owner

    def take(self, rows) -> Rows:
        rows = np.asarray(rows, dtype=np.int64)
        positions, _ = self._positions(rows)
        indptr = np.concatenate([[0], np.cumsum(np.diff(self.indptr)[rows])])
        return Rows(self.data[positions], self.indices[positions], indptr, (rows.size, self.shape[1]))

    def keep(self, mask: np.ndarray) -> Rows:
        """The matrix with only the entries where `mask` holds."""
        counts = np.bincount(self.entry_rows()[mask], minlength=self.shape[0])
        return Rows(self.data[mask], self.indices[mask], np.concatenate([[0], np.cumsum(counts)]), self.shape)

    def dot(self, x: np.ndarray) -> np.ndarray:
        """self @ x for a vector x."""
        return np.bincount(self.entry_rows(), self.data * x[self.indices], minlength=self.shape[0])

    def tdot(self, y: np.ndarray) -> np.ndarray:
        """self.T @ y for a vector y."""
        return np.bincount(self.indices, self.data * y[self.entry_rows()], minlength=self.shape[1])

    def toarray(self) -> np.ndarray:
        dense = np.zeros(self.shape)
        dense[self.entry_rows(), self.indices] = self.data
        return dense


def _products(a: Rows, b: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzero cells of a @ b.T as (row of a, row of b, value): a join of the entries on their column."""
    by_column = np.argsort(b.indices, kind="stable")
    b_cols, b_rows, b_data = b.indices[by_column], b.entry_rows()[by_column], b.data[by_column]
    low = np.searchsorted(b_cols, a.indices, side="left")
    counts = np.searchsorted(b_cols, a.indices, side="right") - low
    mine = np.repeat(np.arange(a.nnz), counts)
    theirs = np.repeat(low, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cells, where = np.unique(a.entry_rows()[mine] * b.shape[0] + b_rows[theirs], return_inverse=True)
    values = np.bincount(where.ravel(), a.data[mine] * b_data[theirs], minlength=cells.size)
    return cells // b.shape[0], cells % b.shape[0], values


@dataclass
class Vectors:
    """Texts as rows of L2-normalised TF-IDF weights over their terms: every pair of adjacent Chinese
    characters (the same pairs the consultation's tokenizer adds to its words) and every Latin word."""

    matrix: Rows
    keys: np.ndarray  # the term of each column: a character pair's code, or above them a Latin word's
    idf: np.ndarray
    latin: dict[str, int]

    def idf_of(self, word: str) -> float:
        """A word's weight, from its character pairs (or itself, for a Latin word)."""
        word = word.lower()
        if word in self.latin:
            keys = [_HAN_SPAN * _HAN_SPAN + self.latin[word]]
        else:
            chars = [ord(c) - _HAN_FIRST for c in HAN.findall(word)]
            keys = [a * _HAN_SPAN + b for a, b in zip(chars, chars[1:], strict=False)]
        cols = np.searchsorted(self.keys, keys)
        found = [self.idf[c] for c, k in zip(cols, keys, strict=True) if c < self.keys.size and self.keys[c] == k]
        return float(np.mean(found)) if found else float(self.idf.max(initial=1.0))


def vectorize(texts: list[str]) -> Vectors:
    """Character pairs rather than jieba words: a hundred thousand texts in well under a second instead of
    about twenty, and near-duplicates share most of their pairs however they would be segmented."""
    n = len(texts)
    lowered = [t.lower() for t in texts]
    lengths = np.fromiter((len(t) for t in lowered), dtype=np.int64, count=n)
    joined = "\x00".join(lowered)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths + 1)[:codes.size]
    han = (codes >= _HAN_FIRST) & (codes <= _HAN_LAST)
    chars, docs = codes[han].astype(np.int64) - _HAN_FIRST, owner[han]
    same = docs[1:] == docs[:-1]  # pairs skip punctuation, as the tokenizer's do, but never cross texts
    keys, key_docs = chars[:-1][same] * _HAN_SPAN + chars[1:][same], docs[:-1][same]
    latin: dict[str, int] = {}
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]) if n else np.zeros(0, np.int64)
    found = [(m.start(), latin.setdefault(m.group(), len(latin))) for m in _LATIN.finditer(joined)]
    if found:
        at, ids = np.array(found, dtype=np.int64).T
        keys = np.concatenate([keys, _HAN_SPAN * _HAN_SPAN + ids])
        key_docs = np.concatenate([key_docs, np.searchsorted(starts, at, side="right") - 1])
    vocab, term = np.unique(keys, return_inverse=True)
    width = max(vocab.size, 1)
    cells, tf = np.unique(key_docs * width + term, return_counts=True)
    rows, cols = cells // width, cells % width
    df = np.bincount(cols, minlength=vocab.size)
    idf = np.log((1 + n) / (1 + df)) + 1
    weights = (1 + np.log(tf)) * idf[cols]
    norms = np.sqrt(np.bincount(rows, weights * weights, minlength=n))
    weights /= norms[rows]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    matrix = Rows(weights, cols, indptr, (n, vocab.size))
    return Vectors(matrix, vocab, idf, latin)


def leaders(matrix: Rows, threshold: float = 0.5, *, batch: int = 2000) -> np.ndarray:
    """Leader clustering, in row order: each row joins the most similar earlier leader (ties: the earliest)
    if their cosine is at least `threshold`, else becomes a leader. Returns each row's leader.

    Exact, without comparing all pairs (the prefix filter of similarity joins): terms are put in one global
    order, rarest first, and a row's *prefix* is its terms up to where the rest of the row has a norm below
    the threshold. Two rows with no term in both their prefixes have cosine < threshold (every term they
    share lies in the rest of one of them: Cauchy–Schwarz), so only pairs sharing a prefix term are
    candidates, and of those only the ones whose shared prefix weight plus both rests reaches the threshold
    get the exact product. Rows go through in batches: first against the leaders so far, then in order
    against the rows of the batch that became leaders before them.
    """
    n = matrix.shape[0]
    labels = np.arange(n)
    if n == 0:
        return labels
    prefix, rest = _prefixes(matrix, threshold)
    is_leader = np.zeros(n, dtype=bool)
    for b0 in range(0, n, batch):
        b1 = min(n, b0 + batch)
        mine = (prefix.take(np.arange(b0, b1)), rest[b0:b1])
        best_sim, best = np.full(b1 - b0, -1.0), np.full(b1 - b0, -1)
        heads = np.flatnonzero(is_leader[:b0])
        if heads.size:
            r, c, sims = _candidates(matrix, mine, b0, heads, prefix.take(heads), rest[heads], threshold)
        if heads.size and r.size:
            order = np.lexsort((c, -sims, r))
            first = order[np.r_[True, r[order][1:] != r[order][:-1]]]
            best_sim[r[first]], best[r[first]] = sims[first], c[first]
        # Earlier rows of this batch may become leaders as it is walked through in order.
        r, c, sims = _candidates(matrix, mine, b0, np.arange(b0, b1), *mine, threshold,
                                 earlier_only=True)
        order = np.lexsort((c, -sims, r))
        r, c, sims = r[order], c[order], sims[order]
        bounds = np.searchsorted(r, np.arange(b1 - b0 + 1))
        for i in range(b1 - b0):
            sim, lead = best_sim[i], best[i]
            for k in range(bounds[i], bounds[i + 1]):  # most similar first
                if is_leader[c[k]]:
                    if sims[k] > sim:  # an older leader wins a tie: it has the smaller row
                        sim, lead = sims[k], c[k]
                    break
            if lead >= 0 and sim >= threshold - _EPS:
                labels[b0 + i] = lead
            else:
                is_leader[b0 + i] = True
    return labels


def _prefixes(matrix: Rows, threshold: float) -> tuple[Rows, np.ndarray]:
    """Each row's prefix (a matrix of its rarest terms) and the norm of the rest of the row."""
    n, width = matrix.shape
    df = np.bincount(matrix.indices, minlength=width)
    rows = matrix.entry_rows()
    # Most common terms first within a row (one global order, ties by column): the running sum of squares
    # is then, at each term, the weight of that term and all commoner ones.
    order = np.lexsort((-matrix.indices, -df[matrix.indices], rows))
    squares = matrix.data[order] ** 2
    running = np.cumsum(squares)
    running -= np.concatenate([[0.0], running])[matrix.indptr[:-1]][rows]
    keep = np.zeros(matrix.nnz, dtype=bool)
    keep[order[running >= threshold * threshold - _EPS]] = True
    prefix = matrix.keep(keep)
    rest = np.sqrt(np.bincount(rows[~keep], matrix.data[~keep] ** 2, minlength=n))
    return prefix, rest


def _candidates(matrix, mine: tuple, b0: int, theirs: np.ndarray, their_prefix, their_rest: np.ndarray, threshold: float,
                *, earlier_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row in the block, row of `theirs`, exact cosine) for every pair reaching the threshold."""
    my_prefix, my_rest = mine
    r, c, partial = _products(my_prefix, their_prefix)
    keep = partial + my_rest[r] + their_rest[c] >= threshold - _EPS
    if earlier_only:
        keep &= theirs[c] < r + b0
    r, c = r[keep], theirs[c[keep]]
    sims = _row_dots(matrix, r + b0, c)
    ok = sims >= threshold - _EPS
    return r[ok], c[ok], sims[ok]


def _row_dots(matrix: Rows, a: np.ndarray, b: np.ndarray, chunk: int = 100_000) -> np.ndarray:
    """The dot product of row a[k] with row b[k], for every k, a chunk at a time to bound memory: the entries of
    the rows a[k] and of the rows b[k], each keyed (k, column) and so already sorted, are matched by a search."""
    width = max(matrix.shape[1], 1)
    out = np.empty(a.size)
    for i in range(0, a.size, chunk):
        j = min(a.size, i + chunk)
        mine, my_owner = matrix._positions(a[i:j])
        theirs, their_owner = matrix._positions(b[i:j])
        my_keys = my_owner * width + matrix.indices[mine]
        their_keys = their_owner * width + matrix.indices[theirs]
        found = np.minimum(np.searchsorted(their_keys, my_keys), max(their_keys.size - 1, 0))
        hit = their_keys[found] == my_keys if their_keys.size else np.zeros(my_keys.size, dtype=bool)
        out[i:j] = np.bincount(my_owner[hit], matrix.data[mine[hit]] * matrix.data[theirs[found[hit]]],
                               minlength=j - i)
    return out


def cluster(texts: list[str], threshold: float = 0.5) -> np.ndarray:
    """For each text, the index of the first text of its cluster (its leader), by `leaders()` over the
    distinct texts in order; identical texts, once whitespace is removed, always share one."""
    first: dict[str, int] = {}
    unique = [i for i, t in enumerate(texts) if first.setdefault("".join(t.split()), i) == i]
    slot = {i: k for k, i in enumerate(unique)}
    labels = leaders(vectorize([texts[i] for i in unique]).matrix, threshold)
    return np.array([unique[labels[slot[first["".join(t.split())]]]] for t in texts], dtype=np.int64)
