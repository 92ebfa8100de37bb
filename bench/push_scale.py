"""Policy push at national scale: a synthetic extract of 10 million taxpayers with their contacts, claims and
filings; every shipped policy matched and its eligible-but-not-claimed set found.

Figures, each printed beside its target or baseline:
- matching all shipped policies (eligible and not-claimed counts by province and industry) on DuckDB, in a
  child process (target: at most 30 s on this 2-core machine, peak memory under 4 GB);
- the same rules evaluated record by record in Python (closures over each taxpayer's dict, as rule engines
  such as rule-engine or json-logic do, with claims in a Python set) on a sample, extrapolated to the whole
  extract (target: DuckDB at least 100x faster). Loading the rows into Python is not counted, which favours
  the baseline;
- for reference: generating the extract and importing it (every check: credit codes, types, keys, relations).

Run: .venv/bin/python bench/push_scale.py [--taxpayers 10000000] [--sample 100000] [--fresh]
The extract and the store are kept in bench/out/ and reused when the size matches.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import configure  # bench/common.py

OUT = Path(__file__).parent / "out"


def peak_rss_gb() -> float:
    """This process's peak resident memory. Read from /proc (VmHWM starts afresh at exec), not from
    getrusage, whose figure for a child includes the parent's memory copied at fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def child_match(store_file: Path) -> None:
    """Run in a child process so its peak memory is the matching's alone."""
    import duckdb

    from chunfeng.push import matching, services

    conn = duckdb.connect(str(store_file), read_only=True, config={"threads": 2, "memory_limit": "3GB"})
    engine = matching.DuckDBEngine(conn)
    policies = [(p["id"], p["rule"]) for p in services.shipped_policies()]
    started = time.perf_counter()
    found = matching.match_all(engine, policies)
    together = time.perf_counter() - started
    peak = peak_rss_gb()
    # Policy by policy as well (what the match page does for one policy), for comparison.
    t = time.perf_counter()
    for policy_id, rule in policies[:4]:
        matching.match(engine, policy_id=policy_id, rule_text=rule)
    one = (time.perf_counter() - t) / 4
    print(json.dumps({"seconds": together, "peak_gb": peak, "one_policy": one, "policies": [
        {"policy": m.policy, "eligible": m.eligible, "not_claimed": m.not_claimed} for m in found]}))


def to_rule_engine(node, table) -> str:
    """A rule's syntax tree in the rule-engine package's language (codes by slicing, dates as d"…")."""
    from chunfeng.push import rules as r

    def lit(x: r.Literal, f=None) -> str:
        if f is not None and f.kind == "date":
            return f'd"{x.value}"'
        return json.dumps(x.value, ensure_ascii=False) if x.kind == "string" else str(x.value).lower()

    def code(name: str, value: str) -> str:
        return f"{name}[0:{len(value)}]"

    if isinstance(node, r.Literal):
        return lit(node)
    if isinstance(node, r.FieldRef):
        return node.name
    if isinstance(node, r.Unary):
        return f"(not {to_rule_engine(node.operand, table)})" if node.op == "not" else f"(-{to_rule_engine(node.operand, table)})"
    if isinstance(node, r.InList):
        f = table.get(node.operand.name)
        parts = []
        for item in node.items:
            subject = code(f.name, item.low.value) if f.kind == "code" else f.name
            if item.high is None:
                parts.append(f"{subject} == {lit(item.low, f)}")
            else:
                parts.append(f"({lit(item.low, f)} <= {subject} and {subject} <= {lit(item.high, f)})")
        test = "(" + " or ".join(parts) + ")"
        return f"(not {test})" if node.negated else test
    left, right, op = node.left, node.right, node.op
    if isinstance(left, r.FieldRef) and isinstance(right, r.Literal):
        f = table.get(left.name)
        subject = code(f.name, right.value) if f.kind == "code" else f.name
        return f"({subject} {op} {lit(right, f)})"
    return f"({to_rule_engine(left, table)} {op} {to_rule_engine(right, table)})"


def sample_rows(store_file: Path, sample: int) -> tuple[list[dict], set[tuple], dict[str, str]]:
    """A fixed random sample of taxpayers as dicts, their claims as a set, and each policy's latest period."""
    from chunfeng.push import store

    with store.connect_store(store_file) as conn:  # the registry as rules see it, credit overlay included
        cols = [d[0] for d in conn.execute("SELECT * FROM registry LIMIT 0").description]
        rows = [dict(zip(cols, r, strict=True)) for r in conn.execute(
            f"SELECT * FROM registry USING SAMPLE {sample} ROWS (reservoir, 42)").fetchall()]
        conn.execute("CREATE TEMP TABLE s AS SELECT unnest(?::VARCHAR[]) AS credit_code", [[r["credit_code"] for r in rows]])
        claims = {tuple(c) for c in conn.execute(
            "SELECT c.credit_code, c.policy, c.period FROM claims c JOIN s USING (credit_code)").fetchall()}
        latest = dict(conn.execute("SELECT policy, max(period) FROM claims GROUP BY policy").fetchall())
    return rows, claims, latest


