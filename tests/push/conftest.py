"""A small synthetic extract shared by the push tests: generated once, imported into a DuckDB store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chunfeng.push import services, store, synthetic

TAXPAYERS = 3000


@pytest.fixture(scope="session")
def extract_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("extract")
    synthetic.generate(out, taxpayers=TAXPAYERS, seed=7, claim_rules=services.synthetic_claim_rules())
    return out


@pytest.fixture(scope="session")
def store_file(extract_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "taxpayers.duckdb"
    store.import_extract(extract_dir, path)
    return path


@pytest.fixture
def duck(store_file):
    with store.connect_store(store_file) as conn:
        yield conn


@pytest.fixture
def policies(db):
    with db.write() as session:
        services.seed_policies(session)
    return db


def copy_extract(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
