"""Property: whatever event a user sends, no row of a namespace it may not write changes (issue 16).

Hypothesis generates users with random grants on three namespaces and events
that name existing runs and datasets of every namespace — in the job, the
inputs and outputs, the run id, and the facets the store acts on (parent,
previousIdentifier, symlinks, columnLineage, tags, aliases, checks,
deployments). Each event is ingested through the same path as a server
request (a Trail scoped to the user, so a GuardedStore); the rows of every
namespace the user may not write are dumped before and after, and must be
identical, whether the event was accepted or refused.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datatrail
from datatrail.core.errors import DatatrailError
from datatrail.core.roles import Grant, Principal, authorize

NAMESPACES = ("ns-a", "ns-b", "ns-c")
NAMES = ("d1", "d2", "fresh")
ROLES = (None, "viewer", "viewer", "editor", "owner")  # readers are where the holes were
PRODUCER = "https://example.com/property"

# Each table's rows with the namespace they belong to (deployments: the deployed dataset's).
DUMPS = {
    "namespaces": "SELECT n.name, n.name FROM namespaces n",
    "datasets": "SELECT n.name, d.name, d.kind, d.deleted_at, d.facets, d.lifecycle"
    " FROM datasets d JOIN namespaces n ON n.id = d.namespace_id",
    "versions": "SELECT n.name, d.name, v.number, v.version_key, v.digest, v.size, v.uri, v.format,"
    " v.created_at, v.run_pk, v.properties, v.profile, v.schema, v.stats"
    " FROM versions v JOIN datasets d ON d.id = v.dataset_id JOIN namespaces n ON n.id = d.namespace_id",
    "aliases": "SELECT n.name, d.name, a.alias, a.version_id FROM aliases a"
    " JOIN datasets d ON d.id = a.dataset_id JOIN namespaces n ON n.id = d.namespace_id",
    "jobs": "SELECT n.name, j.name, j.type, j.facets FROM jobs j JOIN namespaces n ON n.id = j.namespace_id",
    "runs": "SELECT n.name, r.run_id, j.name, r.state, r.started_at, r.ended_at, r.error, r.params,"
    " r.parent_run_id, r.facets FROM runs r JOIN jobs j ON j.id = r.job_id JOIN namespaces n ON n.id = j.namespace_id",
    "run_io": "SELECT n.name, r.run_id, io.direction, io.version_id FROM run_io io JOIN runs r ON r.pk = io.run_pk"
    " JOIN jobs j ON j.id = r.job_id JOIN namespaces n ON n.id = j.namespace_id",
    "run_metrics": "SELECT n.name, r.run_id, m.key, m.step, m.value FROM run_metrics m"
    " JOIN runs r ON r.pk = m.run_pk JOIN jobs j ON j.id = r.job_id JOIN namespaces n ON n.id = j.namespace_id",
    "column_edges": "SELECT n.name, e.output_version_id, e.output_column, e.input_version_id, e.input_column"
    " FROM column_edges e JOIN versions v ON v.id = e.output_version_id JOIN datasets d ON d.id = v.dataset_id"
    " JOIN namespaces n ON n.id = d.namespace_id",
    "check_results": "SELECT n.name, c.version_id, c.rule, c.success FROM check_results c"
    " JOIN versions v ON v.id = c.version_id JOIN datasets d ON d.id = v.dataset_id"
    " JOIN namespaces n ON n.id = d.namespace_id",
    "classifications": "SELECT n.name, d.name, c.column_name, c.label FROM classifications c"
    " JOIN datasets d ON d.id = c.dataset_id JOIN namespaces n ON n.id = d.namespace_id",
    "deployments": "SELECT n.name, x.environment, x.version_id, x.retired_at FROM deployments x"
    " JOIN datasets d ON d.id = x.dataset_id JOIN namespaces n ON n.id = d.namespace_id",
}


class World:
    """An SQLite store with datasets, versions, runs and a deployment in every namespace; each example
    works on a fresh copy of it, so a failure reproduces exactly."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.template = folder / "template.db"
        self.copies = 0
        self.runs: list[str] = []
        with datatrail.init(folder, f"sqlite:///{self.template}") as trail:
            for ns in NAMESPACES:
                for name in NAMES[:2]:
                    path = folder / f"{ns}-{name}.csv"
                    path.write_text(f"x,y\n1,{ns}\n2,{name}\n")
                    trail.add(path, name=name, namespace=ns)
                with trail.run("job", namespace=ns) as run:
                    run.input(f"{ns}:d1")
                    out = folder / f"{ns}-out.csv"
                    out.write_text("x\n1\n")
                    run.output(out, name="d2", namespace=ns)
                self.runs.append(run.id)
                trail.deploy(f"{ns}:d2", env="production")

    def fresh(self) -> datatrail.Trail:
        self.copies += 1
        self.path = self.folder / f"copy{self.copies}.db"
        shutil.copyfile(self.template, self.path)
        return datatrail.connect(f"sqlite:///{self.path}")

    def dump(self, namespaces: set[str]) -> dict[str, list[tuple[Any, ...]]]:
        with sqlite3.connect(self.path) as db:
            return {
                table: sorted((tuple(map(str, row)) for row in db.execute(sql) if row[0] in namespaces), key=str)
                for table, sql in DUMPS.items()
            }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("property"))


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/X.json", **fields}


