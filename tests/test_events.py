"""OpenLineage events: building (against the official schema), parsing, and order-independent ingest."""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from datatrail.core.changes import VersionInfo, event_hash
from datatrail.core.errors import InvalidInput
from datatrail.core.model import Digest, EventType, FileEntry, Ref, RunState
from datatrail.events import build_alias_event, build_dataset_event, build_run_event, parse_event
from datatrail.store.sql.store import SqlStore
from tests.conformance import openlineage_spec

RUN_ID = "3f1c2a9e-0b7d-4d4e-9a51-6c2f8e7b1a10"
PARENT_ID = "0c6b7f52-3a1e-4e55-8f8c-2b9d0c1e4f77"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the official schema


def _format_checker() -> FormatChecker:
    checker = FormatChecker()  # uuid (and others) built in

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return "T" in value and parsed.tzinfo is not None

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        u = urlparse(value)
        return bool(u.scheme) and bool(u.netloc) and " " not in value

    return checker


@cache
def _registry_and_facets() -> tuple[Registry, dict[str, str]]:
    """The core schema and every standard facet schema, and the facet key each file defines."""
    spec = openlineage_spec()
    core = json.loads((spec / "OpenLineage.json").read_text())
    registry: Registry = Registry().with_resource(core["$id"], Resource.from_contents(core))
    facet_ids: dict[str, str] = {}
    for path in sorted((spec / "facets").glob("*.json")):
        schema = json.loads(path.read_text())
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
        for key in schema.get("properties", {}):
            facet_ids[key] = schema["$id"]
    return registry, facet_ids


def validate_event(event: dict[str, Any]) -> int:
    """Validate against OpenLineage 2-0-2, and each standard facet against its own schema; facets checked."""
    registry, facet_ids = _registry_and_facets()
    core_id = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
    Draft202012Validator({"$ref": core_id}, registry=registry, format_checker=_format_checker()).validate(event)
    groups: list[dict[str, Any]] = []
    if "run" in event:
        groups += [event["run"].get("facets", {}), event["job"].get("facets", {})]
        groups += [d.get("facets", {}) for d in event.get("inputs", []) + event.get("outputs", [])]
    if "dataset" in event:
        groups.append(event["dataset"].get("facets", {}))
    checked = 0
    for facets in groups:
        for key, facet in facets.items():
            if key in facet_ids:
                Draft202012Validator(
                    {"$ref": facet_ids[key]}, registry=registry, format_checker=_format_checker()
                ).validate({key: facet})
                checked += 1
            else:
                assert key.startswith("datatrail_"), f"unknown non-datatrail facet {key!r}"
    return checked


def test_schema_validator_is_strict() -> None:
    # The validator must reject what the spec rejects, or the tests below prove nothing.
    good = build_run_event(EventType.START, RUN_ID, "default", "clean")
    validate_event(good)
    for mutate in (
        lambda e: e.pop("eventTime"),
        lambda e: e.update(eventType="DONE"),
        lambda e: e["run"].update(runId="not-a-uuid"),
        lambda e: e.update(eventTime="yesterday"),
        lambda e: e.update(producer="not a uri"),
        lambda e: e["job"].pop("name"),
        lambda e: e["run"]["facets"].update(x={"_producer": "https://x"}),  # no _schemaURL
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(Exception, match=r"."):
            validate_event(bad)


def _files() -> tuple[FileEntry, ...]:
    return tuple(FileEntry(f"part-{i}.csv", i * 10, Digest.sha256(sha(str(i).encode()))) for i in range(3))


def _dir_info(key_suffix: str = "") -> VersionInfo:
    files = _files()
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.path}\t{f.size}\t{f.digest.hex}\n".encode())
    digest = Digest.sha256(h.hexdigest())
    return VersionInfo(
        key=str(digest),
        digest=digest,
        size=sum(f.size for f in files),
        uri="file:///data/parts" + key_suffix,
        format="csv",
        files=files,
        created_by="ann",
        host="box",
        message="first cut",
        properties={"k": [1, 2]},
    )


