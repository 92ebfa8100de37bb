"""Evidence files checked by content, stored by hash, served only to those who may read the report."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import select

from chunfeng import files as file_store
from chunfeng.ledger import files
from chunfeng.ledger.errors import LedgerInvalid
from chunfeng.ledger.models import Evidence
from chunfeng.org.errors import Forbidden
from tests.conftest import person
from tests.ledger.test_services import chain, report, review

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def attach(db, who, report_id, name, data, store, limit=1024 * 1024):
    with db.write() as s:
        return files.attach(session=s, actor=person(s, who), report_id=report_id, filename=name, data=data,
                            store=store, max_bytes=limit).id


def test_sniffing():
    assert file_store.sniff(PDF) == "pdf" and file_store.sniff(PNG) == "png" and file_store.sniff(b"\xff\xd8\xff\xe0") == "jpg"
    assert file_store.sniff(docx()) == "docx"
    assert file_store.sniff(b"<html><script>alert(1)</script>") is None
    assert file_store.sniff(b"PK\x03\x04not a zip") is None
    assert file_store.safe_name("../../etc/passwd.pdf", "pdf") == "passwd.pdf"
    assert file_store.safe_name("报告<script>.exe", "pdf") == "报告_script.pdf"


def test_attach_store_once_and_open(bureau, tmp_path):
    *_, c1, c2 = chain(bureau)
    rid, _ = report(bureau, "county_reporter", c1, "in_progress", 30)
    store = tmp_path / "store"
    first = attach(bureau, "county_reporter", rid, "会议纪要.pdf", PDF, store)
    second = attach(bureau, "county_reporter", rid, "copy.pdf", PDF, store)
    assert [p.is_file() for p in store.rglob("*")] == [False, True]  # one folder, one file: stored once by its hash
    with bureau.read() as s:
        path, item = files.open_evidence(session=s, actor=person(s, "city_office"), evidence_id=first, store=store)
        assert path.read_bytes() == PDF and item.content_type == "application/pdf" and item.filename == "会议纪要.pdf"
        with pytest.raises(Forbidden):
            files.open_evidence(session=s, actor=person(s, "gd_office"), evidence_id=second, store=store)


@pytest.mark.parametrize("name, data, message", [
    ("page.pdf", b"<html><body>not a pdf</body></html>", "不是允许的文件类型"),
    ("empty.pdf", b"", "文件为空"),
    ("big.pdf", PDF + b"x" * 2048, "超过上限"),
])
def test_refused_files(bureau, tmp_path, name, data, message):
    *_, c1, _ = chain(bureau)
    rid, _ = report(bureau, "county_reporter", c1, "in_progress", 30)
    with pytest.raises(LedgerInvalid, match=message):
        attach(bureau, "county_reporter", rid, name, data, tmp_path, limit=1024)
    with bureau.read() as s:
        assert s.scalar(select(Evidence.id)) is None


def test_only_the_reporting_unit_attaches_and_not_after_approval(bureau, tmp_path):
    *_, c1, _ = chain(bureau)
    rid, _ = report(bureau, "county_reporter", c1, "in_progress", 30)
    with pytest.raises(Forbidden):
        attach(bureau, "county2_reporter", rid, "x.pdf", PDF, tmp_path)
    review(bureau, "city_office", rid)
    with pytest.raises(LedgerInvalid, match="已审核通过"):
        attach(bureau, "county_reporter", rid, "x.pdf", PNG, tmp_path)
