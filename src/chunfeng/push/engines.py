"""The two engines besides DuckDB that run the same matching SQL: PostgreSQL and Spark.

PostgreSQL suits a bureau that keeps its extract next to the application database; Spark one whose
extract sits in a data lake too big for one machine. Both receive the extract from a DuckDB connection
(an imported store or a directory), so an extract is checked and typed once, in one place.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from chunfeng.db import copy_csv_file
from chunfeng.push.errors import EngineFailed
from chunfeng.push.schema import RULE_TABLES as TABLES  # the registry with its credit overlay

PG_TYPES = {"DECIMAL(18,2)": "NUMERIC(18,2)", "INTEGER": "INTEGER", "BOOLEAN": "BOOLEAN", "DATE": "DATE",
            "VARCHAR": "TEXT"}


class PostgresEngine:
    """Matching on PostgreSQL, over the extract loaded into its own schema (default `taxpayer`)."""

    dialect = "postgres"

    def __init__(self, sa_engine, schema: str = "taxpayer"):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):  # an identifier cannot be a bound parameter
            raise ValueError(f"schema name {schema!r}: lower-case letters, digits and _ only")
        self.engine, self.schema = sa_engine, schema

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        """`sql` with numbered parameters ($1, $2, …), which the raw cursor sends to the server unchanged."""
        import psycopg

        with self.engine.connect() as conn:
            driver = conn.connection.dbapi_connection
            with psycopg.RawCursor(driver) as cur:
                cur.execute(f'SET search_path TO "{self.schema}"')
                try:
                    cur.execute(sql, params or None)
                except conn.dialect.dbapi.Error as exc:
                    driver.rollback()
                    raise EngineFailed(str(exc).splitlines()[0][:300]) from exc
                rows = cur.fetchall()
            driver.rollback()
        return rows

    def load(self, duck) -> dict[str, int]:
        """Replace the schema's tables with the extract `duck` holds, in one transaction (COPY, CSV)."""
        counts = {}
        with self.engine.begin() as conn:
            driver = conn.connection.dbapi_connection
            with driver.cursor() as cur:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                for table in TABLES.values():
                    columns = ", ".join(f'"{f.name}" {PG_TYPES[f.duck_type]} NOT NULL' for f in table.fields)
                    cur.execute(f'DROP TABLE IF EXISTS "{self.schema}"."{table.name}"')
                    cur.execute(f'CREATE TABLE "{self.schema}"."{table.name}" ({columns})')
                    names = ", ".join(f'"{n}"' for n in table.names)
                    with tempfile.TemporaryDirectory() as tmp:
                        path = Path(tmp) / "t.csv"
                        duck.execute(f"COPY (SELECT {names} FROM {table.name}) TO '{path}' (HEADER false)")
                        copy_csv_file(cur, f'"{self.schema}"."{table.name}" ({names})', path)
                    cur.execute(f'SELECT count(*) FROM "{self.schema}"."{table.name}"')
                    counts[table.name] = cur.fetchall()[0][0]
                cur.execute(f'CREATE INDEX ON "{self.schema}".claims (policy, period, credit_code)')
                cur.execute(f'ANALYZE "{self.schema}".registry')
        return counts


class SparkEngine:
    """Matching on Spark (local mode here; a cluster master in production), over Parquet files."""

    dialect = "spark"

    def __init__(self, spark, parquet_dir: Path, tables=tuple(TABLES)):
        self.spark = spark
        for name in tables:
            spark.read.parquet(str(parquet_dir / f"{name}.parquet")).createOrReplaceTempView(name)

    @classmethod
    def local(cls, parquet_dir: Path, *, cores: int = 2, tables=tuple(TABLES)) -> "SparkEngine":
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master(f"local[{cores}]").appName("chunfeng-push")
                 .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", str(cores * 2))
                 .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        return cls(spark, parquet_dir, tables)

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        """`sql` with named parameter markers (:name), bound by Spark."""
        return [tuple(row) for row in self.spark.sql(sql, args=params or None).collect()]


def export_parquet(duck, directory: Path, tables=tuple(TABLES)) -> Path:
    """Write the extract `duck` holds as one Parquet file per table (what Spark reads): every table, or `tables`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in tables:
        duck.execute(f"COPY {name} TO '{directory / (name + '.parquet')}' (FORMAT parquet)")
    return directory

