"""Read a CSV or xlsx table into rows keyed by canonical column names, with their row numbers.

Every import in Chunfeng (units, knowledge entries, reports, taxpayer extracts) starts here, so
that a bad file always gets the same kind of error: the file, the row and the field, and so that
every import has the same caps: file size, unpacked xlsx size and compression ratio, rows, and the
number of problems listed when a file is refused. An import runs this before it opens its write
transaction: a hostile file then costs one request its time, not every signed-in page its lock.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chunfeng.errors import Invalid

MB = 1048576
MAX_COLUMNS = 200  # wider rows are cut: no import reads more than a few dozen columns
_RATIO_FLOOR = MB  # small members are not judged by their ratio: a tiny sheet can compress very well


class TableError(Invalid, ValueError):
    """The file cannot be read as a table."""


@dataclass
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    values: dict[str, str]


@dataclass(frozen=True)
class TableLimits:
    """The caps every import reads under (settings import_max_*; these defaults are theirs), passed down from the
    entry point that read the settings."""

    max_rows: int = 50000
    max_file_mb: int = 20
    max_unpacked_mb: int = 200
    max_ratio: int = 100
    max_problems: int = 100

    @classmethod
    def from_settings(cls, settings) -> TableLimits:
        return cls(max_rows=settings.import_max_rows, max_file_mb=settings.import_max_file_mb,
                   max_unpacked_mb=settings.import_max_unpacked_mb, max_ratio=settings.import_max_ratio,
                   max_problems=settings.import_max_problems)


def listed_problems(problems: list[str], limits: TableLimits) -> list[str]:
    """The first `max_problems` problems and, when there are more, a line giving how many were left out:
    a file with a problem in every one of its rows must not become a page of megabytes."""
    cap = limits.max_problems
    if len(problems) <= cap:
        return list(problems)
    return problems[:cap] + [f"……另有 {len(problems) - cap} 处问题未列出(共 {len(problems)} 处);请先改正以上问题"]


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


def check_xlsx_members(data: bytes, limits: TableLimits) -> None:
    """Refuse a workbook that unpacks to more than the cap, or one of whose members is a zip bomb, before
    openpyxl inflates anything. Declared sizes can be trusted as bounds: zipfile stops a member at its
    declared size and fails its CRC check if more would follow."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise TableError(f"无法作为 xlsx 工作簿打开:{exc}") from None
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_mb * MB:
        raise TableError(f"xlsx 解压后共 {total / MB:.0f} MB,超过上限 {limits.max_unpacked_mb} MB;请拆分后分批导入")
    for m in members:
        if m.file_size > _RATIO_FLOOR and m.file_size > limits.max_ratio * max(m.compress_size, 1):
            raise TableError(f"xlsx 中的 {m.filename} 压缩比 {m.file_size // max(m.compress_size, 1)}:1,"
                             f"超过上限 {limits.max_ratio}:1,不像是正常的表格(可能是压缩炸弹)")


def _too_many_rows(limits: TableLimits) -> TableError:
    return TableError(f"超过 {limits.max_rows} 行数据的上限;请拆分后分批导入")


def _cells(path: Path, limits: TableLimits) -> list[list[str]]:
    """The cells, row by row, stopping with an error one row past the cap (header and blank rows count:
    a sheet of two million empty rows must not be read to its end)."""
    size = path.stat().st_size
    if size > limits.max_file_mb * MB:
        raise TableError(f"文件 {size / MB:.1f} MB,超过上限 {limits.max_file_mb} MB")
    data = path.read_bytes()
    room = limits.max_rows + 1  # the header
    if data[:4] == b"PK\x03\x04":
        check_xlsx_members(data, limits)
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
            raise TableError(f"无法作为 xlsx 工作簿打开:{exc}") from None
        rows = []
        try:
            # max_col: a declared dimension of A1:XFD… must not pad every row to 16,384 cells.
            for row in book.worksheets[0].iter_rows(values_only=True, max_col=MAX_COLUMNS):
                if len(rows) >= room:
                    raise _too_many_rows(limits)
                rows.append(["" if v is None else str(v).strip() for v in row])
        except TableError:
            raise
        except Exception as exc:
            raise TableError(f"无法读取 xlsx 工作表:{exc}") from None
        finally:
            book.close()
        return rows
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TableError("不是 CSV 或 xlsx 文件(含有二进制内容)")
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""))  # newline="", as csv requires: a lone CR ends a row too
    rows = []
    try:
        for row in reader:
            if len(rows) >= room:
                raise _too_many_rows(limits)
            rows.append([c.strip() for c in row[:MAX_COLUMNS]])
    except csv.Error as exc:  # e.g. a field beyond csv's size limit
        raise TableError(f"第 {reader.line_num} 行无法作为 CSV 读取:{exc}") from None
    return rows


def read_table(path: Path, columns: dict[str, tuple[str, ...]], *, required: set[str],
               limits: TableLimits, others: bool = False) -> list[Row]:
    """Rows of the first sheet (xlsx) or the file (CSV), keyed by the canonical names in `columns`.

    `columns` maps each canonical name to the header spellings accepted for it (English and Chinese). With
    `others`, every other named column is kept too, under its header as written (a file that declares columns of
    its own, e.g. a sample list's strata).
    """
    path = Path(path)
    if not path.exists():
        raise TableError(f"文件不存在:{path}")
    cells = _cells(path, limits)
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
    if others:
        claimed = set(index.values())
        for i, h in enumerate(cells[0]):
            if i not in claimed and h.strip() and h.strip() not in index:
                index[h.strip()] = i
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
