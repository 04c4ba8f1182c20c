"""Each namespace's counts of listed datasets and of jobs (revision 0010), kept by ingest: always the rows'
own count, whatever adds, hides, shows or renames a dataset, on every SQL store; fsck says when they differ."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

import datatrail
from datatrail.core.errors import DatatrailError
from tests.migrate import upgrade

PRODUCER = "https://example.com/tests"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
COUNTED = "SELECT name, dataset_count, job_count FROM namespaces"
REAL = (
    "SELECT n.name,"
    " (SELECT count(*) FROM datasets d WHERE d.namespace_id = n.id AND d.deleted_at IS NULL),"
    " (SELECT count(*) FROM jobs j WHERE j.namespace_id = n.id) FROM namespaces n"
)


def output(namespace: str, name: str, version: str, life: dict[str, Any] | None = None) -> dict[str, Any]:
    facets: dict[str, Any] = {"version": {"_producer": PRODUCER, "_schemaURL": SCHEMA, "datasetVersion": version}}
    if life is not None:
        facets["lifecycleStateChange"] = {"_producer": PRODUCER, "_schemaURL": SCHEMA, **life}
    return {"namespace": namespace, "name": name, "facets": facets}


def event(job: str, outputs: list[dict[str, Any]], time: str, namespace: str = "etl") -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": time,
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
        "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{job}/{time}"))},
        "job": {"namespace": namespace, "name": job},
        "inputs": [],
        "outputs": outputs,
    }


def life(namespace: str, name: str, state: str, version: str, time: str, **more: Any) -> dict[str, Any]:
    return event(f"ddl-{name}", [output(namespace, name, version, {"lifecycleStateChange": state, **more})], time)


@pytest.fixture
def engine(trail: datatrail.Trail) -> Iterator[Engine]:
    """The trail's own database, read beside it."""
    found = create_engine(trail.location.uri.replace("postgresql://", "postgresql+psycopg://"))
    try:
        yield found
    finally:
        found.dispose()


def _counts(engine: Engine, query: str) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        return {r[0]: (int(r[1]), int(r[2])) for r in conn.execute(text(query))}


def assert_counted(trail: datatrail.Trail, engine: Engine) -> dict[str, tuple[int, int]]:
    """The counters are the rows' counts, the pages are slices of the listings (hidden datasets skipped by
    offsets too) and their totals the listings' lengths, fsck is content."""
    counted = _counts(engine, COUNTED)
    assert counted == _counts(engine, REAL)
    for namespace in counted:
        listed = trail.datasets(namespace)
        for offset in (0, 1, 2, len(listed)):
            assert trail.catalog.dataset_page(namespace, limit=2, offset=offset) == (
                listed[offset : offset + 2],
                len(listed),
            )
        assert trail.catalog.job_page(namespace, limit=1)[1] == len(trail.jobs(namespace))
    assert trail.check_store() == []
    return counted


def test_counts_follow_adds_drops_renames_and_refusals(trail: datatrail.Trail, engine: Engine) -> None:
    a, b = "warehouse://a", "warehouse://b"
    day = "2026-01-0{}T00:00:00Z".format
    trail.ingest_many(
        [
            event("load", [output(a, f"t{i}", "1") for i in range(3)], day(1)),
            event("load", [output(b, "u0", "1"), output(b, "u1", "1")], day(1), namespace="etl2"),
            event("copy", [output(a, "t0", "2")], day(2)),  # no new dataset, a new job
        ]
    )
    assert assert_counted(trail, engine) == {a: (3, 0), b: (2, 0), "etl": (0, 2), "etl2": (0, 1)}

    trail.ingest(life(a, "t1", "DROP", "1", day(3)))
    trail.ingest(life(a, "t1", "DROP", "1", day(3)))  # a repeat changes nothing
    trail.ingest(life(a, "gone", "DROP", "1", day(3)))  # new and dropped in one event: never listed
    assert assert_counted(trail, engine)[a] == (2, 0)

    renamed = {"previousIdentifier": {"namespace": b, "name": "u0"}}
    trail.ingest(life(b, "v0", "RENAME", "1", day(4), **renamed))  # u0 hidden, v0 listed
    moved = {"previousIdentifier": {"namespace": b, "name": "u1"}}
    trail.ingest(life(a, "from_b", "RENAME", "1", day(4), **moved))  # across namespaces
    never = {"previousIdentifier": {"namespace": b, "name": "w"}}
    trail.ingest(life(b, "w2", "RENAME", "1", day(4), **never))  # w made and hidden at once
    assert assert_counted(trail, engine)[a] == (3, 0)
    assert assert_counted(trail, engine)[b] == (2, 0)  # v0, w2

    trail.ingest(life(a, "t1", "OVERWRITE", "2", day(5)))  # back in the listing
    trail.ingest(life(a, "t1", "DROP", "1", day(2)))  # a late DROP loses to the later state
    assert assert_counted(trail, engine)[a] == (4, 0)

    # A refused event in a batch: the dataset its rename made is rolled back with its count.
    bad = life(a, "x", "RENAME", "1", day(6), previousIdentifier={"namespace": a, "name": 7})
    answers = trail.ingest_many([bad, event("later", [output(a, "t9", "1")], day(6))])
    assert isinstance(answers[0], DatatrailError) and not isinstance(answers[1], DatatrailError)
    assert assert_counted(trail, engine)[a] == (5, 0)


