"""Lockout that neither tells which user names exist nor lets a stranger lock an official out; wrong current
passwords on /password count toward it; a password change or reset, or a second-factor reset, signs the user's
other sessions out. Over real HTTP, from two loopback addresses (127.0.0.1 is the official's desk, 127.0.0.2
the attacker)."""

from __future__ import annotations

import re
import statistics
import time

import httpx
from sqlalchemy import select

from chunfeng.org import services
from chunfeng.org.models import AuditEntry, User
from tests.conftest import PASSWORD, csrf_from, login

ATTACKER = "127.0.0.2"


def client_from(server: str, address: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(base_url=server, follow_redirects=False, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address))


def attempt(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/login", data={"username": username, "password": password, "next": "/",
                                       "csrf_token": csrf_from(client.get("/login").text)})


def error_of(response: httpx.Response) -> str:
    return re.sub(r"\d\d:\d\d", "HH:MM", re.search(r'class="error"[^>]*>([^<]*)<', response.text)[1])


def test_an_unknown_name_and_a_locked_one_answer_alike_and_a_stranger_locks_only_themselves(db, add_users, server):
    add_users({"alice": ("110000", ["viewer"])})
    attacker = client_from(server, ATTACKER)
    real = [attempt(attacker, "alice", f"wrong-{n}") for n in range(6)] + [attempt(attacker, "alice", PASSWORD)]
    ghost = [attempt(attacker, "ghost", f"wrong-{n}") for n in range(6)] + [attempt(attacker, "ghost", PASSWORD)]
    assert [r.status_code for r in real] == [r.status_code for r in ghost] == [401] * 7
    assert [error_of(r) for r in real] == [error_of(r) for r in ghost]  # the same answers, step by step
    assert "锁定" in error_of(real[4]) and "锁定" in error_of(real[6])  # locked, even with the right password
    # The official at their own desk is not locked out by the stranger.
    assert attempt(client_from(server), "alice", PASSWORD).status_code == 303
    assert attempt(attacker, "alice", PASSWORD).status_code == 401  # the stranger still is
    with db.read() as s:
        locked = list(s.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "org.login.locked")
                                .order_by(AuditEntry.seq)))  # PostgreSQL returns rows in no order without one
        assert locked == ["alice", "ghost"]
        assert {e.source for e in s.scalars(select(AuditEntry).where(AuditEntry.action.like("org.login.%"),
                                                                     AuditEntry.outcome == "failure"))} == {ATTACKER}


def test_a_known_locked_name_costs_what_an_unknown_one_costs(db, add_users):
    """Both run one Argon2 verification and the same bookkeeping: timing does not tell whether a name exists."""
    add_users({"bob": ("110000", ["viewer"])})

    def timed(username: str) -> float:
        with db.write() as s:
            started = time.perf_counter()
            services.attempt_login(session=s, username=username, password="wrong", source="10.9.9.9")
            return time.perf_counter() - started

    for name in ("bob", "nobody"):
        for _ in range(5):
            timed(name)  # both locked from 10.9.9.9 now
    known = statistics.median(timed("bob") for _ in range(7))
    unknown = statistics.median(timed("nobody") for _ in range(7))
    assert 0.5 < known / unknown < 2, (known, unknown)


def test_wrong_current_passwords_count_toward_the_lockout_and_are_audited(db, add_users, server):
    add_users({"carl": ("110000", ["viewer"])})
    stolen = login(server, "carl")  # a session someone else got hold of
    token = csrf_from(stolen.get("/password").text)
    answers = [stolen.post("/password", data={"current": f"Guess-{n}-pass", "new": "Brand-new-pass-1",
                                              "again": "Brand-new-pass-1", "csrf_token": token}) for n in range(5)]
    assert [r.status_code for r in answers] == [400] * 5
    assert "当前密码不正确" in answers[0].text and "锁定" in answers[4].text
    right = stolen.post("/password", data={"current": PASSWORD, "new": "Brand-new-pass-1", "again": "Brand-new-pass-1",
                                           "csrf_token": token})
    assert right.status_code == 400 and "锁定" in right.text  # no more guesses, not even a right one
    assert attempt(client_from(server), "carl", PASSWORD).status_code == 401  # nor a login from that address
    with db.read() as s:
        actions = [a for a, in s.execute(select(AuditEntry.action).where(AuditEntry.actor == "carl",
                                                                        AuditEntry.action.like("org.password.%"))
                                         .order_by(AuditEntry.seq))]
        assert actions == ["org.password.wrong_current"] * 5 + ["org.password.refused_locked"]
        user = s.scalar(select(User).where(User.username == "carl"))
        assert services.verify_password(user.password_hash, PASSWORD)  # unchanged


def test_other_sessions_end_at_a_password_change_or_reset_or_second_factor_reset(db, add_users, system, server):
    add_users({"dora": ("110000", ["viewer"]), "sec": ("110000", ["security_admin"])})
    laptop, phone = login(server, "dora"), login(server, "dora")
    token = csrf_from(laptop.get("/password").text)
    changed = laptop.post("/password", data={"current": PASSWORD, "new": "Brand-new-pass-1",
                                             "again": "Brand-new-pass-1", "csrf_token": token})
    assert changed.status_code == 303
    assert phone.get("/sessions").status_code == 303  # signed out
    assert laptop.get("/sessions").status_code == 200  # where the change was made stays

    other = login(server, "dora", "Brand-new-pass-1")
    with db.write() as s:  # an administrator's reset ends them all
        services.reset_password(session=s, actor=system, username="dora", new="Temporary-pass-9")
    assert laptop.get("/sessions").status_code == 303 and other.get("/sessions").status_code == 303

    again = login(server, "dora", "Temporary-pass-9")
    with db.write() as s:
        s.scalar(select(User).where(User.username == "dora")).totp_secret = "A" * 32
    sec = login(server, "sec")
    assert sec.post("/security/users/dora/totp-reset",
                    data={"csrf_token": csrf_from(sec.get("/security").text)}).status_code == 303
    assert again.get("/password").status_code == 303  # the session opened with the lost phone ended with it
    with db.read() as s:
        entries = {e.action: e.after for e in s.scalars(select(AuditEntry).where(AuditEntry.object_id == "dora"))}
        assert '"other_sessions_ended":1' in entries["org.password.changed"]
        assert '"sessions_ended":2' in entries["org.password.reset"]
        assert '"sessions_ended":1' in entries["org.totp.reset"]


def test_wrong_passwords_sent_at_once_all_count_and_none_fails(db, add_users, server):
    """Five wrong passwords in parallel from one address: each is answered as a wrong password (none as a server
    error from two requests creating the same failure row) and together they lock the address out."""
    from concurrent.futures import ThreadPoolExecutor

    add_users({"alice": ("110000", ["viewer"])})
    clients = [client_from(server, ATTACKER) for _ in range(5)]
    tokens = [csrf_from(client.get("/login").text) for client in clients]

    def wrong(n: int) -> int:
        return clients[n].post("/login", data={"username": "alice", "password": f"wrong-{n}", "next": "/",
                                               "csrf_token": tokens[n]}).status_code

    with ThreadPoolExecutor(5) as pool:
        codes = list(pool.map(wrong, range(5)))
    assert 500 not in codes and all(code in (401, 429) for code in codes), codes
    assert "锁定" in error_of(attempt(client_from(server, ATTACKER), "alice", PASSWORD))
