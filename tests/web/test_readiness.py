"""A web process builds its indexes once, at start-up, and says so (web/readiness.py, chunfeng/preload.py).

The cold-start test starts a real `chunfeng serve` on this run's database (PostgreSQL when CHUNFENG_DATABASE_URL is
set, else a SQLite file), waits for /healthz 200 as a load balancer does, then sends 20 filings and 20 questions at
once: every one is answered, and the process built each index exactly once (its /healthz counts the builds). Before,
each of the first requests built its own at once (20 filings waited ~20 s each on PostgreSQL); the latencies are
printed here and measured in bench/cold_start.py, never asserted."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from chunfeng.consult import services as consult
from chunfeng.consult import transfer
from chunfeng.settings import Settings
from tests.conftest import TEST_DATA_KEY, serving
from tests.consult.test_services import kb  # noqa: F401  (the fixture)
from tests.test_replicas import Fleet

QUESTIONS = ["个税汇算什么时候办", "小规模纳税人增值税征收率是多少", "出口退税多久能到账", "发票丢了怎么办",
             "春风行动承诺出口退税要多少个工作日"]
COMPLAINTS = ["办税服务厅排队时间太长,窗口开得太少", "出口退税申报后很久没有到账,希望加快", "电子税务局申报期总是提示系统繁忙",
              "12366热线一直占线打不进去"]


def _settings(database, files, **changes) -> Settings:
    return Settings(database_url=database.url, secret_key="test-secret-not-for-production", environment="test",
                    data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(files), rate_limits={},
                    rate_ceilings={}, totp_required_roles=[], **changes)


def test_healthz_is_503_naming_what_is_loading_and_a_request_meanwhile_waits_for_the_one_build(
        kb, _database, tmp_path):  # noqa: F811
    with consult.INDEXES._lock:  # a build under way that takes its time: the knowledge base was just changed
        with serving(_database, _settings(_database, tmp_path, index_stale_seconds=0), ready=False) as url:
            builds = consult.INDEXES.builds
            loading = httpx.get(f"{url}/healthz")
            assert loading.status_code == 503 and loading.json()["status"] == "loading"
            # (the appeals' index loads beside it, on a thread of its own, and may be in already)
            assert "consult" in loading.json()["loading"] and "咨询检索索引" in loading.json()["detail"]
            with ThreadPoolExecutor(1) as pool:
                early = pool.submit(httpx.get, f"{url}/api/consult", params={"q": "个税汇算什么时候办"}, timeout=60)
                time.sleep(0.3)
                assert not early.done()  # waiting on the build, not answering without an index nor building its own
                consult.INDEXES._lock.release()
                try:
                    answer = early.result(timeout=60)
                finally:
                    consult.INDEXES._lock.acquire()
            assert answer.status_code == 200 and answer.json()["answers"][0]["id"] == "kb-0001"
            assert consult.INDEXES.builds == builds + 1  # the start-up's and the request's: one build
    with serving(_database, _settings(_database, tmp_path)) as url:  # ready: waited for 200
        health = httpx.get(f"{url}/healthz").json()
        assert health["status"] == "ok" and set(health["builds"]) == {"consult", "appeals", "survey"}


def test_after_a_change_the_public_is_answered_from_the_old_index_until_the_new_one_is_in(
        kb, _database, tmp_path, system):  # noqa: F811
    with serving(_database, _settings(_database, tmp_path, index_stale_seconds=60)) as url:
        assert httpx.get(f"{url}/api/consult", params={"q": "小狗疫苗怎么打"}).status_code == 200
        builds = consult.INDEXES.builds
        entry = {"id": "kb-0003", "question": "小狗的疫苗怎么打", "answer": "请咨询当地畜牧兽医部门。",
                 "basis": "测试", "region": "national", "effective_from": "2020-01-01"}
        path = tmp_path / "kb.json"
        path.write_text(json.dumps({"entries": [entry]}, ensure_ascii=False), encoding="utf-8")
        with kb.write() as s:
            transfer.import_entries(session=s, actor=system, path=path)
        deadline = time.monotonic() + 60
        while True:  # every answer meanwhile is a 200 from the previous index; then the new entry answers
            answer = httpx.get(f"{url}/api/consult", params={"q": "小狗疫苗怎么打"})
            assert answer.status_code == 200
            if answer.json()["answers"] and answer.json()["answers"][0]["id"] == "kb-0003":
                break
            assert time.monotonic() < deadline, "the rebuilt index never came in"
            time.sleep(0.05)
        assert consult.INDEXES.builds == builds + 1


@pytest.fixture
def cold_fleet(_database, tmp_path):
    files = tmp_path / "cold"
    env = {**os.environ, "CHUNFENG_DATABASE_URL": _database.url, "CHUNFENG_ENVIRONMENT": "test",
           "CHUNFENG_SECRET_KEY": "cold-start-secret", "CHUNFENG_DATA_KEY": TEST_DATA_KEY,
           "CHUNFENG_SCAN_INTERVAL_MINUTES": "0", "CHUNFENG_DATA_DIR": str(files / "files"),
           "CHUNFENG_PUSH_STORE": str(files / "taxpayers.duckdb"), "CHUNFENG_AUDIT_HEAD_FILE": str(files / "head.log"),
           "CHUNFENG_TOTP_REQUIRED_ROLES": "[]", "CHUNFENG_RATE_LIMITS": "{}", "CHUNFENG_RATE_CEILINGS": "{}"}
    files.mkdir()
    fleet = Fleet(env, files)
    yield fleet
    fleet.stop()


def test_a_burst_right_after_start_is_answered_by_indexes_built_once(with_plan, system, cold_fleet):
    with with_plan.write() as s:
        transfer.load_starter(session=s, actor=system)  # the shipped knowledge base: an index of a real size
    started = time.monotonic()
    (url,) = cold_fleet.serve(1)  # waits for /healthz 200
    ready = time.monotonic() - started
    barrier = threading.Barrier(40)

    def file(n: int) -> tuple[str, int, float]:
        body = {"kind": "complaint", "text": f"{COMPLAINTS[n % len(COMPLAINTS)]}(#{n})", "phone": f"1390000{n:04d}",
                "region": "110101"}
        barrier.wait()
        start = time.perf_counter()
        response = httpx.post(f"{url}/api/appeals", json=body, timeout=120)
        return "filing", response.status_code, time.perf_counter() - start

    def ask(n: int) -> tuple[str, int, float]:
        barrier.wait()
        start = time.perf_counter()
        response = httpx.get(f"{url}/api/consult", params={"q": QUESTIONS[n % len(QUESTIONS)]}, timeout=120)
        return "ask", response.status_code, time.perf_counter() - start

    with ThreadPoolExecutor(40) as pool:
        results = [f.result() for f in [pool.submit(file, n) for n in range(20)] + [pool.submit(ask, n) for n in range(20)]]
    for kind in ("filing", "ask"):
        seconds = sorted(s for k, _, s in results if k == kind)
        print(f"\n{kind}s at once after start ({with_plan.engine.dialect.name}, ready after {ready:.1f} s): "
              f"median {statistics.median(seconds) * 1000:.0f} ms, slowest {seconds[-1] * 1000:.0f} ms")
    assert sorted({(k, code) for k, code, _ in results}) == [("ask", 200), ("filing", 201)]
    health = httpx.get(f"{url}/healthz").json()
    assert health["status"] == "ok" and health["builds"] == {"consult": 1, "appeals": 1, "survey": 1}, health


def test_a_served_process_takes_what_it_preloaded_out_of_the_collectors_reach(kb, _database, tmp_path):  # noqa: F811
    """Issue 18: the answer page's p99 at 50 respondents was 500 ms whatever a request cost: each full garbage
    collection walked the ~300,000 objects of the loaded indexes, holding the interpreter for 450–510 ms. What
    `chunfeng serve` runs (web/server.run) freezes them once the process is ready; a collection then walks only
    what requests made since."""
    import gc

    from fastapi.testclient import TestClient

    from chunfeng.web.app import create_app
    from chunfeng.web.server import freeze_when_ready

    app = create_app(_database, _settings(_database, tmp_path))
    freeze_when_ready(app)
    try:
        with TestClient(app) as client:
            deadline = time.monotonic() + 120
            while client.get("/healthz").status_code != 200:
                assert time.monotonic() < deadline, "the indexes did not load"
                time.sleep(0.05)
            frozen = gc.get_freeze_count()
            assert frozen > 100_000 and len(gc.get_objects()) < frozen / 5
            assert client.get("/api/consult", params={"q": "个税汇算什么时候办"}).status_code == 200  # still answers
    finally:
        gc.unfreeze()  # the test process's heap goes back to the collector
