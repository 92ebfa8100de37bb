"""What the benchmarks share. Each runs as `python bench/NAME.py`, so this directory is on the path."""

from __future__ import annotations

import time
from pathlib import Path

from chunfeng import runtime
from chunfeng.settings import Settings

OUT = Path(__file__).parent / "out"


def configure() -> Settings:
    """What every entry point does first: read the settings (CHUNFENG_*) and configure the process with them (the
    data key, the holidays file, the audit head)."""
    settings = Settings()
    runtime.configure(settings)
    return settings


def step(label: str):
    """`with step("units"):` prints the label, then the seconds the block took."""
    class Timer:
        def __enter__(self):
            self.start = time.perf_counter()
            print(f"  {label} …", end="", flush=True)
            return self

        def __exit__(self, *exc):
            self.seconds = time.perf_counter() - self.start
            print(f" {self.seconds:.1f} s", flush=True)

    return Timer()


def survey_database(name: str, *, actor, title: str, question: str) -> tuple:
    """A fresh SQLite database bench/out/NAME.db (its older files removed) holding the built-in units and one
    published one-question survey of 北京 (110000) by `actor`: (database, survey id)."""
    from chunfeng.db import Database
    from chunfeng.org.services import ensure_builtin_units
    from chunfeng.survey import services as surveys

    OUT.mkdir(exist_ok=True)
    for old in OUT.glob(f"{name}.db*"):
        old.unlink()
    db = Database(f"sqlite:///{OUT / name}.db")
    db.upgrade()
    with db.write() as s:
        ensure_builtin_units(session=s)
        q = [surveys.QuestionSpec("Q1", "scale", question, [], True)]
        survey = surveys.import_questionnaire(session=s, actor=actor, title=title, questions=q, unit_code="110000")
        surveys.publish(session=s, actor=actor, survey_id=survey.id)
        return db, survey.id
