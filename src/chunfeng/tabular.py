"""Read a CSV or xlsx table into rows keyed by canonical column names, with their row numbers.

Every import in Chunfeng (units, knowledge entries, reports, taxpayer extracts) starts here, so
that a bad file always gets the same kind of error: the file, the row and the field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


class TableError(ValueError):
    """The file cannot be read as a table."""


@dataclass
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    values: dict[str, str]


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (which covers GBK and GB2312)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise TableError(f"UTF-16 文本在第 {exc.start} 字节处无法解码") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise TableError(f"既不是 UTF-8 也不是 GB18030 编码的文本(第 {exc.start} 字节处无法解码)") from None


def _cells(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    if data[:4] == b"PK\x03\x04":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
            raise TableError(f"无法作为 xlsx 工作簿打开:{exc}") from None
        sheet = book.worksheets[0]
        rows = [["" if v is None else str(v).strip() for v in row] for row in sheet.iter_rows(values_only=True)]
        book.close()
        return rows
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TableError("不是 CSV 或 xlsx 文件(含有二进制内容)")
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""))  # newline="", as csv requires: a lone CR ends a row too
    try:
        return [[c.strip() for c in row] for row in reader]
    except csv.Error as exc:  # e.g. a field beyond csv's size limit
        raise TableError(f"第 {reader.line_num} 行无法作为 CSV 读取:{exc}") from None


def read_table(path: Path, columns: dict[str, tuple[str, ...]], *, required: set[str]) -> list[Row]:
    """Rows of the first sheet (xlsx) or the file (CSV), keyed by the canonical names in `columns`.

    `columns` maps each canonical name to the header spellings accepted for it (English and Chinese).
    """
    path = Path(path)
    if not path.exists():
        raise TableError(f"文件不存在:{path}")
    cells = _cells(path)
    while cells and not any(cells[0]):
        cells.pop(0)
    if not cells:
        raise TableError(f"{path.name}:文件为空")
    header = [h.strip().lower() for h in cells[0]]
    index: dict[str, int] = {}
    for name, spellings in columns.items():
        for i, h in enumerate(header):
            if h in {s.lower() for s in spellings}:
                index[name] = i
                break
    missing = [columns[n][0] for n in sorted(required) if n not in index]
    if missing:
        raise TableError(f"{path.name}:表头缺少列 {'、'.join(missing)}(第 1 行为表头)")
    rows = []
    for number, raw in enumerate(cells[1:], start=2):
        if not any(raw):
            continue
        rows.append(Row(number, {n: (raw[i] if i < len(raw) else "") for n, i in index.items()}))
    return rows


# --- writing --------------------------------------------------------------------------------------

# What a spreadsheet reads as the start of a formula (OWASP "CSV injection"): a cell of public text such as
# =HYPERLINK("http://x","y") would run when the file is opened.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> object:
    """A value as a CSV cell: text that a spreadsheet would take for a formula gets a leading ' (shown as text);
    numbers stay numbers, so -1 written as a number is untouched."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def write_csv(path: Path | str, *, headers: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Every CSV Chunfeng writes for people goes through here: UTF-8 with a BOM (Excel opens it as UTF-8),
    each cell through `csv_cell`."""
    path = Path(path)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([csv_cell(h) for h in headers])
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])
    return path