def _file_info(content: bytes, uri: str = "file:///data/raw.csv") -> VersionInfo:
    digest = Digest.sha256(sha(content))
    return VersionInfo(
        key=str(digest), digest=digest, size=len(content), uri=uri, format="csv", created_by="ann", host="box"
    )


def test_dataset_event_validates() -> None:
    assert validate_event(build_dataset_event("default", "raw/penguins.csv", _file_info(b"a,b\n"))) == 1
    validate_event(build_dataset_event("s3://bucket", "parts", _dir_info(), aliases=("production", "candidate")))
    validate_event(build_alias_event("default", "raw", "sha256:" + "ab" * 32, "production"))


@pytest.mark.parametrize("state", [e for e in EventType if e is not EventType.OTHER])
def test_run_event_validates(state: EventType) -> None:
    event = build_run_event(
        state,
        RUN_ID,
        "team-x",
        "train",
        run_facts={"user": "ann", "host": "box", "params": {"lr": 0.1, "layers": [1, 2]}, "code": {"commit": "abc"}},
        inputs=[("default", "raw", "sha256:" + "ab" * 32), ("s3://bucket", "ext", "v7")],
        outputs=[("default", "model", _file_info(b"weights")), ("default", "parts", _dir_info())],
        metrics={"loss": [(0, 0.5), (1, 0.25)], "acc": [(0, 1)]},
        error="ValueError: boom" if state is EventType.FAIL else None,
        parent=(PARENT_ID, "default", "pipeline"),
        job_type="train",
    )
    # version facets of 2 inputs and 2 outputs, errorMessage, parent, jobType
    assert validate_event(event) == 4 + (state is EventType.FAIL) + 2
    assert event["eventType"] == state.value
    assert set(event["run"]["facets"]) >= {"datatrail_run", "datatrail_metrics", "parent"}
    assert "jobType" in event["job"]["facets"]


def test_minimal_run_event_validates() -> None:
    validate_event(build_run_event(RunState.COMPLETE, RUN_ID, "default", "j"))


# ---------------------------------------------------------------- parsing


def test_parse_round_trips_what_build_makes() -> None:
    info = _dir_info()
    event = build_run_event(
        RunState.COMPLETE,
        RUN_ID.upper(),
        "team-x",
        "train",
        run_facts={"user": "ann", "params": {"lr": 0.1}},
        inputs=[("default", "raw", "v1")],
        outputs=[("default", "parts", info)],
        metrics={"loss": [(0, 0.5), (1, 0.25)]},
        parent=(PARENT_ID, "default", "pipeline"),
        job_type="train",
    )
    ch = parse_event(event, "bob")
    assert ch.event_type == "COMPLETE" and ch.actor == "bob"
    assert ch.run is not None
    assert ch.run.run_id == RUN_ID  # normalised to lowercase
    assert (ch.run.namespace, ch.run.job, ch.run.job_type) == ("team-x", "train", "train")
    assert ch.run.params == {"lr": 0.1} and ch.run.user == "ann"
    assert ch.run.metrics == {"loss": [(0, 0.5), (1, 0.25)]}
    assert ch.run.parent_run_id == PARENT_ID
    inp, out = ch.datasets
    assert (inp.role, inp.name, inp.version) == ("input", "raw", VersionInfo(key="v1"))
    assert out.role == "output" and out.version == info


def test_event_time_is_normalised_to_utc() -> None:
    event = build_dataset_event("default", "raw", _file_info(b"x"))
    event["eventTime"] = "2024-05-01T12:00:00+02:00"
    t = parse_event(event, "ann").event_time
    assert t == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert t.utcoffset() == timedelta(0)
    event["eventTime"] = "2024-05-01T10:00:00Z"
    assert parse_event(event, "ann").event_time == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    event["eventTime"] = "2024-05-01T10:00:00"  # naive: taken as UTC
    assert parse_event(event, "ann").event_time == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def _good_run() -> dict[str, Any]:
    return build_run_event(
        RunState.RUNNING,
        RUN_ID,
        "default",
        "clean",
        run_facts={"params": {"a": 1}},
        outputs=[("default", "parts", _dir_info())],
        metrics={"m": [(0, 1.0)]},
    )


