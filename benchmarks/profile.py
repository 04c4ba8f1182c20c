"""Profiling one Parquet file: datatrail against pandas and DuckDB, time and peak memory.

The table: ROWS rows x 10 columns (6 numeric, 4 text; nulls of 0.5-30 % in
some columns; 5 % duplicate rows), written in chunks so that making it needs
little memory. Each contender runs in its own process, which reports its wall
time and peak RSS
(its own plus its worker processes'):

- datatrail: ``profile_path`` (schema, nulls, distinct, min/max/mean/std,
  quantiles, top values, histograms, duplicate rows, missing cells), on all
  cores (``datatrail.profile_parallel``);
- pandas: ``read_parquet``, then ``isna``, ``nunique``, ``agg`` (min, max,
  mean, std) and ``duplicated``;
- DuckDB: SQL straight on the file: nulls, exact distinct counts, min, max,
  mean, std per column and the duplicate-row count.

Targets (issue 3): at least as fast as DuckDB, at least 4x faster than pandas,
peak RSS below half of DuckDB's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_seconds, note, quick, report, scratch

NUMERIC = [("n0", 0.005), ("n1", 0.0), ("n2", 0.10), ("n3", 0.30), ("n4", 0.0), ("n5", 0.05)]
TEXT = [("s0", 0.0), ("s1", 0.0), ("s2", 0.20), ("s3", 0.01)]

RUNNERS = {
    "datatrail": """
import resource
from datatrail.profile_parallel import workers
from datatrail.profiling import profile_path
p = profile_path(PATH, "parquet")
result = {"rows": p["row_count"], "duplicates": p["duplicate_rows"]}
# Worker processes' memory counts too: each as much as the largest (an upper bound).
result["workers_mib"] = (workers() - 1) * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
""",
    "pandas": """
import pandas as pd
df = pd.read_parquet(PATH)
nulls = df.isna().sum()
distinct = df.nunique()
stats = df.select_dtypes("number").agg(["min", "max", "mean", "std"])
duplicates = int(df.duplicated().sum())
result = {"rows": len(df), "duplicates": duplicates}
""",
    "duckdb": """
import duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{PATH}')").fetchall()]
numeric = [c for c in cols if c.startswith("n")]
parts = ["count(*)"]
for c in cols:
    parts += [f"count(*) - count({c})", f"count(DISTINCT {c})", f"min({c})", f"max({c})"]
for c in numeric:
    parts += [f"avg({c})", f"stddev_samp({c})"]
row = con.execute(f"SELECT {', '.join(parts)} FROM read_parquet('{PATH}')").fetchone()
distinct_rows = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT * FROM read_parquet('{PATH}'))").fetchone()[0]
result = {"rows": row[0], "duplicates": row[0] - distinct_rows}
""",
}

HARNESS = """
import json, resource, sys, time
PATH = sys.argv[1]
t0 = time.perf_counter()
{body}
elapsed = time.perf_counter() - t0
own_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result.update(seconds=elapsed, peak_mib=own_mib + result.get("workers_mib", 0.0))
print("RESULT " + json.dumps(result))
"""


def prefixed(prefix: str, numbers: object) -> object:
    """Text values ``prefix<number>`` as a pyarrow array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def make_table(path: Path, rows: int, chunk: int = 1_000_000) -> None:
    """Write the benchmark table to ``path`` chunk by chunk (5 % of each chunk repeats earlier rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(20261129)
    writer = None
    done = 0
    species = np.array(["Adelie", "Chinstrap", "Gentoo"])
    while done < rows:
        n = min(chunk, rows - done)
        fresh = n - n // 20
        cols: dict[str, pa.Array] = {}
        for i, (name, null_share) in enumerate(NUMERIC):
            values = rng.normal(100, 15, fresh) if i % 2 else rng.integers(0, 10**9, fresh).astype("float64")
            cols[name] = pa.array(values, mask=rng.random(fresh) < null_share if null_share else None)
        texts = {
            "s0": pa.array(species[rng.integers(0, 3, fresh)]),
            "s1": prefixed("id-", rng.integers(0, 10**12, fresh)),
            "s2": prefixed("city", rng.integers(0, 50_000, fresh)),
            "s3": prefixed("x", rng.integers(0, 100, fresh)),
        }
        for name, null_share in TEXT:
            arr = texts[name]
            if null_share:
                arr = pa.compute.if_else(pa.array(rng.random(fresh) < null_share), pa.scalar(None, pa.string()), arr)
            cols[name] = arr
        table = pa.table(cols)
        table = pa.concat_tables([table, table.take(rng.integers(0, fresh, n - fresh))])
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=256_000)
        done += n
    assert writer is not None
    writer.close()


def run_one(name: str, path: Path) -> dict[str, float] | None:
    code = HARNESS.format(body=RUNNERS[name])
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if "ModuleNotFoundError" in proc.stderr:
            note(f"{name} is not installed in this environment; skipped")
            return None
        raise SystemExit(f"{name} failed:\n{proc.stderr}")
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000 if quick() else 10_000_000)
    parser.add_argument("--parquet", type=Path, help="Profile this file instead of generating one.")
    args = parser.parse_args()
    with scratch("profile-") as tmp:
        path = args.parquet or tmp / "table.parquet"
        if args.parquet is None:
            make_table(path, args.rows)
        note(f"{args.rows:,} rows x 10 columns, {path.stat().st_size / 2**20:.0f} MiB of Parquet")
        results = {name: run_one(name, path) for name in ("datatrail", "pandas", "duckdb")}
    ours = results["datatrail"]
    assert ours is not None
    note(
        f"datatrail {fmt_seconds(ours['seconds'])}, peak {ours['peak_mib']:.0f} MiB "
        f"(worker processes {ours.get('workers_mib', 0):.0f} MiB of it); "
        f"{ours['duplicates']:,} duplicate rows of {ours['rows']:,}"
    )
    for name, target in (("duckdb", 1.0), ("pandas", 4.0)):
        theirs = results[name]
        if theirs is None:
            continue
        note(f"{name} {fmt_seconds(theirs['seconds'])}, peak {theirs['peak_mib']:.0f} MiB")
        if theirs["duplicates"] != ours["duplicates"]:
            note(f"duplicate rows differ: {name} {theirs['duplicates']:,}, datatrail {ours['duplicates']:,}")
        report(
            f"profile time vs {name}",
            fmt_seconds(ours["seconds"]),
            name,
            fmt_seconds(theirs["seconds"]),
            theirs["seconds"] / ours["seconds"],
            target,
        )
    duck = results["duckdb"]
    if duck is not None:
        report(
            "peak RSS vs duckdb",
            f"{ours['peak_mib']:.0f} MiB",
            "duckdb",
            f"{duck['peak_mib']:.0f} MiB",
            duck["peak_mib"] / ours["peak_mib"],
            2.0,
        )


if __name__ == "__main__":
    main()
