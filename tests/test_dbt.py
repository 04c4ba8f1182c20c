"""A real dbt Core with openlineage-dbt's ``dbt-ol`` reporting to a real `datatrail serve` (issue 17).

dbt lives in its own virtual environment, ``.venv-dbt``, made by
``scripts/ensure-dbt`` (``scripts/test`` runs it; this test runs it too, and it
returns at once when the environment is there). The project is
``examples/openlineage/dbt_project`` on DuckDB, configured as docs/deploy.md
says: ``OPENLINEAGE_URL`` and ``OPENLINEAGE_NAMESPACE``, then ``dbt-ol seed``,
``dbt-ol run`` and ``dbt-ol test`` instead of the ``dbt`` commands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import datatrail
from datatrail.core.model import RunState
from tests import httpserver

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv-dbt" / "bin"
PROJECT = ROOT / "examples" / "openlineage" / "dbt_project"
NAMESPACE = "dbt-test"  # OPENLINEAGE_NAMESPACE: the jobs' namespace
DB = "duckdb://shop.duckdb"  # dbt-ol's dataset namespace: the adapter and the profile's DuckDB path
ORDERS, STAGED, TOTALS = "shop.main.orders", "shop.main.stg_orders", "shop.main.customer_totals"
STG_JOB, TOTALS_JOB = "shop.main.shop.stg_orders", "shop.main.shop.customer_totals"

pytestmark = [pytest.mark.dbt, pytest.mark.slow]


@pytest.fixture(scope="module")
def dbt_ol() -> Path:
    """The dbt-ol command of .venv-dbt, installed by scripts/ensure-dbt when missing."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "ensure-dbt")], capture_output=True, text=True, timeout=1200, check=False
    )
    if done.returncode != 0 or not (BIN / "dbt-ol").exists():
        pytest.fail(f"scripts/ensure-dbt failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return BIN / "dbt-ol"


def dbt_env(project: Path, server: str) -> dict[str, str]:
    """The configuration docs/deploy.md gives, in the environment (nothing of datatrail's own leaks in)."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATATRAIL_", "OPENLINEAGE", "DBT_", "VIRTUAL_ENV", "SHOP_"))
    }
    return {
        **keep,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dbt-ol runs `dbt` from the PATH
        "OPENLINEAGE_URL": server,
        "OPENLINEAGE_NAMESPACE": NAMESPACE,
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


@pytest.fixture(scope="module")
def shop(dbt_ol: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[datatrail.Trail, str]]:
    """`dbt-ol seed`, `dbt-ol run` and `dbt-ol test` once; a Trail on the server that received their events."""
    base = tmp_path_factory.mktemp("dbt")
    project = base / "shop"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
    with httpserver.running(base / "server") as server:
        env = dbt_env(project, server.uri)
        log = base / "dbt.log"
        with log.open("w") as out:
            for command in ("seed", "run", "test"):
                done = subprocess.run(
                    [str(dbt_ol), command], env=env, cwd=project, stdout=out, stderr=subprocess.STDOUT, timeout=900
                )
                if done.returncode != 0:
                    pytest.fail(f"dbt-ol {command} failed ({done.returncode}):\n{log.read_text()[-5000:]}")
        trail = datatrail.connect(server.uri)
        try:
            if not trail.runs():
                pytest.fail(f"dbt-ol sent no event to datatrail:\n{log.read_text()[-5000:]}")
            yield trail, server.uri
        finally:
            trail.close()


def _runs(trail: datatrail.Trail) -> dict[str, list[datatrail.Run]]:
    runs: dict[str, list[datatrail.Run]] = {}
    for r in trail.runs(limit=1000):
        if r.namespace == NAMESPACE:
            runs.setdefault(r.job, []).append(r)
    return runs


def test_each_model_and_test_is_a_job_whose_runs_belong_to_the_dbt_run(shop: tuple[datatrail.Trail, str]) -> None:
    trail, _ = shop
    runs = _runs(trail)
    assert set(runs) == {"dbt-run-shop", STG_JOB, TOTALS_JOB, f"{STG_JOB}.test", f"{TOTALS_JOB}.test"}
    assert len(runs["dbt-run-shop"]) == 3  # seed, run, test: one run of the project job each
    assert all(r.state is RunState.COMPLETE for rs in runs.values() for r in rs)
    (stg,), (totals,) = runs[STG_JOB], runs[TOTALS_JOB]
    assert stg.parent_run_id == totals.parent_run_id
    assert stg.parent_run_id is not None
    project_run = trail.get_run(stg.parent_run_id)
    assert project_run.job == "dbt-run-shop" and set(project_run.children) == {stg.id, totals.id}
    (stg_test,), (totals_test,) = runs[f"{STG_JOB}.test"], runs[f"{TOTALS_JOB}.test"]
    test_run = trail.get_run(stg_test.parent_run_id or "")  # `dbt-ol test`: its own run of the project job
    assert test_run.job == "dbt-run-shop" and set(test_run.children) == {stg_test.id, totals_test.id}
    jobs = {j.name: j for j in trail.jobs(NAMESPACE)}
    assert 'from "shop"."main"."stg_orders"' in (jobs[TOTALS_JOB].sql or "")  # the compiled SQL (sql facet)


def test_each_model_is_a_version_made_by_its_run(shop: tuple[datatrail.Trail, str]) -> None:
    trail, _ = shop
    runs = _runs(trail)
    (stg,), (totals,) = runs[STG_JOB], runs[TOTALS_JOB]
    # dbt-ol sends every model's START before the COMPLETEs: the staged table still gets one version, its run's.
    assert [(v.number, v.key) for v in trail.versions(f"{DB}:{STAGED}")] == [(1, f"run:{stg.id}")]
    assert [(v.number, v.key) for v in trail.versions(f"{DB}:{TOTALS}")] == [(1, f"run:{totals.id}")]
    # The seeded table: dbt-ol reports no seed, so it is the model's source, seen but never written.
    assert [(v.number, v.key) for v in trail.versions(f"{DB}:{ORDERS}")] == [(1, "observed")]
    assert [(v.name, v.number) for v in stg.inputs] == [(ORDERS, 1)]
    assert [(v.name, v.number) for v in stg.outputs] == [(STAGED, 1)]
    assert [(v.name, v.number) for v in totals.inputs] == [(STAGED, 1)]
    assert [(v.name, v.number) for v in totals.outputs] == [(TOTALS, 1)]


def test_schema_yml_descriptions_are_the_versions_schema_and_documentation(shop: tuple[datatrail.Trail, str]) -> None:
    trail, server = shop
    described = trail.describe(f"{DB}:{TOTALS}")
    assert [(f["name"], f["description"]) for f in described["schema"]] == [
        ("customer", "The customer."),
        ("orders", "Number of orders."),
        ("total", "Sum of the order amounts, in euros."),
    ]
    assert described["facets"]["documentation"]["value"]["description"] == (
        "How many orders each customer placed and what they spent."
    )
    assert trail.describe(f"{DB}:{ORDERS}")["facets"]["documentation"]["value"]["description"] == (
        "Raw orders as the shop exports them."  # the source's description (models/sources.yml)
    )
    shown = _datatrail(server, "show", f"{DB}:{STAGED}")
    assert "description: Orders with clean names and types." in shown
    assert "order_id" in shown and "Who ordered, lower case." in shown


def test_the_lineage_runs_from_the_seeded_table_to_the_mart(shop: tuple[datatrail.Trail, str]) -> None:
    trail, server = shop
    graph = trail.lineage(f"{DB}:{TOTALS}", direction="upstream", depth=5)
    assert {n.data["name"] for n in graph.nodes.values() if n.type == "version"} == {ORDERS, STAGED, TOTALS}
    assert {n.data["job"] for n in graph.nodes.values() if n.type == "run"} == {STG_JOB, TOTALS_JOB}
    # dbt-ol's columnLineage facet (parsed from the compiled SQL): total <- stg_orders.amount <- orders.amount
    columns = trail.column_lineage(f"{DB}:{TOTALS}", "total")
    assert {(a, b) for a, b, *_ in columns.edges} == {
        (f"column:{DB}:{ORDERS}@1#amount", f"column:{DB}:{STAGED}@1#amount"),
        (f"column:{DB}:{STAGED}@1#amount", f"column:{DB}:{TOTALS}@1#total"),
    }
    # The CLI against the server, as a user would run it (DATATRAIL_URI).
    tree = _datatrail(server, "lineage", f"{DB}:{TOTALS}")
    assert all(f"{DB}:{name}@1" in tree for name in (ORDERS, STAGED, TOTALS))
    assert f"run {STG_JOB} [COMPLETE]" in tree and f"run {TOTALS_JOB} [COMPLETE]" in tree
    folded = json.loads(_datatrail(server, "lineage", f"{DB}:{TOTALS}", "--level", "dataset", "--format", "json"))
    assert f"job:{NAMESPACE}:{STG_JOB}" in json.dumps(folded)


def test_dbt_tests_are_check_results_of_the_versions_they_read(shop: tuple[datatrail.Trail, str]) -> None:
    trail, _ = shop
    staged = [(c.rule, c.column, c.success) for c in trail.check_results(f"{DB}:{STAGED}")]
    assert sorted(staged) == [("not_null", "order_id", True), ("unique", "order_id", True)]
    totals = [(c.rule, c.name, c.column, c.success) for c in trail.check_results(f"{DB}:{TOTALS}")]
    assert totals == [("unique", "unique_customer_totals_customer", "customer", True)]


def _datatrail(server: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "datatrail"), *args],
        env={**env, "DATATRAIL_URI": server, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
