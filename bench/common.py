"""What the benchmarks share. Each runs as `python bench/NAME.py`, so this directory is on the path."""

from __future__ import annotations

import time

from chunfeng import runtime
from chunfeng.settings import Settings


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
