"""Units and users on a real database: the built-in hierarchy, all-or-nothing imports, user creation, login."""

from __future__ import annotations

import re

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from chunfeng.org import services, unit_import
from chunfeng.org.errors import AuthenticationFailed, ValidationFailed
from chunfeng.org.models import AuditEntry, Unit, User
from tests.conftest import PASSWORD


def unit_count(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(Unit))


def test_builtin_hierarchy(db):
    with db.read() as s:
        levels = dict(s.execute(select(Unit.level, func.count()).group_by(Unit.level)).all())
        assert levels == {"national": 1, "department": 18, "province": 36}
        names = set(s.scalars(select(Unit.name).where(Unit.level == "province")))
        for region in ("北京市", "内蒙古自治区", "广西壮族自治区", "新疆维吾尔自治区", "大连市", "宁波市", "厦门市", "青岛市", "深圳市"):
            assert f"国家税务总局{region}税务局" in names
        national = s.scalar(select(Unit).where(Unit.level == "national"))
        assert national.name == "国家税务总局"
        assert all(u.parent_id == national.id for u in s.scalars(select(Unit).where(Unit.level != "national")))
    with db.write() as s:
        assert services.ensure_builtin_units(session=s) == 0  # idempotent


def test_import_csv_in_any_order(db, system, tmp_path):
    csv = tmp_path / "units.csv"
    csv.write_text("code,parent_code,name,level\n"
                   "44030001,440301,福田测试分局,分局\n"  # child before parent
                   "440301,440300,深圳测试区税务局,county\n", encoding="gb18030")
    with db.write() as s:
        assert unit_import.import_units(session=s, actor=system, path=csv) == 2
    with db.read() as s:
        branch = services.find_unit(session=s, code="44030001")
        assert branch.path == "000000/440300/440301/44030001/" and branch.level == "branch"


def test_import_xlsx(db, system, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["单位代码", "上级代码", "单位名称", "层级"])
    sheet.append(["320100", "320000", "南京测试市税务局", "市级"])
    sheet.append(["320102", "320100", "玄武测试区税务局", "县级"])
    path = tmp_path / "units.xlsx"
    book.save(path)
    with db.write() as s:
        assert unit_import.import_units(session=s, actor=system, path=path) == 2
    assert unit_count(db) == 55 + 2


def test_import_errors_name_each_row_and_store_nothing(db, system, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("代码,上级代码,名称,层级\n"
                   "330100,330000,杭州测试市税务局,市级\n"        # row 2: fine
                   "330101,999999,无名上级,县级\n"               # row 3: unknown parent
                   "330102,330100,,县级\n"                       # row 4: no name
                   "330103,330100,某某局,省级\n"                 # row 5: bad level
                   "330100,330000,重复,市级\n"                   # row 6: duplicate of row 2
                   "110000,000000,北京,市级\n"                   # row 7: existing code
                   "330104,330000,分局直属,分局\n",              # row 8: branch under a province
                   encoding="utf-8")
    before = unit_count(db)
    with pytest.raises(ValidationFailed) as err:
        with db.write() as s:
            unit_import.import_units(session=s, actor=system, path=csv)
    message = str(err.value)
    for expected in ("第 3 行:上级代码“999999”", "第 4 行:名称为空", "第 5 行:层级“省级”", "第 6 行:代码“330100”与第 2 行重复",
                     "第 7 行:代码“110000”已存在", "第 8 行:税务分局（所）不能隶属于省级税务局"):
        assert expected in message
    assert "第 2 行" not in message.replace("与第 2 行", "")
    rows = [int(m) for m in re.findall(r"^第 (\d+) 行", message, re.M)]
    assert rows == sorted(rows)
    assert unit_count(db) == before


@pytest.mark.parametrize("content, expected", [
    (b"", "文件为空"),
    ("名称,层级\n某局,市级\n".encode(), "表头缺少列 code、parent_code"),
    (b"\x00\x01\x02binary", "二进制"),
    ("代码,上级代码,名称,层级\n".encode(), "没有数据行"),
])
def test_import_unreadable_files(db, system, tmp_path, content, expected):
    path = tmp_path / "units.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationFailed, match=expected):
        with db.write() as s:
            unit_import.import_units(session=s, actor=system, path=path)
    assert unit_count(db) == 55


def test_import_outside_own_subtree_is_refused(db, make_user, county, tmp_path):
    from chunfeng.org.errors import Forbidden

    make_user("bj_admin", "110000", ["admin"])
    csv = tmp_path / "units.csv"
    csv.write_text("代码,上级代码,名称,层级\n440100,440000,广州测试市税务局,市级\n", encoding="utf-8")
    with pytest.raises(Forbidden, match="不在您所在单位“国家税务总局北京市税务局”的管辖范围内"):
        with db.write() as s:
            user = s.scalar(select(User).where(User.username == "bj_admin"))
            unit_import.import_units(session=s, actor=user, path=csv)
    with db.read() as s:
        assert s.scalar(select(Unit).where(Unit.code == "440100")) is None


def test_add_user_and_authenticate(db, make_user):
    make_user("alice", "110000", ["unit_reporter", "viewer"])
    with db.read() as s:
        user = services.authenticate(session=s, username="alice", password=PASSWORD)
        assert user.role_set == {"unit_reporter", "viewer"} and user.unit.code == "110000"
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
        with pytest.raises(AuthenticationFailed):
            services.authenticate(session=s, username="alice", password="wrong-password-1")
        with pytest.raises(AuthenticationFailed):
            services.authenticate(session=s, username="nobody", password=PASSWORD)
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "org.user.created")).one()
        assert entry.object_id == "alice" and "argon2" not in entry.after


