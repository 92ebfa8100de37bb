"""Importing an extract: checked, all or nothing, every problem named by file, row and field."""

from __future__ import annotations

import shutil
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from chunfeng import crypto
from chunfeng.push import store
from chunfeng.push.errors import ExtractInvalid
from chunfeng.push.schema import TABLES, credit_code_check_char, credit_code_problem


def test_gb32100_check_character():
    # A code published on a real business licence (国家税务总局's own code is not public; this one is the
    # standard's worked example pattern): the check character is computed, and one changed character fails.
    code = "91350100M000100Y43"
    assert credit_code_check_char(code[:17]) == code[17]
    assert credit_code_problem(code) is None
    assert "校验码" in credit_code_problem(code[:17] + "2")
    assert "18 位" in credit_code_problem(code[:10])
    assert "不允许的字符" in credit_code_problem("91350100M000100I43")


def _as_csv(extract_dir, target):
    target.mkdir()
    with duckdb.connect() as conn:
        for name in TABLES:
            conn.execute(f"COPY (SELECT * FROM read_parquet('{extract_dir / (name + '.parquet')}')) "
                         f"TO '{target / (name + '.csv')}' (HEADER true)")
    return target


def test_a_good_extract_is_imported(extract_dir, tmp_path):
    result = store.import_extract(extract_dir, tmp_path / "s.duckdb")
    assert result.rows["registry"] == 3000
    with store.connect_store(tmp_path / "s.duckdb") as conn:
        assert conn.execute("SELECT count(DISTINCT credit_code) FROM registry").fetchone()[0] == 3000
        assert conn.execute("SELECT typeof(registered), typeof(high_tech) FROM registry LIMIT 1").fetchone() == (
            "DATE", "BOOLEAN")
        stored = conn.execute("SELECT credit_code, role, channel, person, address FROM contacts ORDER BY ALL LIMIT 50").fetchall()
    # Contacts' names and addresses at rest are SM4 ciphertexts that decrypt to the extract's values.
    assert all(p.startswith(crypto.PREFIX) and a.startswith(crypto.PREFIX) for *_, p, a in stored)
    rows = pq.read_table(extract_dir / "contacts.parquet").to_pylist()
    extract = {(r["credit_code"], r["role"], r["channel"]): (r["person"], r["address"]) for r in rows}
    assert all(extract[(c, r, ch)] == (crypto.decrypt(p), crypto.decrypt(a)) for c, r, ch, p, a in stored)


def test_contacts_encrypted_by_two_processes_decrypt_alike(extract_dir, tmp_path, monkeypatch):
    """The national import shares the contacts' encryption with a worker process: every value still decrypts to
    the extract's, each under its own nonce, and none is left in clear or lost."""
    monkeypatch.setattr(store, "PARALLEL_FROM", 0)  # this small extract takes the large one's path
    monkeypatch.setattr(store, "CHUNK", 1000)  # in many chunks, half of them the worker's
    store.import_extract(extract_dir, tmp_path / "s.duckdb", workers=2)
    with store.connect_store(tmp_path / "s.duckdb") as conn:
        stored = conn.execute("SELECT credit_code, role, channel, person, address FROM contacts").fetchall()
    rows = pq.read_table(extract_dir / "contacts.parquet").to_pylist()
    extract = {(r["credit_code"], r["role"], r["channel"]): (r["person"], r["address"]) for r in rows}
    assert len(stored) == len(extract) > 4 * 1000  # chunks both of this process and of the worker
    assert [s[:3] for s in stored] == [(r["credit_code"], r["role"], r["channel"]) for r in rows]  # in the extract's order
    assert {(c, r, ch): (crypto.decrypt(p), crypto.decrypt(a)) for c, r, ch, p, a in stored} == extract
    assert len({p for *_, p, _ in stored}) == len(stored)  # a fresh nonce each, even for equal names


def test_csv_gives_the_same_store_as_parquet(extract_dir, tmp_path):
    csv_dir = _as_csv(extract_dir, tmp_path / "csv")
    a = store.import_extract(extract_dir, tmp_path / "a.duckdb")
    b = store.import_extract(csv_dir, tmp_path / "b.duckdb")
    assert a.rows == b.rows
    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as ca, \
            duckdb.connect(str(tmp_path / "b.duckdb"), read_only=True) as cb:
        q = "SELECT sum(hash(credit_code, region, monthly_sales, registered, high_tech)) FROM registry"
        assert ca.execute(q).fetchone() == cb.execute(q).fetchone()


