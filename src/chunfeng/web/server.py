"""Serving the application: the one uvicorn configuration that `chunfeng serve` and the test servers use."""

from __future__ import annotations

import gc
import logging
import re

import uvicorn
from fastapi import FastAPI

from chunfeng.settings import Settings

# A tracking token opens an appeal's page to whoever holds it, and query strings carry what citizens type (the
# consultation's questions): neither belongs in an access log that operators, backups and log shippers all read.
_TOKEN_PATH = re.compile(r"^(/appeals/track/)[^/?]+")
_HARMLESS_PARAMETERS = {"page", "per_page", "fmt", "new", "rated", "done", "ended", "totp", "password"}


def redact(target: str) -> str:
    """A request target fit for the access log: tracking tokens and query values (bar a few harmless ones) masked."""
    path, mark, query = target.partition("?")
    path = _TOKEN_PATH.sub(r"\1***", path)
    if not mark:
        return path
    items = []
    for item in query.split("&"):
        key, equals, _ = item.partition("=")
        items.append(item if key in _HARMLESS_PARAMETERS else f"{key}=***" if equals else "***")
    return path + "?" + "&".join(items)


class RedactedAccessLog(logging.Filter):
    """Rewrites uvicorn's access record (client, method, target, HTTP version, status) with the target redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, target, version, status = record.args
            record.args = (client, method, redact(str(target)), version, status)
        return True


ACCESS_LOG_FILTER = RedactedAccessLog()


def uvicorn_config(app: FastAPI, settings: Settings, *, host: str | None = None, port: int | None = None,
                   log_level: str = "info") -> uvicorn.Config:
    config = uvicorn.Config(
        app, host=host or settings.host, port=port or settings.port, log_level=log_level,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default, which let a local caller choose the address
        # the rate limits count and the audit log records. The app applies forwarded headers itself, and only from
        # the proxies CHUNFENG_TRUSTED_PROXIES names (see create_app).
        proxy_headers=False,
        server_header=False,  # no "server: uvicorn": the software is nobody's business
        # httptools and uvloop (main dependencies) when installed: HTTP parsed in C, not h11's pure Python (issue 16).
        http="auto", loop="auto",
    )
    logging.getLogger("uvicorn.access").addFilter(ACCESS_LOG_FILTER)  # after the Config set up logging; added once
    return config


def freeze_when_ready(app: FastAPI) -> None:
    """Once the process's indexes are loaded, everything alive then (the indexes, the tokenizer's dictionary, the
    modules: some 300,000 objects) leaves the garbage collector's generations. Each full collection walked them
    all, holding the interpreter for 450–510 ms: the answer page's p99 at 50 respondents (issue 18), however
    little a request itself cost. They live as long as the process, so nothing is lost by not walking them; the
    garbage of the start-up is collected first rather than frozen with them."""
    def freeze() -> None:
        gc.collect()
        gc.freeze()

    app.state.readiness.on_ready = freeze


def run(app: FastAPI, settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    freeze_when_ready(app)
    uvicorn.Server(uvicorn_config(app, settings, host=host, port=port)).run()
