"""What admitting events costs: ingest as an editor of some namespaces, against the same ingest unrestricted.

A server request of a user who is not an admin writes through a GuardedStore,
which admits each event before the store sees it (security/admission.py: the
event parsed, every namespace it touches authorised, inputs of read-only
namespaces reduced to references, and the run as stored checked inside the
store's transaction). Baseline, measured in the same run over the same kind of
SQLite store: the same events written by the embedded Trail, which acts with
full access and admits nothing. Alternating rounds, median per mode:

- one event per call (START and COMPLETE of runs reading one dataset and
  writing one), and
- batches of 100 (``ingest_many``, the batch endpoint's path).

Target: admission costs at most a quarter of the ingest (ratio >= 0.75x).

    python benchmarks/admission.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import note, quick, report, scratch

import datatrail
from datatrail.core.model import EventType
from datatrail.core.roles import Grant, Principal
from datatrail.events import build_run_event

EDITOR = Principal("producer", grants=(Grant("editor", "team-*"), Grant("viewer", "sources")))


def events(n: int) -> list[dict[str, Any]]:
    """``n`` events: START and COMPLETE of runs that read ``sources:raw`` and write ``team-a:out<i>``."""
    out: list[dict[str, Any]] = []
    for i in range(n // 2):
        run_id = str(uuid.uuid4())
        for state in (EventType.START, EventType.COMPLETE):
            event = build_run_event(state, run_id, "team-a", f"job{i % 20}", inputs=[("sources", "raw", "1")])
            event["outputs"] = [{"namespace": "team-a", "name": f"out{i % 50}"}]
            out.append(event)
    return out


def rate(trail: datatrail.Trail, batch: bool, n: int) -> float:
    todo = events(n)
    start = time.perf_counter()
    if batch:
        for i in range(0, len(todo), 100):
            trail.ingest_many(todo[i : i + 100])
    else:
        for event in todo:
            trail.ingest(event, detail=False)
    return len(todo) / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100 if quick() else 2000, help="events per round and mode")
    ap.add_argument("--rounds", type=int, default=1 if quick() else 5)
    args = ap.parse_args()
    ok = True
    with scratch("admission-") as folder:
        folder.joinpath("raw.csv").write_text("x\n1\n")
        with datatrail.init(folder, f"sqlite:///{folder / 'trail.db'}") as trail:
            trail.add(folder / "raw.csv", name="raw", namespace="sources")  # version 1 of what the runs read
            rate(trail, True, 200)  # warm: the namespaces, jobs and datasets exist before the clock
            scoped = trail.scoped(EDITOR, "bench")
            note(f"{args.events} events per round, {args.rounds} rounds, SQLite in process, one thread")
            for batch in (False, True):
                ours: list[float] = []
                theirs: list[float] = []
                for _ in range(args.rounds):
                    theirs.append(rate(trail, batch, args.events))
                    ours.append(rate(scoped, batch, args.events))
                a, b = statistics.median(ours), statistics.median(theirs)
                what = "admitted ingest, batches of 100" if batch else "admitted ingest, one event per call"
                ok &= report(what, f"{a:,.0f} events/s", "unrestricted", f"{b:,.0f} events/s", a / b, 0.75)
    return 0 if ok or quick() else 1


if __name__ == "__main__":
    sys.exit(main())
