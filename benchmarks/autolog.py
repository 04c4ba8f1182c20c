"""What ``datatrail.autolog()`` adds to reading and writing a Parquet file through pandas (100 MB by default).

Contender: ``pd.read_parquet(src)`` then ``df.to_parquet(dst)`` inside
``with trail.run(...)`` with autolog on, into a fresh embedded store — so
``src`` is hashed, profiled and recorded as an input and ``dst`` as an output
(each hashed once per run). Baseline: the same run recorded by hand —
``run.input(src)`` and ``run.output(dst)`` around the same two pandas calls.
Target: autolog costs no more than recording by hand (ratio >= 0.9x, noise
allowed). Also printed: the same two calls with no datatrail at all, the time
of profiling one file (most of what recording adds), and a second run with
``src`` unchanged (a stat-cache hit: only the new ``dst`` is read). Times are
the best of ``--repeats``.

    python benchmarks/autolog.py [--size-mb N] [--repeats R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best, fmt_seconds, note, quick, report, scratch, warm


def make_parquet(path: Path, size_mb: int) -> int:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    rows = max(1000, size_mb * (1 << 20) // 24)  # three float64 columns, incompressible
    pd.DataFrame({c: rng.random(rows) for c in "abc"}).to_parquet(path, compression=None)
    return path.stat().st_size


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=4 if q else 100)
    ap.add_argument("--repeats", type=int, default=1 if q else 3)
    args = ap.parse_args()

    import pandas as pd

    import datatrail
    from datatrail.recorder import Recorder
    from datatrail.service import Trail

    with scratch("autolog-") as work:
        src = work / "src.parquet"
        size = make_parquet(src, args.size_mb)
        warm([src])
        note(f"{size / 1e6:.0f} MB Parquet, 3 float64 columns; read once before timing")

        def plain(i: int) -> None:
            pd.read_parquet(src).to_parquet(work / f"plain{i}.parquet")

        base = best([_timed(lambda i=i: plain(i)) for i in range(args.repeats)])

        hashed: list[str] = []
        original_hash = Recorder.hash

        def counting(self: Recorder, path: object, **kw: object) -> object:
            hashed.append(str(path))
            return original_hash(self, path, **kw)  # type: ignore[arg-type]

        Recorder.hash = counting  # type: ignore[assignment,method-assign]
        cold, warm_times = [], []
        try:
            for i in range(args.repeats):
                store = work / f"store{i}"
                store.mkdir()
                trail = datatrail.init(store)
                datatrail.autolog(trail=trail, libraries=("pandas",))
                try:
                    for times in (cold, warm_times):

                        def once(n: int = len(times), trail: Trail = trail, store: Path = store) -> None:
                            with trail.run("copy"):
                                pd.read_parquet(src).to_parquet(store / f"out{n}.parquet")

                        times.append(_timed(once))
                finally:
                    datatrail.autolog(disable=True)
                    trail.close()
        finally:
            Recorder.hash = original_hash  # type: ignore[method-assign]
        from datatrail.profiling import profile_path

        profiling = _timed(lambda: profile_path(src, "parquet"))
        note(f"of which profiling one file (datatrail.profiling, issue 3): {fmt_seconds(profiling)}")
        per_run = len(hashed) / (2 * args.repeats)
        note(f"best of {args.repeats}; files hashed per run: {per_run:g} (the input once, the output once)")
        manual = []
        for i in range(args.repeats):
            store = work / f"manual{i}"
            store.mkdir()
            trail = datatrail.init(store)
            try:

                def by_hand(trail: Trail = trail, store: Path = store) -> None:
                    with trail.run("copy") as run:
                        df = pd.read_parquet(src)
                        run.input(src, name="src.parquet")
                        df.to_parquet(store / "out.parquet")
                        run.output(store / "out.parquet")

                manual.append(_timed(by_hand))
            finally:
                trail.close()
        ours, again, by_hand_s = best(cold), best(warm_times), best(manual)
        note(f"with the input unchanged (stat cache hit): {fmt_seconds(again)}")
        note(f"pandas alone, no datatrail: {fmt_seconds(base)} (recording adds hashing and profiling both files)")
        report(
            f"autolog pandas read+write {size / 1e6:.0f}MB parquet",
            fmt_seconds(ours),
            "recorded by hand",
            fmt_seconds(by_hand_s),
            by_hand_s / ours,
            0.9,
        )


def _timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
