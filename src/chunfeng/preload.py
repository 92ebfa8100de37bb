"""Structures each process shares in memory (the retrieval and classification indexes): built once, under a lock,
before the first request needs them, and rebuilt in the background when what they were built from changes.

Built lazily, each of the first requests after a restart found no index and built its own at once: 20 filings
right after `chunfeng serve` started waited about 20 s each on PostgreSQL. Here one build runs at a time per
structure; a request that arrives while it runs waits for it and never starts a second. The web process builds
them at start-up (`web/readiness.py`, with `/healthz` answering 503 until they are in).

Each structure is kept per key (the database, a model) with a stamp saying what it was built from (the knowledge
base's generation, the notice). A caller that may be answered from the previous build while the new one is made
(a public page: `stale_seconds` > 0) gets the old one at once and the rebuild runs on a thread; the others (the
CLI, the services' own callers, a test that just changed the knowledge base) wait for the rebuild.

Such a caller also asks for the stamp at most once every `RECHECK_SECONDS` per structure and process, not once a
request: the stamp's queries were two of the three statements of a question (issue 16). A change then reaches a
public page at most that much later than before, well inside the staleness it already allows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
T = TypeVar("T")
RECHECK_SECONDS = 1.0


@dataclass
class _Held(Generic[T]):
    stamp: Hashable
    value: T


class Preloaded(Generic[T]):
    """One kind of shared structure: `get` returns the current one for a key, building it when there is none.

    `stamp(session)` says what the structure would be built from now (cheap: one query); `build(session, key)` builds
    it (may be None: nothing to index). Both read through the session they are given."""

    def __init__(self, name: str, stamp: Callable[[Session], Hashable], build: Callable[[Session, Hashable], T | None]):
        self.name, self._stamp, self._build = name, stamp, build
        self._lock = threading.Lock()  # held by the one build under way; whoever else needs one waits here
        self._held: dict[Hashable, _Held] = {}
        self._stale_since: dict[Hashable, float] = {}
        self._refreshing: set[Hashable] = set()
        self._confirmed: dict[Hashable, float] = {}  # when the held stamp was last found current (monotonic)
        self._state = threading.Lock()  # guards the two above (never held while building)
        self.builds = 0  # in this process, every key: /healthz shows it, the cold-start test counts it

    def get(self, session: Session, key: Hashable, *, stale_seconds: float = 0.0) -> T | None:
        """The structure for `key` as of `session`'s database. When it changed, a caller allowing `stale_seconds`
        is answered from the previous build while a thread makes the new one, until this process has known of the
        change that long (a rebuild that fails or hangs is not hidden for ever); other callers wait for it."""
        held = self._held.get(key)
        if held is not None and stale_seconds > 0:
            confirmed = self._confirmed.get(key)
            if confirmed is not None and time.monotonic() - confirmed < min(RECHECK_SECONDS, stale_seconds):
                return held.value
        stamp = self._stamp(session)
        if held is not None and held.stamp == stamp:
            self._confirmed[key] = time.monotonic()
            return held.value
        if held is not None and stale_seconds > 0:
            with self._state:
                since = self._stale_since.setdefault(key, time.monotonic())
            if time.monotonic() - since < stale_seconds:
                self._refresh_in_background(session, key)
                return held.value
        with self._lock:
            held = self._held.get(key)
            if held is not None and held.stamp == stamp:  # built by the request or thread we waited for
                return held.value
            return self._store(key, stamp, self._build(session, key))

    def _store(self, key: Hashable, stamp: Hashable, value: T | None) -> T | None:
        """Called with the build lock held."""
        self._held[key] = _Held(stamp, value)
        self._confirmed[key] = time.monotonic()
        self.builds += 1
        with self._state:
            self._stale_since.pop(key, None)
        return value

    def _refresh_in_background(self, session: Session, key: Hashable) -> None:
        with self._state:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
        engine = session.get_bind()  # the request's session stays with the request; the thread opens its own

        def refresh() -> None:
            try:
                with self._lock, Session(engine) as own:
                    stamp = self._stamp(own)
                    held = self._held.get(key)
                    if held is None or held.stamp != stamp:
                        self._store(key, stamp, self._build(own, key))
            except Exception:  # the old structure keeps serving; the next request that sees the change tries again
                log.exception("rebuilding %s in the background failed", self.name)
            finally:
                with self._state:
                    self._refreshing.discard(key)

        threading.Thread(target=refresh, name=f"rebuild-{self.name}", daemon=True).start()
