"""A server's memory under a long ingest: resident memory of `datatrail serve` over time (a curve).

A real `datatrail serve` (one worker) over a fresh SQLite store. ``--writers``
processes send single events (one per request, as openlineage-python's HTTP
transport does), each naming a new dataset: a run of one of 50 jobs that reads
the dataset the writer wrote before and writes a new one. ``--readers``
processes meanwhile ask for lineage, search, a version through the API and the
UI's dataset page, round and round. Every ``--sample`` seconds the server's
resident memory (VmRSS) and the number of events sent are printed: the curve.

Target (issue 22): resident memory flat after warm-up and below 300 MB per
worker over an hour and at least 500,000 events. Printed: the growth after
warm-up (the first fifth of the run) as a rate per 1,000 events and per hour,
the end against the warm-up level (ratio, target >= 0.9x), whether memory is
flat (the least-squares trend of the samples in the last half of the run
rises across that half by at most 5% of its level: ratio >= 0.95x), the peak
against 300 MB, and a last line saying whether the issue's target was met as
a whole (an hour, 500,000 events stored, flat, below 300 MB).

    python benchmarks/soak.py [--minutes 60] [--writers 3] [--readers 2] [--sample 30] [--workers 1]
                              [--server-env NAME=VALUE] [--memory-log FILE | --no-memory-log]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import note, quick, report, scratch, verdict
from tests import httpserver

PRODUCER = "https://github.com/datatrail/benchmarks"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
LIMIT_MB = 300.0
# Flat: the least-squares trend of the last half of the run rises across it by at most ~5% of its
# level (level / (level + rise) >= 0.95).
FLAT = 0.95


def _event(writer: int, i: int) -> bytes:
    inputs = [{"namespace": "soak", "name": f"w{writer}.d{i - 1}"}] if i else []
    return json.dumps(
        {
            "eventType": "COMPLETE",
            "eventTime": "2026-01-01T00:00:00Z",
            "producer": PRODUCER,
            "schemaURL": SCHEMA,
            "run": {"runId": str(uuid.uuid4()), "facets": {}},
            "job": {"namespace": "soak", "name": f"job{i % 50}", "facets": {}},
            "inputs": inputs,
            "outputs": [{"namespace": "soak", "name": f"w{writer}.d{i}"}],
        }
    ).encode()


def _connect(uri: str) -> http.client.HTTPConnection:
    host, port = uri.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=120)


def writer(uri: str, number: int, until: float, sent: Any) -> None:
    conn = _connect(uri)
    headers = {"Content-Type": "application/json"}
    i = 0
    while time.time() < until:
        conn.request("POST", "/api/v1/lineage", _event(number, i), headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status >= 300:
            raise SystemExit(f"POST /api/v1/lineage answered {response.status}: {answer[:300]!r}")
        i += 1
        with sent.get_lock():
            sent.value += 1
    conn.close()


def reader(uri: str, number: int, until: float, writers: int) -> None:
    conn = _connect(uri)
    k = 0
    while time.time() < until:
        w, d = k % writers, max(0, (k * 7919) % 1000)
        paths = [
            f"/api/v1/lineage?nodeId=dataset:soak:w{w}.d{d}&depth=5",
            f"/api/v1/search?q=w{w}.d{d % 100}&limit=20",
            f"/api/v1/namespaces/soak/datasets/w{w}.d{d}/versions/1",
            f"/datasets/soak/w{w}.d{d}",
        ]
        for path in paths:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status >= 500:
                raise SystemExit(f"GET {path} answered {response.status}")
        k += 1
    conn.close()


def _status(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def worker_pids(pid: int) -> list[int]:
    """The server's worker processes: itself with one worker, its children (uvicorn's workers) with several."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    # With several workers uvicorn's supervisor also starts a resource tracker (multiprocessing): not a worker.
    workers = [c for c in children if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text()]
    return workers or [pid]


def rss_mb(pid: int) -> float:
    return _status(pid, "VmRSS") / 1024


