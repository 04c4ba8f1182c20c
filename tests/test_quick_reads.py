"""The embedded store's fast path (store/sql/quick.py) answers as SqlStore does, and the CLI's reads stay light.

The same SQLite file is read through :class:`EmbeddedStore` (the standard library's
sqlite3) and through :class:`SqlStore` (SQLAlchemy); every answer, every error and
every audit entry must be the same. A classified column makes the fast path hand
redacting reads to SqlStore: those must match too, and show no classified value.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import datatrail
from datatrail.catalog import Catalog
from datatrail.core.errors import DatatrailError, InvalidInput
from datatrail.core.model import Ref, RunState
from datatrail.core.roles import Principal
from datatrail.security.access import Access
from datatrail.store.sql.quick import EmbeddedStore
from datatrail.store.sql.store import SqlStore

ROWS = "id,amount\n1,987654.25\n2,123457.5\n"


def _scene(folder: Path, *, scheduled: bool = False) -> dict[str, Any]:
    """A store with namespaces, aliases, a directory, checks, runs with metrics and lineage; ``scheduled``:
    runs as schedulers report them too (:func:`_lineage_events`)."""
    (folder / "raw.csv").write_text(ROWS)
    (folder / "more.csv").write_text(ROWS + "3,5.0\n")
    (folder / "images").mkdir()
    for i in range(3):
        (folder / "images" / f"{i}.bin").write_bytes(bytes([i]) * 10)
    with datatrail.init(folder) as trail:
        v1 = trail.add(folder / "raw.csv", name="raw", tags=["candidate", "gold"])
        trail.add(folder / "more.csv", name="raw")
        trail.add(folder / "raw.csv", name="other", namespace="team-b")
        trail.add(folder / "images", name="images")
        trail.check(v1, [{"rule": "between", "column": "amount", "min": 0, "max": 100}])
        with trail.run("clean", params={"dropna": True}) as run:
            run.input("raw@1")
            (folder / "clean.csv").write_text("id,amount\n1,987654.25\n")
            run.output(folder / "clean.csv", name="clean")
            run.log_metric("rows", 1)
            run.log_metric("loss", 0.25)
        with trail.run("report") as run:
            run.input("clean")
            (folder / "report.txt").write_text("ok\n")
            run.output(folder / "report.txt", name="report")
        runs = trail.runs()
        ol_runs = _lineage_events(trail) if scheduled else []
    return {"v1": v1, "runs": [r.id for r in runs], "ol_runs": ol_runs}


PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3"
TABLE = ("hive://metastore:9083", "shop.orders")  # the name a writer gives, with a symlink to PATH
PATH = ("hdfs://nn:8020", "/warehouse/shop.db/orders")  # the name the dataset is stored under


def _event(kind: str, run_id: str, job: str, minute: int, **parts: Any) -> dict[str, Any]:
    """An OpenLineage event as a scheduler sends it (no datatrail facets)."""
    return {
        "eventType": kind,
        "eventTime": f"2026-12-01T10:{minute:02d}:00+00:00",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": parts.get("run_facets", {})},
        "job": {"namespace": "airflow", "name": job, "facets": {}},
        "inputs": parts.get("inputs", []),
        "outputs": parts.get("outputs", []),
    }


def _lineage_events(trail: datatrail.Trail) -> list[str]:
    """Runs as schedulers report them: a START alone with a planned output, a run known only by its COMPLETE
    (a nominalTime), a DAG run with task runs, a dataset written under one name and read under its symlink.
    Their ids share prefixes: "feedface" names six runs, "cafe0000" two."""
    ids = [f"feedface-0000-4000-8000-00000000000{i}" for i in range(1, 7)] + [
        f"cafe0000-0000-4000-8000-00000000000{i}" for i in range(1, 3)
    ]
    started, ended, dag, load, export, idle, writer, reader = ids
    meta = {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/X.json"}
    parent = {"parent": {**meta, "run": {"runId": dag}, "job": {"namespace": "airflow", "name": "shop"}}}
    planned = [{"namespace": "file", "name": "/d/report.csv", "facets": {}}]
    links = {"symlinks": {**meta, "identifiers": [{"namespace": PATH[0], "name": PATH[1], "type": "FILE"}]}}
    events = [
        _event("START", started, "dag.slow", 0, outputs=planned),
        _event(
            "COMPLETE",
            ended,
            "dag.nominal",
            10,
            run_facets={"nominalTime": {"nominalStartTime": "2026-12-01T09:30:00Z"}},
        ),
        _event("START", dag, "shop", 0),
        _event("START", load, "shop.load", 1, run_facets=parent),
        _event("COMPLETE", load, "shop.load", 2, run_facets=parent),
        _event("START", export, "shop.export", 3, run_facets=parent),
        _event("COMPLETE", dag, "shop", 4),
        _event("START", idle, "shop.idle", 5),
        _event(
            "COMPLETE", writer, "hive.load", 6, outputs=[{"namespace": TABLE[0], "name": TABLE[1], "facets": links}]
        ),
        _event("COMPLETE", reader, "spark.audit", 7, inputs=[{"namespace": PATH[0], "name": PATH[1], "facets": {}}]),
    ]
    for event in events:
        trail.ingest(event, actor="airflow")
    return ids


def _answer(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except DatatrailError as exc:
        return ("error", type(exc).__name__, exc.message)


def _reads(store: Any, run_ids: list[str], created: Any) -> dict[str, Any]:
    """Every read the fast path answers, with the errors it raises."""
    out: dict[str, Any] = {}
    out["datasets"] = _answer(store.list_datasets)
    out["datasets team-b"] = _answer(lambda: store.list_datasets("team-b"))
    out["datasets none"] = _answer(lambda: store.list_datasets("nowhere"))
    for sel in (None, "latest", "1", "2", "9", "gold", "nope", "sha256:", "sha256:0000"):
        out[f"resolve raw@{sel}"] = _answer(lambda sel=sel: store.resolve(Ref("default", "raw", sel)))
    out["resolve missing"] = _answer(lambda: store.resolve(Ref("default", "missing", None)))
    raw1 = store.resolve(Ref("default", "raw", "1"))
    digest = str(raw1.digest)
    out["resolve digest"] = _answer(lambda: store.resolve(Ref("default", "raw", digest[:14])))
    out["find"] = _answer(lambda: store.find_version("default", "raw", raw1.key))
    out["versions"] = _answer(lambda: store.list_versions("default", "raw"))
    out["versions missing"] = _answer(lambda: store.list_versions("team-b", "raw"))
    images = store.resolve(Ref("default", "images", None))
    out["manifest"] = _answer(lambda: store.manifest(images))
    for name in ("raw", "clean", "images"):
        version = store.resolve(Ref("default", name, "1"))
        out[f"profile {name}"] = _answer(lambda v=version: store.profile(v))
        out[f"checks {name}"] = _answer(lambda v=version: store.check_results(v))
        out[f"describe {name}"] = _answer(lambda v=version: store.describe(v))
    for run_id in run_ids:
        out[f"run {run_id}"] = _answer(lambda r=run_id: store.get_run(r))
        out[f"run prefix {run_id}"] = _answer(lambda r=run_id: store.get_run(r[:8]))
    for prefix in (
        "feedface",
        "feedface-0000-4000-8000-00000000000",
        "cafe0000",
        "cafe0000-0000-4000-8000-000000000002",
    ):
        out[f"run prefix {prefix}"] = _answer(lambda p=prefix: store.get_run(p))
    out["resolve symlink"] = _answer(lambda: store.resolve(Ref(PATH[0], PATH[1], None)))
    out["resolve link"] = _answer(lambda: store.resolve(Ref(TABLE[0], TABLE[1], None)))
    out["resolve link@9"] = _answer(lambda: store.resolve(Ref(TABLE[0], TABLE[1], "9")))
    out["resolve symlink@1"] = _answer(lambda: store.resolve(Ref(PATH[0], PATH[1], "1")))
    out["resolve symlink@2"] = _answer(lambda: store.resolve(Ref(PATH[0], PATH[1], "2")))
    out["versions symlink"] = _answer(lambda: store.list_versions(*PATH))
    out["describe symlink"] = _answer(lambda: store.describe(store.resolve(Ref(*PATH, None))))
    out["versions link"] = _answer(lambda: store.list_versions(*TABLE))
    out["find link"] = _answer(lambda: store.find_version(*TABLE, "0" * 64))
    out["at raw@1"] = _answer(lambda: store.versions_at(str(raw1.uri), digest))
    out["at raw@1 uri"] = _answer(lambda: store.versions_at(str(raw1.uri)))
    for bad in ("abc", "ffffffff", "0000000000000000000000000000000000aa"):
        out[f"run {bad}"] = _answer(lambda b=bad: store.get_run(b))
    out["jobs"] = _answer(store.list_jobs)
    out["jobs airflow"] = _answer(lambda: store.list_jobs("airflow"))
    out["jobs none"] = _answer(lambda: store.list_jobs("nowhere"))
    out["runs"] = _answer(store.list_runs)
    out["runs clean"] = _answer(lambda: store.list_runs("clean", 5))
    out["runs 1"] = _answer(lambda: store.list_runs(None, 1))
    clean = store.resolve(Ref("default", "clean", None))
    for direction in ("upstream", "downstream", "both"):
        for depth in (0, 1, 5):
            key = f"lineage {direction} {depth}"
            out[key] = _answer(lambda d=direction, n=depth: store.lineage([raw1, clean], d, n))
    out["lineage as of"] = _answer(lambda: store.lineage([raw1], "both", 5, created))
    return out


def _compare(folder: Path, scene: dict[str, Any], *, fast: bool) -> dict[str, Any]:
    uri = f"sqlite:///{folder / '.datatrail' / 'trail.db'}"
    quick = EmbeddedStore(uri, folder / ".datatrail" / "trail.db")
    full = SqlStore(uri)
    try:
        created = scene["v1"].created_at + timedelta(microseconds=1)
        ours = _reads(quick, scene["runs"] + scene["ol_runs"], created)
        # The fast path answered itself (it did not open the full store), unless something is classified.
        assert (quick._real is None) is fast
        theirs = _reads(full, scene["runs"] + scene["ol_runs"], created)
    finally:
        quick.close()
        full.close()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == theirs[key], key
    return ours


def test_the_fast_path_answers_as_sqlstore(tmp_path: Path) -> None:
    scene = _scene(tmp_path, scheduled=True)
    answers = _compare(tmp_path, scene, fast=True)
    # The scene exercises what it should: lists, errors, a run's metrics and io, a lineage graph.
    assert len(answers["datasets"][1]) == 7
    assert answers["resolve raw@gold"][1].aliases == ("candidate", "gold")
    assert answers["resolve raw@9"][0] == "error"
    assert answers["resolve missing"][0] == "error"
    assert answers["run abc"] == ("error", "InvalidInput", answers["run abc"][2])
    run = answers[f"run {scene['runs'][-1]}"][1]
    assert run.metrics == {"rows": 1, "loss": 0.25} and run.params == {"dropna": True}
    assert [v.name for v in run.inputs] == ["raw"] and [v.name for v in run.outputs] == ["clean"]
    assert len(answers["lineage both 5"][1].nodes) == 5
    assert answers["checks raw"][1][0].observed is not None
    # Runs as schedulers report them.
    started, ended, dag, load, export, _, writer, reader = scene["ol_runs"]
    run = answers[f"run {started}"][1]
    assert run.state is RunState.RUNNING and run.planned_outputs == (("file", "/d/report.csv"),)
    assert answers[f"run {ended}"][1].started_at.isoformat() == "2026-12-01T09:30:00+00:00"
    assert answers[f"run {dag}"][1].children == (load, export)
    assert answers[f"run {load}"][1].parent_run_id == dag
    # A dataset reached through its other name (the symlink a producer sent).
    assert answers["resolve link"][1].name == PATH[1] and answers["resolve link"][1] == answers["resolve symlink"][1]
    assert answers["versions link"][1] == answers["versions symlink"][1] != []
    assert answers[f"run {reader}"][1].inputs == answers[f"run {writer}"][1].outputs != ()
    # Ambiguous prefixes name their candidates (five at most).
    kind, error, message = answers["run prefix feedface"]
    assert (kind, error) == ("error", "InvalidInput") and "ambiguous" in message and message.count("feedface-") == 5
    assert "…" in message and answers["run prefix cafe0000"][2].count("cafe0000-") == 2
    assert answers["run prefix cafe0000-0000-4000-8000-000000000002"][1].id == reader
    assert [v.ref for v in answers["at raw@1"][1]] == ["team-b:other@1", "raw@1"]


def test_classified_reads_match_and_keep_values_out(tmp_path: Path) -> None:
    scene = _scene(tmp_path, scheduled=True)
    with datatrail.connect(f"sqlite:///{tmp_path / '.datatrail' / 'trail.db'}") as trail:
        trail.classify(scene["v1"], "amount", "pii")
    answers = _compare(tmp_path, scene, fast=False)
    # Redacted through SqlStore: the check's observed value and message, the profile's values of amount.
    assert answers["checks raw"][1][0].observed is None
    for name in ("profile raw", "profile clean"):
        assert "987654" not in json.dumps(answers[name][1], default=str)


def _audit_rows(path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(path)
    try:
        cols = ("seq", "time", "actor", "action", "target", "outcome", "details", "event_id", "prev_hash", "hash")
        rows = db.execute(f"SELECT {', '.join(cols)}, typeof(time), typeof(details) FROM audit ORDER BY seq")
        return [dict(zip((*cols, "time type", "details type"), r, strict=True)) for r in rows]
    finally:
        db.close()


def test_audit_entries_of_the_fast_path_are_sqlstores(tmp_path: Path) -> None:
    scene = _scene(tmp_path)
    path = tmp_path / ".datatrail" / "trail.db"
    uri = f"sqlite:///{path}"
    before = len(_audit_rows(path))
    ops: list[Callable[[Catalog], Any]] = [
        lambda c: c.get("raw@gold"),
        lambda c: c.versions("raw"),
        lambda c: c.lineage("clean", direction="both"),
        lambda c: c.get("team-b:other"),
    ]
    for store in (EmbeddedStore(uri, path), SqlStore(uri)):
        access = Access(Principal("ann", unrestricted=True), "local", store.record_access, seen=None)
        catalog = Catalog(store, access.note)
        for op in ops:
            op(catalog)
        store.record_access(actor="bob", action="dataset.read", target="x" * 3000, outcome="denied", details={"a": 1})
        if isinstance(store, EmbeddedStore):
            assert store._real is None
        store.close()
    rows = _audit_rows(path)[before:]
    half = len(rows) // 2
    assert half == len(ops) + 1
    for ours, theirs in zip(rows[:half], rows[half:], strict=True):
        # Times differ; their stored form may not (SQLAlchemy's: "YYYY-MM-DD HH:MM:SS.ffffff").
        assert [c.isdigit() for c in ours["time"]] == [c.isdigit() for c in theirs["time"]]
        for key in ("time", "seq", "prev_hash", "hash"):
            ours.pop(key), theirs.pop(key)
        assert ours == theirs
    # The chain holds across both writers' entries (SqlStore's own check walks it).
    full = SqlStore(uri)
    try:
        assert full.check_integrity() == []
        assert full.audit_head() is not None and full.audit_head().seq == before + 2 * half  # type: ignore[union-attr]
    finally:
        full.close()
    assert scene["runs"]


COMMANDS = (["ls"], ["show", "raw"], ["show", "images"], ["versions", "raw"], ["runs"], ["lineage", "clean", "--both"])


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a))
def test_cli_reads_do_not_import_sqlalchemy_or_pydantic(tmp_path: Path, argv: list[str]) -> None:
    scene = _scene(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "datatrail", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "datatrail.store.sql.quick" in imported  # the embedded store was opened
    heavy = sorted(m for m in imported if m.split(".")[0] in ("sqlalchemy", "pydantic", "alembic"))
    assert not heavy, heavy
    assert scene["runs"]


def test_show_run_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    scene = _scene(tmp_path)
    run_id = scene["runs"][0]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "datatrail", "show", f"run:{run_id[:8]}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert run_id in proc.stdout
    assert " sqlalchemy" not in proc.stderr


def test_threads_share_one_embedded_store(tmp_path: Path) -> None:
    """Reads are transactions on one connection: threads take turns, and one may open the full store midway."""
    import threading

    scene = _scene(tmp_path)
    path = tmp_path / ".datatrail" / "trail.db"
    uri = f"sqlite:///{path}"
    before = len(_audit_rows(path))
    store = EmbeddedStore(uri, path)
    expected = SqlStore(uri)
    try:
        want = (expected.list_datasets(), expected.list_versions("default", "raw"), expected.list_runs())
    finally:
        expected.close()
    errors: list[BaseException] = []
    go = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            go.wait()
            for i in range(30):
                got = (store.list_datasets(), store.list_versions("default", "raw"), store.list_runs())
                assert got == want
                store.lineage([got[1][0]], "both", 3)
                store.record_access(actor=f"t{n}", action="dataset.read", target="raw", origin="local")
                if n == 0 and i == 15:
                    store.target()  # the full store takes over while the others read
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert not errors, errors
    assert len(_audit_rows(path)) == before + 8 * 30
    full = SqlStore(uri)
    try:
        assert full.check_integrity() == []
    finally:
        full.close()
    assert scene["runs"]


def test_content_locations_of_the_fast_path_are_sqlstores(tmp_path: Path) -> None:
    """A push's note of where a version's bytes are, written and read without SQLAlchemy, as SqlStore does."""
    scene = _scene(tmp_path)
    path = tmp_path / ".datatrail" / "trail.db"
    uri = f"sqlite:///{path}"
    raw1 = scene["v1"]
    quick = EmbeddedStore(uri, path)
    assert quick.record_content_location([raw1], "origin", "s3://bucket/dt", actor="ann") == 1
    assert quick.record_content_location([raw1], "origin", "s3://bucket/dt", actor="ann") == 0
    with pytest.raises(InvalidInput, match="credentials"):
        quick.record_content_location([raw1], "origin", "s3://key:secretvalue@bucket/dt", actor="ann")
    ours = quick.content_locations(raw1)
    assert quick._real is None  # answered and written without the full store
    quick.close()
    full = SqlStore(uri)
    try:
        assert full.record_content_location([raw1], "backup", "/srv/backup", actor="bob") == 1
        theirs = full.content_locations(raw1)
        assert {(x.remote, x.url, x.recorded_by) for x in theirs} == {
            ("origin", "s3://bucket/dt", "ann"),
            ("backup", "/srv/backup", "bob"),
        }
        assert [x for x in theirs if x.remote == "origin"] == ours
        assert full.check_integrity() == []  # the audit chain holds across both writers' entries
    finally:
        full.close()
    quick = EmbeddedStore(uri, path)
    try:
        assert quick.content_locations(raw1) == theirs
    finally:
        quick.close()
    rows = [r for r in _audit_rows(path) if r["action"] == "content.locate"]
    # The second call recorded nothing new: no entry.
    assert [json.loads(r["details"])["url"] for r in rows] == ["s3://bucket/dt", "/srv/backup"]