def _manifest(e: dict[str, Any]) -> dict[str, Any]:
    return e["outputs"][0]["facets"]["datatrail_manifest"]  # type: ignore[no-any-return]


def _dt(e: dict[str, Any]) -> dict[str, Any]:
    return e["outputs"][0]["facets"]["datatrail_version"]  # type: ignore[no-any-return]


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


BAD_EVENTS: list[tuple[str, Any, str]] = [
    ("not an object", lambda e: ["an", "array"], "the event must be an object"),
    ("missing eventTime", lambda e: e.pop("eventTime"), "eventTime must be an ISO 8601"),
    ("eventTime not a string", lambda e: e.update(eventTime=1714557600), "eventTime must be an ISO 8601"),
    ("eventTime garbage", lambda e: e.update(eventTime="last tuesday"), "is not an ISO 8601"),
    ("runId not a UUID", lambda e: e["run"].update(runId="run-42"), "is not a UUID"),
    ("runId missing", lambda e: e["run"].pop("runId"), "is not a UUID"),
    ("runId a number", lambda e: e["run"].update(runId=42), "is not a UUID"),
    ("unknown eventType", lambda e: e.update(eventType="FINISHED"), "eventType 'FINISHED'"),
    ("eventType lowercase", lambda e: e.update(eventType="complete"), "eventType 'complete'"),
    ("eventType a number", lambda e: e.update(eventType=3), "eventType 3"),
    ("run not an object", lambda e: e.update(run="abc"), "run must be an object"),
    ("job missing", lambda e: e.pop("job"), "job must be an object"),
    ("job without name", lambda e: e["job"].pop("name"), "job needs string 'namespace' and 'name'"),
    ("job name empty", lambda e: e["job"].update(name=""), "job needs"),
    ("job name with NUL", lambda e: e["job"].update(name="a\x00b"), "U+0000"),
    ("run facets a string", lambda e: e["run"].update(facets="x"), "run.facets must be an object"),
    ("run facets a list", lambda e: e["run"].update(facets=[]), "run.facets must be an object"),
    ("run facets a number", lambda e: e["run"].update(facets=0), "run.facets must be an object"),
    ("job facets a list", lambda e: e["job"].update(facets=[]), "job.facets must be an object"),
    ("dataset facets a list", lambda e: e["outputs"][0].update(facets=[]), "outputs[0].facets must be an object"),
    ("dataset facets a string", lambda e: e["outputs"][0].update(facets="v"), "outputs[0].facets must be an object"),
    ("inputs not a list", lambda e: e.update(inputs={}), "inputs must be an array"),
    ("outputs not a list", lambda e: e.update(outputs="x"), "outputs must be an array"),
    ("input not an object", lambda e: e.update(inputs=["raw"]), "inputs[0] must be an object"),
    ("dataset without name", lambda e: e["outputs"][0].pop("name"), "needs string 'namespace' and 'name'"),
    (
        "version facet without datasetVersion",
        lambda e: e["outputs"][0]["facets"]["version"].pop("datasetVersion"),
        "datasetVersion must be a non-empty string",
    ),
    (
        "bad digest",
        lambda e: e["outputs"][0]["facets"]["datatrail_version"].update(digest="sha256:XYZ"),
        "invalid digest",
    ),
    ("manifest files not a list", lambda e: _manifest(e).update(files="a.csv"), "datatrail_manifest.files"),
    ("manifest entry too short", lambda e: _manifest(e)["files"].append(["x.csv", 1]), "datatrail_manifest.files"),
    ("manifest size not a number", lambda e: _manifest(e)["files"][0].__setitem__(1, "ten"), "datatrail_manifest"),
    ("manifest size negative", lambda e: _manifest(e)["files"][0].__setitem__(1, -1), "datatrail_manifest"),
    ("manifest hash not hex", lambda e: _manifest(e)["files"][0].__setitem__(2, "zz" * 32), "datatrail_manifest"),
    ("manifest hash short", lambda e: _manifest(e)["files"][0].__setitem__(2, "ab"), "datatrail_manifest"),
    ("manifest path not a string", lambda e: _manifest(e)["files"][0].__setitem__(0, 7), "datatrail_manifest"),
    (
        "manifest duplicate path",
        lambda e: _manifest(e)["files"].append(list(_manifest(e)["files"][0])),
        "datatrail_manifest",
    ),
    (
        "manifest does not match digest",
        lambda e: _manifest(e)["files"][0].__setitem__(2, "0" * 64),
        "does not match",
    ),
    ("metrics not an object", lambda e: e["run"]["facets"]["datatrail_metrics"].update(metrics=[1]), "metrics"),
    (
        "metric series malformed",
        lambda e: e["run"]["facets"]["datatrail_metrics"].update(metrics={"m": [["x", 1]]}),
        "metrics",
    ),
    ("metric series not a list", lambda e: e["run"]["facets"]["datatrail_metrics"].update(metrics={"m": 5}), "metrics"),
    ("bad alias", lambda e: e["outputs"][0]["facets"].update(datatrail_alias={"aliases": ["a/b"]}), "invalid alias"),
    # A string is not a list of one-letter aliases.
    ("aliases a string", lambda e: e["outputs"][0]["facets"].update(datatrail_alias={"aliases": "prod"}), "array"),
    ("size not a number", lambda e: _dt(e).update(size="10"), "size must be a whole number"),
    ("size negative", lambda e: _dt(e).update(size=-1), "size must be a whole number"),
    ("uri not a string", lambda e: _dt(e).update(uri={"path": "/x"}), "uri must be a string"),
    # Column limits hold on PostgreSQL; the same event must be refused by every store.
    ("format too long", lambda e: _dt(e).update(format="x" * 65), "format must be a string of at most 64"),
    ("kind too long", lambda e: _dt(e).update(kind="x" * 33), "kind must be a string of at most 32"),
    ("properties not an object", lambda e: _dt(e).update(properties=[1]), "properties must be an object"),
    (
        "jobType too long",
        lambda e: e["job"]["facets"].update(jobType={"jobType": "x" * 65}),
        "jobType must be a string of at most 64",
    ),
    (
        "parent runId not a UUID",
        lambda e: e["run"]["facets"].update(parent={"run": {"runId": "p"}, "job": {"namespace": "a", "name": "b"}}),
        "parent.run.runId 'p' is not a UUID",
    ),
    ("params not an object", lambda e: e["run"]["facets"]["datatrail_run"].update(params=[1]), "params must be"),
    # 65 levels: the event (1), run (2), facets (3), then 62 more.
    ("nested too deeply", lambda e: e["run"]["facets"].update(deep=_nested(62)), "run.facets.deep.a.… nests deeper"),
    # Without a run it would be a JobEvent; without a job too it is nothing.
    ("neither run, dataset nor job", lambda e: (e.pop("run"), e.pop("job")), "neither 'run'"),
]


