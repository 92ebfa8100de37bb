"""The one way Python-bound work is shared over the cores: forked workers and this process, answers in order."""

import os

import pytest

from chunfeng.parallel import forked_map


def _pids_and_squares(items):
    return [(os.getpid(), n * n) for n in items]


def test_the_chunks_are_shared_with_a_forked_worker_and_answered_in_order():
    heard = []
    answers = forked_map(_pids_and_squares, range(10_000), workers=2, chunk=1000, parallel_from=0,
                         progress=lambda done, total: heard.append((done, total)))
    assert [square for _, square in answers] == [n * n for n in range(10_000)]
    pids = {pid for pid, _ in answers}
    assert os.getpid() in pids and len(pids) == 2  # half the chunks were done by another process
    assert heard == [(1000 * k, 10_000) for k in range(1, 11)]


def test_below_the_threshold_or_on_one_worker_everything_is_done_here():
    for workers, parallel_from in ((1, 0), (2, 20_000)):
        answers = forked_map(_pids_and_squares, list(range(5000)), workers=workers, parallel_from=parallel_from)
        assert {pid for pid, _ in answers} == {os.getpid()} and len(answers) == 5000


def _fails_on_a_worker(items):
    if os.getpid() != PARENT:
        raise ValueError(f"chunk starting {items[0]}")
    return list(items)


PARENT = os.getpid()


def test_a_worker_failing_fails_the_map():
    with pytest.raises(ValueError, match="chunk starting 1000"):
        forked_map(_fails_on_a_worker, list(range(4000)), workers=2, chunk=1000, parallel_from=0)
