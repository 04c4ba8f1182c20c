"""What auditing reads costs: a read that appends its audit entry, against the same read without one.

Every read of a dataset's metadata appends one audit entry (one INSERT chained to
the previous entry's hash, in a serialised write). Two comparisons, both
measured in this run:

- embedded SQLite, in process: ``trail.get(ref)`` (resolve + audit entry)
  against ``store.resolve(ref)`` (the bare read), median of many calls;
- a real ``datatrail serve``: the median latency of ``GET …/versions/1`` with a
  user's token (token checked against the store, access decided, read audited)
  against the same request to a server whose store has no users (no token to
  check; the read is audited all the same).

Target: an audited read costs at most 3 times a bare one (ratio >= 0.33x), and
token checking at most doubles a request (>= 0.5x).

    python benchmarks/audited_reads.py [--reads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import fmt_seconds, note, quick, report, scratch
from tests import httpserver

import datatrail
from datatrail.core.model import Ref


def _latency(base: str, headers: dict[str, str], n: int) -> float:
    url = "/api/v1/namespaces/default/datasets/raw/versions/1"
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(5):
            client.get(url).raise_for_status()
        times = []
        for _ in range(n):
            start = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reads", type=int, default=50 if quick() else 2000)
    args = ap.parse_args()
    with scratch("audited-reads-") as folder:
        (folder / "raw.csv").write_text("a,b\n1,2\n")
        trail = datatrail.init(folder)
        trail.add(folder / "raw.csv", name="raw")
        ref = Ref("default", "raw", "1")
        bare, audited = [], []
        for _ in range(args.reads):  # interleaved, so both see the same machine load
            start = time.perf_counter()
            trail._store.resolve(ref)
            bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            trail.get(ref)
            audited.append(time.perf_counter() - start)
        a, b = statistics.median(audited), statistics.median(bare)
        report("audited read (embedded SQLite)", fmt_seconds(a), "bare read", fmt_seconds(b), b / a, 0.33)
        assert trail.verify_audit().ok
        trail.close()

        open_srv = httpserver.start(folder / "open", store=f"sqlite:///{folder / '.datatrail' / 'trail.db'}")
        try:
            open_srv.wait_ready()
            open_median = _latency(open_srv.uri, {}, args.reads // 4)
        finally:
            open_srv.stop()
        trail = datatrail.connect(f"sqlite:///{folder / '.datatrail' / 'trail.db'}")
        trail.add_user("bench", admin=True)
        _, token = trail.create_token("bench", expires="1h")
        trail.close()
        srv = httpserver.start(folder / "users", store=f"sqlite:///{folder / '.datatrail' / 'trail.db'}")
        try:
            srv.wait_ready()
            with_token = _latency(srv.uri, {"Authorization": f"Bearer {token}"}, args.reads // 4)
        finally:
            srv.stop()
        report(
            "GET version with a token (server)",
            fmt_seconds(with_token),
            "without users",
            fmt_seconds(open_median),
            open_median / with_token,
            0.5,
        )
        note(f"{args.reads} embedded reads, {args.reads // 4} requests each way, medians")


if __name__ == "__main__":
    main()
