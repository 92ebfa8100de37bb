"""The national push import with SM4 (issue 13 §1): 30.8 million contacts, each with a name and an address
encrypted at rest. Measured on a sample extract and extrapolated, the arithmetic printed.

Figures, each beside its target and the one-core baseline measured in the same run:
- the contacts' encryption alone, five ways over the sample's names and addresses: one value a call (as the
  import once did), DuckDB's batches of 2,048 with one key schedule each on one core, the same shared by two
  threads, each batch split with a worker process and waited for (the import's way until this pass), and chunks of
  `store.CHUNK` many in flight, shared by this process and a forked worker (what the import does now, outside
  DuckDB);
- the whole import (`store.import_extract`: read, check, encrypt, write) with one process and with one per
  core, extrapolated to the national extract (target: under 10 minutes).

Run: .venv/bin/python bench/push_import_national.py [--contacts 1000000]
The sample extract is generated once into bench/out/ and reused.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from chunfeng import crypto
from chunfeng.push import services, store, synthetic

OUT = Path(__file__).parent / "out"
NATIONAL_CONTACTS = 30_800_000
CONTACTS_PER_TAXPAYER = 3.08  # the synthetic extract's: 30.8 million contacts for 10 million taxpayers
TARGET_SECONDS = 600
BATCH = 2048  # DuckDB hands a Python function this many values at a time
ONE_CORE = "batches sealed together (SM4 once over their counters, GHASH by tables), one core"


def batches(values: list[str]) -> list[list[str]]:
    return [values[i:i + BATCH] for i in range(0, len(values), BATCH)]


def processor() -> float:
    """Processor seconds of this process and of its workers that have ended (user + system)."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def timed(work) -> tuple[float, float]:
    """Wall-clock and processor seconds of `work()`."""
    start, cpu = time.perf_counter(), processor()
    work()
    return time.perf_counter() - start, processor() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000, help="about how many contacts the sample holds")
    args = parser.parse_args()
    crypto.configure(os.environ.get("CHUNFENG_DATA_KEY", "0123456789abcdef" * 2))
    taxpayers = round(args.contacts / CONTACTS_PER_TAXPAYER)
    extract = OUT / f"push-extract-{taxpayers}"
    if not (extract / "contacts.parquet").exists():
        print(f"generating a sample extract of {taxpayers:,} taxpayers …", flush=True)
        synthetic.generate(extract, taxpayers=taxpayers, claim_rules=services.synthetic_claim_rules())
    contacts = pq.read_table(extract / "contacts.parquet", columns=["person", "address"])
    values = contacts["person"].to_pylist() + contacts["address"].to_pylist()
    n = contacts.num_rows
    scale = NATIONAL_CONTACTS / n
    print(f"sample: {n:,} contacts ({len(values):,} values to encrypt); national: {NATIONAL_CONTACTS:,} contacts, "
          f"× {scale:.1f}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")

    key, chunks = crypto.encryption_key(), batches(values)
    ways = {"one value a call (before)": lambda: [crypto.encrypt(v) for v in values],
            ONE_CORE: lambda: [crypto.encrypt_with(key, c) for c in chunks]}

    def threads() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda c: crypto.encrypt_with(key, c), chunks))
    ways["batches, two threads"] = threads

    # Each chunk in buffers of its own, as DuckDB's reader hands them out (a pickled slice would carry them all).
    plain = [pa.record_batch({"v": pa.array(values[i:i + store.CHUNK], type=pa.string())})
             for i in range(0, len(values), store.CHUNK)]

    def processes(split: bool) -> None:
        """Two processes: each of DuckDB's batches split with a forked worker and waited for (the import until
        issue 13's second pass), or chunks of `store.CHUNK` many in flight, shared with a forked worker (the import)."""
        if split:
            with ProcessPoolExecutor(1, mp_context=get_context("fork")) as pool:
                for c in chunks:
                    half = len(c) // 2
                    other = pool.submit(store._encrypt_array, key, pa.array(c[half:], type=pa.string()))
                    store._encrypt_array(key, pa.array(c[:half], type=pa.string()))
                    other.result()
            return
        encryption = store._Encryption(2)
        try:
            for _ in encryption.batches(plain, [0]):
                pass
        finally:
            encryption.close()
    ways["batches split with a worker, each waited for"] = lambda: processes(True)
    ways["chunks in flight, this process + a worker (the import)"] = lambda: processes(False)

    print("encryption alone (wall clock; processor time of all processes in brackets)")
    seconds = {}
    for name, work in ways.items():
        seconds[name], cpu = timed(work)
        s = seconds[name]
        print(f"  {name:<80} {s:6.1f} s ({cpu:5.1f} s)  {s / len(values) * 1e6:5.2f} µs a value  "
              f"→ national {s * scale:6.0f} s ({s:.1f} s × {scale:.1f})")
    before = seconds["one value a call (before)"]
    now = seconds["chunks in flight, this process + a worker (the import)"]
    print(f"  speed-up over one value a call: {before / now:.1f}x; two threads against one core: "
          f"{seconds[ONE_CORE] / seconds['batches, two threads']:.2f}x (the GIL: SM4-GCM of short values is "
          f"mostly Python)")

    print("\nthe whole import (read, check, encrypt, write)")
    whole = {}
    for workers in (1, 2):
        target = OUT / f"push-national-sample-{workers}.duckdb"
        target.unlink(missing_ok=True)
        whole[workers], cpu = timed(lambda w=workers, t=target: store.import_extract(extract, t, workers=w))
        target.unlink(missing_ok=True)
        national = whole[workers] * scale
        verdict = "" if workers == 1 else (f"   target < {TARGET_SECONDS // 60} min: "
                                           f"{'met' if national < TARGET_SECONDS else 'NOT met'}")
        print(f"  {workers} process{'es' if workers > 1 else ''}: {whole[workers]:6.1f} s ({cpu:.1f} s of processor "
              f"time, DuckDB's threads included) → national "
              f"{whole[workers]:.1f} s × {scale:.1f} = {national:6.0f} s ({national / 60:.1f} min){verdict}")
    old = whole[1] - seconds[ONE_CORE] + before
    print(f"  as before (one value a call, one core; the 1-process import with its encryption swapped): "
          f"{whole[1]:.1f} − {seconds[ONE_CORE]:.1f} + {before:.1f} = {old:.1f} s → national "
          f"{old * scale:.0f} s ({old * scale / 60:.1f} min)")


if __name__ == "__main__":
    main()
