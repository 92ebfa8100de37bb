"""Imports over HTTP under the caps of issue 11: a zip bomb and a file of problems are refused with a short,
clear page, and a file is parsed and checked before the import takes the database's write lock."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from chunfeng.jobs import JobRun
from tests.conftest import csrf_from, finished, login
from tests.test_tabular import hostile_xlsx


def _admin(server, make_user):
    client = login(server, make_user("bjadmin", "110000", ["admin"]))
    return client, csrf_from(client.get("/org/units/110000").text)


def test_zip_bomb_refused_quickly(db, server, make_user, tmp_path):
    client, token = _admin(server, make_user)
    bomb = hostile_xlsx(tmp_path, "units.xlsx", "<row><c><v>1</v></c></row>", 2_000_000).read_bytes()
    started = time.monotonic()
    response = finished(client, client.post("/org/units/110000/import", data={"csrf_token": token},
                                            files={"file": ("units.xlsx", bomb, "application/octet-stream")}))
    assert response.status_code == 400 and "压缩比" in response.text and "超过上限 100:1" in response.text
    assert time.monotonic() - started < 10  # before: a minute, holding the write lock every page view needs


def test_problems_listed_up_to_a_hundred_with_the_count(db, server, make_user):
    client, token = _admin(server, make_user)
    rows = "".join(f"1101{n:04d},110000,,市级\n" for n in range(5000))  # every row: 名称为空
    response = finished(client, client.post("/org/units/110000/import", data={"csrf_token": token}, files={
        "file": ("units.csv", ("代码,上级代码,名称,层级\n" + rows).encode(), "text/csv")}))
    assert response.status_code == 400
    assert "共 5000 处问题" in response.text and "另有 4900 处问题未列出" in response.text
    assert "第 101 行:名称为空" in response.text and "第 102 行:名称为空" not in response.text
    assert len(response.content) < 100_000  # before: every problem listed (14 MB for the attacker's file)


def test_too_many_rows_refused(db, server, make_user):
    client, token = _admin(server, make_user)
    rows = "".join(f"1101{n:05d},110000,某局,市级\n" for n in range(50_001))
    response = finished(client, client.post("/org/units/110000/import", data={"csrf_token": token}, files={
        "file": ("units.csv", ("代码,上级代码,名称,层级\n" + rows).encode(), "text/csv")}))
    assert response.status_code == 400 and "超过 50000 行数据的上限" in response.text


def test_hotline_and_knowledge_imports_list_at_most_a_hundred(db, server, make_user):
    agent = login(server, make_user("agent1", "110000", ["agent"]))
    token = csrf_from(agent.get("/consult/kb").text)
    bad_calls = "类型,内容,地区代码,电话\n" + "诉求,,110101,13800138000\n" * 300  # every row: 请填写内容
    response = finished(agent, agent.post("/appeals/import", data={"csrf_token": token},
                                          files={"file": ("calls.csv", bad_calls.encode(), "text/csv")}))
    assert response.status_code == 400 and "共 300 处问题" in response.text and "另有 200 处" in response.text
    bad_entries = "问题,答案\n" + "怎么申报,\n" * 300  # every row: 答案为空
    response = finished(agent, agent.post("/consult/kb/import", data={"csrf_token": token},
                                          files={"file": ("kb.csv", bad_entries.encode(), "text/csv")}))
    assert response.status_code == 400 and "共 300 处问题" in response.text and "另有 200 处" in response.text


def test_no_write_lock_while_a_file_is_parsed(db, server, make_user):
    """While the server parses and checks a large file, another connection can take SQLite's write lock at any
    moment (so every signed-in page view, which writes its session, goes on). Before the fix the import held
    the lock from its first row to its last."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL has no database-wide write lock; the ordering is the same code")
    client, token = _admin(server, make_user)
    rows = "".join(f"1101{n:05d},110000,某局,市级\n" for n in range(49_999)) + "110199999,110000,,市级\n"
    body = ("代码,上级代码,名称,层级\n" + rows).encode()
    outcome = {}

    def upload():
        started = client.post("/org/units/110000/import", data={"csrf_token": token},
                              files={"file": ("units.csv", body, "text/csv")})
        run_id = int(started.headers["location"].rsplit("/", 1)[1])
        while True:  # watched in the database: polling its page would write the session each time
            with db.read() as s:
                if s.get(JobRun, run_id).state != "running":
                    break
            time.sleep(0.05)
        outcome["response"] = finished(client, started)

    probe = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    taken = refused = 0
    worker = threading.Thread(target=upload)
    worker.start()
    while worker.is_alive():
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            taken += 1
        except sqlite3.OperationalError:  # "database is locked": someone holds the write lock now
            refused += 1
        time.sleep(0.01)
    worker.join()
    probe.close()
    response = outcome["response"]
    assert response.status_code == 400 and "第 50001 行:名称为空" in response.text
    assert refused <= 3, (taken, refused)  # only the requests' own session writes and the run's record, moments
    assert taken >= 10, (taken, refused)  # the parse lasted long enough to be probed
