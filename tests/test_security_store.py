"""Users, tokens, grants, the audit chain and classifications on the SQL stores (SQLite, PostgreSQL).

Tampering tests change, delete, insert and reorder audit rows directly in SQL
and rebuild the chain after a change; ``verify_audit`` must name the first bad
entry (and, with a checkpoint, a truncated or rebuilt chain).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import datatrail
from datatrail.core import tokens as token_module
from datatrail.core.chain import GENESIS, entry_content, entry_hash
from datatrail.core.errors import Conflict, InvalidInput, NotFound
from datatrail.store.sql import tables as t
from tests.conftest import write


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def trail(request: pytest.FixtureRequest, workdir: Path) -> Iterator[datatrail.Trail]:
    uri = None if request.param == "sqlite" else str(request.getfixturevalue("pg_uri"))
    tr = datatrail.init(workdir, uri)
    try:
        yield tr
    finally:
        tr.close()


def engine(trail: datatrail.Trail) -> Any:
    return trail._store.engine  # type: ignore[attr-defined]


def some_entries(trail: datatrail.Trail, workdir: Path, n: int = 6) -> None:
    for i in range(n):
        trail.add(write(workdir / f"f{i}.csv", f"a\n{i}\n"), name=f"d{i}")


# ---------------------------------------------------------------- users, tokens, grants


def test_user_token_and_grant_changes_are_audited_without_secrets(trail: datatrail.Trail) -> None:
    trail.add_user("ada", admin=True)
    trail.add_user("bob")
    with pytest.raises(Conflict):
        trail.add_user("bob")
    info, secret = trail.create_token("bob", expires="30d", label="laptop")
    assert trail.grant("bob", "editor", "team-*") is True
    assert trail.grant("bob", "editor", "team-*") is False  # already there: nothing written
    trail.revoke("bob", "editor", "team-*")
    with pytest.raises(NotFound):
        trail.revoke("bob", "editor", "team-*")
    trail.revoke_token(info.id)
    entries = trail.audit_entries(limit=100)
    assert [e.action for e in reversed(entries)] == [
        "user.add",
        "user.add",
        "token.create",
        "grant.add",
        "grant.revoke",
        "token.revoke",
    ]
    assert all(e.actor == trail.user and e.outcome == "allowed" and e.details["origin"] == "local" for e in entries)
    _, secret_part = token_module.parse_token(secret)  # type: ignore[misc]
    digest = hashlib.sha256(secret_part.encode()).hexdigest()
    shown = json.dumps([e.details for e in entries]) + json.dumps([tok.to_dict() for tok in trail.tokens()])
    shown += json.dumps([u.to_dict() for u in trail.users()])
    assert secret_part not in shown and digest not in shown and info.id in shown
    with engine(trail).connect() as conn:
        stored = conn.execute(select(t.tokens.c.secret_hash)).scalar_one()
    assert stored == digest  # only the hash is kept
    assert trail.verify_audit().ok


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda tr: tr.add_user(""), InvalidInput),
        (lambda tr: tr.grant("bob", "king", "team-x"), InvalidInput),
        (lambda tr: tr.grant("nobody", "viewer", "team-x"), NotFound),
        (lambda tr: tr.grant("bob", "viewer", ""), InvalidInput),
        (lambda tr: tr.create_token("bob", expires="soon"), InvalidInput),
        (lambda tr: tr.create_token("nobody"), NotFound),
        (lambda tr: tr.revoke_token("tok_nothex"), InvalidInput),
        (lambda tr: tr.revoke_token("tok_000000000000"), NotFound),
        (lambda tr: tr.verify_audit("12"), InvalidInput),
        (lambda tr: tr.classify("raw", "nope", "pii"), InvalidInput),
        (lambda tr: tr.classify("raw", "a", "P I I"), InvalidInput),
        (lambda tr: tr.audit_entries(since="yesterday"), InvalidInput),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    trail: datatrail.Trail, workdir: Path, call: Any, error: type
) -> None:
    trail.add(write(workdir / "raw.csv", "a,b\n1,2\n"), name="raw")
    trail.add_user("bob")
    before = trail.audit_checkpoint()
    with pytest.raises(error) as info:
        call(trail)
    assert "\n" not in str(info.value)
    assert trail.audit_checkpoint() == before


def test_authenticate_refuses_forged_expired_and_revoked_tokens(trail: datatrail.Trail) -> None:
    store: Any = trail._store.accounts  # the SQL store's users and tokens
    trail.add_user("bob")
    trail.grant("bob", "viewer", "team-a")
    _, good = trail.create_token("bob", expires="1h")
    principal = store.authenticate(good)
    assert principal.name == "bob" and not principal.admin and [g.pattern for g in principal.grants] == ["team-a"]
    token_id, secret = token_module.parse_token(good)  # type: ignore[misc]
    forged_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
    for bad in (
        f"dtk_{token_id}_{forged_secret}",  # right id, wrong secret
        f"dtk_tok_123456789abc_{secret}",  # right secret, unknown id
        good[:-1],  # mangled
        "",
        "Bearer " + good,
    ):
        assert store.authenticate(bad) is None, bad
    # Expired: the same token an hour and a second later.
    assert store.authenticate(good, datetime.now(UTC) + timedelta(hours=1, seconds=1)) is None
    info, other = trail.create_token("bob", expires="never")
    assert store.authenticate(other) is not None
    trail.revoke_token(info.id)
    assert store.authenticate(other) is None  # at once: nothing is cached


def test_tokens_are_compared_in_constant_time(trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    trail.add_user("bob")
    _, good = trail.create_token("bob")
    calls: list[tuple[bytes, bytes]] = []
    real = token_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(token_module.hmac, "compare_digest", spy)
    store: Any = trail._store.accounts  # the SQL store's users and tokens
    assert store.authenticate(good) is not None
    assert store.authenticate("dtk_tok_123456789abc_" + "x" * 43) is None  # unknown id: compared all the same
    assert len(calls) == 2 and all(len(a) == len(b) == 64 for a, b in calls)


# ---------------------------------------------------------------- tampering


def rows(trail: datatrail.Trail) -> list[Any]:
    with engine(trail).connect() as conn:
        return conn.execute(select(t.audit).order_by(t.audit.c.seq)).all()


def first_problem(trail: datatrail.Trail, checkpoint: str | None = None) -> tuple[int, str]:
    report = trail.verify_audit(checkpoint)
    assert not report.ok
    return report.problems[0].seq, report.problems[0].kind


def rehash(conn: Any, start: int) -> None:
    """Recompute every hash from entry ``start`` on: what an attacker with SQL access can do."""
    prev = GENESIS
    for r in conn.execute(select(t.audit).order_by(t.audit.c.seq)).all():
        if r.seq >= start:
            when = r.time if r.time.tzinfo else r.time.replace(tzinfo=UTC)
            content = entry_content(
                r.seq, when.astimezone(UTC).isoformat(), r.actor, r.action, r.target, r.outcome, r.details
            )
            digest = entry_hash(prev, content)
            conn.execute(t.audit.update().where(t.audit.c.seq == r.seq).values(prev_hash=prev, hash=digest))
            prev = digest
        else:
            prev = r.hash


def test_a_changed_entry_is_named(trail: datatrail.Trail, workdir: Path) -> None:
    some_entries(trail, workdir)
    assert trail.verify_audit().ok
    with engine(trail).begin() as conn:
        conn.execute(t.audit.update().where(t.audit.c.seq == 3).values(actor="mallory"))
    assert first_problem(trail) == (3, "changed")
    assert "entry 3 was changed" in trail.verify_audit().problems[0].message


def test_a_deleted_entry_is_named(trail: datatrail.Trail, workdir: Path) -> None:
    some_entries(trail, workdir)
    with engine(trail).begin() as conn:
        conn.execute(t.audit.delete().where(t.audit.c.seq == 4))
    assert first_problem(trail) == (4, "deleted")


def test_an_inserted_entry_is_named(trail: datatrail.Trail, workdir: Path) -> None:
    some_entries(trail, workdir)
    old = rows(trail)
    with engine(trail).begin() as conn:
        for r in reversed(old[2:]):  # make room at 3, as an attacker would
            conn.execute(t.audit.update().where(t.audit.c.seq == r.seq).values(seq=r.seq + 1))
        # A well-formed entry 3, chained to entry 2: only its successor gives it away.
        forged = entry_content(3, "2026-01-01T00:00:00+00:00", "mallory", "dataset.read", "d1@1", "allowed", {})
        conn.execute(
            t.audit.insert().values(
                seq=3,
                time=datetime(2026, 1, 1, tzinfo=UTC),
                actor="mallory",
                action="dataset.read",
                target="d1@1",
                outcome="allowed",
                details={},
                prev_hash=old[1].hash,
                hash=entry_hash(old[1].hash, forged),
            )
        )
    assert first_problem(trail) == (3, "inserted")


def test_reordered_entries_are_named(trail: datatrail.Trail, workdir: Path) -> None:
    some_entries(trail, workdir)
    with engine(trail).begin() as conn:
        conn.execute(t.audit.update().where(t.audit.c.seq == 2).values(seq=1000))
        conn.execute(t.audit.update().where(t.audit.c.seq == 3).values(seq=2))
        conn.execute(t.audit.update().where(t.audit.c.seq == 1000).values(seq=3))
    assert first_problem(trail) == (2, "reordered")


def test_a_rebuilt_chain_is_caught_by_the_checkpoint(trail: datatrail.Trail, workdir: Path) -> None:
    some_entries(trail, workdir)
    checkpoint = str(trail.audit_checkpoint())
    assert trail.verify_audit(checkpoint).ok
    some_entries(trail, workdir / "more", 2)  # entries after the checkpoint are fine
    assert trail.verify_audit(checkpoint).ok
    with engine(trail).begin() as conn:
        conn.execute(t.audit.update().where(t.audit.c.seq == 2).values(actor="mallory"))
        rehash(conn, 2)
    assert trail.verify_audit().ok  # self-consistent again: only the checkpoint knows
    assert first_problem(trail, checkpoint) == (6, "rebuilt")


def test_a_truncated_chain_is_caught_by_the_checkpoint(trail: datatrail.Trail, workdir: Path) -> None:
    some_entries(trail, workdir)
    checkpoint = str(trail.audit_checkpoint())
    with engine(trail).begin() as conn:
        conn.execute(t.audit.delete().where(t.audit.c.seq >= 5))
    assert trail.verify_audit().ok
    assert first_problem(trail, checkpoint) == (6, "truncated")


def test_concurrent_readers_and_writers_keep_the_chain_whole(trail: datatrail.Trail, workdir: Path) -> None:
    trail.add(write(workdir / "raw.csv", "a\n1\n"), name="raw")
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(10):
                trail.get("raw")
        except BaseException as exc:
            errors.append(exc)

    def writer(i: int) -> None:
        try:
            for j in range(5):
                trail.add(write(workdir / f"w{i}" / f"{j}.csv", f"a\n{i}{j}\n"), name=f"w{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [
        threading.Thread(target=writer, args=(i,)) for i in range(2)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    report = trail.verify_audit()
    assert report.ok and report.entries == 1 + 30 + 10


# ---------------------------------------------------------------- reads are audited on the embedded store


def test_reads_are_audited_with_the_local_user(trail: datatrail.Trail, workdir: Path) -> None:
    trail.add(write(workdir / "raw.csv", "a\n1\n"), name="raw")
    trail.add(write(workdir / "raw.csv", "a\n2\n"), name="raw")
    trail.get("raw@1")
    trail.versions("raw")
    trail.lineage("raw")
    log = trail.access_log("raw")
    assert [(e.action, e.target) for e in log] == [
        ("dataset.lineage", "raw"),
        ("dataset.versions", "raw"),
        ("dataset.read", "raw@1"),
        ("dataset.add", "raw@2"),
        ("dataset.add", "raw@1"),
    ]
    assert {e.actor for e in log} == {trail.user} and log[0].details["origin"] == "local"
    assert [e.action for e in trail.audit_entries(action="dataset.*", user=trail.user, limit=2)] == [
        "dataset.lineage",
        "dataset.versions",
    ]
    assert trail.audit_entries(since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert trail.verify_audit().ok


# ---------------------------------------------------------------- classifications


PRODUCER = "https://example.com/tests"


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/x.json", **fields}


def ol_dataset(name: str, version: str, **facets: Any) -> dict[str, Any]:
    return {"namespace": "wh", "name": name, "facets": {"version": facet(datasetVersion=version), **facets}}


def run_event(job: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], time: str) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": time,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, job + time)), "facets": {}},
        "job": {"namespace": "etl", "name": job, "facets": {}},
        "inputs": inputs,
        "outputs": outputs,
    }


def schema(*names: str, tags: dict[str, list[dict[str, str]]] | None = None) -> dict[str, Any]:
    return facet(
        fields=[{"name": n, "type": "TEXT", **({"tags": tags[n]} if tags and n in tags else {})} for n in names]
    )


def col(name: str, column: str) -> dict[str, Any]:
    return {"namespace": "wh", "name": name, "field": column, "transformations": []}


def test_tags_facets_classify_and_propagate_downstream(trail: datatrail.Trail) -> None:
    pii = [{"key": "pii", "value": "true", "source": "CATALOG"}]
    src = ol_dataset("src", "s1", schema=schema("email", "id", "note", tags={"email": pii}))
    src["facets"]["tags"] = facet(tags=[{"key": "classification", "value": "PHI", "field": "note", "source": "x"}])
    # Column lineage known: contact <- email, key <- id.
    mapped = ol_dataset(
        "mapped",
        "m1",
        schema=schema("contact", "key"),
        columnLineage=facet(
            fields={"contact": {"inputFields": [col("src", "email")]}, "key": {"inputFields": [col("src", "id")]}}
        ),
    )
    copied = ol_dataset("copied", "c1", schema=schema("email", "id"))  # no column lineage: by name
    renamed = ol_dataset("renamed", "r1", schema=schema("x"))  # no column lineage, name gone: every column
    trail.ingest(run_event("load", [], [src], "2026-01-01T00:00:00Z"))
    trail.ingest(run_event("map", [ol_dataset("src", "s1")], [mapped], "2026-01-02T00:00:00Z"))
    trail.ingest(run_event("copy", [ol_dataset("src", "s1")], [copied], "2026-01-02T00:00:00Z"))
    trail.ingest(run_event("rename", [ol_dataset("copied", "c1")], [renamed], "2026-01-03T00:00:00Z"))
    assert trail.classifications("wh:src@1") == {"email": ["pii"], "note": ["phi"]}
    assert trail.classifications("wh:mapped@1") == {"contact": ["pii"]}
    # Without column lineage a column keeps its label by name; one the output lacks (note: renamed,
    # dropped, or unknown) classifies every column of the output, to be safe.
    assert trail.classifications("wh:copied@1") == {"email": ["pii"], "*": ["phi"]}
    assert trail.classifications("wh:renamed@1") == {"*": ["phi", "pii"]}
    # The same events again change nothing.
    before = trail.audit_checkpoint()
    trail.ingest(run_event("load", [], [src], "2026-01-01T00:00:00Z"))
    assert trail.audit_checkpoint() == before


def test_profiles_of_classified_columns_keep_only_counts(trail: datatrail.Trail, workdir: Path) -> None:
    data = "email,score\nann@x.org,3\nbob@y.org,5\nann@x.org,7\n"
    v1 = trail.add(write(workdir / "people.csv", data), name="people")
    assert trail.profile(v1)["columns"][0]["min"] == "ann@x.org"  # type: ignore[index]
    trail.classify("people", "email", "pii")
    # Read time: an existing version's profile no longer shows values.
    email, score = trail.profile(v1)["columns"]  # type: ignore[index]
    assert email == {
        "name": "email",
        "type": "string",
        "nullable": True,
        "null_count": 0,
        "null_fraction": 0.0,
        "distinct_count": 2,
        "distinct_approximate": False,
        "classified": ["pii"],
        "redacted": True,
    }
    assert score["max"] == 7 and "classified" not in score
    # Write time: a new version is stored without the values, in its row and in its raw event.
    v2 = trail.add(write(workdir / "people.csv", data + "cy@z.org,9\n"), name="people")
    with engine(trail).connect() as conn:
        stored = conn.execute(select(t.versions.c.profile).where(t.versions.c.id == v2.id)).scalar_one()
        payloads = [r.payload for r in conn.execute(select(t.events.c.payload))]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored["columns"][0]["redacted"] is True and "top_values" not in stored["columns"][0]
    assert "cy@z.org" not in payloads[-1] and "bob@y.org" not in payloads[-1]
    assert trail.check_store() == []  # the redacted event still passes fsck
    # Downstream: a run's output made from it inherits the classification by column name.
    with trail.run("derive") as run:
        run.input("people@2")
        out = run.output(write(workdir / "emails.csv", "email\nann@x.org\n"), name="emails")
    assert trail.profile(out)["columns"][0]["classified"] == ["pii"]  # type: ignore[index]
    assert trail.classifications(out) == {"email": ["pii"]}
