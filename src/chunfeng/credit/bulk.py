"""Rows of a DuckDB query written into the application database in bulk, shared by the risk tiers and the annual
evaluation of levels: COPY on PostgreSQL, multi-row INSERTs on SQLite with the indexes the rows do not arrive in the
order of dropped and built again — millions of rows at national scale, never through the ORM."""

from __future__ import annotations

from datetime import datetime
from itertools import chain
from pathlib import Path

from sqlalchemy.orm import Session

from chunfeng.db import copy_csv_file
from chunfeng.jobs import Progress

BATCH = 50_000
BULK_BATCH = 250_000  # rows an executemany when writing into an empty table
ROWS_A_STATEMENT = 100  # SQLite: 600 parameters, under its limit of 32,766
WRITE_CACHE_KIB = -262_144  # SQLite's page cache while write_rows writes (PRAGMA cache_size: negative is KiB)


def literal(text: str) -> str:
    """`text` as an SQL string literal (DuckDB's and SQLite's quoting), for what cannot be bound: paths, names."""
    return "'" + text.replace("'", "''") + "'"


def out_of_order(table, fixed: dict) -> list:
    """The table's secondary indexes that rows arriving in credit-code order would not be appended to: those whose
    columns, past the ones every row holds the same value in (`fixed`), do not begin with credit_code. Into an
    empty table the others take each row at their right edge, as the table itself does."""
    def appended(index) -> bool:
        names = [column.name for column in index.columns]
        while names and names[0] in fixed:
            names.pop(0)
        return names[:1] == ["credit_code"]

    return sorted((index for index in table.indexes if not appended(index)), key=lambda index: index.name)


def write_rows(session: Session, conn, rows: str, total: int, work: Path, progress: Progress, *, model: type,
               columns: tuple[str, ...], fixed: dict, message: str, bulk: bool = False) -> None:
    """Write the rows of the DuckDB query `rows` (its `columns`, then the `fixed` columns: the same value on every
    row, such as the run's time), given in credit-code order, to `model`'s table straight from DuckDB: COPY on
    PostgreSQL (DuckDB writes the CSV), the driver's executemany on SQLite, the fixed values written into the
    statement, not bound a row at a time — not row dicts through the ORM, whose per-row parameter processing was
    most of a national run (1.7 M rows at 10 M taxpayers). `bulk` (SQLite, into an empty table): the secondary
    indexes the rows do not arrive in the order of (`out_of_order`) are dropped before and built again after, in
    the same transaction (a run that fails leaves them as they were): SQLite then sorts each once instead of
    inserting millions of entries into it here and there; the ones the rows arrive in the order of are kept —
    appending to them cost less than building them again (a first run of the annual evaluation at 10 M taxpayers:
    two indexes, 7.4 M entries each). Shared by the risk tiers and the annual evaluation."""
    if not total:
        return
    bind = session.connection()
    driver, dialect, table = bind.connection.driver_connection, bind.dialect, model.__table__
    names = ", ".join((*columns, *fixed))
    if dialect.name == "postgresql":
        path = work / f"{table.name}.csv"
        values = ", ".join(f"TIMESTAMP '{v.isoformat(sep=' ')}'" if isinstance(v, datetime) else literal(str(v))
                           for v in fixed.values())
        conn.execute(f"COPY (SELECT *, {values} FROM ({rows})) TO {literal(str(path))} (HEADER false)")
        with driver.cursor() as cur:
            copy_csv_file(cur, f"{table.name} ({names})", path,
                          lambda share: progress(int(total * share), total, message))
        return
    stored = []
    for name, value in fixed.items():
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        value = processor(value) if processor else value
        stored.append(literal(value) if isinstance(value, str) else str(int(value)))
    one_row = f"({', '.join(['?'] * len(columns) + stored)})"
    insert_sql = f"INSERT INTO {table.name} ({names}) VALUES {one_row}"
    indexes = out_of_order(table, fixed) if bulk else []
    # SQLite's page cache raised for the write (2 MB by default, then back): fewer pages written to the WAL more than
    # once, and the indexes sorted in memory — at 10 M taxpayers a first annual run 2.5 s faster (of 30).
    (cache_size,) = driver.execute("PRAGMA cache_size").fetchone()
    driver.execute(f"PRAGMA cache_size = {WRITE_CACHE_KIB}")
    try:
        for index in indexes:
            index.drop(bind)
        _insert(driver, conn, rows, insert_sql, one_row, total, progress, message, BULK_BATCH if bulk else BATCH)
        if indexes:
            progress(total, total, "正在建立索引")
            for index in indexes:
                index.create(bind)
    finally:
        driver.execute(f"PRAGMA cache_size = {int(cache_size)}")


def _insert(driver, conn, rows: str, insert_sql: str, one_row: str, total: int, progress: Progress, message: str,
            batch_rows: int) -> None:
    # ROWS_A_STATEMENT rows an INSERT: a third less of SQLite's and the driver's time a row than one row a statement.
    many_sql = insert_sql + f", {one_row}" * (ROWS_A_STATEMENT - 1)
    done, cursor = 0, driver.cursor()
    # Arrow batches turned into Python values a column at a time: DuckDB's row-wise fetch cost more than the inserts.
    # (Reading the next batch on a second thread meanwhile saved nothing: the two threads took turns at the GIL.)
    for batch in conn.sql(rows).to_arrow_reader(batch_rows):
        values = [column.to_pylist() for column in batch.columns]
        whole = batch.num_rows - batch.num_rows % ROWS_A_STATEMENT

        def statement(start: int, values=values) -> tuple:
            end = start + ROWS_A_STATEMENT
            return tuple(chain.from_iterable(zip(*(c[start:end] for c in values), strict=True)))

        cursor.executemany(many_sql, map(statement, range(0, whole, ROWS_A_STATEMENT)))
        cursor.executemany(insert_sql, zip(*(c[whole:] for c in values), strict=True))
        done += batch.num_rows
        progress(done, total, message)
    cursor.close()
