"""PostgreSQL's batched ingest (prefetch.py's lookups and reserved ids, deferred writes) stores what one event
at a time stores.

The reference is SQLite, one event per transaction (every statement answered at once, nothing looked up ahead);
the same events go to PostgreSQL one by one, in batches that split runs across transactions, and in one batch.
Every derived table is compared row by row, with surrogate ids replaced by the names they stand for, and the
audit chain must verify.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from datatrail.core.chain import verify_chain
from datatrail.core.errors import DatatrailError
from datatrail.core.times import stored_time
from datatrail.store.sql import tables as t
from datatrail.store.sql.store import SqlStore

pytestmark = pytest.mark.postgres

PRODUCER = "https://example.com/tests"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"{PRODUCER}#Facet", **fields}


def rid(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def event(
    state: str,
    minute: int,
    run: int,
    job: str,
    *,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    run_facets: dict[str, Any] | None = None,
    job_facets: dict[str, Any] | None = None,
    namespace: str = "shop",
) -> dict[str, Any]:
    return {
        "eventType": state,
        "eventTime": f"2026-05-01T10:{minute:02d}:00+00:00",
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": rid(run), "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": job_facets or {}},
        "inputs": inputs or [],
        "outputs": outputs or [],
    }


def ds(name: str, namespace: str = "shop", **facets: Any) -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "facets": facets}


FIELDS = [{"name": "id", "type": "BIGINT"}, {"name": "email", "type": "VARCHAR"}]


def events() -> list[dict[str, Any]]:
    """Runs split over batches, endings before starts, repeats, explicit versions, facets of every kind."""
    schema = facet(fields=FIELDS)
    nominal = facet(nominalStartTime="2026-05-01T10:00:00Z")
    lineage = facet(
        fields={"email": {"inputFields": [{"namespace": "shop", "name": "raw.users", "field": "email"}]}},
        dataset=[{"namespace": "shop", "name": "raw.users", "field": "id"}],
    )
    metrics = facet(rowCount=3, columnMetrics={"email": {"nullCount": 0, "distinctCount": 3, "min": "a@example.com"}})
    versioned = {
        "version": facet(datasetVersion="v1"),
        "schema": schema,
        "dataQualityMetrics": metrics,
        "columnLineage": facet(
            fields={"email": {"inputFields": [{"namespace": "shop", "name": "clean.users", "field": "email"}]}}
        ),
    }
    out: list[dict[str, Any]] = [
        event("START", 10, 1, "load", inputs=[ds("raw.users")], run_facets={"nominalTime": nominal}),
        event(
            "COMPLETE",
            12,
            1,
            "load",
            inputs=[ds("raw.users")],
            outputs=[
                ds(
                    "clean.users",
                    schema=schema,
                    columnLineage=lineage,
                    documentation=facet(description="users, cleaned"),
                    tags=facet(tags=[{"key": "pii", "value": "true", "source": "tests", "field": "email"}]),
                )
            ],
            run_facets={"nominalTime": nominal, "processing_engine": facet(name="spark", version="3.5.0")},
            job_facets={"sourceCodeLocation": facet(type="git", url="https://example.com/repo")},
        ),
        # An ending before its start; the start comes in a later batch.
        event("COMPLETE", 20, 2, "load", inputs=[ds("raw.users")], outputs=[ds("clean.users", schema=schema)]),
        event("START", 14, 3, "report", inputs=[ds("clean.users")], outputs=[ds("report")]),
        event(
            "COMPLETE",
            16,
            3,
            "report",
            inputs=[ds("clean.users", dataQualityMetrics=facet(rowCount=10, columnMetrics={}))],
            outputs=[ds("report", **versioned)],
            run_facets={"errorMessage": facet(message="warning only", programmingLanguage="python")},
        ),
        event("START", 18, 2, "load", inputs=[ds("raw.users")], run_facets={"nominalTime": nominal}),
        # The same version again from another run: filled in, never changed.
        event(
            "COMPLETE",
            19,
            4,
            "report",
            outputs=[
                ds(
                    "report",
                    version=facet(datasetVersion="v1"),
                    schema=facet(fields=FIELDS[:1]),
                    dataQualityMetrics=facet(rowCount=4, columnMetrics={"email": {"max": "z@example.com"}}),
                )
            ],
        ),
        event("COMPLETE", 21, 5, "read", inputs=[ds("report", version=facet(datasetVersion="v1"))]),
        # Earlier than everything before: creation times move back.
        event("START", 2, 6, "load", inputs=[ds("raw.users")], outputs=[ds("clean.users")]),
        event("COMPLETE", 3, 6, "load", inputs=[ds("raw.users")], outputs=[ds("clean.users")]),
        # A namespace and datasets the store has never seen, in the middle of a batch.
        event("COMPLETE", 25, 7, "copy", inputs=[ds("clean.users")], outputs=[ds("copy", namespace="fresh")]),
        event("COMPLETE", 26, 8, "copy", inputs=[ds("copy", namespace="fresh")], outputs=[ds("copy2", "fresh")]),
        event(
            "COMPLETE",
            27,
            9,
            "drop",
            outputs=[ds("copy2", "fresh", lifecycleStateChange=facet(lifecycleStateChange="DROP"))],
            job_facets={"jobType": facet(processingType="BATCH", integration="SPARK", jobType="JOB")},
        ),
    ]
    out.append(copy.deepcopy(out[3]))  # a client's retry
    out.append(
        event("RUNNING", 15, 3, "report", run_facets={"nominalTime": facet(nominalStartTime="2026-05-02T00:00Z")})
    )
    return out


def bad_deploy() -> dict[str, Any]:
    """Valid enough to write its namespace, job, run and versions, refused later by the deployment applier."""
    e = event("COMPLETE", 30, 99, "deploy", inputs=[ds("report")], outputs=[ds("never", namespace="gone")])
    e["run"]["facets"]["datatrail_deployment"] = facet(environment=7)
    return e


def _value(column: str, value: Any) -> Any:
    if isinstance(value, str) and column in {"facets", "schema", "stats", "profile", "properties", "params", "details"}:
        value = json.loads(value)
    if column.endswith("_at") or column in {"state_time", "start_hint", "event_time", "facets_time", "time"}:
        return stored_time(value)
    return value


def derived(uri: str) -> dict[str, list[Any]]:
    """Every derived table's rows, surrogate ids replaced by what they name, sorted."""
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            rows = {name: [dict(r._mapping) for r in conn.execute(select(table))] for name, table in _TABLES.items()}
    finally:
        engine.dispose()
    ns = {r["id"]: r["name"] for r in rows["namespaces"]}
    dsets = {r["id"]: (ns[r["namespace_id"]], r["name"]) for r in rows["datasets"]}
    jobs = {r["id"]: (ns[r["namespace_id"]], r["name"]) for r in rows["jobs"]}
    runs = {r["pk"]: r["run_id"] for r in rows["runs"]}
    versions = {r["id"]: (*dsets[r["dataset_id"]], r["number"]) for r in rows["versions"]}
    events = {r["id"]: r["event_hash"] for r in rows["events"]}
    names: dict[str, Any] = {
        "namespace_id": ns,
        "dataset_id": dsets,
        "job_id": jobs,
        "run_pk": runs,
        "version_id": versions,
        "output_version_id": versions,
        "input_version_id": versions,
        "event_id": events,
    }
    dropped = {"id", "pk", "received_at", "hash", "prev_hash", "time"}
    out = {}
    for name, table_rows in rows.items():
        cleaned = []
        for r in table_rows:
            cleaned.append(
                {
                    k: (names[k].get(v, v) if k in names and v is not None else _value(k, v))
                    for k, v in r.items()
                    if k not in dropped
                }
            )
        out[name] = sorted(cleaned, key=repr)
    return out


