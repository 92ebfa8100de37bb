"""The taxpayer extract in DuckDB: import (checked, all-or-nothing) and read-only access.

An import builds a new DuckDB file next to the store and renames it over the old one only when every
check passed, so a bad extract changes nothing and readers never see half an import. Readers open the
store read-only per use, which DuckDB allows from many processes at once.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pyarrow as pa

from chunfeng import crypto
from chunfeng.push.errors import ExtractInvalid
from chunfeng.push.schema import (
    CREDIT_CHANGES_FILE_SUFFIX,
    CREDIT_CODE_ALPHABET,
    CREDIT_CODE_WEIGHTS,
    CREDIT_LEVELS_FILE_SUFFIX,
    TABLES,
    Table,
    credit_code_problem,
)

FORMATS = (".parquet", ".csv", ".xlsx")
MAX_PROBLEMS = 50


def find_files(directory: Path) -> dict[str, Path]:
    """The file of each table in an extract directory: registry.parquet, contacts.csv, claims.xlsx, …"""
    if not directory.is_dir():
        raise ExtractInvalid([f"目录 {directory} 不存在"])
    found, missing = {}, []
    for name in TABLES:
        candidates = [directory / f"{name}{suffix}" for suffix in FORMATS if (directory / f"{name}{suffix}").exists()]
        if not candidates:
            missing.append(f"缺少 {name}.parquet / {name}.csv / {name}.xlsx({TABLES[name].label})")
        else:
            found[name] = candidates[0]
    if missing:
        raise ExtractInvalid(missing)
    return found


def _source_sql(conn: duckdb.DuckDBPyConnection, path: Path) -> str:
    quoted = str(path).replace("'", "''")
    if path.suffix == ".parquet":
        return f"read_parquet('{quoted}')"
    if path.suffix == ".csv":
        return f"read_csv('{quoted}', header=true, all_varchar=true, encoding='utf-8')"
    # xlsx extracts are small (Excel stops at a million rows): read with openpyxl, hand DuckDB a table.
    import pyarrow as pa
    from openpyxl import load_workbook

    sheet = load_workbook(path, read_only=True, data_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    if not rows:
        raise ExtractInvalid([f"{path.name}:文件是空的"])
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    columns = {h: [None if r[i] is None else str(r[i]) for r in rows[1:]] for i, h in enumerate(header)}
    view = f"xlsx_{path.stem}"
    conn.register(view, pa.table(columns))
    return view


def _header_line(path: Path) -> int:
    """How many lines precede the first data row: row numbers in errors count as a spreadsheet does."""
    return 1 if path.suffix in (".csv", ".xlsx") else 0


# A claim amount is tax not paid (schema.CLAIMS); a negative one would lower every sum it enters, the bill's too.
_NEGATIVE = "不能为负数(减免税费额是少缴、免缴或缓缴的税费)"
_KIND_WORDS = {"number": "数值", "int": "整数", "bool": "真假值(true/false)", "date": "日期"}
# Claims are stored sorted by policy and period, so DuckDB's min/max zone maps let a query for one policy's
# period read only that policy's row groups: 32 policies × a full scan of 77 million claims is what made
# matching slow before.
ORDER = {"claims": "policy, period, credit_code"}


@dataclass
class _Raw:
    """A table as read, before it is typed: where it is, how its rows are numbered, how each column is cast."""

    name: str
    row: str
    offset: int
    casts: list


def _load_table(conn, table: Table, path: Path, problems: list[str]) -> _Raw | None:
    raw = f"raw_{table.name}"
    if path.suffix == ".parquet":  # read in place, numbered as the file is
        quoted = str(path).replace("'", "''")
        conn.execute(f"CREATE VIEW {raw} AS SELECT * FROM read_parquet('{quoted}', file_row_number=true)")
        row = "file_row_number"
    else:
        conn.execute(f"CREATE TABLE {raw} AS SELECT * FROM {_source_sql(conn, path)}")
        row = "rowid"
    types = {name: kind for name, kind, *_ in conn.execute(f"DESCRIBE {raw}").fetchall() if name != "file_row_number"}
    missing = [n for n in table.names if n not in types]
    unknown = [c for c in types if c not in table.names]
    if missing or unknown:
        if missing:
            problems.append(f"{path.name}:缺少列 {'、'.join(missing)}")
        if unknown:
            problems.append(f"{path.name}:未知列 {'、'.join(unknown)}(应为 {'、'.join(table.names)})")
        return None
    offset = _header_line(path) + 1
    casts, checks = [], []
    for f in table.fields:
        col = f'"{f.name}"'
        if types[f.name] == f.duck_type and not f.values:  # typed at the source (Parquet): only nulls to find
            casts.append((f, col, col))
            checks.append((f, f"{col} IS NULL", "为空"))
            if f.non_negative:
                checks.append((f, f"{col} < 0", _NEGATIVE))
            continue
        text = f"trim(CAST({col} AS VARCHAR))"
        if f.kind == "bool":
            text = f"CASE lower({text}) WHEN '是' THEN 'true' WHEN '否' THEN 'false' ELSE lower({text}) END"
        cast = f"TRY_CAST({text} AS {f.duck_type})"
        casts.append((f, cast, text))
        checks.append((f, f"{text} IS NULL OR {text} = ''", "为空"))
        checks.append((f, f"{cast} IS NULL", f"不是有效的{_KIND_WORDS.get(f.kind, '值')}"))
        if f.non_negative:
            checks.append((f, f"{cast} < 0", _NEGATIVE))
        if f.values:
            allowed = ", ".join("'" + v + "'" for v in f.values)
            checks.append((f, f"{text} NOT IN ({allowed})", f"应为 {'、'.join(f.values)} 之一"))
    # One pass counts every kind of fault; only the faults found are then looked up row by row.
    counts = conn.execute("SELECT " + ", ".join(f"count_if({c})" for _, c, _ in checks) + f" FROM {raw}").fetchall()[0]
    reported: set[str] = set()
    for (f, condition, what), n in zip(checks, counts, strict=True):
        if not n or f.name in reported:
            continue
        reported.add(f.name)
        rows = conn.execute(f'SELECT {row}, CAST("{f.name}" AS VARCHAR) FROM {raw} WHERE {condition} '
                            f"ORDER BY {row} LIMIT 5").fetchall()
        for rowid, shown in rows:
            problems.append(f"{path.name} 第 {rowid + offset} 行:{f.label}({f.name})“{shown or ''}”{what}")
    return _Raw(raw, row, offset, casts)


# Personal data at rest: a contact's name and address (phone, e-mail, account) are stored SM4-encrypted, like an
# appeal submitter's; only the sender reads them back, for the few it writes to.
ENCRYPTED = {("contacts", "person"), ("contacts", "address")}


# Contacts from which the encryption is shared with worker processes: below it, starting them costs more than
# it saves (each imports the package, about a second).
PARALLEL_FROM = 200_000
# Rows of one encryption task: large enough that handing a task to a worker costs little beside it, small enough
# that a few in flight per process keep every core busy and memory flat (the national extract is streamed).
CHUNK = 32_768


def _encrypt_array(key: bytes, values: pa.Array) -> pa.Array:
    return pa.array(crypto.encrypt_with(key, values.to_pylist()), type=pa.string())


class _Encryption:
    """SM4 of a table's personal columns, many chunks in flight: for a large extract `workers - 1` forked processes
    and this one encrypt, this one also streaming the plain rows out of DuckDB and the encrypted ones back in
    (SM4-GCM of short values is Python-bound, so threads would queue on the GIL; and a DuckDB function is called one
    batch of 2,048 at a time, synchronously, so a pool behind one could not overlap: see
    bench/push_import_national.py)."""

    def __init__(self, workers: int):
        self.key, self.workers = crypto.encryption_key(), max(1, workers)
        # Forked: a worker needs only the key and the crypto module, both already here, and starts at once; spawned
        # workers would import the caller's main module again (`python -m chunfeng` would run the command twice).
        # The importers (the CLI, the demo's fill) run no threads of their own while they import.
        self.pool = ProcessPoolExecutor(self.workers - 1, mp_context=get_context("fork")) if self.workers > 1 else None

    def batches(self, batches, columns: list[int]):
        """The record batches with `columns` encrypted, in their order."""
        pending: deque = deque()
        for n, batch in enumerate(batches):
            # Every `workers`-th chunk is this process's, encrypted when its turn comes to be written, while the
            # workers have the next ones queued. The workers' chunks travel as Arrow buffers, both ways: pickling
            # lists of strings would cost them about a third of what the encryption does.
            mine = self.pool is None or n % self.workers == 0
            pending.append((batch, None if mine else
                            [self.pool.submit(_encrypt_array, self.key, batch.column(i)) for i in columns]))
            if len(pending) >= 2 * self.workers:
                yield self._done(pending.popleft(), columns)
        while pending:
            yield self._done(pending.popleft(), columns)

    def _done(self, item, columns):
        batch, futures = item
        arrays = ([_encrypt_array(self.key, batch.column(i)) for i in columns] if futures is None
                  else [f.result() for f in futures])
        return self._replace(batch, columns, arrays)

    @staticmethod
    def _replace(batch: pa.RecordBatch, columns: list[int], arrays: list[pa.Array]) -> pa.RecordBatch:
        values = batch.columns
        for i, array in zip(columns, arrays, strict=True):
            values[i] = array
        return pa.RecordBatch.from_arrays(values, names=batch.schema.names)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _store_table(conn, table: Table, raw: _Raw, workers: int) -> None:
    select_list = ", ".join(f'{cast} AS "{f.name}"' for f, cast, _ in raw.casts)
    # Only claims are sorted: the rest keep the extract's order as read (DuckDB preserves insertion order), which
    # sorting by row number only re-established, at the cost of a sort of every table.
    order = f" ORDER BY {ORDER[table.name]}" if table.name in ORDER else ""
    encrypted = [i for i, (f, _, _) in enumerate(raw.casts) if (table.name, f.name) in ENCRYPTED]
    if not encrypted:
        conn.execute(f"CREATE TABLE {table.name} AS SELECT {select_list} FROM {raw.name}{order}")
    else:
        # Encrypted outside DuckDB: the plain rows are streamed out of a second cursor in large chunks, encrypted
        # over the pool, and appended in their order.
        conn.execute(f"CREATE TABLE {table.name} AS SELECT {select_list} FROM {raw.name} LIMIT 0")
        rows = conn.execute(f"SELECT count(*) FROM {raw.name}").fetchall()[0][0]
        encryption = _Encryption(workers if rows >= PARALLEL_FROM else 1)
        reading = conn.cursor()
        try:
            plain = reading.sql(f"SELECT {select_list} FROM {raw.name}{order}").to_arrow_reader(CHUNK)
            for batch in encryption.batches(plain, encrypted):
                conn.register("_encrypted", batch)
                conn.execute(f"INSERT INTO {table.name} SELECT * FROM _encrypted")
                conn.unregister("_encrypted")
        finally:
            reading.close()
            encryption.close()
    conn.execute(f"DROP {'VIEW' if raw.row == 'file_row_number' else 'TABLE'} {raw.name}")


def _credit_code_check(column: str) -> str:
    """SQL that is true when `column` carries the GB 32100 check character its first 17 demand."""
    # Seventeen terms written out: a list lambda over each code built and summed a list per row, a third of the
    # relations' checks on the national registry.
    total = "(" + " + ".join(f"(instr('{CREDIT_CODE_ALPHABET}', {column}[{i}]) - 1) * {w}"
                             for i, w in enumerate(CREDIT_CODE_WEIGHTS[:17], start=1)) + ")"
    return (f"(length({column}) = 18 AND regexp_full_match({column}, '[{CREDIT_CODE_ALPHABET}]{{18}}')"
            f" AND {column}[18] = substr('{CREDIT_CODE_ALPHABET}', CAST((31 - {total} % 31) % 31 AS BIGINT) + 1, 1))")


def _check_relations(conn, files: dict[str, Path], raws: dict[str, _Raw], problems: list[str]) -> None:
    """Credit codes, unique keys and references, on the tables as read (so rows keep their numbers)."""
    def code(alias: str = "") -> str:
        return f"trim(CAST({alias}credit_code AS VARCHAR))"

    reg = raws["registry"]
    # Trimmed once, in a subquery: the check names the code twenty times.
    bad = conn.execute(f"SELECT {reg.row}, c FROM (SELECT {reg.row}, {code()} AS c FROM {reg.name}) "
                       f"WHERE NOT {_credit_code_check('c')} ORDER BY {reg.row} LIMIT {MAX_PROBLEMS}").fetchall()
    for rowid, value in bad:
        problems.append(f"{files['registry'].name} 第 {rowid + reg.offset} 行:统一社会信用代码“{value}”"
                        f"{credit_code_problem(value)}")
    for table in TABLES.values():
        raw = raws[table.name]
        key = ", ".join(f'trim(CAST("{k}" AS VARCHAR))' for k in table.key)
        dup = conn.execute(f"SELECT {key}, count(*) FROM {raw.name} GROUP BY ALL HAVING count(*) > 1 "
                           f"ORDER BY ALL LIMIT 5").fetchall()
        for row in dup:
            problems.append(f"{files[table.name].name}:{'、'.join(map(str, row[:-1]))} 重复出现 {row[-1]} 次")
    for child in ("contacts", "claims", "filings"):
        raw = raws[child]
        orphan = conn.execute(f"SELECT c.{raw.row}, {code('c.')} FROM {raw.name} c ANTI JOIN {reg.name} r "
                              f"ON {code('c.')} = {code('r.')} ORDER BY c.{raw.row} LIMIT 5").fetchall()
        for rowid, value in orphan:
            problems.append(f"{files[child].name} 第 {rowid + raw.offset} 行:纳税人“{value}”不在登记信息中")


@dataclass
class ImportResult:
    rows: dict[str, int]
    store: Path


def import_extract(source: Path, store: Path, *, progress: Callable[[str], None] | None = None,
                   workers: int | None = None) -> ImportResult:
    """Check an extract directory and make it the store; ExtractInvalid lists every problem found, by row.
    `workers`: processes sharing the contacts' encryption (default: one per core)."""
    files = find_files(source)
    store.parent.mkdir(parents=True, exist_ok=True)
    building = store.with_name(store.name + ".building")
    building.unlink(missing_ok=True)
    problems: list[str] = []
    try:
        with duckdb.connect(str(building)) as conn:
            raws = {}
            for name, path in files.items():
                if progress:
                    progress(f"检查 {path.name}")
                raws[name] = _load_table(conn, TABLES[name], path, problems)
            if not problems:
                if progress:
                    progress("核对信用代码、重复与关联")
                _check_relations(conn, files, raws, problems)
            if problems:
                raise ExtractInvalid(problems[:MAX_PROBLEMS])
            for name, raw in raws.items():
                if progress:
                    progress(f"写入 {name}")
                _store_table(conn, TABLES[name], raw, workers or os.cpu_count() or 1)
            rows = {name: conn.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] for name in TABLES}
        os.replace(building, store)
    except (duckdb.Error, ExtractInvalid) as exc:
        building.unlink(missing_ok=True)
        if isinstance(exc, ExtractInvalid):
            raise
        raise ExtractInvalid([f"无法读取数据:{exc}"]) from exc
    return ImportResult(rows, store)


