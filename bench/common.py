"""What the benchmarks share. Each runs as `python bench/NAME.py`, so this directory is on the path."""

from __future__ import annotations

import time


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
