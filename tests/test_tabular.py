"""The shared table reader's caps: the hostile files of issue 11 (a zip bomb of two million one-cell rows,
a file with a problem in every row) are refused quickly, with a clear message, before any import looks at them."""

from __future__ import annotations

import time
import zipfile

import pytest
import xlsxwriter

from chunfeng.tabular import TableError, TableLimits, listed_problems, read_table

COLUMNS = {"code": ("代码",), "name": ("名称",)}


def _sheet_xml(rows: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            '<row><c t="inlineStr"><is><t>代码</t></is></c><c t="inlineStr"><is><t>名称</t></is></c></row>'
            + rows + "</sheetData></worksheet>")


def hostile_xlsx(tmp_path, name: str, row_xml: str, count: int):
    """A real workbook whose first sheet is replaced by `count` copies of `row_xml`, deflated at level 9:
    how the attacker made 287 KB unpack to 52 MB of rows."""
    plain = tmp_path / "plain.xlsx"
    book = xlsxwriter.Workbook(str(plain))
    book.add_worksheet().write_row(0, 0, ["代码", "名称"])
    book.close()
    out = tmp_path / name
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for member in src.infolist():
            data = src.read(member.filename)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = _sheet_xml(row_xml * count).encode()
            dst.writestr(member.filename, data)
    return out


def test_two_million_one_cell_rows_refused_as_a_zip_bomb(tmp_path):
    bomb = hostile_xlsx(tmp_path, "rows.xlsx", "<row><c><v>1</v></c></row>", 2_000_000)
    assert bomb.stat().st_size < 400_000
    started = time.monotonic()
    with pytest.raises(TableError, match="压缩比 .*超过上限 100:1"):
        read_table(bomb, COLUMNS, required={"code"}, limits=TableLimits())
    assert time.monotonic() - started < 5  # before: 58 s inside the write lock, and 3 GB of memory


def test_unpacked_total_and_file_size_caps(tmp_path):
    bomb = hostile_xlsx(tmp_path, "rows.xlsx", "<row><c><v>1</v></c></row>", 200_000)  # 5 MB unpacked
    with pytest.raises(TableError, match="解压后共 5 MB,超过上限 1 MB"):
        read_table(bomb, COLUMNS, required={"code"}, limits=TableLimits(max_unpacked_mb=1))
    big = tmp_path / "big.csv"
    big.write_bytes(b"code,name\n" + b"1,x\n" * 600_000)
    with pytest.raises(TableError, match="超过上限 2 MB"):
        read_table(big, COLUMNS, required={"code"}, limits=TableLimits(max_file_mb=2))


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_row_cap(tmp_path, kind):
    limits = TableLimits(max_rows=1000)
    if kind == "csv":
        path = tmp_path / "rows.csv"
        path.write_text("代码,名称\n" + "1,x\n" * 1001, encoding="utf-8")
    else:
        path = tmp_path / "rows.xlsx"
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["代码", "名称"])
        for r in range(1, 1002):
            sheet.write_row(r, 0, [r, "x"])
        book.close()
    with pytest.raises(TableError, match="超过 1000 行数据的上限"):
        read_table(path, COLUMNS, required={"code"}, limits=limits)
    exactly = tmp_path / f"ok.{kind}"
    if kind == "csv":
        exactly.write_text("代码,名称\n" + "1,x\n" * 1000, encoding="utf-8")
        assert len(read_table(exactly, COLUMNS, required={"code"}, limits=limits)) == 1000


def test_a_wide_declared_dimension_does_not_pad_rows(tmp_path):
    """A sheet declaring A1:XFD… would have every row padded to 16,384 cells by openpyxl."""
    path = hostile_xlsx(tmp_path, "wide.xlsx", "<row><c><v>7</v></c><c t=\"inlineStr\"><is><t>x</t></is></c></row>", 3)
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode().replace("<sheetData>", '<dimension ref="A1:XFD4"/><sheetData>')
        members = {m: z.read(m) for m in z.namelist()}
    members["xl/worksheets/sheet1.xml"] = xml.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    rows = read_table(path, COLUMNS, required={"code"}, limits=TableLimits())
    assert [r.values for r in rows] == [{"code": "7", "name": "x"}] * 3


def test_problems_listed_up_to_the_cap_with_the_total():
    problems = [f"第 {n} 行:名称为空" for n in range(2, 900_002)]
    listed = listed_problems(problems, TableLimits())
    assert len(listed) == 101 and listed[99] == "第 101 行:名称为空"
    assert "另有 899900 处问题未列出(共 900000 处)" in listed[-1]
    assert listed_problems(problems[:3], TableLimits()) == problems[:3]


def test_other_columns_are_kept_under_their_headers_only_when_asked(tmp_path):
    path = tmp_path / "名单.csv"
    path.write_text("识别号,规模,,行业\nA1,小型,x,C\n", encoding="utf-8")
    columns = {"code": ("识别号",)}
    assert read_table(path, columns, required={"code"}, limits=TableLimits())[0].values == {"code": "A1"}
    [row] = read_table(path, columns, required={"code"}, limits=TableLimits(), others=True)
    assert row.values == {"code": "A1", "规模": "小型", "行业": "C"}  # a column without a header is not one