@pytest.mark.parametrize("username, unit, roles, password, expected", [
    ("bad name", "110000", ["viewer"], PASSWORD, "用户名“bad name”不合规"),
    ("bob", "110000", ["emperor"], PASSWORD, "未知角色:emperor"),
    ("bob", "110000", ["viewer"], "short1", "至少需要 10 位"),
    ("bob", "110000", ["viewer"], "onlylettersandmore", "至少三类"),
])
def test_add_user_refusals(db, system, username, unit, roles, password, expected):
    with pytest.raises(ValidationFailed, match=expected):
        with db.write() as s:
            services.add_user(session=s, actor=system, username=username, display_name="", unit_code=unit,
                              roles=roles, password=password)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_duplicate_user_and_unknown_unit(db, make_user, system):
    from chunfeng.org.errors import NotFound

    make_user("carol", "110000", ["viewer"])
    with pytest.raises(ValidationFailed, match="已存在"):
        with db.write() as s:
            services.add_user(session=s, actor=system, username="carol", display_name="", unit_code="110000",
                              roles=["viewer"], password=PASSWORD)
    with pytest.raises(NotFound, match="999"):
        with db.write() as s:
            services.add_user(session=s, actor=system, username="dave", display_name="", unit_code="999",
                              roles=["viewer"], password=PASSWORD)


def test_child_listing_paginates_and_searches(db, system, county):
    with db.read() as s:
        root = services.find_unit(session=s, code="000000")
        first = services.list_child_units(session=s, actor=system, unit=root, per_page=20)
        assert first.total == 54 and len(first.items) == 20 and first.pages == 3
        found = services.list_child_units(session=s, actor=system, unit=root, query="北京测试")
        assert [u.code for u in found.items] == ["110100", "110101"]


def test_three_administrators_are_three_people(db, system, make_user):
    from chunfeng.org.errors import Forbidden

    with pytest.raises(Forbidden, match="不能兼任"), db.write() as s:
        services.add_user(session=s, actor=system, username="both", display_name="", unit_code="000000",
                          roles=["admin", "audit_admin"], password=PASSWORD)
    with pytest.raises(Forbidden, match="不能兼任业务角色"), db.write() as s:
        services.add_user(session=s, actor=system, username="nosy", display_name="", unit_code="000000",
                          roles=["audit_admin", "viewer"], password=PASSWORD)
    make_user("sys", "000000", ["admin"])
    make_user("sec", "000000", ["security_admin"])
    make_user("staff", "110000", ["viewer"])
    with db.write() as s:
        sysadmin = s.scalar(select(User).where(User.username == "sys"))
        with pytest.raises(Forbidden, match="角色由安全管理员"):
            services.add_user(session=s, actor=sysadmin, username="aud", display_name="", unit_code="000000",
                              roles=["audit_admin"], password=PASSWORD)
        with pytest.raises(Forbidden):
            services.set_roles(session=s, actor=sysadmin, username="staff", roles=["viewer", "unit_reporter"])
    with db.write() as s:
        security = s.scalar(select(User).where(User.username == "sec"))
        services.set_roles(session=s, actor=security, username="staff", roles=["viewer", "unit_reporter"])
        with pytest.raises(Forbidden, match="不能兼任"):
            services.set_roles(session=s, actor=security, username="staff", roles=["admin", "security_admin"])
        with pytest.raises(Forbidden, match="自己的角色"):
            services.set_roles(session=s, actor=security, username="sec", roles=["security_admin", "service_officer"])
        with pytest.raises(Forbidden, match="创建账号时设定"):
            services.set_roles(session=s, actor=security, username="sys", roles=["audit_admin"])
    with db.read() as s:
        assert s.scalar(select(User.roles).where(User.username == "staff")) == "viewer,unit_reporter"
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "org.user.roles_changed"))
        assert entry.actor == "sec" and "unit_reporter" in entry.after and "viewer" in entry.before
