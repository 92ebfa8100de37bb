"""The public filing form on a real server never holds the event loop: the classification and the write run on the
thread pool, so a slow one delays no other request of the process (issue 16: the form classified on the loop, and
every /healthz and question waited behind it)."""

from __future__ import annotations

import threading
import time

import httpx

from chunfeng.appeals import intake
from tests.conftest import csrf_from
from tests.web.test_appeals_pages import FORM

SLOW = 2.0  # seconds one classification takes here: far beyond what a health check may wait


def test_a_slow_classification_does_not_delay_a_concurrent_healthz(with_plan, server, monkeypatch):
    classify = intake.classify
    started = threading.Event()

    def slow(*args, **kwargs):
        started.set()
        time.sleep(SLOW)  # blocking, as CPU-bound retrieval is: only another thread can run meanwhile
        return classify(*args, **kwargs)

    monkeypatch.setattr(intake, "classify", slow)
    client = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(client.get("/appeals/new").text)
    filed: list[httpx.Response] = []
    filing = threading.Thread(target=lambda: filed.append(
        client.post("/appeals/new", data={**FORM, "csrf_token": token})))
    filing.start()
    assert started.wait(10), "the filing never reached its classification"
    began = time.monotonic()
    health = httpx.get(f"{server}/healthz", timeout=30)
    waited = time.monotonic() - began
    filing.join(30)
    assert health.status_code == 200
    assert waited < SLOW / 2, f"/healthz waited {waited:.2f} s behind a filing's classification"
    assert filed and filed[0].status_code == 303 and "/appeals/track/" in filed[0].headers["location"]