@pytest.mark.parametrize(("mutate", "message"), [b[1:] for b in BAD_EVENTS], ids=[b[0] for b in BAD_EVENTS])
def test_parse_event_rejects(mutate: Any, message: str) -> None:
    event = _good_run()
    parse_event(copy.deepcopy(event), "ann")  # the unmutated event is fine
    replaced = mutate(event)
    if isinstance(replaced, list):
        event = replaced  # type: ignore[assignment]
    with pytest.raises(InvalidInput, match="invalid") as info:
        parse_event(event, "ann")
    assert message in str(info.value)


def test_events_nest_at_most_64_levels_and_a_deeper_one_is_refused_in_one_line() -> None:
    event = _good_run()
    event["run"]["facets"]["deep"] = _nested(61)  # 64 levels in all
    parse_event(event, "ann")
    del event["run"]["facets"]["deep"]
    event["run"]["facets"]["fake\nline"] = _nested(900)  # as a producer did: 903 levels
    with pytest.raises(InvalidInput) as info:
        parse_event(event, "ann")
    message = info.value.message
    assert message.startswith("invalid event: run.facets.'fake\\nline'.a.… nests deeper than 64 levels")
    assert "\n" not in message


def test_parse_event_accepts_other_as_running_and_missing_facets() -> None:
    event = {
        "eventType": "OTHER",
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": "https://example.com/p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": RUN_ID},
        "job": {"namespace": "airflow", "name": "dag.task"},
        "inputs": [{"namespace": "postgres://db:5432", "name": "public.orders"}],
    }
    ch = parse_event(event, "ann")
    assert ch.run is not None and ch.run.state is RunState.RUNNING
    assert ch.datasets[0].version is None


