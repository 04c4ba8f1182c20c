"""The store contract, over every store: the embedded SQLite store and a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

import datatrail
from datatrail.core.changes import VersionInfo
from datatrail.core.errors import DatatrailError, InvalidInput, NotFound, StoreVersionError
from datatrail.core.model import Digest, EventType, FileEntry, RunState
from datatrail.events import build_dataset_event, build_run_event
from datatrail.store.http import HttpStore
from datatrail.store.sql import tables
from datatrail.store.sql.store import SqlStore
from tests.conftest import write


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def counts(trail: datatrail.Trail) -> dict[str, int]:
    """Rows in every table of the store (through the API for a remote store)."""
    if isinstance(trail._store, HttpStore):
        return api_counts(trail)
    engine = trail._store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in tables.metadata.tables.items()
        }


def api_counts(trail: datatrail.Trail) -> dict[str, int]:
    """What the API shows of the tables: entries, events, datasets, versions, runs, aliases."""
    datasets = trail.datasets()
    versions = [v for d in datasets for v in trail._store.list_versions(d.namespace, d.name)]
    # A server audits reads too (issue 6), and these very calls are reads: count the writes (with an event).
    audit = [e for e in trail._store.audit_log(10_000) if "event" in e.details]
    return {
        "audit": len(audit),
        "events": len({e.details.get("event") for e in audit}),
        "datasets": len(datasets),
        "versions": len(versions),
        "aliases": sum(len(v.aliases) for v in versions),
        "runs": len(trail.runs(limit=100_000)),
    }


def audit_count(trail: datatrail.Trail) -> int:
    return counts(trail)["audit"]


# ---------------------------------------------------------------- add


def test_add_file(trail: datatrail.Trail, workdir: Path) -> None:
    data = b"species,mass\nAdelie,3750\n"
    p = write(workdir / "data" / "raw.csv", data)
    before = datetime.now(UTC)
    v = trail.add(p)
    assert (v.namespace, v.name, v.number) == ("default", "data/raw.csv", 1)
    assert v.digest == Digest.sha256(sha(data))
    assert v.size == len(data)
    assert v.format == "csv"
    assert v.uri == p.resolve().as_uri()
    assert v.created_by == trail.user and v.host == trail.host
    assert v.created_at.tzinfo is not None
    assert before.replace(microsecond=0) <= v.created_at <= datetime.now(UTC)
    assert v.file_count is None and not v.is_directory
    assert v.ref == "data/raw.csv@1"
    assert trail.get("data/raw.csv") == v
    assert trail._store.check_integrity() == []  # type: ignore[attr-defined]


def test_add_directory(trail: datatrail.Trail, workdir: Path) -> None:
    files = {"b/2.csv": b"x,y\n", "a.csv": b"1\n", "b/1.csv": b""}
    for rel, data in files.items():
        write(workdir / "parts" / rel, data)
    v = trail.add(workdir / "parts", name="parts", message="first cut")
    assert v.is_directory and v.file_count == 3
    assert v.size == sum(len(d) for d in files.values())
    assert v.message == "first cut"
    manifest = trail.manifest(v)
    assert manifest == [FileEntry(p, len(files[p]), Digest.sha256(sha(files[p]))) for p in sorted(files)]
    lines = "".join(f"{p}\t{len(files[p])}\t{sha(files[p])}\n" for p in sorted(files))
    assert v.digest == Digest.sha256(sha(lines.encode()))
    assert trail.get("parts@1").file_count == 3


def test_add_is_idempotent(trail: datatrail.Trail, workdir: Path) -> None:
    p = write(workdir / "raw.csv", "a\n1\n")
    first = trail.register(p)
    assert first.created and first.status == "new"
    snapshot = counts(trail)
    again = trail.register(p)
    assert not again.created and again.status == "unchanged"
    assert again.version == first.version
    assert counts(trail) == snapshot  # nothing written, not even an audit entry
    assert [v.number for v in trail.versions("raw.csv")] == [1]


def test_changed_content_is_the_next_version(trail: datatrail.Trail, workdir: Path) -> None:
    p = write(workdir / "raw.csv", "a\n1\n")
    v1 = trail.add(p)
    write(p, "a\n1\n2\n")
    v2 = trail.add(p)
    write(p, "a\n3\n")
    v3 = trail.add(p)
    assert [v1.number, v2.number, v3.number] == [1, 2, 3]
    assert len({v1.digest, v2.digest, v3.digest}) == 3
    # Content seen before is that version again, not a new one.
    write(p, "a\n1\n")
    assert trail.register(p).version == v1
    assert [v.number for v in trail.versions("raw.csv")] == [1, 2, 3]
    assert trail.get("raw.csv@latest").number == 3


def test_same_content_under_two_names_is_two_datasets(trail: datatrail.Trail, workdir: Path) -> None:
    p = write(workdir / "raw.csv", "same")
    a = trail.add(p, name="a")
    b = trail.add(p, name="b")
    c = trail.add(p, name="a", namespace="team-x")
    assert (a.ref, b.ref, c.ref) == ("a@1", "b@1", "team-x:a@1")
    assert a.digest == b.digest == c.digest
    assert trail.get("team-x:a@1") == c


def test_versions_at_a_location_or_of_a_content(trail: datatrail.Trail, workdir: Path) -> None:
    """The read a path without a name is resolved by (see tests/test_identity.py): location, then content."""
    p = write(workdir / "data" / "clean.csv", "a\n1\n")
    v1 = trail.add(p, name="clean")
    write(p, "a\n2\n")
    trail.add(p, name="clean")
    trail.add(write(workdir / "copy.csv", "a\n1\n"), name="copy", namespace="team-x")
    uri = p.resolve().as_uri()
    assert [v.ref for v in trail.catalog.versions_at(uri)] == ["clean@2", "clean@1"]
    both = trail.catalog.versions_at(uri, str(v1.digest))
    assert [v.ref for v in both] == ["team-x:copy@1", "clean@2", "clean@1"]
    assert trail.catalog.versions_at("file:///nowhere.csv", "sha256:" + "0" * 64) == []
    # Without a name the file is clean again (its newest version there), its old content clean@1.
    assert trail.register(p).version.ref == "clean@2"
    write(p, "a\n1\n")
    assert trail.register(p).version.ref == "clean@1"
    assert sorted((d.namespace, d.name) for d in trail.datasets()) == [("default", "clean"), ("team-x", "copy")]


# ---------------------------------------------------------------- aliases and refs


def test_tags_and_alias_move(trail: datatrail.Trail, workdir: Path) -> None:
    p = write(workdir / "raw.csv", "1")
    v1 = trail.add(p, tags=["candidate"])
    assert v1.aliases == ("candidate",)
    write(p, "2")
    v2 = trail.add(p)
    assert trail.tag("raw.csv@1", "production").aliases == ("candidate", "production")
    assert trail.get("raw.csv@production").number == 1
    before = audit_count(trail)
    moved = trail.tag("raw.csv@2", "production")
    assert audit_count(trail) == before + 1
    assert moved.number == 2 and moved.aliases == ("production",)
    assert trail.get("raw.csv@production") == trail.get("raw.csv@2")
    assert trail.get("raw.csv@1").aliases == ("candidate",)
    # Re-adding unchanged content with a new tag only adds the tag.
    write(p, "1")
    again = trail.add(p, tags=["golden"])
    assert again.number == 1 and again.aliases == ("candidate", "golden")
    assert trail.get("raw.csv@golden").number == 1
    assert [v.number for v in trail.versions("raw.csv")] == [1, 2]
    assert v2.number == 2


@pytest.mark.parametrize(
    ("alias", "message"),
    [("latest", "always names the newest version"), ("3", "cannot be a number"), ("a/b", "invalid alias")],
)
def test_bad_alias(trail: datatrail.Trail, workdir: Path, alias: str, message: str) -> None:
    trail.add(write(workdir / "raw.csv", "1"))
    with pytest.raises(InvalidInput, match=message):
        trail.tag("raw.csv@1", alias)
    with pytest.raises(InvalidInput, match=message):
        trail.add(workdir / "raw.csv", tags=[alias])


def test_resolve(trail: datatrail.Trail, workdir: Path) -> None:
    p = workdir / "raw.csv"
    versions = []
    for i in range(3):
        write(p, f"row {i}\n")
        versions.append(trail.add(p, name="raw"))
    trail.tag("raw@2", "prod")
    v2 = trail.get("raw@2")
    assert trail.get("raw") == trail.get("raw@latest") == trail.get("raw@3")
    assert trail.get("raw@prod") == v2
    assert v2.digest is not None
    for n in (8, 12, 64):
        assert trail.get(f"raw@sha256:{v2.digest.hex[:n]}") == v2
    assert trail.get(f"default:raw@sha256:{v2.digest.hex}") == v2
    assert [trail.get(f"raw@{i}").digest for i in (1, 2, 3)] == [v.digest for v in versions]


def _crafted(digest_hex: str) -> VersionInfo:
    d = Digest.sha256(digest_hex)
    return VersionInfo(key=str(d), digest=d, size=1, uri="file:///x", format="csv", created_by="ann")


def test_ambiguous_digest_prefix(trail: datatrail.Trail) -> None:
    a = "abcdef12" + "0" * 56
    b = "abcdef12" + "1" * 56
    for h in (a, b):
        trail._store.ingest(build_dataset_event("default", "amb", _crafted(h)), "ann", "dataset.add")
    with pytest.raises(InvalidInput, match="ambiguous") as info:
        trail.get("amb@sha256:abcdef12")
    assert "more hex digits" in str(info.value)
    assert trail.get("amb@sha256:abcdef120").number == 1
    assert trail.get("amb@sha256:abcdef121").number == 2


def test_digest_prefix_is_not_a_pattern(trail: datatrail.Trail, workdir: Path) -> None:
    v = trail.add(write(workdir / "raw.csv", "x"), name="raw")
    assert v.digest is not None
    # Another dataset's digest does not resolve here.
    other = trail.add(write(workdir / "o.csv", "y"), name="other")
    assert other.digest is not None
    with pytest.raises(NotFound):
        trail.get(f"raw@sha256:{other.digest.hex[:12]}")


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("nope", NotFound, "no dataset named 'nope'"),
        ("nope@1", NotFound, "no dataset named 'nope'"),
        ("team-x:raw", NotFound, "in namespace 'team-x'"),
        ("raw@4", NotFound, "has no version '4'"),
        ("raw@prod", NotFound, "has no version 'prod'"),
        ("raw@sha256:00000000", NotFound, "has no version 'sha256:00000000'"),
        ("raw@0", InvalidInput, "version numbers start at 1"),
        ("raw@", InvalidInput, "nothing after '@'"),
        ("raw@sha256:abc", InvalidInput, "8 to 64 lowercase hex"),
        ("", InvalidInput, "empty"),
    ],
)
def test_unknown_and_bad_refs(
    trail: datatrail.Trail, workdir: Path, ref: str, error: type[DatatrailError], message: str
) -> None:
    trail.add(write(workdir / "raw.csv", "x"), name="raw")
    with pytest.raises(error) as info:
        trail.get(ref)
    assert type(info.value) is error
    assert message in str(info.value)


def test_empty_dataset_name_reference(trail: datatrail.Trail) -> None:
    with pytest.raises(NotFound, match="no dataset"):
        trail.versions("nothing")
    with pytest.raises(InvalidInput, match="drop the '@"):
        trail.versions("nothing@1")


# ---------------------------------------------------------------- listings


def test_versions_listing(trail: datatrail.Trail, workdir: Path) -> None:
    p = workdir / "raw.csv"
    for i in range(4):
        write(p, str(i))
        trail.add(p, name="raw", message=f"m{i}")
    trail.tag("raw@3", "prod")
    vs = trail.versions("raw")
    assert [v.number for v in vs] == [1, 2, 3, 4]
    assert [v.message for v in vs] == ["m0", "m1", "m2", "m3"]
    assert [v.aliases for v in vs] == [(), (), ("prod",), ()]
    assert [v.created_at for v in vs] == sorted(v.created_at for v in vs)
    d = vs[0].to_dict()
    assert {"namespace", "name", "version", "digest", "size", "created_at", "created_by"} <= set(d)
    assert d["digest"] == f"sha256:{sha(b'0')}"


def test_datasets_listing(trail: datatrail.Trail, workdir: Path) -> None:
    assert trail.datasets() == []
    p = write(workdir / "f.csv", "1")
    trail.add(p, name="zeta")
    trail.add(p, name="alpha")
    write(p, "2")
    trail.add(p, name="alpha")
    trail.add(p, name="mid", namespace="team-x")
    listed = [(d.namespace, d.name, d.version_count, d.latest) for d in trail.datasets()]
    assert listed == [("default", "alpha", 2, 2), ("default", "zeta", 1, 1), ("team-x", "mid", 1, 1)]
    assert [d.name for d in trail.datasets("team-x")] == ["mid"]
    assert trail.datasets("nobody") == []


def test_namespaces_listing(trail: datatrail.Trail, workdir: Path) -> None:
    """Each namespace's counts and first and last times, as its datasets' (every store, over HTTP too)."""
    assert trail.catalog.namespaces() == []
    p = write(workdir / "f.csv", "1")
    for name, namespace in (("zeta", "default"), ("alpha", "default"), ("mid", "team-x")):
        trail.add(p, name=name, namespace=namespace)
    found = {s.name: s for s in trail.catalog.namespaces()}
    assert [(s.name, s.datasets, s.jobs) for s in found.values()] == [("default", 2, 0), ("team-x", 1, 0)]
    created = sorted(d.created_at for d in trail.datasets("default"))
    assert (found["default"].created_at, found["default"].updated_at) == (created[0], created[-1])
    assert trail.catalog.namespaces("team-x") == [found["team-x"]] and trail.catalog.namespaces("nobody") == []


def test_latest_versions_and_overview(trail: datatrail.Trail, workdir: Path) -> None:
    assert trail.latest_versions() == []
    p = write(workdir / "f.csv", "x,y\n1,1\n")
    trail.add(p, name="old", checks=[{"rule": "not_null", "column": "y"}])
    trail.add(p, name="other", namespace="team-x")
    write(p, "x,y\n1,\n2,3\n")
    trail.add(p, name="old")  # version 2, newest; then checked twice: the latest evaluation counts
    trail.check("old@2", [{"rule": "not_null", "column": "y"}, {"rule": "row_count_between", "min": 1, "max": 9}])
    trail.check("old@2", [{"rule": "not_null", "column": "y"}])
    latest = trail.latest_versions()
    assert [(x.version.ref, x.checks_failed, x.checks_total) for x in latest] == [
        ("old@2", 1, 1),
        ("team-x:other@1", 0, 0),
    ]
    overview = trail.overview(5)
    assert [v.ref for v in overview.recent] == ["old@2", "team-x:other@1"]
    assert [(v.ref, [c.rule for c in failed]) for v, failed in overview.failing] == [("old@2", ["not_null"])]
    assert overview.drift_alerts == ()
    with pytest.raises(InvalidInput, match="limit"):
        trail.overview(0)


# ---------------------------------------------------------------- runs


def test_run_records_params_metrics_inputs_outputs(trail: datatrail.Trail, workdir: Path) -> None:
    raw = trail.add(write(workdir / "raw.csv", "a\n1\n2\n"), name="raw")
    ext = write(workdir / "ext.csv", "e\n")
    with trail.run("clean", params={"dropna": True, "cols": ["a"]}, job_type="transform") as run:
        run.input(raw)
        run.input(ext)  # a path: hashed and added
        out = run.output(write(workdir / "clean.csv", "a\n1\n"), name="clean")
        model = run.output(write(workdir / "m.bin", b"\x00\x01"), name="model", kind="model")
        run.log_metric("rows", 333)
        run.log_metric("loss", 0.5)
        run.log_metric("loss", 0.25)
        run.log_param("seed", 7)
    r = trail.get_run(run.id)
    assert r.id == run.id and r.job == "clean" and r.namespace == "default"
    assert r.state is RunState.COMPLETE and r.error is None
    assert r.params == {"dropna": True, "cols": ["a"], "seed": 7}
    assert r.metrics == {"loss": 0.25, "rows": 333}
    assert [v.ref for v in r.inputs] == ["ext.csv@1", "raw@1"]
    assert [v.ref for v in r.outputs] == ["clean@1", "model@1"]
    assert r.user == trail.user and r.host == trail.host
    assert r.cwd == str(workdir) and r.command
    assert r.started_at is not None and r.ended_at is not None and r.started_at <= r.ended_at
    assert r.parent_run_id is None
    assert out.run_id == run.id and trail.get("clean").run_id == run.id
    assert model.kind == "model"
    assert [d.kind for d in trail.datasets() if d.name == "model"] == ["model"]
    assert trail.get("raw@1").run_id is None
    assert trail.get_run(run.id[:8]) == r
    assert trail.get_run(f"run:{run.id.upper()}") == r
    assert [x.id for x in trail.runs(job="clean")] == [run.id]
    assert trail.runs(job="other") == []


def test_run_fail_records_error_and_propagates(trail: datatrail.Trail) -> None:
    with pytest.raises(ValueError, match="boom"), trail.run("bad", params={"x": 1}) as run:
        run.log_metric("progress", 0.5)
        raise ValueError("boom")
    r = trail.get_run(run.id)
    assert r.state is RunState.FAIL
    assert r.error == "ValueError: boom"
    assert r.metrics == {"progress": 0.5}
    assert r.ended_at is not None


def test_run_abort_on_keyboard_interrupt(trail: datatrail.Trail) -> None:
    with pytest.raises(KeyboardInterrupt), trail.run("long") as run:
        raise KeyboardInterrupt
    r = trail.get_run(run.id)
    assert r.state is RunState.ABORT
    assert r.error is not None and "KeyboardInterrupt" in r.error


def test_nested_runs_get_parent(trail: datatrail.Trail) -> None:
    with trail.run("pipeline", workflow="nightly") as outer:
        with trail.run("step-1") as inner:
            with trail.run("step-1a") as innermost:
                pass
        with trail.run("step-2") as second:
            pass
    with trail.run("after") as after:
        pass
    assert trail.get_run(outer.id).parent_run_id is None
    assert trail.get_run(inner.id).parent_run_id == outer.id
    assert trail.get_run(innermost.id).parent_run_id == inner.id
    assert trail.get_run(second.id).parent_run_id == outer.id
    assert trail.get_run(after.id).parent_run_id is None
    assert trail.get_run(inner.id).workflow == "nightly"
    # Newest first.
    assert [r.id for r in trail.runs()] == [after.id, second.id, innermost.id, inner.id, outer.id]
    assert [r.id for r in trail.runs(limit=2)] == [after.id, second.id]


def test_run_outside_with_block_is_refused(trail: datatrail.Trail, workdir: Path) -> None:
    run = trail.run("j")
    with pytest.raises(InvalidInput, match="not open"):
        run.input(write(workdir / "a.csv", "a"))
    with run:
        with pytest.raises(InvalidInput, match="must be a number"):
            run.log_metric("x", "high")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="already started"), run:
        pass


def test_ambiguous_and_unknown_run_ids(trail: datatrail.Trail) -> None:
    ids = ["abcd1234-0000-4000-8000-000000000001", "abcd5678-0000-4000-8000-000000000002"]
    for rid in ids:
        trail._store.ingest(build_run_event(EventType.START, rid, "default", "j"), "ann", "run.start")
    with pytest.raises(InvalidInput, match="ambiguous"):
        trail.get_run("abcd")
    assert trail.get_run("abcd5").id == ids[1]
    with pytest.raises(NotFound, match="no run with id"):
        trail.get_run(str(uuid.uuid4()))
    with pytest.raises(InvalidInput, match="is a UUID"):
        trail.get_run("not-a-run!")


# ---------------------------------------------------------------- lineage


@pytest.fixture
def pipeline(trail: datatrail.Trail, workdir: Path) -> dict[str, str]:
    """raw, ext -> clean -> featurize -> train -> (model, report) -> evaluate -> metrics."""
    raw = trail.add(write(workdir / "raw.csv", "r"), name="raw")
    ext = trail.add(write(workdir / "ext.csv", "e"), name="ext")
    with trail.run("clean") as r1:
        r1.input(raw)
        clean = r1.output(write(workdir / "clean.csv", "c"), name="clean")
    with trail.run("featurize") as r2:
        r2.input(clean)
        r2.input(ext)
        features = r2.output(write(workdir / "features.csv", "f"), name="features")
    with trail.run("train") as r3:
        r3.input(features)
        r3.output(write(workdir / "model.bin", "m"), name="model", kind="model")
        r3.output(write(workdir / "report.txt", "rep"), name="report")
    with trail.run("evaluate") as r4:
        r4.input("model@latest")
        r4.output(write(workdir / "metrics.json", "{}"), name="metrics")
    return {
        "raw": "version:default:raw@1",
        "ext": "version:default:ext@1",
        "clean": "version:default:clean@1",
        "features": "version:default:features@1",
        "model": "version:default:model@1",
        "report": "version:default:report@1",
        "metrics": "version:default:metrics@1",
        "r1": f"run:{r1.id}",
        "r2": f"run:{r2.id}",
        "r3": f"run:{r3.id}",
        "r4": f"run:{r4.id}",
    }


def _graph(trail: datatrail.Trail, ref: str, direction: Any, depth: int, n: dict[str, str]) -> Any:
    g = trail.lineage(ref, direction=direction, depth=depth)
    names = {v: k for k, v in n.items()}
    nodes = {names[i]: node.depth for i, node in g.nodes.items()}
    edges = {(names[s], names[t]) for s, t in g.edges}
    assert len(edges) == len(g.edges)
    return nodes, edges


UP_MODEL = [
    ({"model": 0}, set()),
    ({"model": 0, "r3": 1, "features": 1}, {("features", "r3"), ("r3", "model")}),
    (
        {"model": 0, "r3": 1, "features": 1, "r2": 2, "clean": 2, "ext": 2},
        {("features", "r3"), ("r3", "model"), ("clean", "r2"), ("ext", "r2"), ("r2", "features")},
    ),
    (
        {"model": 0, "r3": 1, "features": 1, "r2": 2, "clean": 2, "ext": 2, "r1": 3, "raw": 3},
        {
            ("features", "r3"),
            ("r3", "model"),
            ("clean", "r2"),
            ("ext", "r2"),
            ("r2", "features"),
            ("raw", "r1"),
            ("r1", "clean"),
        },
    ),
]


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4, 50])
def test_lineage_upstream(trail: datatrail.Trail, pipeline: dict[str, str], depth: int) -> None:
    nodes, edges = _graph(trail, "model", "upstream", depth, pipeline)
    assert (nodes, edges) == UP_MODEL[min(depth, 3)]


def test_lineage_downstream(trail: datatrail.Trail, pipeline: dict[str, str]) -> None:
    n1 = {"clean": 0, "r2": 1, "features": 1}
    e1 = {("clean", "r2"), ("r2", "features")}
    n2 = {**n1, "r3": 2, "model": 2, "report": 2}
    e2 = e1 | {("features", "r3"), ("r3", "model"), ("r3", "report")}
    n3 = {**n2, "r4": 3, "metrics": 3}
    e3 = e2 | {("model", "r4"), ("r4", "metrics")}
    assert _graph(trail, "clean", "downstream", 0, pipeline) == ({"clean": 0}, set())
    assert _graph(trail, "clean", "downstream", 1, pipeline) == (n1, e1)
    assert _graph(trail, "clean", "downstream", 2, pipeline) == (n2, e2)
    assert _graph(trail, "clean", "downstream", 3, pipeline) == (n3, e3)
    assert _graph(trail, "clean", "downstream", 10, pipeline) == (n3, e3)
    assert _graph(trail, "metrics", "downstream", 5, pipeline) == ({"metrics": 0}, set())
    assert _graph(trail, "raw", "upstream", 5, pipeline) == ({"raw": 0}, set())


def test_lineage_both(trail: datatrail.Trail, pipeline: dict[str, str]) -> None:
    nodes, edges = _graph(trail, "features", "both", 1, pipeline)
    assert nodes == {"features": 0, "r2": 1, "clean": 1, "ext": 1, "r3": 1, "model": 1, "report": 1}
    assert edges == {
        ("clean", "r2"),
        ("ext", "r2"),
        ("r2", "features"),
        ("features", "r3"),
        ("r3", "model"),
        ("r3", "report"),
    }
    nodes, edges = _graph(trail, "features", "both", 9, pipeline)
    assert set(nodes) == set(pipeline)
    assert nodes["raw"] == 2 and nodes["metrics"] == 2
    assert edges == {
        ("raw", "r1"),
        ("r1", "clean"),
        ("clean", "r2"),
        ("ext", "r2"),
        ("r2", "features"),
        ("features", "r3"),
        ("r3", "model"),
        ("r3", "report"),
        ("model", "r4"),
        ("r4", "metrics"),
    }


def test_lineage_graph_data(trail: datatrail.Trail, pipeline: dict[str, str]) -> None:
    g = trail.lineage("model@1", direction="upstream", depth=1)
    assert g.root == pipeline["model"]
    run = g.nodes[pipeline["r3"]]
    assert run.type == "run" and run.data["job"] == "train" and run.data["state"] == "COMPLETE"
    model = g.nodes[pipeline["model"]]
    assert model.type == "version" and model.data["kind"] == "model" and model.data["version"] == 1
    assert model.data["digest"] == f"sha256:{sha(b'm')}"
    js = g.to_json()
    assert {n["id"] for n in js["nodes"]} == set(g.nodes)
    assert {(e["source"], e["target"]) for e in js["edges"]} == set(g.edges)


@pytest.mark.parametrize(("direction", "depth"), [("sideways", 1), ("upstream", -1), ("upstream", 1001)])
def test_lineage_bad_options(trail: datatrail.Trail, workdir: Path, direction: Any, depth: int) -> None:
    trail.add(write(workdir / "a.csv", "a"), name="a")
    with pytest.raises(InvalidInput):
        trail.lineage("a", direction=direction, depth=depth)


# ---------------------------------------------------------------- audit and integrity


def test_every_write_appends_one_audit_entry(trail: datatrail.Trail, workdir: Path) -> None:
    log: list[tuple[str, int]] = []

    def step(label: str) -> None:
        log.append((label, audit_count(trail)))

    step("start")
    p = write(workdir / "raw.csv", "1")
    v = trail.add(p, name="raw")
    step("add")
    trail.add(p, name="raw")
    step("unchanged add")
    trail.tag("raw@1", "prod")
    step("tag")
    with trail.run("clean") as run:
        step("run start")
        run.input(v)
        step("input")
        run.output(write(workdir / "out.csv", "o"), name="out")
        step("output")
    step("complete")
    deltas = [(label, n - prev) for (label, n), (_, prev) in zip(log[1:], log, strict=False)]
    assert deltas == [
        ("add", 1),
        ("unchanged add", 0),
        ("tag", 1),
        ("run start", 1),
        ("input", 1),
        ("output", 1),
        ("complete", 1),
    ]
    entries = [e for e in trail._store.audit_log(100) if "event" in e.details]  # a server also audits reads
    if not isinstance(trail._store, HttpStore):
        assert [e.seq for e in entries] == [6, 5, 4, 3, 2, 1]
    assert [e.action for e in reversed(entries)] == [
        "dataset.add",
        "version.tag",
        "run.start",
        "run.running",
        "run.running",
        "run.complete",
    ]
    assert all(e.actor == trail.user and e.outcome == "allowed" for e in entries)
    assert entries[-1].target == "raw@1" and entries[-1].details["new"] == ["raw@1"]
    assert entries[-1].prev_hash == "0" * 64
    assert all(a.prev_hash == b.hash for a, b in itertools.pairwise(entries) if a.seq == b.seq + 1)
    c = counts(trail)
    assert c["audit"] == c["events"] == 6
    assert trail._store.check_integrity() == []  # type: ignore[attr-defined]


@pytest.mark.sql_store  # it tampers with the tables in SQL
def test_check_integrity_finds_a_tampered_audit_entry(trail: datatrail.Trail, workdir: Path) -> None:
    trail.add(write(workdir / "a.csv", "a"), name="a")
    trail.add(write(workdir / "b.csv", "b"), name="b")
    assert trail._store.check_integrity() == []  # type: ignore[attr-defined]
    engine = trail._store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(tables.audit.update().where(tables.audit.c.seq == 1).values(actor="mallory"))
    problems = trail._store.check_integrity()  # type: ignore[attr-defined]
    assert problems == ["audit entry 1 does not match the hash chain"]


def _bad_operations(trail: datatrail.Trail, workdir: Path) -> list[tuple[str, Any, type[Exception]]]:
    good = workdir / "raw.csv"
    outside = write(workdir.parent / "outside.txt", "secret")
    linkdir = workdir / "linked"
    linkdir.mkdir()
    (linkdir / "leak").symlink_to(outside)
    tabdir = workdir / "tabbed"
    write(tabdir / "a\tb.csv", "x")
    bad_event = build_dataset_event("default", "raw", VersionInfo(key="k"))
    bad_event["eventTime"] = "not a time"
    long_format = build_dataset_event("default", "raw", VersionInfo(key="k2", format="x" * 65))
    return [
        ("missing path", lambda: trail.add(workdir / "missing.csv"), NotFound),
        ("missing path, named", lambda: trail.add(workdir / "missing", name="m"), NotFound),
        ("name with @", lambda: trail.add(good, name="bad@name"), InvalidInput),
        ("empty name", lambda: trail.add(good, name=""), InvalidInput),
        ("bidi name", lambda: trail.add(good, name="evil\u202etxt"), InvalidInput),
        ("NUL name", lambda: trail.add(good, name="a\x00b"), InvalidInput),
        ("long name", lambda: trail.add(good, name="x" * 10_000), InvalidInput),
        ("empty namespace", lambda: trail.add(good, name="n", namespace=""), InvalidInput),
        ("tag latest", lambda: trail.add(good, name="n", tags=["latest"]), InvalidInput),
        ("outside root", lambda: trail.add(outside), InvalidInput),
        ("symlink out", lambda: trail.add(linkdir, name="l"), InvalidInput),
        ("tab in file name", lambda: trail.add(tabdir, name="t"), InvalidInput),
        ("tag unknown dataset", lambda: trail.tag("nope", "prod"), NotFound),
        ("tag unknown version", lambda: trail.tag("raw@9", "prod"), NotFound),
        ("tag bad ref", lambda: trail.tag("raw@0", "prod"), InvalidInput),
        ("tag as latest", lambda: trail.tag("raw@1", "latest"), InvalidInput),
        ("bad job name", lambda: trail.run("a/b"), InvalidInput),
        ("unknown run", lambda: trail.get_run(str(uuid.uuid4())), NotFound),
        ("lineage of unknown", lambda: trail.lineage("nope"), NotFound),
        ("bad event", lambda: trail._store.ingest(bad_event, "ann", "x"), InvalidInput),
        ("event not an object", lambda: trail._store.ingest([], "ann", "x"), InvalidInput),  # type: ignore[arg-type]
        # Too long for the format column: refused up front by every store, not by PostgreSQL alone.
        ("format too long", lambda: trail._store.ingest(long_format, "ann", "x"), InvalidInput),
    ]


def test_bad_input_leaves_the_store_unchanged(trail: datatrail.Trail, workdir: Path) -> None:
    trail.add(write(workdir / "raw.csv", "1"), name="raw", tags=["prod"])
    snapshot = counts(trail)
    assert snapshot["versions"] == 1 and snapshot["audit"] == 1
    for label, op, error in _bad_operations(trail, workdir):
        with pytest.raises(error) as info:
            op()
        assert type(info.value) is error or isinstance(info.value, error), label
        assert "\n" not in str(info.value), label
        assert counts(trail) == snapshot, label
    assert trail.get("raw@prod").number == 1
    assert trail._store.check_integrity() == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("interrupt", [RuntimeError("disk full"), KeyboardInterrupt()])
@pytest.mark.sql_store  # it injects a failure into the store's transaction; test_server.py covers 5xx
def test_ingest_is_one_transaction(
    trail: datatrail.Trail, workdir: Path, monkeypatch: pytest.MonkeyPatch, interrupt: BaseException
) -> None:
    trail.add(write(workdir / "a.csv", "a"), name="a")
    snapshot = counts(trail)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise interrupt

    # The audit entry is the last thing written: failing there must undo the rest.
    monkeypatch.setattr(trail._store._audit, "append", fail)  # type: ignore[attr-defined]
    with pytest.raises(type(interrupt)):
        trail.add(write(workdir / "dir" / "b.csv", "b"), name="b")
    with pytest.raises(type(interrupt)):
        trail.add(workdir / "a.csv", name="a", tags=["prod"])
    assert counts(trail) == snapshot
    monkeypatch.undo()
    v = trail.add(workdir / "dir", name="b")
    assert v.number == 1 and v.file_count == 1
    assert trail._store.check_integrity() == []  # type: ignore[attr-defined]
    assert counts(trail)["audit"] == snapshot["audit"] + 1


# ---------------------------------------------------------------- schema versions


def test_newer_store_is_refused(workdir: Path) -> None:
    t = datatrail.init(workdir)
    t.add(write(workdir / "a.csv", "a"), name="a")
    uri = t.location.uri
    t.close()
    store = SqlStore(uri)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    store.close()
    with pytest.raises(StoreVersionError, match="9999_future") as info:
        SqlStore(uri)
    message = str(info.value)
    assert "newer than this datatrail" in message and "upgrade datatrail" in message
    with pytest.raises(StoreVersionError):
        datatrail.connect()
    # Refusing touched nothing: the revision is still the newer one.
    import sqlite3

    path = uri.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999_future",)]
        assert db.execute("SELECT count(*) FROM versions").fetchone() == (1,)


def test_an_unversioned_source_gets_an_observed_version_in_lineage(trail: datatrail.Trail, workdir: Path) -> None:
    run_id = "0f6c5b6e-3d1a-4c2b-9a8e-1b2c3d4e5f60"
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-11-29T10:00:00+00:00",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": "etl", "name": "extract"},
        "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders"}],
        "outputs": [{"namespace": "s3://lake", "name": "staged/orders.parquet"}],
    }
    trail._store.ingest(event, "tester", "lineage.ingest")
    source = trail.get(datatrail.Ref("postgres://db:5432", "shop.public.orders"))
    assert source.number == 1 and source.key == "observed" and source.digest is None
    staged = trail.get(datatrail.Ref("s3://lake", "staged/orders.parquet"))
    graph = trail.lineage(staged, direction="upstream")
    assert ("version:postgres://db:5432:shop.public.orders@1", f"run:{run_id}") in graph.edges
    # A second read of the source attaches to the same version.
    trail._store.ingest({**event, "run": {"runId": run_id.replace("0f", "1f", 1)}}, "tester", "lineage.ingest")
    assert [v.number for v in trail._store.list_versions("postgres://db:5432", "shop.public.orders")] == [1]


def test_a_start_reading_what_is_not_written_yet_waits_for_the_writer(trail: datatrail.Trail) -> None:
    # dbt-ol's order: both models' STARTs, then their COMPLETEs; the reader's START names the writer's
    # output before the writer's COMPLETE arrives. It must not make an "observed" version of it.
    ns, db = "dbt", "duckdb://shop.duckdb"
    writer, reader = "0f6c5b6e-3d1a-4c2b-9a8e-1b2c3d4e5f61", "0f6c5b6e-3d1a-4c2b-9a8e-1b2c3d4e5f62"

    def event(kind: str, run_id: str, job: str, at: str, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
        return {
            "eventType": kind,
            "eventTime": f"2026-11-29T10:00:0{at}+00:00",
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run_id},
            "job": {"namespace": ns, "name": job},
            "inputs": [{"namespace": db, "name": n} for n in inputs],
            "outputs": [{"namespace": db, "name": n} for n in outputs],
        }

    for e in (
        event("START", writer, "stg_orders", "1", ["orders"], ["stg_orders"]),
        event("START", reader, "customer_totals", "3", ["stg_orders"], ["customer_totals"]),
        event("COMPLETE", writer, "stg_orders", "2", ["orders"], ["stg_orders"]),
        event("COMPLETE", reader, "customer_totals", "4", ["stg_orders"], ["customer_totals"]),
    ):
        trail._store.ingest(e, "tester", "lineage.ingest")
    staged = trail._store.list_versions(db, "stg_orders")
    assert [(v.number, v.key) for v in staged] == [(1, f"run:{writer}")]
    assert [(v.name, v.number) for v in trail.get_run(reader).inputs] == [("stg_orders", 1)]
    # A source nobody writes still gets its observed version, from the run's ending.
    assert [v.key for v in trail._store.list_versions(db, "orders")] == ["observed"]


def test_a_test_runs_assertions_on_what_it_read_are_stored_once(trail: datatrail.Trail) -> None:
    # `dbt-ol test`: the test job reads the model's table and reports dataQualityAssertions on it, the same
    # results in its START and COMPLETE; they are the checks of the version current when it ran.
    db, table = "duckdb://shop.duckdb", "shop.main.stg_orders"
    writer, tester = "0f6c5b6e-3d1a-4c2b-9a8e-1b2c3d4e5f63", "0f6c5b6e-3d1a-4c2b-9a8e-1b2c3d4e5f64"
    assertions = {
        "assertions": [
            {"assertion": "unique", "name": "unique_stg_orders_order_id", "column": "order_id", "success": True},
            {"assertion": "not_null", "column": "order_id", "success": False, "severity": "warn", "actual": "1"},
        ]
    }
    base = {
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    trail._store.ingest(
        {
            **base,
            "eventType": "COMPLETE",
            "eventTime": "2026-11-29T10:00:01+00:00",
            "run": {"runId": writer},
            "job": {"namespace": "dbt", "name": "stg_orders"},
            "outputs": [{"namespace": db, "name": table}],
        },
        "tester",
        "lineage.ingest",
    )
    for kind, at in (("START", "2"), ("COMPLETE", "3")):
        read = {"namespace": db, "name": table, "facets": {"dataQualityAssertions": assertions}}
        read["inputFacets"] = {"dataQualityAssertions": assertions}
        trail._store.ingest(
            {
                **base,
                "eventType": kind,
                "eventTime": f"2026-11-29T10:00:0{at}+00:00",
                "run": {"runId": tester},
                "job": {"namespace": "dbt", "name": "stg_orders.test"},
                "inputs": [read],
            },
            "tester",
            "lineage.ingest",
        )
    results = trail.check_results(datatrail.Ref(db, table))
    assert [(c.rule, c.column, c.success, c.severity) for c in results] == [
        ("unique", "order_id", True, "error"),
        ("not_null", "order_id", False, "warn"),
    ]
    assert [v.number for v in trail.get_run(tester).inputs] == [1]


# ---------------------------------------------------------------- content locations (issue 18, item 8)


def test_content_locations_are_recorded_read_and_refuse_credentials(trail: datatrail.Trail, workdir: Path) -> None:
    v1 = trail.add(write(workdir / "a.txt", "one"))
    v2 = trail.add(write(workdir / "a.txt", "two"))
    assert trail.catalog.content_locations(v1) == []
    assert trail.recorder.record_locations([v1, v2], "origin", "s3://bucket/datatrail") == 2
    first = trail.catalog.content_locations(v1)
    before = counts(trail)
    # Known under that name (a push that sent nothing new): nothing written, not even an audit entry.
    assert trail.recorder.record_locations([v1, v2], "origin", "s3://bucket/datatrail") == 0
    assert counts(trail) == before
    assert trail.catalog.content_locations(v1) == first  # who pushed it first, and when
    assert trail.recorder.record_locations([v1], "backup", "/srv/backup") == 1
    found = trail.catalog.content_locations("a.txt@1")
    assert {(loc.remote, loc.url) for loc in found} == {("origin", "s3://bucket/datatrail"), ("backup", "/srv/backup")}
    assert all(loc.ref == "a.txt@1" and loc.recorded_by == trail.user for loc in found)
    assert [(loc.remote, loc.url) for loc in trail.catalog.content_locations(v2)] == [
        ("origin", "s3://bucket/datatrail")
    ]
    entries = len(trail.audit_entries(action="content.locate"))
    assert trail.recorder.record_locations([v2], "renamed", "s3://bucket/datatrail") == 0  # a change: written
    assert [(loc.remote, loc.url) for loc in trail.catalog.content_locations(v2)] == [
        ("renamed", "s3://bucket/datatrail")
    ]
    assert len(trail.audit_entries(action="content.locate")) == entries + 1
    before = counts(trail)
    for remote, url, words in [
        ("origin", "s3://key:secretvalue@bucket/x", "credentials"),
        ("origin", "https://host/x?X-Amz-Signature=abcdef", "credentials"),
        ("no spaces", "s3://bucket/x", "invalid remote name"),
        ("origin", "", "invalid remote URL"),
    ]:
        with pytest.raises(InvalidInput, match=words):
            trail.recorder.record_locations([v1], remote, url)
    assert counts(trail) == before  # refused: nothing written, not even an audit entry


def test_content_locations_are_forgotten_for_one_url(trail: datatrail.Trail, workdir: Path) -> None:
    v1 = trail.add(write(workdir / "a.txt", "one"))
    v2 = trail.add(write(workdir / "a.txt", "two"))
    trail.recorder.record_locations([v1, v2], "origin", "s3://bucket/datatrail")
    trail.recorder.record_locations([v1], "backup", "/srv/backup")
    assert trail.recorder.forget_locations([v1], "s3://elsewhere") == 0  # nothing recorded there: no entry
    assert trail.audit_entries(action="content.forget") == []
    assert trail.recorder.forget_locations([v1, v2], "s3://bucket/datatrail") == 2
    assert [(loc.remote, loc.url) for loc in trail.catalog.content_locations(v1)] == [("backup", "/srv/backup")]
    assert trail.catalog.content_locations(v2) == []
    (entry,) = trail.audit_entries(action="content.forget")
    assert entry.details["forgotten"] == 2 and entry.details["url"] == "s3://bucket/datatrail"
    assert trail.recorder.forget_locations([v1, v2], "s3://bucket/datatrail") == 0  # already forgotten