def memory_summary(log: str) -> None:
    """Where each worker's memory was, in MB, at some of its samples (the text of the memory log)."""
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    mb = 1 / (1024 * 1024)
    note("worker  sample  RSS  anon  py arenas  py in blocks  glibc heaps  glibc free  sqlite  gc-tracked objects")
    for pid in sorted({line["pid"] for line in lines}):
        mine = [line for line in lines if line["pid"] == pid]
        for k, line in enumerate(mine):
            if k not in (0, 1, len(mine) // 5, len(mine) // 2, len(mine) - 1):
                continue
            py, heaps = line["python"], line["glibc"] or {}
            note(
                f"{pid:6}  {k:6}  {line['rss_kb'] / 1024:3.0f}  {line['anon_kb'] / 1024:4.0f}"
                f"  {py.get('arenas_allocated_current', 0):9}"
                f"  {py.get('bytes_in_allocated_blocks', 0) * mb:12.1f}"
                f"  {(heaps.get('arena', 0) + heaps.get('mmapped', 0)) * mb:11.1f}  {heaps.get('free', 0) * mb:10.1f}"
                f"  {(line['sqlite_bytes'] or 0) * mb:6.1f}  {line['gc']['tracked']:18,}"
            )


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=0.2 if q else 60.0)
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--sample", type=float, default=2.0 if q else 30.0, help="seconds between samples")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes (RSS is per worker)")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE", help="for the server")
    ap.add_argument(
        "--memory-log",
        metavar="FILE",
        help="keep the server's memory log in FILE (default: a scratch file; each worker appends where its "
        "memory is every --sample seconds, server/memory.py); a summary is printed at the end",
    )
    ap.add_argument("--no-memory-log", action="store_true", help="without the server's memory log")
    args = ap.parse_args()
    logged = ""
    with scratch("soak-") as folder:
        env = dict(item.split("=", 1) for item in args.server_env)
        log = None if args.no_memory_log else Path(args.memory_log or folder / "memory.jsonl").resolve()
        if log is not None:
            env |= {"DATATRAIL_SERVER_MEMORY_LOG": str(log)}
            env |= {"DATATRAIL_SERVER_MEMORY_LOG_SECONDS": str(args.sample)}
        extra = ("--workers", str(args.workers)) if args.workers > 1 else ()
        server = httpserver.start(folder / "srv", *extra, env=env)
        try:
            server.wait_ready()
            store = Path(server.store.removeprefix("sqlite:///"))
            ctx = mp.get_context("spawn")
            start = time.time()
            until = start + args.minutes * 60
            sent = ctx.Value("q", 0)
            procs = [ctx.Process(target=writer, args=(server.uri, w, until, sent)) for w in range(args.writers)]
            time.sleep(1.0 if args.workers > 1 else 0.0)  # uvicorn's workers are up
            workers = worker_pids(server.process.pid)
            procs += [
                ctx.Process(target=reader, args=(server.uri, r, until, args.writers)) for r in range(args.readers)
            ]
            for p in procs:
                p.start()
            curve: list[tuple[float, int, float]] = []
            note(f"{args.writers} writers (one event per request, each a new dataset), {args.readers} readers")
            note(f"{len(workers)} server worker(s); RSS and threads are the largest worker's")
            note("minutes  events sent  events/s  server RSS MB  threads  load (1 min)")
            last = (0.0, 0)
            while time.time() < until and all(p.is_alive() or p.exitcode == 0 for p in procs):
                time.sleep(min(args.sample, max(0.0, until - time.time())))
                point = ((time.time() - start) / 60, int(sent.value), max(rss_mb(w) for w in workers))
                curve.append(point)
                rate = (point[1] - last[1]) / max(1e-9, (point[0] - last[0]) * 60)
                threads = max(_status(w, "Threads") for w in workers)
                note(
                    f"{point[0]:7.1f}  {point[1]:11,}  {rate:8.0f}  {point[2]:13.1f}  {threads:7}"
                    f"  {os.getloadavg()[0]:11.1f}"
                )
                last = point[:2]
            for p in procs:
                p.join()
            if any(p.exitcode for p in procs):
                raise SystemExit("a writer or reader failed (see above)")
            db = sqlite3.connect(store)
            stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
            db.close()
        finally:
            server.stop()
            logged = log.read_text() if log is not None and log.exists() else ""
    warm = curve[max(0, len(curve) // 5 - 1)]
    end = curve[-1]
    peak = max(p[2] for p in curve)
    events = max(1, end[1] - warm[1])
    hours = max(1e-9, (end[0] - warm[0]) / 60)
    note(
        f"{stored:,} events stored in {end[0]:.1f} min ({stored / (end[0] * 60):.0f} per second);"
        f" after warm-up ({warm[0]:.1f} min, {warm[2]:.0f} MB):"
        f" {(end[2] - warm[2]) * 1024 / events * 1000:+.0f} KB per 1,000 events, {(end[2] - warm[2]) / hours:+.0f} MB/h"
    )
    if logged:
        memory_summary(logged)
    report(
        "soak, RSS at the end vs after warm-up",
        f"{end[2]:.0f} MB",
        "warm-up",
        f"{warm[2]:.0f} MB",
        warm[2] / end[2],
        0.9,
    )
    level, rise, slope = last_half(curve)
    note(f"last half ({curve[len(curve) // 2][0]:.1f}-{end[0]:.1f} min): {slope:+.1f} MB/h, {rise:+.1f} MB across it")
    flat = report(
        "soak, flat: RSS at half-time vs the last half's trend at the end",
        f"{level + rise:.0f} MB",
        "half-time",
        f"{level:.0f} MB",
        level / (level + max(rise, 0.0)),
        FLAT,
    )
    below = report("soak, peak RSS vs the limit", f"{peak:.0f} MB", "limit", f"{LIMIT_MB:.0f} MB", LIMIT_MB / peak, 1.0)
    long_enough = end[0] >= 59.5 and stored >= 500_000
    missing = [
        *([] if flat else ["memory not flat"]),
        *([] if below else [f"peak above {LIMIT_MB:.0f} MB"]),
        *([] if end[0] >= 59.5 else [f"{end[0]:.0f} minutes, not 60"]),
        *([] if stored >= 500_000 else [f"{stored:,} events, not 500,000"]),
    ]
    ok = flat and below and long_enough
    print(f"issue 22 item 6 (an hour, >= 500,000 events, flat, < 300 MB per worker): {verdict(ok)}", flush=True)
    if missing:
        note("missed: " + "; ".join(missing))


def last_half(curve: list[tuple[float, int, float]]) -> tuple[float, float, float]:
    """The RSS trend over the last half of the samples (least squares): its level at the half, its rise
    across the half, and its slope in MB per hour."""
    half = curve[len(curve) // 2 :]
    if len(half) < 2:
        return half[0][2], 0.0, 0.0
    xs, ys = [p[0] for p in half], [p[2] for p in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / max(
        1e-9, sum((x - mx) ** 2 for x in xs)
    )  # MB per minute
    level = my + slope * (xs[0] - mx)
    return level, slope * (xs[-1] - xs[0]), slope * 60


if __name__ == "__main__":
    main()