def test_two_writers_count_every_dataset(trail: datatrail.Trail, engine: Engine) -> None:
    """Two stores on one database write at once (SQLite's lock, PostgreSQL's advisory lock): none lost."""
    others = [datatrail.connect(trail.location.uri) for _ in range(2)]
    errors: list[BaseException] = []

    def write(writer: int, other: datatrail.Trail) -> None:
        try:
            for i in range(20):
                outs = [output("shared", f"w{writer}-{i}", "1"), output("shared", "both", f"{writer}-{i}")]
                other.ingest(event(f"job{writer}-{i % 3}", outs, f"2026-02-01T00:00:{i:02d}Z"))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w, o)) for w, o in enumerate(others)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        for other in others:
            other.close()
    assert errors == []
    assert assert_counted(trail, engine) == {"shared": (41, 0), "etl": (0, 6)}


def test_fsck_says_which_count_differs(trail: datatrail.Trail, engine: Engine) -> None:
    trail.ingest(event("load", [output("ns", "t", "1")], "2026-01-01T00:00:00Z"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE namespaces SET dataset_count = 7 WHERE name = 'ns'"))
        conn.execute(text("UPDATE jobs SET run_count = 0"))
    assert trail.check_store() == [
        "namespaces whose counts of datasets or jobs differ from their rows: ns (7 of 1 datasets, 0 of 0 jobs)",
        "jobs whose run_count differs from their runs: load (0 of 1)",
    ]


def test_0010_counts_each_namespaces_datasets_and_jobs(empty_uri: str) -> None:
    """A store of revision 0009 kept no counts: the upgrade counts listed datasets (not hidden ones) and jobs."""
    engine = create_engine(empty_uri)
    with engine.begin() as conn:
        upgrade(conn, "0009")
        conn.execute(
            text(
                "INSERT INTO namespaces (id, name, created_at) VALUES"
                " (1, 'a', '2026-01-01'), (2, 'b', '2026-01-01'), (3, 'etl', '2026-01-01')"
            )
        )
        for i, (ns, deleted) in enumerate([(1, None), (1, None), (1, "2026-01-02"), (2, "2026-01-02")]):
            conn.execute(
                text(
                    "INSERT INTO datasets (id, namespace_id, name, kind, created_at, deleted_at)"
                    " VALUES (:i, :ns, :n, 'dataset', '2026-01-01', :gone)"
                ),
                {"i": i + 1, "ns": ns, "n": f"d{i}", "gone": deleted},
            )
        for i in (1, 2):
            conn.execute(
                text(f"INSERT INTO jobs (id, namespace_id, name, created_at) VALUES ({i}, 3, 'j{i}', '2026-01-01')")
            )
        upgrade(conn, "0010")
        counted = {r[0]: (r[1], r[2]) for r in conn.execute(text(COUNTED))}
    engine.dispose()
    assert counted == {"a": (2, 0), "b": (0, 0), "etl": (0, 2)}
