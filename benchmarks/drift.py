"""Drift between two versions: datatrail from stored profiles against reading the data with pandas and scipy.

Two Parquet tables of ROWS rows (4 numeric columns, 2 categorical ones), the
second shifted, are added to a fresh store (which profiles them; not timed).
Then, timed:

- datatrail: ``trail.drift(reference, current)``: PSI and Kolmogorov-Smirnov per
  numeric column, chi-square and Jensen-Shannon per categorical one, missing
  values and schema, from the two stored profiles (no data is read);
- baseline: what one writes without stored profiles: ``pandas.read_parquet``
  of both files, then ``scipy.stats.ks_2samp`` and a 10-bin PSI per numeric
  column and ``scipy.stats.chi2_contingency`` per categorical column.

Also noted: ``trail.drift(..., exact=True)``, which reads both files.
Target (issue 8): drift from profiles at least 10x faster than the baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best, fmt_seconds, measure, note, quick, report, scratch


def make_table(path: Path, rows: int, seed: int, shift: float) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "a": rng.normal(shift, 1, rows),
            "b": rng.exponential(2 + shift, rows),
            "c": rng.uniform(0, 100, rows),
            "d": rng.integers(0, 1000, rows),
            "colour": rng.choice(
                ["red", "green", "blue", "black"], rows, p=[0.4, 0.3, 0.2, 0.1] if not shift else [0.1, 0.2, 0.3, 0.4]
            ),
            "size": rng.choice(["S", "M", "L"], rows),
        }
    )
    pq.write_table(table, path)


def baseline(ref: Path, cur: Path) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    from scipy import stats

    a, b = pd.read_parquet(ref), pd.read_parquet(cur)
    out: dict[str, float] = {}
    for col in ("a", "b", "c", "d"):
        x, y = a[col].dropna().to_numpy(), b[col].dropna().to_numpy()
        out[f"{col}.ks"] = float(stats.ks_2samp(x, y).statistic)
        edges = np.linspace(x.min(), x.max(), 11)
        edges[0], edges[-1] = -np.inf, np.inf
        p = np.maximum(np.histogram(x, edges)[0] / len(x), 1e-4)
        q = np.maximum(np.histogram(y, edges)[0] / len(y), 1e-4)
        out[f"{col}.psi"] = float(np.sum((q - p) * np.log(q / p)))
    for col in ("colour", "size"):
        counts = pd.concat([a[col].value_counts(), b[col].value_counts()], axis=1).fillna(0).to_numpy().T
        out[f"{col}.chi2"] = float(stats.chi2_contingency(counts, correction=False).statistic)
    return out


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000 if q else 2_000_000)
    ap.add_argument("--repeats", type=int, default=1 if q else 3)
    args = ap.parse_args()

    import datatrail

    with scratch("drift-") as work:
        ref, cur = work / "ref.parquet", work / "cur.parquet"
        make_table(ref, args.rows, 1, 0.0)
        make_table(cur, args.rows, 2, 0.5)
        trail = datatrail.init(work)
        try:
            trail.add(ref, name="ref")
            trail.add(cur, name="cur")
            trail.drift("ref", "cur")  # untimed: imports and the first connection
            baseline(ref, cur)
            ours = best(measure(lambda: trail.drift("ref", "cur"), args.repeats))
            exact = best(measure(lambda: trail.drift("ref", "cur", exact=True), 1))
            theirs = best(measure(lambda: baseline(ref, cur), args.repeats))
            report_ = trail.drift("ref", "cur")
        finally:
            trail.close()
    note(f"{args.rows:,} rows x 6 columns per version; best of {args.repeats}, in-process")
    drifted = ", ".join(c["name"] for c in report_.drifted_columns)
    note(f"drifted columns: {drifted}; exact=True took {fmt_seconds(exact)}")
    report(f"drift of {args.rows:,} rows", fmt_seconds(ours), "pandas + scipy", fmt_seconds(theirs), theirs / ours, 10)


if __name__ == "__main__":
    main()