_TABLES = {
    name: getattr(t, name)
    for name in (
        "namespaces",
        "datasets",
        "jobs",
        "runs",
        "versions",
        "run_io",
        "planned_outputs",
        "column_edges",
        "classifications",
        "aliases",
        "check_results",
        "events",
        "audit",
    )
}


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'one.db'}"


@pytest.fixture
def open_store() -> Iterator[Any]:
    opened: list[SqlStore] = []

    def make(uri: str) -> SqlStore:
        opened.append(SqlStore(uri, create=True))
        return opened[-1]

    try:
        yield make
    finally:
        for s in opened:
            s.close()


def one_at_a_time(store: SqlStore, items: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for e in items:
        try:
            out.append(store.ingest(e, "ada", "lineage.ingest", detail=False))
        except DatatrailError as exc:
            out.append(exc)
    return out


def in_batches(store: SqlStore, items: list[dict[str, Any]], size: int) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(items), size):
        out.extend(store.ingest_many(items[i : i + size], "ada", "lineage.ingest"))
    return out


def outcome(results: list[Any]) -> list[Any]:
    return [type(r).__name__ if isinstance(r, Exception) else (r.duplicate, r.run_id) for r in results]


def chain_ok(store: SqlStore) -> bool:
    return verify_chain(store.audit_rows()[1]).ok and store.check_integrity() == []


