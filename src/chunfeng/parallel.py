"""Python-bound work over many items on every core: this process and forked workers share the chunks.

Forked, not spawned: a worker starts at once with what this process already built (a tokenizer, an index) and
reads its items from the memory it inherited, so only two numbers travel to it and only the answers come back.
Forking is safe only where this process runs no other threads of its own (a command-line import, a worker's job),
so the callers that may run inside a web process pass `workers=1`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# The work and the items of the map in progress, inherited by the forked workers.
_current: tuple[Callable, Sequence] | None = None


def _span(begin: int, end: int) -> list:
    work, items = _current
    return work(items[begin:end])


def cores() -> int:
    return os.cpu_count() or 1


def forked_map(work: Callable[[Sequence[T]], list[R]], items: Sequence[T], *, workers: int, chunk: int = 1000,
               parallel_from: int = 4000, progress: Callable[[int, int], None] | None = None) -> list[R]:
    """`work` over `items` a chunk at a time, the answers in the items' order. With `workers` > 1 and at least
    `parallel_from` items (below it, forking costs more than it saves: a worker's start and its copy-on-write pages),
    every `workers`-th chunk is done here and the others by `workers - 1` forked processes meanwhile.
    `progress(done, total)` hears of each chunk as its answers are taken, in order."""
    global _current
    spans = [(b, min(b + chunk, len(items))) for b in range(0, len(items), chunk)]
    answers: list[R] = []
    if workers < 2 or len(items) < parallel_from or "fork" not in get_all_start_methods():
        for begin, end in spans:
            answers += work(items[begin:end])
            if progress:
                progress(end, len(items))
        return answers
    _current = (work, items)
    try:
        with ProcessPoolExecutor(workers - 1, mp_context=get_context("fork")) as pool:
            theirs = {n: pool.submit(_span, b, e) for n, (b, e) in enumerate(spans) if n % workers}
            for n, (begin, end) in enumerate(spans):
                answers += theirs[n].result() if n in theirs else work(items[begin:end])
                if progress:
                    progress(end, len(items))
    finally:
        _current = None
    return answers
