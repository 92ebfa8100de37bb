"""Unit pages over HTTP: subtree access, search and pagination, import by upload, the audit page."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import delete, func, select

from chunfeng.org import audit_names
from chunfeng.org.models import AuditEntry, Unit
from tests.conftest import csrf_from, finished, login


def test_county_user_sees_only_own_subtree(db, server, make_user, county):
    client = login(server, make_user("cu", county, ["unit_reporter"]))
    assert client.get("/org").headers["location"] == f"/org/units/{county}"
    assert client.get(f"/org/units/{county}").status_code == 200
    for other in ("440000", "110000", "000000", "110100"):
        response = client.get(f"/org/units/{other}")
        assert response.status_code == 403 and "无权访问" in response.text
        assert "广东" not in response.text
    assert client.get("/org/units/440000/export.xlsx").status_code == 403
    assert client.get("/org/units/nope").status_code == 404
    assert client.get("/audit").status_code == 403


def test_province_user_sees_children(db, server, make_user, county):
    client = login(server, make_user("pv", "110000", ["viewer"]))
    page = client.get("/org/units/110000").text
    assert "北京测试市税务局" in page and "导入下级单位" not in page and "本单位及下级的用户" not in page
    assert client.get(f"/org/units/{county}").status_code == 200
    found = client.get("/org/units/110000", params={"q": "测试县"}).text
    assert "北京测试县税务局" in found


def test_national_pagination_and_export(db, server, make_user):
    client = login(server, make_user("nat", "000000", ["viewer"]))
    page = client.get("/org/units/000000").text
    assert "第 1 / 2 页,共 54 条" in page
    assert "国家税务总局深圳市税务局" in client.get("/org/units/000000", params={"page": 2}).text
    sheet = load_workbook(io.BytesIO(client.get("/org/units/000000/export.xlsx").content), read_only=True).worksheets[0]
    assert len(list(sheet.iter_rows(values_only=True))) == 55


def test_admin_imports_units_by_upload(db, server, make_user):
    client = login(server, make_user("bjadmin", "110000", ["admin"]))
    page = client.get("/org/units/110000").text
    assert "导入下级单位" in page
    token = csrf_from(page)
    good = "代码,上级代码,名称,层级\n110200,110000,北京上传市税务局,市级\n".encode()
    response = finished(client, client.post("/org/units/110000/import", data={"csrf_token": token},
                                            files={"file": ("units.csv", good, "text/csv")}))
    assert response.status_code == 200 and 'href="/org/units/110000?imported=1"' in response.text
    bad = "代码,上级代码,名称,层级\n110300,110000,北京,市级\n110301,110300,,县级\n".encode()
    response = finished(client, client.post("/org/units/110000/import", data={"csrf_token": token},
                                            files={"file": ("bad.csv", bad, "text/csv")}))
    assert response.status_code == 400 and "第 3 行:名称为空" in response.text
    outside = "代码,上级代码,名称,层级\n440200,440000,广东,市级\n".encode()
    response = client.post("/org/units/440000/import", data={"csrf_token": token},
                           files={"file": ("x.csv", outside, "text/csv")})
    assert response.status_code == 403
    no_token = client.post("/org/units/110000/import", files={"file": ("units.csv", good, "text/csv")})
    assert no_token.status_code == 403
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Unit).where(Unit.code.in_(["110300", "110301", "440200"]))) == 0
        assert s.scalar(select(Unit.name).where(Unit.code == "110200")) == "北京上传市税务局"


def test_viewer_cannot_import(db, server, make_user):
    client = login(server, make_user("bjview", "110000", ["viewer"]))
    token = csrf_from(client.get("/org/units/110000").text)
    response = client.post("/org/units/110000/import", data={"csrf_token": token},
                           files={"file": ("u.csv", "代码,上级代码,名称,层级\n110200,110000,x,市级\n".encode(), "text/csv")})
    assert response.status_code == 403


def test_audit_page(db, server, make_user, county):
    client = login(server, make_user("root", "000000", ["audit_admin"]))
    page = client.get("/audit").text
    assert "哈希链(SM3)完整" in page and "org.units.imported" in page and "org.user.created" in page
    # Issue 14.10: said in Chinese, in Beijing time, the change as fields rather than JSON (the code stays as a title).
    assert "账户·导入下级单位" in page and "账户·新建用户" in page and "时间(北京时间)" in page
    newest = re.search(r'<td class="nowrap">([^<]+)</td>', page)[1]
    with db.read() as s:
        stored = s.scalar(select(AuditEntry.at).order_by(AuditEntry.seq.desc()).limit(1))
    assert newest == audit_names.beijing_time(stored) != stored[:19].replace("T", " ")
    cells = re.findall(r'<td class="changes">(.*?)</td>', page, re.S)
    assert cells and not any("{" in cell for cell in cells)
    province_admin = login(server, make_user("bjroot", "110000", ["audit_admin"]))
    page = province_admin.get("/audit").text
    assert "哈希链" not in page and "org.units.imported" not in page  # done by the system at the national level
    with db.write() as s:  # someone with the database deletes the newest entries: the head outside it shows that
        newest = s.scalar(select(func.max(AuditEntry.seq)))
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= newest - 1))
    page = client.get("/audit").text
    assert "哈希链断裂" in page and ("截断" in page or "与链头不符" in page)


def test_admin_adds_a_user_in_own_subtree_only(db, server, make_user, county):
    client = login(server, make_user("bjadmin2", "110000", ["admin"]))
    token = csrf_from(client.get("/org/units/110000").text)
    form = {"csrf_token": token, "username": "newbie", "display_name": "新同事", "password": "Start-2022-pw"}
    response = client.post(f"/org/units/{county}/users", data=form)
    assert response.status_code == 303 and "added=newbie" in response.headers["location"]
    assert "新同事" in client.get("/org/units/110000").text
    login(server, "newbie", "Start-2022-pw")  # the new user can log in
    bad = client.post(f"/org/units/{county}/users", data={**form, "username": "x y", "password": "short"})
    assert bad.status_code == 400 and "不合规" in bad.text and "至少需要 10 位" in bad.text
    outside = client.post("/org/units/440000/users", data={**form, "username": "intruder"})
    assert outside.status_code == 403
    viewer = login(server, make_user("bjviewer2", "110000", ["viewer"]))
    assert "新增用户" not in viewer.get("/org/units/110000").text
    refused = viewer.post("/org/units/110000/users", data={**form, "csrf_token": csrf_from(viewer.get("/login").text),
                                                           "username": "sneaky"})
    assert refused.status_code == 403
    with db.read() as s:
        from chunfeng.org.models import User
        assert set(s.scalars(select(User.username))) == {"bjadmin2", "newbie", "bjviewer2"}


def test_audit_export(db, server, make_user, county):
    client = login(server, make_user("root2", "000000", ["audit_admin"]))
    response = client.get("/audit/export.xlsx", params={"action": "org.user"})
    rows = list(load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[0][:7] == ("序号", "时间(UTC)", "操作人", "单位", "操作", "结果", "来源地址")
    assert [r[4] for r in rows[1:]] == ["org.user.created"] and rows[1][8] == "root2"
    assert login(server, make_user("nosy", "000000", ["viewer"])).get("/audit/export.xlsx").status_code == 403
    # 三员分立: the system administrator cannot read the log, and the audit administrator can read nothing else.
    assert login(server, make_user("sysadmin", "000000", ["admin"])).get("/audit").status_code == 403
    assert client.get("/plan").status_code == 403 and client.get("/org/units/000000").status_code == 403


def test_refusals_and_exports_are_in_the_audit_log_with_outcome_and_source(db, server, make_user, county):
    import gzip
    import json

    auditor = login(server, make_user("root3", "000000", ["audit_admin"]))
    assert auditor.get("/plan").status_code == 403  # the audit administrator reads the log and nothing else
    page = auditor.get("/audit", params={"outcome": "denied"}).text
    assert "access.denied" in page and "GET /plan" in page and "127.0.0.1" in page and "拒绝" in page
    assert "org.user.created" not in page
    assert auditor.get("/audit", params={"outcome": "nonsense"}).status_code == 400
    auditor.get("/audit/export.xlsx")
    archive = auditor.get("/audit/archive", params={"since": "2020-01-01"})
    assert archive.status_code == 200
    lines = gzip.decompress(archive.content).decode().splitlines()
    assert json.loads(lines[0])["format"] == "chunfeng-audit-archive/1"
    assert any(json.loads(line)["action"] == "access.denied" for line in lines[1:])
    assert auditor.get("/audit/archive", params={"since": "去年"}).status_code == 400
    provincial = login(server, make_user("bjroot3", "110000", ["audit_admin"]))
    assert provincial.get("/audit/archive").status_code == 403  # the chain is national
    with db.read() as s:
        exports = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "audit.exported").order_by(AuditEntry.seq)))
        assert [e.object_type for e in exports] == ["xlsx", "archive"]
        assert {(e.actor, e.outcome, e.source) for e in exports} == {("root3", "success", "127.0.0.1")}


def test_download_files_are_deleted_once_sent(db, server, make_user):
    import tempfile
    import time
    from pathlib import Path

    def leftovers() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("chunfeng-*"))

    before = leftovers()
    client = login(server, make_user("root4", "000000", ["audit_admin"]))
    assert client.get("/audit/export.xlsx").status_code == 200
    assert client.get("/audit/archive").status_code == 200
    deadline = time.monotonic() + 5
    while leftovers() - before and time.monotonic() < deadline:  # deleted by a task after the response
        time.sleep(0.05)
    assert leftovers() - before == set()


def test_a_refusal_is_recorded_even_for_a_path_with_a_nul(db, server, make_user):
    client = login(server, make_user("nul_viewer", "000000", ["viewer"]))
    assert client.get("/consult/kb/kb%00x").status_code == 403  # not the viewer's page, whatever the key
    with db.read() as s:
        denied = list(s.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "access.denied",
                                                                  AuditEntry.actor == "nul_viewer")))
    assert denied == ["GET /consult/kb/kb\\x00x"]
