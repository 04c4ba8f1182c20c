"""The lineage endpoint: median and p99 latency of GET /api/v1/lineage, depth 20, on 1,000,000 nodes.

The graph is built like benchmarks/lineage_query.py's (the real schema, bulk
inserts) but shaped like production pipelines rather than a worst case: 500,000
versions and 500,000 runs, run i producing version i and reading 2 of the 5
versions before it, so that a depth-20 walk reaches tens to a few hundred
nodes (a wide window makes every node reach most of the graph, which is what
benchmarks/lineage_query.py measures). A real `datatrail serve` answers
requests for random versions (`nodeId=dataset:<ns>:<name>#<n>`, both
directions, depth 20) from one client over a keep-alive connection; each
answer is checked to hold its start node.

Target: p99 under 100 ms (Marquez users report 10-15 s on production graphs).

    python benchmarks/lineage_endpoint.py [--versions N] [--requests R]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import BENCH_DIR, note, quick, report, scratch
from lineage_query import BUILD_FORMAT, build
from tests import httpserver

from datatrail.store.sql.engine import HEAD

TARGET_MS = 100.0


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", type=int, default=2000 if q else 500_000, help="versions (and as many runs)")
    ap.add_argument("--requests", type=int, default=50 if q else 500)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--db", type=Path, default=None, help="where to keep the built store (default: .bench/)")
    args = ap.parse_args()
    n, inputs, window = args.versions, 2, 5
    path = args.db or BENCH_DIR / f"lineage-v{n}-i{inputs}-w{window}-r{HEAD}-f{BUILD_FORMAT}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        build(path, n, inputs, window)
    n_datasets = max(1, min(5000, n // 100))
    rng = random.Random(7)
    with scratch("lineage-endpoint-") as folder:
        server = httpserver.start(folder, store=f"sqlite:///{path}")
        try:
            server.wait_ready(120)
            times: list[float] = []
            sizes: list[int] = []
            with httpx.Client(base_url=server.uri, timeout=60) as http:
                for i in range(args.requests + 10):
                    v = rng.randint(1, n)
                    name, number = f"bench/ds{(v - 1) % n_datasets + 1:05d}", (v - 1) // n_datasets + 1
                    node = f"dataset:default:{name}#{number}"
                    t0 = time.perf_counter()
                    answer = http.get(
                        "/api/v1/lineage", params={"nodeId": node, "depth": args.depth, "direction": "both"}
                    )
                    elapsed = time.perf_counter() - t0
                    answer.raise_for_status()
                    graph = answer.json()["graph"]
                    if node not in {g["id"] for g in graph}:
                        raise SystemExit(f"the answer for {node} does not hold it")
                    if i >= 10:  # the first requests warm the server up
                        times.append(elapsed)
                        sizes.append(len(graph))
        finally:
            server.stop()
    times.sort()
    median_ms = statistics.median(times) * 1000
    p99_ms = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
    note(
        f"graph: {n:,} versions + {n:,} runs; {len(times)} requests, depth {args.depth}, both directions;"
        f" answers of {min(sizes)}-{max(sizes)} nodes (median {int(statistics.median(sizes))})"
    )
    note(f"median {median_ms:.1f} ms")
    report(
        f"lineage endpoint p99, depth {args.depth}",
        f"{p99_ms:.1f} ms",
        "the target",
        f"{TARGET_MS:g} ms",
        TARGET_MS / p99_ms,
        1.0,
    )


if __name__ == "__main__":
    main()