# ---------------------------------------------------------------- ingest order independence

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
ACTOR = "ann"
RAW = _file_info(b"a,b\n1,2\n")


def _at(event: dict[str, Any], minutes: int) -> dict[str, Any]:
    event["eventTime"] = (T0 + timedelta(minutes=minutes)).isoformat()
    return event


@cache
def _events() -> tuple[str, ...]:
    """The events of one run, as JSON (so each example gets fresh copies)."""
    facts = {"user": ACTOR, "host": "box", "command": "python clean.py", "params": {"dropna": True, "k": 3}}
    evs = [
        # The input dataset registered by `datatrail add` (a DatasetEvent).
        _at(build_dataset_event("default", "raw", RAW), 0),
        _at(build_run_event(EventType.START, RUN_ID, "default", "clean", run_facts=facts, job_type="transform"), 1),
        _at(
            build_run_event(RunState.RUNNING, RUN_ID, "default", "clean", inputs=[("default", "raw", RAW.key)]),
            2,
        ),
        _at(
            build_run_event(RunState.RUNNING, RUN_ID, "default", "clean", outputs=[("default", "parts", _dir_info())]),
            3,
        ),
        _at(
            build_run_event(
                RunState.RUNNING,
                RUN_ID,
                "default",
                "clean",
                outputs=[("default", "model", _file_info(b"w", "file:///m.bin"))],
            ),
            4,
        ),
        _at(
            build_run_event(
                RunState.COMPLETE,
                RUN_ID,
                "default",
                "clean",
                run_facts={"params": {"dropna": True, "k": 3}},
                metrics={"rows": [(0, 333)], "loss": [(0, 0.5), (1, 0.25)]},
                job_type="transform",
            ),
            5,
        ),
    ]
    return tuple(json.dumps(e) for e in evs)


def _state(store: SqlStore) -> dict[str, Any]:
    run = store.get_run(RUN_ID).to_dict()
    versions = {name: [v.to_dict() for v in store.list_versions("default", name)] for name in ("raw", "parts", "model")}
    manifest = [(f.path, f.size, str(f.digest)) for f in store.manifest(store.resolve(Ref("default", "parts")))]
    lineage = store.lineage([store.resolve(Ref("default", "parts"))], "upstream", 5)
    return {
        "run": run,
        "versions": versions,
        "datasets": [d.to_dict() for d in store.list_datasets()],
        "manifest": manifest,
        "lineage": (sorted(lineage.nodes), lineage.edges),
        "audit": len(store.audit_log(1000)),
        "events": _count_events(store),
    }


def _count_events(store: SqlStore) -> int:
    from sqlalchemy import func, select

    from datatrail.store.sql import tables

    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.events)).scalar_one())


@cache
def _reference_state() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{tmp}/x.db", create=True)
        try:
            for e in _events():
                assert not store.ingest(json.loads(e), ACTOR, "test").duplicate
            return json.dumps(_state(store), sort_keys=True, default=str)
        finally:
            store.close()


