"""Engine, sessions and migrations: the one place that knows which database is behind Chunfeng.

SQLite is the embedded default and PostgreSQL the server option. Reads and writes go through
different doors, as in datasette: `Database.read()` is a plain session, `Database.write()` is one
transaction that, on SQLite, takes the write lock at BEGIN (BEGIN IMMEDIATE) so that two writers
queue instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from chunfeng.errors import ValidationFailed

T = TypeVar("T")
# A session's actions to run once its commit is on disk (`Database.write_grouped`), where a write's own commit
# does not wait for the disk; without the key, at the commit.
AFTER_DURABLE = "after_durable"
MIGRATIONS = Path(__file__).with_name("migrations")
# The rows every database holds besides its tables (the built-in units), each added by whoever owns them
# (`chunfeng.models`, which the migrations' environment imports): the database layer imports no domain.
SEEDS: list[Callable[[Session], object]] = []

# Stable constraint names, so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Naive UTC, stored the same way on both engines."""
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_connect_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class NulInText(ValidationFailed):
    """Text holding a NUL character, which PostgreSQL can neither store nor compare: refused on both engines."""


NUL_REFUSED = "文字中含有空字符(NUL,\\x00),无法保存或查询;请删去后重试"


def _holds_nul(value) -> bool:
    # On every statement's parameters: scalars are looked at in the loop, not by a call each (a bulk write's
    # hundreds of thousands of values).
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return False
    for v in value:
        if isinstance(v, str):
            if "\x00" in v:
                return True
        elif isinstance(v, dict | list | tuple) and _holds_nul(v):
            return True
    return False


def _refuse_nul(_conn, _cursor, statement, parameters, _context, _executemany):
    # Whatever the text came from (a URL, a form, a JSON body, an imported file), a clear refusal rather than
    # PostgreSQL's DataError (a 500); SQLite would take it, and the two engines answer alike.
    if _holds_nul(parameters):
        raise NulInText(NUL_REFUSED)


