"""The security administrator's page over HTTP: accounts of the subtree, roles under 三员分立, unlocking,
resetting a lost second factor — each audited — and the refusals."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from chunfeng.db import utcnow
from chunfeng.org.models import AuditEntry, LoginFailure, User
from tests.conftest import PASSWORD, csrf_from, login


def test_security_admin_manages_accounts_of_the_subtree(db, server, add_users, county):
    add_users({"sec": ("110000", ["security_admin"]), "clerk": (county, ["viewer"]), "gd_clerk": ("440000", ["viewer"]),
               "sysadm": ("110000", ["admin"])})
    with db.write() as s:
        clerk = s.scalar(select(User).where(User.username == "clerk"))
        clerk.totp_secret = "A" * 32
        s.add(LoginFailure(username="clerk", source="10.1.2.3", failures=0, last_failure_at=utcnow(),
                           locked_until=utcnow() + timedelta(minutes=10)))
    sec = login(server, "sec")
    assert sec.get("/").headers["location"] == "/security"
    page = sec.get("/security").text
    assert "clerk" in page and "gd_clerk" not in page and "已锁定至" in page and "动态口令:已设置" in page
    assert "连续 5 次输错锁定 15 分钟" in page and "1 个来源地址" in page
    assert "clerk" in sec.get("/security", params={"q": "cle"}).text and "sysadm" not in sec.get("/security", params={"q": "cle"}).text
    token = csrf_from(page)

    assert sec.post("/security/users/clerk/unlock", data={"csrf_token": token}).status_code == 303
    assert sec.post("/security/users/clerk/totp-reset", data={"csrf_token": token}).status_code == 303
    assert sec.post("/security/users/clerk/roles", data={"csrf_token": token, "roles": ["viewer", "unit_reporter"]}
                    ).status_code == 303
    with db.read() as s:
        clerk = s.scalar(select(User).where(User.username == "clerk"))
        assert s.scalar(select(LoginFailure)) is None
        assert clerk.totp_secret is None and clerk.role_set == {"viewer", "unit_reporter"}
        actions = [a for a, in s.execute(select(AuditEntry.action).where(AuditEntry.actor == "sec", AuditEntry.action.like("org.user.%") | AuditEntry.action.like("org.totp.%")).order_by(AuditEntry.seq))]
        assert actions == ["org.user.unlocked", "org.totp.reset", "org.user.roles_changed"]

    combined = sec.post("/security/users/clerk/roles", data={"csrf_token": token, "roles": ["admin", "audit_admin"]})
    assert combined.status_code == 403 and "须由不同的人担任" in combined.text
    assert sec.post("/security/users/clerk/roles", data={"csrf_token": token}).status_code == 400  # no role at all
    assert sec.post("/security/users/gd_clerk/unlock", data={"csrf_token": token}).status_code == 403  # other province
    assert sec.post("/security/users/clerk/totp-reset", data={"csrf_token": token}).status_code == 400  # none left
    assert sec.post("/security/users/clerk/unlock").status_code == 403  # no CSRF token
    admin = login(server, "sysadm")  # the system administrator manages users, not their roles
    assert admin.get("/security").status_code == 403
    assert admin.post("/security/users/clerk/roles", data={"csrf_token": csrf_from(admin.get("/sessions").text),
                                                            "roles": ["admin"]}).status_code == 403
    with db.read() as s:
        assert s.scalar(select(User.roles).where(User.username == "sysadm")) == "admin"


def test_system_admin_disables_an_account_and_its_sessions_end(db, server, add_users, county):
    add_users({"bjadm": ("110000", ["admin"]), "leaver": (county, ["viewer"]), "gd_user": ("440000", ["viewer"])})
    leaver = login(server, "leaver")
    assert leaver.get("/sessions").status_code == 200
    admin = login(server, "bjadm")
    page = admin.get("/org/units/110000").text
    assert 'action="/org/users/leaver/active"' in page and 'action="/org/users/bjadm/active"' not in page
    token = csrf_from(page)
    assert admin.post("/org/users/leaver/active", data={"csrf_token": token, "active": "false"}).status_code == 303
    assert leaver.get("/sessions").status_code == 303  # the live session ended
    with httpx.Client(base_url=server) as visitor:
        form = {"username": "leaver", "password": PASSWORD, "csrf_token": csrf_from(visitor.get("/login").text)}
        assert visitor.post("/login", data=form).status_code == 401  # nor can it log in
    assert admin.post("/org/users/gd_user/active", data={"csrf_token": token, "active": "false"}).status_code == 403
    assert admin.post("/org/users/bjadm/active", data={"csrf_token": token, "active": "false"}).status_code == 400
    assert admin.post("/org/users/leaver/active", data={"csrf_token": token, "active": "true"}).status_code == 303
    assert login(server, "leaver").get("/sessions").status_code == 200
    with db.read() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == "leaver",
                                                                AuditEntry.action.like("org.user.%")).order_by(AuditEntry.seq)))
        assert actions == ["org.user.disabled", "org.user.enabled"]
        assert s.scalar(select(User.active).where(User.username == "gd_user"))