def connect_store(store: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to an imported store, its registry carrying the credit overlay (schema.OVERLAY)."""
    if not store.exists():
        raise ExtractInvalid([f"还没有导入纳税人数据({store});先运行 chunfeng push import 目录"])
    conn = duckdb.connect(str(store), read_only=True)
    catalog = conn.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
    _overlay(conn, f'"{catalog}".main.registry', credit_levels_path(store))
    return conn


def credit_levels_path(store: Path) -> Path:
    """Where the credit register publishes each taxpayer's latest level, next to the store it is joined onto."""
    return store.with_name(store.name + CREDIT_LEVELS_FILE_SUFFIX)


# The levels file's own mark (Parquet key-value metadata), made afresh by each full publish; the changes file carries
# the mark of the levels file it was written over, so a full publish voids every change written before it.
_GENERATION = "chunfeng.generation"
LEVELS_SCHEMA = pa.schema([("credit_code", pa.string()), ("level", pa.string()), ("year", pa.int32()),
                           ("repair", pa.string())])


def credit_changes_path(store: Path) -> Path:
    return store.with_name(store.name + CREDIT_CHANGES_FILE_SUFFIX)


@contextmanager
def credit_levels_lock(store: Path) -> Iterator[None]:
    """Held across reading the register and writing what was read, by a full publish and a one-taxpayer one alike:
    a change committed while a full publish reads is then written after it, never under it (processes of one host,
    or of hosts sharing the store's directory)."""
    path = store.with_name(store.name + ".credit.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def credit_levels_generation(store: Path) -> str | None:
    """The published levels file's mark; None when there is none yet, or it predates marks (a full publish then)."""
    import pyarrow.parquet as pq

    path = credit_levels_path(store)
    if not path.exists():
        return None
    metadata = pq.read_schema(path).metadata or {}
    mark = metadata.get(_GENERATION.encode())
    return mark.decode() if mark else None


def _level_batches(rows) -> Iterator[pa.RecordBatch]:
    if isinstance(rows, list) and not (rows and isinstance(rows[0], pa.RecordBatch)):  # (code, level, year) tuples
        codes, levels, years = (list(col) for col in zip(*rows, strict=True)) if rows else ([], [], [])
        rows = [pa.record_batch([pa.array(codes, pa.string()), pa.array(levels, pa.string()),
                                 pa.array(years, pa.int32())], names=["credit_code", "level", "year"])]
    yield from rows


def publish_credit_levels(store: Path, rows, repairs: dict[str, str] | None = None) -> int:
    """Replace the levels file with (credit code, level, year) rows — a list of tuples, or Arrow record batches of
    those columns streamed as they are read — and each one's latest repair state (`repairs`, by code; 无 when
    absent): written beside it, then renamed over it, so a reader sees the old file or the new one, never half of
    one. The changes written over the old file are void from then on. Returns the rows written. Hold
    `credit_levels_lock` from before the rows are read."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = credit_levels_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".building")
    repairs = repairs or {}
    repair_codes = pa.array(list(repairs), pa.string())
    repair_words = pa.array(list(repairs.values()), pa.string())
    schema = LEVELS_SCHEMA.with_metadata({_GENERATION: uuid.uuid4().hex})
    written = 0
    # Dictionaries for the few levels, years and repair states only: the codes are all distinct, and trying one for
    # them was a quarter of the writer's time.
    with pq.ParquetWriter(building, schema, use_dictionary=["level", "year", "repair"]) as writer:
        for batch in _level_batches(rows):
            codes = batch.column(0)
            repair = pc.fill_null(pc.take(repair_words, pc.index_in(codes, value_set=repair_codes)), "无")
            writer.write_batch(pa.record_batch([codes, batch.column(1), batch.column(2).cast(pa.int32()), repair],
                                               schema=schema))
            written += batch.num_rows
    os.replace(building, path)
    return written


def publish_credit_level_changes(store: Path, rows: list[tuple[str, str, int, str]]) -> Path:
    """Write these taxpayers' (credit code, level, year, repair state) over the published levels without rewriting
    them: into the changes file beside them (read over them by `connect_store`), which keeps every taxpayer changed
    since the last full publish — a few thousand rows between two runs of the job. Hold `credit_levels_lock`, and
    publish in full first when `credit_levels_generation` is None."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    generation = credit_levels_generation(store)
    if generation is None:
        raise ValueError("no levels file to write changes over: publish the levels in full first")
    path = credit_changes_path(store)
    codes, levels, years, repairs = (list(col) for col in zip(*rows, strict=True)) if rows else ([], [], [], [])
    changed = pa.table([pa.array(codes, pa.string()), pa.array(levels, pa.string()), pa.array(years, pa.int32()),
                        pa.array(repairs, pa.string())], schema=LEVELS_SCHEMA)
    if path.exists() and (pq.read_schema(path).metadata or {}).get(_GENERATION.encode()) == generation.encode():
        earlier = pq.read_table(path, schema=LEVELS_SCHEMA)
        kept = earlier.filter(pc.invert(pc.is_in(earlier.column("credit_code"), value_set=changed.column("credit_code"))))
        changed = pa.concat_tables([kept, changed])
    building = path.with_name(path.name + ".building")
    pq.write_table(changed.replace_schema_metadata({_GENERATION: generation}), building)
    os.replace(building, path)
    return path


def _levels_source(levels: Path) -> str:
    """The levels file with the changes written over it since (when they were written over this very file)."""
    quoted = str(levels).replace("'", "''")
    changes = credit_changes_path(levels.with_name(levels.name.removesuffix(CREDIT_LEVELS_FILE_SUFFIX)))
    if not changes.exists():
        return f"read_parquet('{quoted}')"
    quoted_changes = str(changes).replace("'", "''")
    mark = "(SELECT decode(value) FROM parquet_kv_metadata('{}') WHERE decode(key) = '" + _GENERATION + "')"
    current = (f"(SELECT credit_code, level, year, repair FROM read_parquet('{quoted_changes}') "
               f"WHERE {mark.format(quoted_changes)} = {mark.format(quoted)})")
    return (f"(SELECT credit_code, level, year, repair FROM read_parquet('{quoted}') WHERE credit_code NOT IN "
            f"(SELECT credit_code FROM {current}) UNION ALL SELECT * FROM {current})")


def _overlay(conn: duckdb.DuckDBPyConnection, source: str, levels: Path | None) -> None:
    """`registry` as rules see it: the extract's columns and the overlay's, as a temporary view over `source`
    (a read-only store cannot take a table; the view shadows the stored one for this connection only)."""
    if levels is not None and levels.exists():
        quoted = str(levels).replace("'", "''")
        columns = {c for (c, *_) in conn.execute(f"DESCRIBE SELECT * FROM read_parquet('{quoted}')").fetchall()}
        # A file an earlier version published has no repair states: 无 until the job rewrites it.
        repair = "coalesce(l.repair, '无')" if "repair" in columns else "'无'"
        published = _levels_source(levels) if "repair" in columns else f"read_parquet('{quoted}')"
        conn.execute(f"CREATE TEMP VIEW registry AS SELECT r.*, coalesce(l.level, r.credit) AS credit_level, "
                     f"CAST(coalesce(l.year, 0) AS INTEGER) AS credit_year, {repair} AS credit_repair "
                     f"FROM {source} AS r LEFT JOIN {published} AS l ON l.credit_code = r.credit_code")
    else:
        conn.execute(f"CREATE TEMP VIEW registry AS SELECT r.*, r.credit AS credit_level, "
                     f"CAST(0 AS INTEGER) AS credit_year, '无' AS credit_repair FROM {source} AS r")


def connect_directory(directory: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection whose four tables are typed views over an extract directory, read as it is
    (unchecked: `import_extract` is where an extract is checked)."""
    files = find_files(directory)
    conn = duckdb.connect()
    for name, path in files.items():
        source = _source_sql(conn, path)
        columns = ", ".join(f'CAST("{f.name}" AS {f.duck_type}) AS "{f.name}"' for f in TABLES[name].fields)
        kind = "TABLE" if path.suffix == ".xlsx" else "VIEW"
        stored = "registry_extract" if name == "registry" else name
        conn.execute(f"CREATE {kind} {stored} AS SELECT {columns} FROM {source}")
    _overlay(conn, "registry_extract", None)
    return conn