@pytest.mark.parametrize("size", [1, 4, 100])
def test_a_postgresql_batch_stores_what_one_event_at_a_time_stores(
    size: int, sqlite_uri: str, pg_uri: str, open_store: Any
) -> None:
    items = events()
    reference = open_store(sqlite_uri)
    expected = outcome(one_at_a_time(reference, items))
    batched = open_store(pg_uri)
    got = outcome(in_batches(batched, items, size))
    assert got == expected
    assert chain_ok(reference) and chain_ok(batched)
    want, have = derived(sqlite_uri), derived(pg_uri)
    for table in _TABLES:
        assert have[table] == want[table], table
    # The batch wrote what the events carry (not only what a store that drops everything would agree on).
    assert {r["run_id"] for r in have["runs"]} == {rid(n) for n in range(1, 10)}
    assert len(have["versions"]) >= 6 and any(r["schema"] for r in have["versions"])
    assert any(r["facets"] and "nominalTime" in r["facets"] for r in have["runs"])
    assert have["classifications"] and have["column_edges"]
    (report,) = [r for r in have["versions"] if r["dataset_id"] == ("shop", "report")]
    assert report["schema"] == FIELDS and report["stats"]["dataQualityMetrics"]["rowCount"] == 3
    assert "a@example.com" not in json.dumps(report["stats"])  # redacted: email is classified upstream


def test_a_refused_event_in_a_postgresql_batch_leaves_the_others_as_one_at_a_time(
    sqlite_uri: str, pg_uri: str, open_store: Any
) -> None:
    items = events()
    items.insert(5, bad_deploy())
    reference = open_store(sqlite_uri)
    expected = outcome(one_at_a_time(reference, items))
    assert expected[5] == "InvalidInput"
    batched = open_store(pg_uri)
    assert outcome(batched.ingest_many(items, "ada", "lineage.ingest")) == expected
    assert chain_ok(batched)
    want, have = derived(sqlite_uri), derived(pg_uri)
    for table in _TABLES:
        assert have[table] == want[table], table
    assert ("gone", "never") not in {(r["namespace_id"], r["name"]) for r in have["datasets"]}


def test_batches_after_batches_continue_version_numbers_and_runs(pg_uri: str, open_store: Any) -> None:
    # Later transactions find what earlier ones wrote with reserved ids (ids and numbers from the database).
    store = open_store(pg_uri)
    schema = facet(fields=FIELDS)
    for minute in range(3):
        batch = [
            event("START", minute * 2, 100 + minute, "daily", outputs=[ds("daily")]),
            event("COMPLETE", minute * 2 + 1, 100 + minute, "daily", outputs=[ds("daily", schema=schema)]),
        ]
        assert not any(isinstance(r, Exception) for r in store.ingest_many(batch, "ada", "lineage.ingest"))
    assert [v.number for v in store.list_versions("shop", "daily")] == [1, 2, 3]
    assert store.get_run(rid(102)).state.value == "COMPLETE"
    single = store.ingest(event("COMPLETE", 9, 103, "daily", outputs=[ds("daily")]), "ada", "lineage.ingest")
    assert [(v.name, v.number) for v, new in single.versions] == [("daily", 4)]
    assert chain_ok(store)
