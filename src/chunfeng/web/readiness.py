"""A web process is ready when its shared indexes are in memory: they are built on a thread at start-up (the port
opens at once), and `/healthz` answers 503 naming what is still loading until then, so a load balancer sends the
process no citizen before it can answer as fast as it will the hundredth. A request that comes in anyway waits for
the one build under way (`chunfeng.preload`), never starts a second."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from chunfeng.appeals import intake
from chunfeng.consult import services as consult
from chunfeng.db import Database
from chunfeng.preload import Preloaded
from chunfeng.settings import Settings
from chunfeng.survey import routes as survey_pages

log = logging.getLogger(__name__)
RETRY_SECONDS = 5  # a database not yet reachable at start-up: try again, still not ready


class Readiness:
    """What this process loads before it is ready: a name for people and the call that loads it."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        # Called once, on the loading thread that finishes last: what the process does once it is ready (`chunfeng
        # serve` takes its heap out of the garbage collector's reach, web/server.py).
        self.on_ready: Callable[[], None] | None = None
        self._finishing = threading.Lock()
        model = settings.consult_embedding_model
        self.loads: dict[str, tuple[str, Preloaded, Callable[[Session], object]]] = {
            "consult": ("咨询检索索引", consult.INDEXES, lambda s: consult.index_for(s, embedding_model=model)),
            "appeals": ("诉求分类索引", intake.MEASURES, intake.measure_index),
            "survey": ("问卷答题页", survey_pages.PUBLIC_PAGE, lambda s: survey_pages.PUBLIC_PAGE.get(s, None)),
        }
        self.loaded: set[str] = set()  # only ever added to, by the loading thread
        self._stop = threading.Event()

    def start(self) -> None:
        # A thread each, started before the port opens: each has its build's lock before any request can ask.
        for name in self.loads:
            threading.Thread(target=self._load, args=(name,), name=f"preload-{name}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _load(self, name: str) -> None:
        load = self.loads[name][2]
        while not self._stop.is_set():
            try:
                with self.db.read() as session:
                    load(session)
                break
            except Exception:
                log.exception("loading the %s index at start-up failed; trying again in %s s", name, RETRY_SECONDS)
                self._stop.wait(RETRY_SECONDS)
        with self._finishing:
            self.loaded.add(name)
            if self.loaded == set(self.loads) and self.on_ready is not None:
                self.on_ready()

    def health(self) -> JSONResponse:
        """200 when ready, with how many times each index was built in this process (once, unless the knowledge
        base or the notice changed since); 503 with what is still loading."""
        schema = self.db.schema_version()
        loading = [name for name in self.loads if name not in self.loaded]
        if loading:
            names = "、".join(self.loads[name][0] for name in loading)
            return JSONResponse({"status": "loading", "schema": schema, "loading": loading,
                                 "detail": f"正在加载{names},请稍候"}, status_code=503)
        builds = {name: preloaded.builds for name, (_, preloaded, _) in self.loads.items()}
        return JSONResponse({"status": "ok", "schema": schema, "builds": builds})
