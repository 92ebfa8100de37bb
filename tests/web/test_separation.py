"""三员分立 over HTTP, as a matrix: who (actor role) changes whose roles (target) to what (requested roles), and
what the system administrator may do to administrator accounts. Each cell is allowed or refused; every refusal
changes nothing and is in the audit log as denied."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from chunfeng.org.models import AuditEntry, User
from chunfeng.org.roles import SEPARATED
from tests.conftest import csrf_from, login

ACCOUNTS = {
    "sec": ("000000", ["security_admin"]),
    "sec2": ("000000", ["security_admin"]),
    "sysadm": ("000000", ["admin"]),
    "auditor": ("000000", ["audit_admin"]),
    "officer": ("110000", ["service_officer"]),
    "clerk": ("110000", ["viewer"]),
    "fresh": ("110000", []),  # created by the system administrator, waiting for roles
}

REQUESTS = {
    "business": ["service_officer", "action_office"],
    "admin": ["admin"],
    "self-escalation": ["security_admin", "service_officer", "action_office"],
    "audit": ["audit_admin"],
    "two-admins": ["admin", "audit_admin"],
}


def expected(actor: str, target: str, roles: list[str]) -> int:
    """The rule, stated independently of the code: only a security administrator changes roles, never their own,
    never an administrator's, never to an administrator role."""
    if "security_admin" not in ACCOUNTS[actor][1]:
        return 403
    if actor == target or set(ACCOUNTS[target][1]) & SEPARATED or set(roles) & SEPARATED:
        return 403
    return 303


@pytest.fixture
def accounts(db, add_users):
    add_users(ACCOUNTS)


@pytest.fixture
def clients(server, accounts):
    made = {}

    def client(username: str):
        if username not in made:
            made[username] = login(server, username)
        return made[username]

    yield client
    for c in made.values():
        c.close()


@pytest.mark.parametrize("actor", ["sec", "sysadm", "auditor", "officer"])
def test_role_change_matrix(db, clients, actor):
    client = clients(actor)
    token = csrf_from(client.get("/sessions").text)
    for target in ("sec", "sec2", "sysadm", "auditor", "officer", "fresh"):
        for name, roles in REQUESTS.items():
            cell = f"{actor} → {target}: {name}"
            with db.read() as s:
                denied_before = s.query(AuditEntry).filter_by(actor=actor, outcome="denied").count()
            response = client.post(f"/security/users/{target}/roles", data={"csrf_token": token, "roles": roles})
            want = expected(actor, target, roles)
            assert response.status_code == want, (cell, response.text)
            with db.write() as s:
                account = s.scalar(select(User).where(User.username == target))
                held = account.role_set
                account.roles = ",".join(ACCOUNTS[target][1])  # the next cell starts from the same accounts
                denied = list(s.scalars(select(AuditEntry).where(AuditEntry.actor == actor, AuditEntry.outcome == "denied")
                                        .order_by(AuditEntry.seq)))
            if want == 303:
                assert held == set(roles), cell
                assert len(denied) == denied_before, cell
            else:
                assert held == set(ACCOUNTS[target][1]), cell  # nothing changed
                assert len(denied) == denied_before + 1, cell
                assert denied[-1].object_id == f"POST /security/users/{target}/roles", cell


def test_security_page_offers_only_what_the_rule_allows(clients):
    page = clients("sec").get("/security").text
    for fixed in ("sec", "sec2", "sysadm", "auditor"):
        assert f'action="/security/users/{fixed}/roles"' not in page
    for editable in ("officer", "clerk", "fresh"):
        assert f'action="/security/users/{editable}/roles"' in page
    assert "不能修改自己的角色" in page and "管理员角色只在创建账号时设定" in page
    form = page[page.index('action="/security/users/officer/roles"'):]
    form = form[:form.index("</form>")]
    assert 'value="service_officer"' in form and 'value="admin"' not in form and 'value="security_admin"' not in form


def test_system_admin_creates_accounts_without_roles_and_cannot_switch_off_administrators(db, clients):
    admin = clients("sysadm")
    page = admin.get("/org/units/000000").text
    assert 'name="roles"' not in page and "由安全管理员" in page
    assert 'action="/org/users/sec/active"' not in page and 'action="/org/users/auditor/active"' not in page
    token = csrf_from(page)
    form = {"csrf_token": token, "username": "shadow", "display_name": "影子", "password": "Start-2022-pw"}
    refused = admin.post("/org/units/110000/users", data={**form, "roles": ["service_officer"]})
    assert refused.status_code == 403 and "角色由安全管理员" in refused.text
    assert admin.post("/org/units/110000/users", data=form).status_code == 303
    with db.read() as s:
        assert s.scalar(select(User).where(User.username == "shadow")).role_set == set()
    # Nor can it grant the roles itself, nor switch off or take over an administrator, alone.
    assert admin.post("/security/users/shadow/roles", data={"csrf_token": token, "roles": ["service_officer"]}
                      ).status_code == 403
    for target in ("sec", "auditor", "sec2"):
        response = admin.post(f"/org/users/{target}/active", data={"csrf_token": token, "active": "false"})
        assert response.status_code == 403 and "服务器运维人员" in response.text
    assert admin.post("/org/users/clerk/active", data={"csrf_token": token, "active": "false"}).status_code == 303
    with db.read() as s:
        assert all(s.scalars(select(User.active).where(User.username.in_(["sec", "auditor", "sec2"]))))
        assert s.scalar(select(User).where(User.username == "shadow")).role_set == set()
        denied = list(s.scalars(select(AuditEntry.object_id).where(AuditEntry.actor == "sysadm",
                                                                   AuditEntry.outcome == "denied")
                                .order_by(AuditEntry.seq)))  # PostgreSQL returns rows in no order without one
        assert denied == ["POST /org/units/110000/users", "POST /security/users/shadow/roles",
                          "POST /org/users/sec/active", "POST /org/users/auditor/active", "POST /org/users/sec2/active"]
    # The security administrator then gives the new account its business roles: two people, not one.
    sec = clients("sec")
    assert sec.post("/security/users/shadow/roles", data={"csrf_token": csrf_from(sec.get("/security").text),
                                                         "roles": ["service_officer"]}).status_code == 303
    with db.read() as s:
        assert s.scalar(select(User).where(User.username == "shadow")).role_set == {"service_officer"}
