"""OpenLineage export (validated against the official 2-0-2 schemas) and import, and the round trip."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import InvalidInput
from datatrail.interop.openlineage import export_events, import_events
from tests import httpserver
from tests.interop_pipeline import build_pipeline
from tests.test_events import validate_event

runner = CliRunner()


def state(trail: datatrail.Trail) -> dict[str, Any]:
    """Everything the round trip must keep: datasets, versions with digests, runs, column lineage."""
    datasets = sorted((d.namespace, d.name, d.kind, d.version_count) for d in trail.datasets())
    versions = sorted(
        (
            v.namespace,
            v.name,
            v.number,
            str(v.digest),
            v.key,
            v.size,
            v.uri,
            v.format,
            v.run_id,
            v.aliases,
            v.created_at,
        )
        for d in trail.datasets()
        for v in trail.versions(f"{d.namespace}:{d.name}")
    )
    runs = sorted(
        (
            r.id,
            r.job,
            r.state.value,
            r.user,
            r.command,
            json.dumps(r.params, sort_keys=True),
            json.dumps(r.metrics, sort_keys=True),
            tuple(v.ref for v in r.inputs),
            tuple(v.ref for v in r.outputs),
            r.started_at,
            r.ended_at,
        )
        for r in trail.runs(limit=1000)
    )
    columns = trail.column_lineage("features", "bill_ratio")
    edges = sorted((s, t, json.dumps(x, sort_keys=True)) for s, t, x in columns.edges)
    return {"datasets": datasets, "versions": versions, "runs": runs, "column_edges": edges}


def test_export_validates_against_the_official_schemas(trail: datatrail.Trail, workdir: Path) -> None:
    build_pipeline(trail, workdir)
    events = list(export_events(trail))
    assert len(events) >= 6  # add, START, RUNNING input, RUNNING output, COMPLETE, the features event
    checked = sum(validate_event(e) for e in events)
    assert checked > 0  # standard facets (version, schema, columnLineage…) were validated too
    assert any("columnLineage" in o.get("facets", {}) for e in events for o in e.get("outputs", []))


def test_round_trip_into_an_empty_store(trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    build_pipeline(trail, workdir)
    text = "".join(json.dumps(e) + "\n" for e in export_events(trail))
    other = datatrail.init(tmp_path / "other")
    try:
        summary = import_events(other, text, "events.jsonl")
        assert summary.new_events == summary.events == text.count("\n")
        before, after = state(trail), state(other)
        assert before["column_edges"], "the pipeline has column lineage"
        assert after == before
        assert {str(v.digest) for v in other.versions("raw/penguins")} == {str(trail.get("raw/penguins").digest)}
        # Replaying again changes nothing: every event is already stored.
        again = import_events(other, text, "events.jsonl")
        assert (again.new_events, again.new_versions, again.runs) == (0, [], [])
        assert state(other) == before
        # The re-export is the same events, so a third store would converge too.
        assert list(export_events(other)) == list(export_events(trail))
    finally:
        other.close()


def test_since_and_namespace_filter_the_export(trail: datatrail.Trail, workdir: Path) -> None:
    build_pipeline(trail, workdir)
    other_ns = workdir / "x.txt"
    other_ns.write_text("x")
    trail.add(other_ns, name="x", namespace="team-x")
    everything = list(export_events(trail))
    team = list(export_events(trail, namespace="team-x"))
    assert len(team) == 1 and team[0]["dataset"]["namespace"] == "team-x"
    assert len(list(export_events(trail, namespace="default"))) == len(everything) - 1
    assert list(export_events(trail, since=datetime.now(UTC) + timedelta(hours=1))) == []
    assert len(list(export_events(trail, since=datetime.now(UTC) - timedelta(hours=1)))) == len(everything)


def test_a_bad_line_imports_nothing(trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    build_pipeline(trail, workdir)
    lines = [json.dumps(e) for e in export_events(trail)]
    other = datatrail.init(tmp_path / "other")
    try:
        bad = [*lines[:2], '{"eventTime": "2024-01-01T00:00:00Z", "run": {"runId": "nope"}, "job": {}}', *lines[2:]]
        with pytest.raises(InvalidInput, match=r"events.jsonl line 3: invalid event: .*nothing was imported"):
            import_events(other, "\n".join(bad), "events.jsonl")
        assert other.datasets() == [] and other.runs() == []
        with pytest.raises(InvalidInput, match=r"line 2: not JSON"):
            import_events(other, lines[0] + "\n{oops\n", "events.jsonl")
        assert other.datasets() == []
        summary = import_events(other, "\n".join(bad), "events.jsonl", skip_invalid=True)
        assert summary.skipped and summary.skipped[0].startswith("events.jsonl line 3:")
        assert summary.new_events == len(lines)
    finally:
        other.close()


def test_a_json_array_and_a_single_event_are_accepted(trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    build_pipeline(trail, workdir)
    events = list(export_events(trail))
    other = datatrail.init(tmp_path / "other")
    try:
        assert import_events(other, json.dumps(events[:1], indent=2)).new_events == 1
        assert import_events(other, json.dumps(events[1], indent=2)).new_events == 1
        assert import_events(other, json.dumps(events)).new_events == len(events) - 2
        with pytest.raises(InvalidInput, match=r"element 1: invalid event"):
            import_events(other, json.dumps([events[0], {"nothing": 1}]))
    finally:
        other.close()


def test_events_endpoint_pages_over_http(tmp_path: Path, workdir: Path) -> None:
    with httpserver.running(tmp_path / "srv") as server:
        remote = datatrail.connect(server.uri)
        local_root = workdir
        try:
            build_pipeline(remote, local_root)
            direct = datatrail.connect(server.store)
            try:
                assert [e for _, e in remote.catalog.events(limit=1000)] == list(export_events(direct))
            finally:
                direct.close()
            first = remote.catalog.events(limit=2)
            rest = remote.catalog.events(after_id=first[-1][0], limit=1000)
            assert [i for i, _ in first + rest] == sorted({i for i, _ in first + rest})
            assert len(first) == 2 and rest
            assert [e for _, e in remote.catalog.events(namespace="nowhere")] == []
        finally:
            remote.close()


def test_cli_export_and_import(trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    build_pipeline(trail, workdir)
    out = tmp_path / "events.jsonl"
    result = runner.invoke(app, ["export", "openlineage", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == len(list(export_events(trail)))
    stdout = runner.invoke(app, ["export", "openlineage", "--namespace", "default"])
    assert stdout.stdout == out.read_text()
    datatrail.init(tmp_path / "b").close()
    db = tmp_path / "b" / ".datatrail" / "trail.db"
    target = f"sqlite:///{db}"
    result = runner.invoke(app, ["--store", target, "import", "openlineage", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["new_events"] == summary["events"] > 0
    assert "features@1" in summary["new_versions"] and len(summary["runs"]) == 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from events").fetchone()[0] == summary["events"]
    result = runner.invoke(app, ["--store", target, "import", "openlineage", str(out)])
    assert result.exit_code == 0 and "(0 new," in result.stdout
    result = runner.invoke(app, ["--store", target, "import", "openlineage", "-"], input=out.read_text())
    assert result.exit_code == 0 and "(0 new," in result.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(out.read_text() + "not json\n")
    datatrail.init(tmp_path / "c").close()
    c_uri = f"sqlite:///{tmp_path / 'c' / '.datatrail' / 'trail.db'}"
    result = runner.invoke(app, ["--store", c_uri, "import", "openlineage", str(bad)])
    assert result.exit_code == 2
    with datatrail.connect(c_uri) as c:
        assert c.datasets() == []
    assert result.stderr.count("\n") == 1 and "line" in result.stderr and "--skip-invalid" in result.stderr
    for args, message in (
        (["export", "openlineage", "--since", "yesterday"], "invalid --since"),
        (["export", "openlineage", "--format", "json"], "--format applies to `prov`"),
        (["import", "openlineage"], "give the file of events"),
        (["import", "openlineage", str(tmp_path / "missing.jsonl")], "no such file"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and message in result.stderr, (args, result.stderr)