def baseline(store_file: Path, sample: int) -> tuple[float, int]:
    """Seconds for the record-by-record evaluation of every policy on `sample` taxpayers, and how many."""
    from chunfeng.push import rules, services

    rows, claims, latest = sample_rows(store_file, sample)
    policies = [(p["id"], rules.parse(p["rule"]).predicate(), latest.get(p["id"])) for p in services.shipped_policies()]
    started = time.perf_counter()
    for policy_id, check, period in policies:
        eligible = not_claimed = 0
        for r in rows:
            if check(r):
                eligible += 1
                if (r["credit_code"], policy_id, period) not in claims:
                    not_claimed += 1
    return time.perf_counter() - started, len(rows)


def baseline_rule_engine(store_file: Path, sample: int) -> tuple[float, int]:
    """The same with the rule-engine package evaluating each rule for each taxpayer."""
    import datetime

    import rule_engine

    from chunfeng.push import rules, services
    from chunfeng.push.schema import RULE_REGISTRY as REGISTRY  # the rules see the credit overlay too

    rows, claims, latest = sample_rows(store_file, sample)
    for r in rows:  # rule-engine compares datetimes, not dates
        r["registered"] = datetime.datetime.combine(r["registered"], datetime.time())
    policies = [(p["id"], rule_engine.Rule(to_rule_engine(rules.parse(p["rule"]).tree, REGISTRY)), latest.get(p["id"]))
                for p in services.shipped_policies()]
    started = time.perf_counter()
    counts = []
    for policy_id, rule, period in policies:
        counts.append(sum(1 for r in rows if rule.matches(r) and (r["credit_code"], policy_id, period) not in claims))
    seconds = time.perf_counter() - started
    # The translation is checked, untimed: both evaluators find the same not-claimed taxpayers.
    for (policy_id, _, period), n, p in zip(policies, counts, services.shipped_policies(), strict=True):
        check = rules.parse(p["rule"]).predicate()
        own = sum(1 for r in rows if check({**r, "registered": r["registered"].date()})
                  and (r["credit_code"], policy_id, period) not in claims)
        assert own == n, (policy_id, own, n)
    return seconds, len(rows)


def main() -> None:
    configure()
    parser = argparse.ArgumentParser()
    parser.add_argument("--taxpayers", type=int, default=10_000_000)
    parser.add_argument("--sample", type=int, default=100_000)
    parser.add_argument("--fresh", action="store_true", help="generate and import again")
    parser.add_argument("--child-match", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_match:
        child_match(args.child_match)
        return

    from chunfeng.push import services, store, synthetic

    extract = OUT / f"push-extract-{args.taxpayers}"
    store_file = OUT / f"push-{args.taxpayers}.duckdb"
    if args.fresh:
        shutil.rmtree(extract, ignore_errors=True)
        store_file.unlink(missing_ok=True)
    if not (extract / "registry.parquet").exists():
        shutil.rmtree(extract, ignore_errors=True)
        t = time.perf_counter()
        counts = synthetic.generate(extract, taxpayers=args.taxpayers, claim_rules=services.synthetic_claim_rules(),
                                    progress=lambda table, done, total: print(f"\r  生成 {table} {done:,}/{total:,}",
                                                                              end="", flush=True))
        print(f"\ngenerate: {time.perf_counter() - t:.1f} s  " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if not store_file.exists():
        t = time.perf_counter()
        result = store.import_extract(extract, store_file)
        print(f"import (all checks): {time.perf_counter() - t:.1f} s  "
              + ", ".join(f"{k} {v:,}" for k, v in result.rows.items()))

    t = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--child-match", str(store_file)], capture_output=True, text=True,
                           check=True)
    wall = time.perf_counter() - t
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"\nmatch {len(figures['policies'])} policies over {args.taxpayers:,} taxpayers (DuckDB, 2 threads): "
          f"{figures['seconds']:.1f} s (process {wall:.1f} s with start-up)   target ≤ 30 s")
    print(f"  peak memory of the matching process: {figures['peak_gb']:.2f} GB   target < 4 GB")
    print(f"  one policy on its own (the match page): {figures['one_policy']:.2f} s on average; "
          f"× {len(figures['policies'])} = {figures['one_policy'] * len(figures['policies']):.1f} s, hence one pass for all")
    print(f"  eligible in all: {sum(p['eligible'] for p in figures['policies']):,}; "
          f"eligible but not claimed: {sum(p['not_claimed'] for p in figures['policies']):,}")

    seconds, n = baseline_rule_engine(store_file, args.sample // 10)
    extrapolated = seconds * args.taxpayers / n
    print(f"\nbaseline, the rule-engine package record by record on {n:,} taxpayers: {seconds:.2f} s "
          f"→ {extrapolated:,.0f} s for {args.taxpayers:,} (extrapolated)")
    print(f"DuckDB vs rule-engine record by record: {extrapolated / figures['seconds']:.0f}x   target ≥ 100x")
    seconds, n = baseline(store_file, args.sample)
    extrapolated = seconds * args.taxpayers / n
    print(f"stricter baseline, our rules compiled to Python closures on {n:,} taxpayers: {seconds:.2f} s "
          f"→ {extrapolated:,.0f} s (extrapolated): DuckDB {extrapolated / figures['seconds']:.0f}x faster")


if __name__ == "__main__":
    main()
