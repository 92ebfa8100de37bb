"""Demo accounts share a documented password: the demo refuses to create them outside a local environment."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import func, select

from chunfeng.org.models import User


def test_demo_refuses_outside_a_local_environment(db, tmp_path):
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "CHUNFENG_ENVIRONMENT": "production",
           "CHUNFENG_SECRET_KEY": "s" * 64, "CHUNFENG_DATA_KEY": "0123456789abcdef" * 2,
           "CHUNFENG_PUSH_STORE": str(tmp_path / "t.duckdb")}
    run = subprocess.run([sys.executable, "-m", "chunfeng", "demo", "--no-serve"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "只能在本地环境中创建" in run.stderr
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
