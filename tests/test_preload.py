"""A structure each process shares (chunfeng/preload.py) on a real database: the first callers at once get one
build, a change is rebuilt on a thread while the old one answers, and a caller that may not be answered from the
old one waits for the new."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from chunfeng.consult import services as consult
from chunfeng.consult.models import KbGeneration
from chunfeng.preload import RECHECK_SECONDS, Preloaded


class Recorded:
    """What the holder builds here: the knowledge base's generation counter, read through the session it is given;
    each build waits for `release` and is counted by its thread."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()
        self.threads: list[str] = []

    def build(self, session, key):
        self.started.set()
        assert self.release.wait(30)
        self.threads.append(threading.current_thread().name)
        return ("built", consult.generation(session))


def _generation(session) -> int:
    return session.scalar(select(KbGeneration.value).where(KbGeneration.id == 1)) or 0


def test_twenty_first_callers_at_once_wait_for_one_build(db):
    recorded = Recorded()
    shared = Preloaded("test", _generation, recorded.build)

    def first_request(_):
        with db.read() as session:
            return shared.get(session, "db")

    with ThreadPoolExecutor(20) as pool:
        answers = [pool.submit(first_request, n) for n in range(20)]
        assert recorded.started.wait(10)
        time.sleep(0.2)  # the other 19 are at the lock by now (were they to build, `started` would not tell)
        recorded.release.set()
        values = {a.result(timeout=30) for a in answers}
    assert values == {("built", 0)} and shared.builds == 1 and len(recorded.threads) == 1


def test_a_change_is_rebuilt_on_a_thread_while_the_old_one_answers(db):
    recorded = Recorded()
    shared = Preloaded("test", _generation, recorded.build)
    recorded.release.set()
    with db.read() as session:
        assert shared.get(session, "db") == ("built", 0)
    with db.write() as session:
        consult.bump_generation(session)
    recorded.release.clear()
    recorded.started.clear()
    time.sleep(RECHECK_SECONDS)  # a public caller looks for a change at most this often (the test below)
    with db.read() as session:
        # Answered at once from the previous build, however long the new one takes; asking again starts no second.
        assert shared.get(session, "db", stale_seconds=60) == ("built", 0)
        assert recorded.started.wait(10)
        assert shared.get(session, "db", stale_seconds=60) == ("built", 0)
    recorded.release.set()
    deadline = time.monotonic() + 30
    while True:
        with db.read() as session:
            if shared.get(session, "db", stale_seconds=60) == ("built", 1):
                break
        assert time.monotonic() < deadline, "the background rebuild never came in"
        time.sleep(0.05)
    assert shared.builds == 2 and recorded.threads[-1] == "rebuild-test"


def test_a_caller_that_may_not_have_the_old_one_waits_for_the_new(db):
    recorded = Recorded()
    shared = Preloaded("test", _generation, recorded.build)
    recorded.release.set()
    with db.read() as session:
        shared.get(session, "db")
    with db.write() as session:
        consult.bump_generation(session)
    with db.read() as session:  # the CLI, a service's own call: never the previous knowledge base
        assert shared.get(session, "db") == ("built", 1)
    with db.write() as session:
        consult.bump_generation(session)
    recorded.release.clear()
    time.sleep(0.2)  # past the interval at which such a caller looks for a change (at most its staleness)
    with db.read() as session:  # nor a public page once the change is older than it may be hidden
        assert shared.get(session, "db", stale_seconds=0.2) == ("built", 1)  # the rebuild starts, and hangs
    time.sleep(0.3)

    def later_request():
        with db.read() as session:
            return shared.get(session, "db", stale_seconds=0.2)

    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(later_request)
        time.sleep(0.3)
        assert not later.done()  # waiting for the rebuild, not answered from the old one
        recorded.release.set()
        assert later.result(timeout=30) == ("built", 2)
    assert shared.builds == 3


def test_a_public_caller_looks_for_a_change_once_a_second_not_once_a_request(db):
    """Reading the stamp was two of a question's three statements (issue 16): a caller that may be answered from the
    previous build reads it at most once every RECHECK_SECONDS; one that may not reads it every time."""
    recorded, read = Recorded(), []
    recorded.release.set()

    def stamp(session):
        read.append(1)
        return _generation(session)

    shared = Preloaded("test", stamp, recorded.build)
    with db.read() as session:
        assert shared.get(session, "db") == ("built", 0)
        read.clear()
        for _ in range(50):
            assert shared.get(session, "db", stale_seconds=60) == ("built", 0)
        assert read == []  # just built: the stamp it was built from is current for the next second
    with db.write() as session:
        consult.bump_generation(session)
    with db.read() as session:
        assert shared.get(session, "db", stale_seconds=60) == ("built", 0)  # not looked for yet
        assert shared.get(session, "db") == ("built", 1)  # the CLI, a service: looked for at once
        read.clear()
        shared.get(session, "db", stale_seconds=60)
        assert read == []
    with db.write() as session:
        consult.bump_generation(session)
    time.sleep(RECHECK_SECONDS)
    deadline = time.monotonic() + 30
    while True:  # looked for again after the interval: rebuilt on a thread, then answered from the new build
        with db.read() as session:
            if shared.get(session, "db", stale_seconds=60) == ("built", 2):
                break
        assert time.monotonic() < deadline, "the change was never looked for"
        time.sleep(0.05)
    assert shared.builds == 3