namespaces = st.sampled_from(NAMESPACES)
# A name never seen before, as often as a known one: "fresh" may have been created by an earlier example.
names = st.one_of(st.sampled_from(NAMES), st.uuids().map(lambda u: f"new-{u.hex[:8]}"))


def sometimes() -> st.SearchStrategy[bool]:
    """True one time in four: most datasets carry a facet or two, not all of them."""
    return st.integers(0, 3).map(lambda n: n == 0)


@st.composite
def dataset_facets(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(sometimes()):
        previous = {"namespace": draw(namespaces), "name": draw(names)}
        out["lifecycleStateChange"] = facet(lifecycleStateChange="RENAME", previousIdentifier=previous)
    if draw(sometimes()):
        out["symlinks"] = facet(identifiers=[{"namespace": draw(namespaces), "name": draw(names), "type": "TABLE"}])
    if draw(sometimes()):
        source = {"namespace": draw(namespaces), "name": draw(names), "field": "x"}
        out["columnLineage"] = facet(fields={"x": {"inputFields": [source]}})
    if draw(sometimes()):
        out["tags"] = facet(tags=[{"key": "classification", "value": "pii", "field": "x"}])
    if draw(sometimes()):
        out["schema"] = facet(fields=[{"name": "x", "type": "int"}, {"name": "z", "type": "string"}])
    if draw(sometimes()):
        out["datatrail_alias"] = facet(datasetVersion="sha256:" + "0" * 64, aliases=["production"])
    if draw(sometimes()):
        out["dataQualityAssertions"] = facet(assertions=[{"assertion": "not_null", "success": False, "column": "x"}])
    if draw(sometimes()):
        keys = st.one_of(st.sampled_from(["1", "sha256:" + "ab" * 32]), st.uuids().map(str))
        out["version"] = facet(datasetVersion=draw(keys))
    return out


@st.composite
def datasets(draw: st.DrawFn) -> dict[str, Any]:
    return {"namespace": draw(namespaces), "name": draw(names), "facets": draw(dataset_facets())}


@st.composite
def events(draw: st.DrawFn, runs: list[str]) -> dict[str, Any]:
    time = "2026-12-01T10:00:00Z"
    if draw(st.booleans()):
        return {
            "eventTime": time,
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": draw(datasets()),
        }
    run_facets: dict[str, Any] = {}
    if draw(st.booleans()):
        parent = {"runId": draw(st.sampled_from(runs)), "facets": {}}
        run_facets["parent"] = facet(run=parent, job={"namespace": draw(namespaces), "name": "job"})
    if draw(st.booleans()):
        run_facets["errorMessage"] = facet(message="INJECTED", programmingLanguage="python")
    run_id = draw(st.sampled_from(runs)) if draw(st.integers(0, 2)) else str(uuid.uuid4())
    inputs = draw(st.lists(datasets(), max_size=2))
    if draw(sometimes()):  # a deployment: one existing version, deployed (its alias follows)
        run_facets["datatrail_deployment"] = facet(environment="production")
        inputs = [{"namespace": draw(namespaces), "name": draw(st.sampled_from(NAMES[:2])), "facets": {}}]
    return {
        "eventType": draw(st.sampled_from(["START", "RUNNING", "COMPLETE", "FAIL", "ABORT"])),
        "eventTime": time,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": draw(namespaces), "name": draw(st.sampled_from(["job", "other"]))},
        "inputs": inputs,
        "outputs": draw(st.lists(datasets(), max_size=2)),
    }


@st.composite
def principals(draw: st.DrawFn) -> Principal:
    grants = tuple(Grant(role, ns) for ns in NAMESPACES if (role := draw(st.sampled_from(ROLES))) is not None)
    return Principal("user", grants=grants)


@pytest.mark.sql_store
@pytest.mark.slow
def test_no_row_outside_the_write_grants_changes(world: World) -> None:
    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
    )
    @given(principal=principals(), event=events(world.runs), batch=st.booleans())
    def check(principal: Principal, event: dict[str, Any], batch: bool) -> None:
        protected = {ns for ns in NAMESPACES if not authorize(principal, "write", ns)}
        protected |= {"team-other"}  # a namespace nobody was granted: nothing may appear there either
        with world.fresh() as trail:
            before = world.dump(protected)
            scoped = trail.scoped(principal, "test")
            try:
                if batch:
                    scoped.ingest_many([event])
                else:
                    scoped.ingest(event)
            except DatatrailError:
                pass  # refused (Forbidden) or invalid: either way nothing of another namespace may change
            after = world.dump(protected)
        world.path.unlink()
        changed = {t: (before[t], after[t]) for t in DUMPS if before[t] != after[t]}
        assert not changed, f"rows of {sorted(protected)} changed for {principal.grants}: {changed}"

    check()