def _break(csv_dir, table, line, column, value):
    """Change one cell of a CSV file: line 2 is the first data row."""
    path = csv_dir / f"{table}.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("table, line, column, value, words", [
    ("registry", 7, "credit_code", "91110101MA01XXXX00", ["registry.csv 第 7 行", "校验码"]),
    ("registry", 12, "credit_code", "9111", ["第 12 行", "18 位"]),
    ("registry", 5, "vat_type", "小规模纳税人", ["第 5 行", "vat_type", "一般纳税人、小规模"]),
    ("registry", 9, "headcount", "三百", ["第 9 行", "从业人数", "整数"]),
    ("registry", 3, "registered", "2022-02-30", ["第 3 行", "日期"]),
    ("registry", 4, "high_tech", "maybe", ["第 4 行", "真假值"]),
    ("contacts", 6, "channel", "pigeon", ["contacts.csv 第 6 行", "渠道"]),
    ("claims", 2, "amount", "", ["claims.csv 第 2 行", "为空"]),
    ("claims", 4, "amount", "-1200.00", ["claims.csv 第 4 行", "减免税费额", "不能为负数"]),
    ("contacts", 8, "credit_code", "91350100M000100Y43", ["contacts.csv 第 8 行", "不在登记信息中"]),
])
def test_a_bad_cell_is_refused_with_its_row_and_nothing_changes(extract_dir, tmp_path, table, line, column, value, words):
    target = tmp_path / "s.duckdb"
    store.import_extract(extract_dir, target)
    before = target.read_bytes()
    csv_dir = _as_csv(extract_dir, tmp_path / "csv")
    _break(csv_dir, table, line, column, value)
    with pytest.raises(ExtractInvalid) as caught:
        store.import_extract(csv_dir, target)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    assert target.read_bytes() == before
    assert not (tmp_path / "s.duckdb.building").exists()


def test_missing_and_unknown_columns_and_files(extract_dir, tmp_path):
    csv_dir = _as_csv(extract_dir, tmp_path / "csv")
    text = (csv_dir / "filings.csv").read_text(encoding="utf-8").replace("filed_on", "filed_at", 1)
    (csv_dir / "filings.csv").write_text(text, encoding="utf-8")
    (csv_dir / "claims.csv").unlink()
    with pytest.raises(ExtractInvalid) as caught:
        store.import_extract(csv_dir, tmp_path / "s.duckdb")
    assert "缺少 claims" in str(caught.value)
    shutil.copy(extract_dir / "claims.parquet", csv_dir / "claims.parquet")
    with pytest.raises(ExtractInvalid) as caught:
        store.import_extract(csv_dir, tmp_path / "s.duckdb")
    assert "filings.csv:缺少列 filed_on" in str(caught.value) and "未知列 filed_at" in str(caught.value)
    assert not (tmp_path / "s.duckdb").exists()


def test_duplicate_taxpayers_are_refused(extract_dir, tmp_path):
    csv_dir = _as_csv(extract_dir, tmp_path / "csv")
    path = csv_dir / "registry.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines + [lines[1]]) + "\n", encoding="utf-8")
    with pytest.raises(ExtractInvalid) as caught:
        store.import_extract(csv_dir, tmp_path / "s.duckdb")
    assert "重复出现 2 次" in str(caught.value)


def test_xlsx_tables_are_read(extract_dir, tmp_path):
    csv_dir = _as_csv(extract_dir, tmp_path / "csv")
    source = (csv_dir / "claims.csv").read_text(encoding="utf-8").splitlines()
    book = Workbook()
    sheet = book.active
    for line in source:
        sheet.append(line.split(","))
    book.save(csv_dir / "claims.xlsx")
    (csv_dir / "claims.csv").unlink()
    result = store.import_extract(csv_dir, tmp_path / "s.duckdb")
    assert result.rows["claims"] == len(source) - 1


def test_reading_without_a_store_says_what_to_do(tmp_path):
    with pytest.raises(ExtractInvalid, match="chunfeng push import"):
        store.connect_store(tmp_path / "none.duckdb")


def test_a_negative_claim_amount_in_parquet_is_refused_with_its_row(extract_dir, tmp_path):
    """Parquet arrives typed, so only the sign is left to check: a negative 减免税费额 would lower the bill's sum."""
    source = tmp_path / "extract"
    shutil.copytree(extract_dir, source)
    claims = pq.read_table(source / "claims.parquet")
    amount = claims.column("amount")
    negative = pa.array([Decimal("-100.00")], amount.type)
    column = pa.concat_arrays([amount.slice(0, 2).combine_chunks(), negative, amount.slice(3).combine_chunks()])
    pq.write_table(claims.set_column(claims.schema.get_field_index("amount"), "amount", column),
                   source / "claims.parquet")
    with pytest.raises(ExtractInvalid) as caught:
        store.import_extract(source, tmp_path / "s.duckdb")
    assert "claims.parquet 第 3 行:减免税费额(元)(amount)“-100.00”不能为负数" in str(caught.value) and "不能为负数" in str(caught.value)
    assert not (tmp_path / "s.duckdb").exists()