class Database:
    """One database: its engine, its sessions, its schema version."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        if url.startswith("sqlite"):
            # hide_parameters: an error's message (logged, shown in tracebacks) never carries the values bound to
            # the statement, which are personal data as often as not.
            self.engine = create_engine(url, echo=echo, hide_parameters=True,
                                        connect_args={"check_same_thread": False, "timeout": 30})
            _sqlite_connect_hooks(self.engine)
            writer = self.engine.execution_options(sqlite_immediate=True)
        else:
            self.engine = create_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True)
            writer = self.engine
        event.listen(self.engine, "before_cursor_execute", _refuse_nul)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(writer, expire_on_commit=False)
        # SQLite has one writer. Threads of this process queue here rather than in SQLite's busy handler,
        # which sleeps in growing steps and lets an unlucky writer wait seconds (the intake's p99).
        self._write_lock = threading.RLock() if url.startswith("sqlite") else nullcontext()

    @property
    def write_lock(self) -> threading.RLock | None:
        """What this process's SQLite writers queue on (None on PostgreSQL): a writer with an engine of its own
        (the rate-limit counters) takes it too, rather than meet the others in SQLite's busy handler."""
        return self._write_lock if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; closing it ends its transaction, and what it loaded stays readable."""
        with self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._write_lock, self._writer() as session, session.begin():
            yield session

    def write_grouped(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in a transaction of its own whose disk flush is shared with the writes of the moment: its
        answer once it is on disk, or its error (issue 16: the public filings, each appending to the audit chain
        under its lock).

        PostgreSQL: a transaction of its own, committed without waiting for the disk, so the audit chain's lock is
        held for the statements alone, not across a flush; then a flush covering it (`wait_until_durable`), one
        for all the writes committed meanwhile. What is to happen once it is durable (the audit head written
        outside the database) waits in `session.info[AFTER_DURABLE]`. SQLite: an ordinary write; its writers
        queue on one lock anyway, and a writer thread committing the waiting writes together in savepoints was
        measured slower (`bench/group_commit.py`: 90 filings/s against 250)."""
        if self.is_sqlite:
            with self.write() as session:
                return work(session)
        with self._writer() as session:
            with session.begin():
                session.execute(text("SET LOCAL synchronous_commit = off"))
                session.info[AFTER_DURABLE] = []
                result = work(session)
            later = session.info.pop(AFTER_DURABLE)
        self.wait_until_durable()
        for action in later:
            action()
        return result

    def wait_until_durable(self) -> None:
        """Return once everything committed so far is on disk (PostgreSQL): a transaction that writes a record and
        commits with the flush flushes the log up to it, everything before it included. Flushes that meet share
        one: PostgreSQL writes out all that is waiting at each."""
        # One statement that is its own transaction (autocommit): one round trip, not three.
        with self.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text("SELECT pg_logical_emit_message(true, 'chunfeng.durable', '')"))

    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self) -> None:
        """Bring the schema to the newest migration and make sure the built-in rows (`SEEDS`) exist."""
        command.upgrade(self.alembic_config(), "head")
        with self.write() as session:
            for seed in SEEDS:
                seed(session)

    def schema_version(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:
                return None

    def dispose(self) -> None:
        self.engine.dispose()


def lock_for_append(session: Session, name: str) -> None:
    """Serialise appends to a chain (the audit log) across concurrent transactions.

    On PostgreSQL a transaction-scoped advisory lock; on SQLite the write transaction already
    holds the database's one write lock (BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def insert_unless_present(session: Session, model, **values) -> None:
    """Insert a row unless one with the same unique key exists — atomically, so two requests racing to create
    the same row (two wrong passwords at once) both succeed instead of one failing on the unique constraint."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def next_ids(session: Session, table: Table, n: int) -> list[int]:
    """`n` ids drawn from the table's id sequence (PostgreSQL), in order: rows written by COPY, which returns
    nothing, and the rows that refer to them can then be written without reading anything back."""
    return list(session.scalars(text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
                                {"table": table.name, "n": n}))


def copy_rows(session: Session, table: Table, rows: list[dict]) -> None:
    """Insert `rows` with COPY (PostgreSQL), in the session's transaction, as `insert(table)` would have: each
    column's Python default for what a row leaves out, each column type's own bind processing (SM4 for
    `Encrypted`, JSON), and NUL refused. Many times faster than multi-row INSERTs, whose placeholders psycopg
    parses again for each statement over 4 KB."""
    if not rows:
        return
    if _holds_nul(rows):  # COPY does not pass the statement hook that refuses it on every other write
        raise NulInText(NUL_REFUSED)
    session.flush()  # the ORM's pending rows first, as a Core insert would have them
    dialect, names, columns = session.get_bind().dialect, [], []
    for column in table.columns:
        default = column.default
        if not any(column.name in row for row in rows) and (default is None or not (default.is_scalar or
                                                                                    default.is_callable)):
            continue  # the server's default (an id sequence) or NULL
        names.append(column.name)
        values = [row[column.name] if column.name in row else _default(default) for row in rows]
        # A column at a time: a type that binds many values at once (SM4 for `Encrypted`: one key schedule and one
        # read of the random source for the column) does so.
        many = getattr(column.type, "bind_many", None)
        process = None if many else column.type.dialect_impl(dialect).bind_processor(dialect)
        columns.append(many(values) if many else [process(v) for v in values] if process else values)
    listed = ", ".join(f'"{name}"' for name in names)
    with session.connection().connection.driver_connection.cursor() as cur:
        with cur.copy(f'COPY "{table.name}" ({listed}) FROM STDIN') as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)


def copy_csv_file(cursor, target: str, path: Path, done: Callable[[float], None] | None = None) -> None:
    """PostgreSQL's COPY of a headerless CSV file (one a data engine wrote: DuckDB's COPY … TO) into `target`
    ("table (column, …)"), streamed in 4 MB chunks; `done` is told the share of the file sent so far."""
    size, sent = max(path.stat().st_size, 1), 0
    with cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv)") as copy, path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            copy.write(chunk)
            sent += len(chunk)
            if done:
                done(sent / size)


def _default(default):
    if default is None:
        return None
    return default.arg if default.is_scalar else default.arg(None)


_databases: dict[str, Database] = {}


def get_database(url: str) -> Database:
    """The process's Database for a URL."""
    if url not in _databases:
        _databases[url] = Database(url)
    return _databases[url]
