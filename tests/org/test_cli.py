"""`chunfeng org …` and `chunfeng user …` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import func, select

from chunfeng.db import Database
from chunfeng.demo import synthetic_units
from chunfeng.org.models import Unit, User
from chunfeng.org.services import ensure_builtin_units


def run(db, *args, **env):
    return subprocess.run([sys.executable, "-m", "chunfeng", *args], capture_output=True, text=True,
                          env={**os.environ, "CHUNFENG_DATABASE_URL": db.url, **env})


def test_org_import_and_list(db, tmp_path):
    good = tmp_path / "units.csv"
    good.write_text("代码,上级代码,名称,层级\n370100,370000,济南测试市税务局,市级\n", encoding="utf-8")
    result = run(db, "org", "import", str(good))
    assert result.returncode == 0 and "已导入 1 个单位" in result.stdout
    listing = run(db, "org", "units", "370000")
    assert "济南测试市税务局" in listing.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("代码,上级代码,名称,层级\n370101,370100,历下,镇级\n", encoding="utf-8")
    refused = run(db, "org", "import", str(bad))
    assert refused.returncode == 1 and "第 2 行" in refused.stderr and "镇级" in refused.stderr


def test_user_add(db):
    result = run(db, "user", "add", "li", "--unit", "370000", "--role", "viewer", "--role", "unit_reporter",
                 "--name", "李四", CHUNFENG_NEW_PASSWORD="Li-si-2022-pw")
    assert result.returncode == 0, result.stderr
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == "li"))
        assert user.display_name == "李四" and user.role_set == {"viewer", "unit_reporter"}
        assert user.password_hash.startswith("$argon2id$")
    weak = run(db, "user", "add", "wang", "--unit", "370000", "--role", "viewer", CHUNFENG_NEW_PASSWORD="123")
    assert weak.returncode == 1 and "至少需要 10 位" in weak.stderr
    unknown = run(db, "user", "add", "zhao", "--unit", "999999", "--role", "viewer", CHUNFENG_NEW_PASSWORD="Zhao-2022-pw")
    assert unknown.returncode == 1 and "999999" in unknown.stderr
    refused = run(db, "--as", "li", "user", "add", "sun", "--unit", "370000", "--role", "admin",
                  CHUNFENG_NEW_PASSWORD="Sun-2022-pw")
    assert refused.returncode == 1 and "无权" in refused.stderr
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 1


def test_synthetic_organisation_is_reproducible(tmp_path):
    names = []
    for i in range(2):
        other = Database(f"sqlite:///{tmp_path / f'demo{i}.db'}")
        other.upgrade()
        with other.write() as s:
            ensure_builtin_units(session=s)
            synthetic_units(session=s)
        with other.read() as s:
            names.append(list(s.execute(select(Unit.code, Unit.name, Unit.path).where(Unit.synthetic.is_(True))
                                        .order_by(Unit.code))))
        other.dispose()
    assert names[0] == names[1] and len(names[0]) == 36 * 15


def test_separation_on_the_command_line(db, add_users):
    """The rule of tests/web/test_separation.py through `chunfeng --as …`: the same refusals, audited as denied."""
    from chunfeng.org.models import AuditEntry

    add_users({"security": ("000000", ["security_admin"]), "sysadm": ("000000", ["admin"]),
               "auditor": ("000000", ["audit_admin"]), "clerk": ("110000", ["viewer"])})
    cells = [  # (acting as, command, allowed)
        ("security", ["user", "roles", "security", "--role", "security_admin", "--role", "service_officer"], False),
        ("security", ["user", "roles", "security", "--role", "admin"], False),
        ("security", ["user", "roles", "sysadm", "--role", "security_admin"], False),
        ("security", ["user", "roles", "clerk", "--role", "admin"], False),
        ("security", ["user", "roles", "clerk", "--role", "audit_admin", "--role", "viewer"], False),
        ("sysadm", ["user", "roles", "clerk", "--role", "service_officer"], False),
        ("sysadm", ["user", "add", "mine", "--unit", "110000", "--role", "service_officer"], False),
        ("sysadm", ["user", "disable", "security"], False),
        ("sysadm", ["user", "disable", "auditor"], False),
        ("security", ["user", "roles", "clerk", "--role", "service_officer"], True),
        ("sysadm", ["user", "add", "mine", "--unit", "110000"], True),
    ]
    for who, command, allowed in cells:
        result = run(db, "--as", who, *command, CHUNFENG_NEW_PASSWORD="Start-2022-pw")
        assert (result.returncode == 0) == allowed, (who, command, result.stderr)
    operator = run(db, "user", "disable", "auditor")  # the server's operator, at the command line, may
    assert operator.returncode == 0, operator.stderr
    with db.read() as s:
        roles = dict(s.execute(select(User.username, User.roles)).all())
        assert roles == {"security": "security_admin", "sysadm": "admin", "auditor": "audit_admin",
                         "clerk": "service_officer", "mine": ""}
        assert s.scalar(select(User.active).where(User.username == "security"))
        denied = list(s.execute(select(AuditEntry.actor, AuditEntry.object_id).where(AuditEntry.outcome == "denied")
                                .order_by(AuditEntry.seq)))
        assert [actor for actor, _ in denied] == [who for who, _, allowed in cells if not allowed]
        assert denied[0][1] == "chunfeng --as security user roles security --role security_admin --role service_officer"