def test_reference_state_is_what_the_events_say() -> None:
    state = json.loads(_reference_state())
    run = state["run"]
    assert run["state"] == "COMPLETE"
    assert run["started_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert run["ended_at"] == (T0 + timedelta(minutes=5)).isoformat()
    assert run["params"] == {"dropna": True, "k": 3}
    assert run["metrics"] == {"rows": 333, "loss": 0.25}
    assert run["user"] == ACTOR and run["command"] == "python clean.py"
    assert [v["ref"] for v in run["inputs"]] == ["raw@1"]
    assert [v["ref"] for v in run["outputs"]] == ["model@1", "parts@1"]
    raw = state["versions"]["raw"][0]
    assert (raw["size"], raw["uri"], raw["format"], raw["created_by"]) == (8, RAW.uri, "csv", "ann")
    assert raw["created_at"] == T0.isoformat()
    assert state["versions"]["parts"][0]["file_count"] == 3
    assert len(state["manifest"]) == 3
    assert state["events"] == state["audit"] == 6


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_ingest_order_and_repeats_do_not_matter(data: st.DataObject) -> None:
    events = list(_events())
    dups = data.draw(st.lists(st.sampled_from(events), max_size=4), label="duplicates")
    order = data.draw(st.permutations(events + dups), label="order")
    seen: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{tmp}/x.db", create=True)
        try:
            finished = False
            for text in order:
                result = store.ingest(json.loads(text), ACTOR, "test")
                assert result.duplicate == (text in seen)
                seen.add(text)
                if '"eventType"' in text:
                    state = store.get_run(RUN_ID).state
                    # A finished run never returns to RUNNING (or START).
                    if finished:
                        assert state is RunState.COMPLETE
                    finished = state.finished
            assert json.dumps(_state(store), sort_keys=True, default=str) == _reference_state()
            assert store.check_integrity() == []
        finally:
            store.close()


def test_duplicate_event_is_stored_once(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/x.db", create=True)
    try:
        event = build_dataset_event("default", "raw", RAW)
        first = store.ingest(copy.deepcopy(event), ACTOR, "dataset.add")
        assert not first.duplicate and first.versions[0][1]
        # Same content, keys in another order: still the same event.
        shuffled = json.loads(json.dumps(event, sort_keys=True))
        again = store.ingest(shuffled, ACTOR, "dataset.add")
        assert again.duplicate and again.event_id == first.event_id and again.versions == ()
        assert len(store.audit_log()) == 1
        assert [v.number for v in store.list_versions("default", "raw")] == [1]
        # The same version in a *different* event is a new event but no new version.
        later = _at(build_dataset_event("default", "raw", RAW), 30)
        third = store.ingest(later, ACTOR, "dataset.add")
        assert not third.duplicate and third.versions[0][1] is False
        assert third.versions[0][0].number == 1
        assert event_hash(event) != event_hash(later)
    finally:
        store.close()


def test_later_failure_wins_over_complete_but_running_never_reopens(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/x.db", create=True)
    try:
        run_id = str(uuid.uuid4())
        complete = _at(build_run_event(RunState.COMPLETE, run_id, "default", "j"), 5)
        running = _at(build_run_event(RunState.RUNNING, run_id, "default", "j"), 9)
        fail = _at(build_run_event(RunState.FAIL, run_id, "default", "j", error="late failure"), 7)
        store.ingest(complete, ACTOR, "t")
        store.ingest(running, ACTOR, "t")
        run = store.get_run(run_id)
        assert run.state is RunState.COMPLETE
        assert run.ended_at == T0 + timedelta(minutes=5)
        store.ingest(fail, ACTOR, "t")
        run = store.get_run(run_id)
        assert (run.state, run.error) == (RunState.FAIL, "late failure")
        assert run.ended_at == T0 + timedelta(minutes=7)
        assert run.started_at == T0 + timedelta(minutes=5)
    finally:
        store.close()


def test_event_times_with_offsets_compare_as_instants(tmp_path: Path) -> None:
    # 11:00+02:00 is before 10:00Z: the START is earlier though its wall clock reads later.
    store = SqlStore(f"sqlite:///{tmp_path}/x.db", create=True)
    try:
        run_id = str(uuid.uuid4())
        start = build_run_event(EventType.START, run_id, "default", "j")
        start["eventTime"] = "2024-05-01T11:00:00+02:00"
        end = build_run_event(RunState.COMPLETE, run_id, "default", "j")
        end["eventTime"] = "2024-05-01T10:00:00+00:00"
        store.ingest(end, ACTOR, "t")
        store.ingest(start, ACTOR, "t")
        run = store.get_run(run_id)
        assert run.started_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        assert run.ended_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
        assert run.state is RunState.COMPLETE
    finally:
        store.close()
