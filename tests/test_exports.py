"""Every CSV and xlsx Chunfeng writes goes through one helper that keeps text from becoming a formula
(OWASP "CSV injection"), and no other code writes such files."""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import openpyxl

from chunfeng.tabular import write_csv
from chunfeng.xlsx import write_sheets, write_table

SRC = Path(__file__).parent.parent / "src" / "chunfeng"
HOSTILE = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1", "-1+1", "\t=1", "\r=1", "=cmd|' /C calc'!A0"]


def test_xlsx_writes_formula_text_as_text_and_numbers_as_numbers(tmp_path):
    path = write_table(tmp_path / "t.xlsx", sheet="s", headers=["=header", "n"],
                       rows=[[text, -1] for text in HOSTILE] + [["plain", -2.5], ["d", Decimal("-3")]])
    ws = openpyxl.load_workbook(path).active
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    # (openpyxl leaves xlsx's escape of a carriage return as it is)
    assert [ws.cell(r, 1).value.replace("_x000D_", "\r") for r in range(2, 2 + len(HOSTILE))] == HOSTILE
    assert [ws.cell(r, 2).value for r in range(2, 4 + len(HOSTILE))][-3:] == [-1, -2.5, "-3"]
    book = openpyxl.load_workbook(write_sheets(tmp_path / "m.xlsx", [("a", ["x"], None, [[h] for h in HOSTILE]),
                                                                       ("b", ["y"], [10], [["=1+1"]])]))
    assert [c.data_type for ws in book for row in ws.iter_rows(min_row=2) for c in row] == ["s"] * (len(HOSTILE) + 1)


def test_csv_prefixes_formula_text_and_leaves_numbers(tmp_path):
    path = write_csv(tmp_path / "t.csv", headers=["=header", "n"], rows=[[text, -1] for text in HOSTILE] + [["ok", None]])
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(path.open(encoding="utf-8-sig", newline="")))
    assert rows[0] == ["'=header", "n"]
    assert [r[0] for r in rows[1:-1]] == ["'" + text for text in HOSTILE]
    assert {r[1] for r in rows[1:-1]} == {"-1"} and rows[-1] == ["ok", ""]


def test_no_other_code_writes_spreadsheets():
    """The helpers are the only writers: a new export that bypasses them fails here."""
    allowed = {SRC / "xlsx.py", SRC / "tabular.py"}
    offenders = [f"{path.relative_to(SRC)}: {m.group(0)}" for path in sorted(SRC.rglob("*.py")) if path not in allowed
                 for m in re.finditer(r"import xlsxwriter|csv\.(writer|DictWriter)|Workbook\(|openpyxl\.Workbook",
                                      path.read_text(encoding="utf-8"))]
    assert offenders == []
