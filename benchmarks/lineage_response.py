"""Big lineage answers: building and encoding thousands of nodes, through the server and in process.

Two graphs.

1. A pipeline graph made through the real ingest path (OpenLineage COMPLETE
   events, ``Trail.ingest_many``, into a SQLite store kept under .bench/):
   6,000 runs over 1,000 datasets, run i writing the next version of dataset
   ``ds<i mod 1000>`` and reading 2 of the 1,000 datasets written before it (so
   2 of the 1,000 versions before its own). From the last version, upstream
   depth 20 reaches some 4,100 nodes (depth 10: some 2,000). A real
   ``datatrail serve`` answers ``GET /api/v1/lineage?nodeId=dataset:bench:<name>#<n>
   &direction=upstream&depth=20`` (and depth 10) over one keep-alive connection:
   the median of ``--requests`` after a warm-up, and the server process's CPU per request (its
   /proc figures: steadier than wall time on a loaded machine). Once with the node cache off
   (``DATATRAIL_LINEAGE_CACHE_MB=0``: every node fetched and written per request, as round two did)
   and once as served by default (each node's JSON and each walk's result kept between answers,
   store/sql/nodecache.py, until an event is stored);
   the answers must be the same bytes. Target: depth 20 under 30 ms. Then, on a copy of the store,
   one server with the cache on answers depth 20 again and again with one event stored through the
   API before each request: an unrelated one, one inside the walk (the start version's producer
   ends again, later), and two that name no run: a DatasetEvent outside the walk and a tag of the
   walk's start version (each forgets only the versions of the dataset it names; until round six,
   everything: a whole miss); see ``event_figures``.

2. The 1,000,000-node graph of benchmarks/lineage_query.py (built once under
   .bench/), upstream depth 50 from its last version, in process: the walk alone
   (node ids and depths), and ``Trail.dataset_lineage_columns`` /
   ``Trail.dataset_lineage`` (every node with its data, the service path the CLI
   and the Python API use). Since round seven the store keeps each walk's columns
   between calls (store/sql/columncache.py), so the figures are: cold (a fresh
   Trail's first call: the walk and every row, as before), the first warm call
   (the kept rows made into dicts), warm (a call asked again: copies of the kept
   dicts), and with the cache off (``DATATRAIL_LINEAGE_CACHE_MB=0``: what every call
   cost before). Target: with every node's data under 100 ms (a warm call; the
   cold one is printed against it too). Also the Marquez answer's bytes as the route
   now joins them from the kept nodes (``Trail.dataset_lineage_json``, ``version_json``;
   the cache at its in-process default, 128 MB, unless ``DATATRAIL_LINEAGE_CACHE_MB`` says
   otherwise: this answer's 74,734 nodes keep about 35 MB as JSON and 61 MB as columns).

Every figure is printed against its target (``target / figure``, >= 1 is met).

    python benchmarks/lineage_response.py [--runs N] [--requests R] [--big-versions N]
        [--server-only | --in-process-only]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import BENCH_DIR, fmt_seconds, median, note, quick, report, scratch
from lineage_query import BUILD_FORMAT, build, walk_only
from tests import httpserver

import datatrail
from datatrail.core.changes import VersionInfo
from datatrail.core.gcpause import paused_gc
from datatrail.core.model import EventType
from datatrail.core.results import LineageColumns
from datatrail.events import build_alias_event, build_dataset_event, build_run_event
from datatrail.server.marquez import answer_json, version_columns, version_graph, version_json
from datatrail.server.routes.lineage import encode
from datatrail.store.sql import lineage
from datatrail.store.sql.engine import HEAD
from datatrail.store.sql.nodecache import CACHE_ENV, NodeCache
from datatrail.store.sql.quick import EmbeddedStore
from datatrail.store.sql.store import SqlStore

SERVER_TARGET_MS = 30.0
NO_RUN_OUTSIDE = "after a dataset event outside the walk (names no run)"
NO_RUN_INSIDE = "after a tag of the walk's start version (names no run)"
IN_PROCESS_TARGET_MS = 100.0
COLD = "fresh Trail, first call (cold)"
FIRST_WARM = "fresh Trail, second call (first warm: makes the kept dicts)"
WARM = "fresh Trail, calls 3 to 5 (warm)"
COLD_OFF = "cache off (0 MB), fresh Trail, first call (cold)"
CACHE_OFF = "cache off (0 MB), every call"
IN_TURN = "Trail.dataset_lineage_columns (warm: kept, in turn with the other paths)"
PIPELINE_FORMAT = 2  # bump when the generated pipeline graph changes
NAMESPACE = "bench"


def pipeline_events(runs: int, datasets: int, seed: int = 1) -> list[dict[str, Any]]:
    """COMPLETE events: run i writes ``ds<i mod datasets>`` and reads 2 of the ``datasets`` written before it."""
    rng = random.Random(seed)
    out = []
    for i in range(1, runs + 1):
        pool = range(max(1, i - datasets), i)  # the runs whose outputs are the latest versions now
        picks = sorted(rng.sample(pool, min(2, len(pool))))
        event = build_run_event(EventType.COMPLETE, str(uuid.UUID(int=i)), NAMESPACE, f"job{i % 100:03d}")
        event["eventTime"] = f"2026-01-{1 + i // 86400:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        event["inputs"] = [{"namespace": NAMESPACE, "name": f"ds{p % datasets:04d}"} for p in picks]
        event["outputs"] = [{"namespace": NAMESPACE, "name": f"ds{i % datasets:04d}"}]
        out.append(event)
    return out


def build_pipeline(path: Path, runs: int, datasets: int) -> None:
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    events = pipeline_events(runs, datasets)
    with scratch("lineage-response-build-") as home, datatrail.init(home, f"sqlite:///{tmp}") as trail:
        for i in range(0, len(events), 200):
            for result in trail.ingest_many(events[i : i + 200]):
                if isinstance(result, Exception):
                    raise SystemExit(f"ingest refused an event: {result}")
    tmp.replace(path)
    Path(f"{tmp}-writer.lock").unlink(missing_ok=True)
    note(f"built {path.name} through ingest ({len(events):,} events) in {time.perf_counter() - t0:.1f} s")


def last_node(runs: int, datasets: int) -> str:
    name = f"ds{runs % datasets:04d}"
    number = sum(1 for i in range(1, runs + 1) if i % datasets == runs % datasets)
    return f"dataset:{NAMESPACE}:{name}#{number}"


def process_cpu(pid: int) -> float:
    """Seconds of CPU a process has used (Linux: /proc; elsewhere 0, and the CPU figures mean nothing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_figures(
    path: Path, node: str, depths: list[int], requests: int, cache_mb: str | None = None
) -> dict[int, tuple[float, int, int, float, bytes]]:
    """depth -> (median seconds, nodes, bytes, server CPU seconds per request, the answer) of
    GET /api/v1/lineage through a real server; ``cache_mb``: its DATATRAIL_LINEAGE_CACHE_MB."""
    out: dict[int, tuple[float, int, int, float, bytes]] = {}
    env = {CACHE_ENV: cache_mb} if cache_mb is not None else None
    with scratch("lineage-response-") as folder:
        server = httpserver.start(folder, store=f"sqlite:///{path}", env=env)
        try:
            server.wait_ready(120)
            with httpx.Client(base_url=server.uri, timeout=120) as http:
                for depth in depths:
                    params = {"nodeId": node, "direction": "upstream", "depth": depth}
                    times: list[float] = []
                    for i in range(requests + 5):
                        if i == 5:
                            cpu0 = process_cpu(server.process.pid)
                        t0 = time.perf_counter()
                        answer = http.get("/api/v1/lineage", params=params)
                        elapsed = time.perf_counter() - t0
                        answer.raise_for_status()
                        if i >= 5:  # warm-up first
                            times.append(elapsed)
                    cpu = (process_cpu(server.process.pid) - cpu0) / requests
                    graph = answer.json()["graph"]
                    if node not in {g["id"] for g in graph}:
                        raise SystemExit(f"the answer for {node} does not hold it")
                    out[depth] = (median(times), len(graph), len(answer.content), cpu, answer.content)
        finally:
            server.stop()
    return out


def event_figures(path: Path, node: str, runs: int, requests: int) -> dict[str, tuple[float, float]]:
    """label -> (median seconds, the server's mean CPU seconds) of GET /api/v1/lineage upstream depth
    20 through a real server with the default cache, on a copy of the pipeline store: asked again with
    nothing stored between (warm), and right after one event was stored through the API before each
    request (the event not timed): an unrelated one, one inside the walk (its start version's producer
    ends again, later: that run's node and the walk are read again, the other nodes are kept), and two
    that name no run: a DatasetEvent of a dataset outside the walk (nothing of the walk is read again)
    and a tag of the walk's start version (that dataset's versions are read again). The last answer must
    be the store's own, read without the cache."""
    params = {"nodeId": node, "direction": "upstream", "depth": 20}
    producer = str(uuid.UUID(int=runs))

    def unrelated(i: int) -> dict[str, Any]:
        event = build_run_event(EventType.COMPLETE, str(uuid.uuid4()), "bench-other", "other")
        event["outputs"] = [{"namespace": "bench-other", "name": f"out{i}"}]
        return event

    def inside(i: int) -> dict[str, Any]:
        event = build_run_event(EventType.COMPLETE, producer, NAMESPACE, f"job{runs % 100:03d}")
        event["eventTime"] = f"2026-03-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        return event

    def no_run(i: int) -> dict[str, Any]:
        return build_dataset_event("bench-other", f"loose{i}", VersionInfo(key=f"k{i}"))

    def tag(i: int) -> dict[str, Any]:
        name = node.split(":", 2)[2].split("#")[0]
        return build_alias_event(NAMESPACE, name, f"run:{producer}", f"gold{i}")

    modes = {"warm": None, "after an unrelated event": unrelated, "after an event inside the walk": inside}
    modes[NO_RUN_OUTSIDE] = no_run
    modes[NO_RUN_INSIDE] = tag
    out: dict[str, tuple[float, float]] = {}
    with scratch("lineage-response-events-") as folder:
        copy = folder / "trail.db"
        shutil.copyfile(path, copy)
        server = httpserver.start(folder / "server", store=f"sqlite:///{copy}")
        try:
            server.wait_ready(120)
            with httpx.Client(base_url=server.uri, timeout=120) as http:
                count = 0
                for label, make in modes.items():
                    times: list[float] = []
                    cpu = 0.0
                    for i in range(requests + 3):
                        if make is not None:
                            count += 1
                            http.post("/api/v1/lineage", json=make(count)).raise_for_status()
                        c0, t0 = process_cpu(server.process.pid), time.perf_counter()
                        answer = http.get("/api/v1/lineage", params=params)
                        elapsed = time.perf_counter() - t0
                        answer.raise_for_status()
                        if i >= 3:
                            times.append(elapsed)
                            cpu += process_cpu(server.process.pid) - c0  # in clock ticks: a mean over many
                    out[label] = (median(times), cpu / requests)
            name, number = node.split(":", 2)[2].split("#")
            os.environ[CACHE_ENV] = "0"
            try:
                with datatrail.connect(f"sqlite:///{copy}") as trail:
                    kw: dict[str, Any] = {"selector": number, "direction": "upstream", "depth": 20}
                    reference = encode(version_columns(trail.dataset_lineage_columns(NAMESPACE, name, **kw)))
            finally:
                del os.environ[CACHE_ENV]
            if answer.content != reference:
                raise SystemExit("after the events, the server's answer is not the store's own")
        finally:
            server.stop()
    return out


def miss_in_process(path: Path, node: str, repeats: int) -> tuple[float, float]:
    """(one pass, a whole miss): median CPU seconds, called in turn, of the depth-20 answer's bytes in
    process. One pass: round two's route (the columns, ``version_columns``, one orjson call); a whole
    miss: the route's own call with the store's cache just emptied (the walk, each node's JSON, kept,
    and the answer joined from them)."""
    name, number = node.split(":", 2)[2].split("#")
    kw: dict[str, Any] = {"selector": number, "direction": "upstream", "depth": 20}
    with datatrail.connect(f"sqlite:///{path}") as trail:
        store: Any = trail._store
        while not isinstance(store, SqlStore):
            store = store.inner if hasattr(store, "inner") else store.target()

        def one_pass() -> bytes:
            with paused_gc():
                return encode(version_columns(trail.dataset_lineage_columns(NAMESPACE, name, **kw)))

        def whole_miss() -> bytes:
            store._reads.nodes.clear()
            with paused_gc():
                joined = answer_json(trail.dataset_lineage_json(NAMESPACE, name, **kw))
                assert joined is not None
                return joined

        if one_pass() != whole_miss():
            raise SystemExit("a whole miss answers other bytes than the one-pass path")
        cpu: dict[str, list[float]] = {"one": [], "miss": []}
        for _ in range(repeats):
            for label, call in (("one", one_pass), ("miss", whole_miss)):
                c0 = time.process_time()
                call()
                cpu[label].append(time.process_time() - c0)
    return median(cpu["one"]), median(cpu["miss"])


def in_process(path: Path, n: int, depth: int, repeats: int) -> tuple[float, dict[str, tuple[float, float]], int]:
    """(walk seconds, {path: (wall, CPU seconds)}, nodes) upstream from the last version, medians.

    The paths, called in turn in each round (so that the machine's load falls on them alike):
    ``Trail.dataset_lineage`` (every node's data as a ``Graph``, the reference), the columnar
    ``Trail.dataset_lineage_columns``, and the Marquez answer's bytes as ``GET /api/v1/lineage``
    builds them, from the columns (``version_columns``) and from the graph (``version_graph``, the
    route before). CPU time is this process's: on a loaded machine, wall time also counts the time
    the process waited for a core."""
    n_datasets = max(1, min(5000, n // 100))
    name = f"bench/ds{(n - 1) % n_datasets + 1:05d}"
    number = str((n - 1) // n_datasets + 1)
    store = SqlStore(f"sqlite:///{path}")
    try:
        walk_only(store, n, depth)
        walks = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            walk_only(store, n, depth)
            walks.append(time.perf_counter() - t0)
    finally:
        store.close()
    # 74,734 nodes keep about 35 MB as JSON and the walk's columns about 61 MB: within the in-process
    # default (128 MB; a server worker's is 32). The setting is read when a store makes its cache.
    bound = os.environ.get(CACHE_ENV)  # None: the default
    shown = bound or "128 (the default)"
    kw: dict[str, Any] = {"selector": number, "direction": "upstream", "depth": depth}
    cold = cold_and_warm(path, name, kw, repeats, bound)
    with datatrail.connect(f"sqlite:///{path}") as trail:

        def answer_from_columns() -> bytes:
            with paused_gc():  # as the route does
                return encode(version_columns(trail.dataset_lineage_columns("default", name, **kw)))

        def answer_from_graph() -> bytes:
            with paused_gc():
                return encode(version_graph(trail.dataset_lineage("default", name, **kw)))

        def answer_joined() -> bytes:
            with paused_gc():  # as the route does now: each node's JSON, kept by the store between calls
                joined = version_json(trail.dataset_lineage_json("default", name, **kw))
                assert joined is not None
                return joined

        def answer_kept() -> bytes:
            with paused_gc():  # the route's own call: the same answer asked again is the kept one
                kept = answer_json(trail.dataset_lineage_json("default", name, **kw))
                assert kept is not None
                return kept

        paths = {
            "Trail.dataset_lineage (its columns kept)": lambda: trail.dataset_lineage("default", name, **kw),
            IN_TURN: lambda: trail.dataset_lineage_columns("default", name, **kw),
            "answer bytes from the columns": answer_from_columns,
            "answer bytes from the graph": answer_from_graph,
            "answer bytes joined from the kept nodes and walk": answer_joined,
            "answer bytes as the route gives them (asked again: kept)": answer_kept,
        }
        graph = trail.dataset_lineage("default", name, **kw)
        if not answer_from_columns() == answer_from_graph() == answer_joined() == answer_kept():
            raise SystemExit("the answers from the columns, the graph and the kept nodes differ")
        cache = kept_cache(trail)
        hits = cache.hits
        wall: dict[str, list[float]] = {k: [] for k in paths}
        cpu: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(repeats):
            for label, call in paths.items():
                t0, c0 = time.perf_counter(), time.process_time()
                call()
                wall[label].append(time.perf_counter() - t0)
                cpu[label].append(time.process_time() - c0)
        if cache.hits < hits + 2 * repeats:  # the columns' walk, for the columns and the graph, each round
            raise SystemExit(f"the walk's columns were not kept between calls; raise {CACHE_ENV} (now {shown})")
        note(f"the node cache after the rounds: {cache.size / 1e6:.1f} MB in {len(cache)} entries (bound {shown} MB)")
    figures = {k: (median(wall[k]), median(cpu[k])) for k in paths}
    figures.update(cold)
    return median(walks), figures, len(graph.nodes)


def kept_cache(trail: datatrail.Trail) -> NodeCache:
    """The node cache of the embedded store's quick path (or of the full store, once opened)."""
    store: Any = trail._store
    if isinstance(store, EmbeddedStore) and store._real is None and store._nodes is not None:
        return store._nodes
    while not isinstance(store, SqlStore):
        store = store.inner if hasattr(store, "inner") else store.target()
    cache: NodeCache = store._reads.nodes
    return cache


def cold_and_warm(
    path: Path, name: str, kw: dict[str, Any], repeats: int, bound: str | None
) -> dict[str, tuple[float, float]]:
    """``Trail.dataset_lineage_columns`` called in turn each round by: a fresh Trail (opened outside the
    timing): its first call (cold: the walk and every row read, the rows kept), its second (the first
    warm one: the kept rows made into dicts), then three more (warm); a fresh Trail with the cache off
    (0 MB), its first call (cold, as before: the same empty SQLite page cache); and one Trail with the
    cache off, every round (what every call cost before anything was kept). {label: (wall, CPU) medians}."""
    shown = bound or "128 (the default)"
    times: dict[str, tuple[list[float], list[float]]] = {
        k: ([], []) for k in (COLD, FIRST_WARM, WARM, COLD_OFF, CACHE_OFF)
    }

    def timed(label: str, call: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        out = call()
        times[label][0].append(time.perf_counter() - t0)
        times[label][1].append(time.process_time() - c0)
        return out

    def cache_off() -> datatrail.Trail:
        """A Trail whose store made its cache under 0 MB (the setting is read at its first walk)."""
        os.environ[CACHE_ENV] = "0"
        try:
            trail = datatrail.connect(f"sqlite:///{path}")
            trail.dataset_lineage_columns("default", name, **{**kw, "depth": 0})
        finally:
            if bound is None:
                del os.environ[CACHE_ENV]
            else:
                os.environ[CACHE_ENV] = bound
        return trail

    def columns(trail: datatrail.Trail) -> Callable[[], LineageColumns]:
        return lambda: trail.dataset_lineage_columns("default", name, **kw)

    def cached_round() -> None:
        with datatrail.connect(f"sqlite:///{path}") as fresh:
            first = timed(COLD, columns(fresh))
            second = timed(FIRST_WARM, columns(fresh))
            for _ in range(3):
                third = timed(WARM, columns(fresh))
            if not (first.ids == second.ids == third.ids and first.data == second.data == third.data):
                raise SystemExit("a warm call answers other columns than the cold one")
            if kept_cache(fresh).hits < 4:
                raise SystemExit(f"the walk's columns were not kept; raise {CACHE_ENV} (now {shown})")

    def uncached_round() -> None:
        with cache_off() as cold_off:
            timed(COLD_OFF, columns(cold_off))
            if kept_cache(cold_off).limit != 0:
                raise SystemExit("the cache-off Trail keeps walks")

    with cache_off() as off:
        for i in range(repeats):
            # Which goes first alternates: what the one before left in the allocator weighs on the next.
            for one_round in (cached_round, uncached_round) if i % 2 else (uncached_round, cached_round):
                one_round()
            timed(CACHE_OFF, columns(off))
    return {label: (median(w), median(c)) for label, (w, c) in times.items()}


def pipeline_figures(args: argparse.Namespace, folder: Path) -> None:
    """The pipeline graph's figures: through the server, the cache, the events, in process."""
    pipeline = folder / f"lineage-response-r{args.runs}-d{args.datasets}-{HEAD}-f{PIPELINE_FORMAT}.db"
    if not pipeline.exists():
        build_pipeline(pipeline, args.runs, args.datasets)
    node = last_node(args.runs, args.datasets)
    # Without the node cache (round two's work per request) and with it, one server after the other.
    uncached = serve_figures(pipeline, node, [20, 10], args.requests, cache_mb="0")
    figures = serve_figures(pipeline, node, [20, 10], args.requests)
    for depth, (seconds, nodes, size, cpu, body) in figures.items():
        cold = uncached[depth]
        if body != cold[4]:
            raise SystemExit(f"depth {depth}: the answer from the kept nodes differs from the one without them")
        note(
            f"GET /api/v1/lineage upstream depth {depth} from {node}: {nodes:,} nodes, {size / 1e6:.2f} MB,"
            f" median {fmt_seconds(seconds)} of {args.requests} (keep-alive, after 5 warm-up requests),"
            f" server CPU {fmt_seconds(cpu)} a request; without the node cache {fmt_seconds(cold[0])},"
            f" CPU {fmt_seconds(cold[3])}"
        )
    seconds, nodes, _, cpu, _ = figures[20]
    one_pass, whole_miss = miss_in_process(pipeline, node, max(5, args.requests))
    report(
        f"lineage answer bytes in process, depth 20, {nodes:,} nodes, a whole miss (cache emptied), CPU",
        fmt_seconds(whole_miss),
        "round two's one pass",
        fmt_seconds(one_pass),
        one_pass / whole_miss,
        1.0,
    )
    events = event_figures(pipeline, node, args.runs, args.requests)
    for label, (median_s, cpu_s) in events.items():
        note(
            f"GET /api/v1/lineage upstream depth 20, cache on, {label}: median {fmt_seconds(median_s)},"
            f" server CPU {fmt_seconds(cpu_s)} a request"
        )
    cache_off = uncached[20][3]
    for label in ("after an unrelated event", "after an event inside the walk", NO_RUN_OUTSIDE, NO_RUN_INSIDE):
        report(
            f"lineage response through the server, depth 20, {nodes:,} nodes, {label}, server CPU",
            fmt_seconds(events[label][1]),
            "the cache off",
            fmt_seconds(cache_off),
            cache_off / events[label][1] if events[label][1] else 0.0,
            1.0,
        )
        report(
            f"lineage response through the server, depth 20, {nodes:,} nodes, {label}",
            fmt_seconds(events[label][0]),
            "the target",
            f"{SERVER_TARGET_MS:g} ms",
            SERVER_TARGET_MS / (events[label][0] * 1000),
            1.0,
        )
    report(
        f"lineage response through the server, depth 20, server CPU per request, {nodes:,} nodes",
        fmt_seconds(cpu),
        "without the node cache",
        fmt_seconds(uncached[20][3]),
        uncached[20][3] / cpu if cpu else 0.0,
        1.0,
    )
    report(
        f"lineage response through the server, depth 20, {nodes:,} nodes",
        fmt_seconds(seconds),
        "the target",
        f"{SERVER_TARGET_MS:g} ms",
        SERVER_TARGET_MS / (seconds * 1000),
        1.0,
    )


def main() -> None:
    q = quick()
    if q:  # the quick graphs are smaller than the walks the cache keeps: keep them all the same, to run that path
        lineage.KEEP_FROM_NODES = 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=300 if q else 6000, help="runs of the pipeline graph")
    ap.add_argument("--datasets", type=int, default=50 if q else 1000, help="datasets of the pipeline graph")
    ap.add_argument("--requests", type=int, default=5 if q else 30, help="timed requests per depth")
    ap.add_argument("--big-versions", type=int, default=2000 if q else 500_000, help="versions of the 1M graph")
    ap.add_argument("--big-depth", type=int, default=10 if q else 50)
    ap.add_argument("--repeats", type=int, default=2 if q else 7, help="in-process repeats")
    ap.add_argument("--db", type=Path, default=None, help="the folder to keep the built stores in (default: .bench/)")
    ap.add_argument("--server-only", action="store_true", help="the pipeline graph's figures only (no 1M graph)")
    ap.add_argument("--in-process-only", action="store_true", help="the 1M graph's figures only (no server)")
    args = ap.parse_args()
    folder = args.db or BENCH_DIR
    folder.mkdir(parents=True, exist_ok=True)

    if not args.in_process_only:
        pipeline_figures(args, folder)
    if args.server_only:
        return
    n, inputs, window = args.big_versions, 3, 50 if q else 1000
    big = folder / f"lineage-v{n}-i{inputs}-w{window}-r{HEAD}-f{BUILD_FORMAT}.db"
    if not big.exists():
        build(big, n, inputs, window)
    walk_s, figures_in, nodes = in_process(big, n, args.big_depth, args.repeats)
    note(
        f"in process, {2 * n:,}-node graph, upstream depth {args.big_depth}: {nodes:,} nodes;"
        f" the walk alone {fmt_seconds(walk_s)} (median of {args.repeats})"
    )
    for label, (wall, cpu) in figures_in.items():
        note(f"  {label}: {fmt_seconds(wall)} ({fmt_seconds(cpu)} of CPU) (medians of {args.repeats}, in turn)")
    off, cold, cold_off = figures_in[CACHE_OFF], figures_in[COLD], figures_in[COLD_OFF]
    warm, in_turn = figures_in[WARM], figures_in[IN_TURN]
    what = f"lineage in process, depth {args.big_depth}, every node's data (columns)"
    report(
        f"{what}, warm (asked again), CPU",
        fmt_seconds(warm[1]),
        "the cache off",
        fmt_seconds(off[1]),
        off[1] / warm[1],
        1.0,
    )
    for label, (wall, cpu) in (("warm (asked again)", warm), ("warm, in turn with the other paths", in_turn)):
        report(  # wall time on a loaded machine also counts the time the process waited for a core
            f"{what}, {label}, wall",
            fmt_seconds(wall),
            "the target",
            f"{IN_PROCESS_TARGET_MS:g} ms",
            IN_PROCESS_TARGET_MS / (wall * 1000),
            1.0,
        )
        report(
            f"{what}, {label}, CPU",
            fmt_seconds(cpu),
            "the target",
            f"{IN_PROCESS_TARGET_MS:g} ms",
            IN_PROCESS_TARGET_MS / (cpu * 1000),
            1.0,
        )
    report(  # a fresh Trail's first call: the walk and every row, as before, and the rows kept
        f"{what}, cold (fresh Trail's first call), CPU",
        fmt_seconds(cold[1]),
        "the same with the cache off",
        fmt_seconds(cold_off[1]),
        cold_off[1] / cold[1],
        0.95,  # not slower than without the cache, within this machine's noise
    )
    report(
        f"{what}, cold (fresh Trail's first call), wall",
        fmt_seconds(cold[0]),
        "the target",
        f"{IN_PROCESS_TARGET_MS:g} ms",
        IN_PROCESS_TARGET_MS / (cold[0] * 1000),
        1.0,
    )
    graph_answer, columns_answer, joined_answer = (
        figures_in["answer bytes from the graph"],
        figures_in["answer bytes from the columns"],
        figures_in["answer bytes joined from the kept nodes and walk"],
    )
    report(
        f"lineage answer bytes in process, depth {args.big_depth}, from the columns, CPU",
        fmt_seconds(columns_answer[1]),
        "from the graph",
        fmt_seconds(graph_answer[1]),
        graph_answer[1] / columns_answer[1],
        1.0,
    )

    report(
        f"lineage answer bytes in process, depth {args.big_depth}, joined from the kept nodes and walk, CPU",
        fmt_seconds(joined_answer[1]),
        "from the columns",
        fmt_seconds(columns_answer[1]),
        columns_answer[1] / joined_answer[1],
        1.0,
    )


if __name__ == "__main__":
    main()
