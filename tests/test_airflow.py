"""A real Apache Airflow 3 with its OpenLineage provider, reporting to a real `datatrail serve` (issue 17).

Airflow lives in its own virtual environment, ``.venv-airflow``, made by
``scripts/ensure-airflow`` (``scripts/test`` runs it; this test runs it too, and
it returns at once when the environment is there). The DAG is
``examples/openlineage/airflow_dag.py``, configured as docs/deploy.md says:
standalone metadata in SQLite, ``airflow dags test``, the provider's HTTP
transport pointed at the server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import datatrail
from datatrail.core.errors import NotFound
from datatrail.core.model import RunState
from tests import httpserver

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = ROOT / ".venv-airflow" / "bin" / "airflow"
DAG = ROOT / "examples" / "openlineage" / "airflow_dag.py"
NAMESPACE = "shop"  # AIRFLOW__OPENLINEAGE__NAMESPACE: the jobs' namespace

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def airflow() -> Path:
    """The airflow command of .venv-airflow, installed by scripts/ensure-airflow when missing."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "ensure-airflow")], capture_output=True, text=True, timeout=1200, check=False
    )
    if done.returncode != 0 or not AIRFLOW.exists():
        pytest.fail(f"scripts/ensure-airflow failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return AIRFLOW


def airflow_env(home: Path, data: Path, server: str) -> dict[str, str]:
    """The configuration docs/deploy.md gives, in the environment (nothing of datatrail's own leaks in)."""
    keep = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATATRAIL_", "AIRFLOW", "OPENLINEAGE", "VIRTUAL_ENV"))
    }
    return {
        **keep,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": f'{{"type": "http", "url": "{server}", "endpoint": "api/v1/lineage"}}',
        "AIRFLOW_CONN_SHOP_DB": f'{{"conn_type": "sqlite", "host": "{data / "shop.db"}"}}',
        "SHOP_DATA": str(data),
    }


@pytest.fixture(scope="module")
def shop(airflow: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[datatrail.Trail, Path]]:
    """The DAG run once by `airflow dags test`; a Trail on the server that received its events, and the data."""
    base = tmp_path_factory.mktemp("airflow")
    home, data = base / "home", base / "data"
    (home / "dags").mkdir(parents=True)
    data.mkdir()
    shutil.copy(DAG, home / "dags" / "shop.py")
    (data / "orders.csv").write_text("id,customer,amount\n1,ann,10.5\n2,bob,3\n3,ann,1.5\n")
    with httpserver.running(base / "server") as server:
        env = airflow_env(home, data, server.uri)
        log = base / "airflow.log"
        with log.open("w") as out:
            for args in (["db", "migrate"], ["dags", "test", "shop", "2026-12-02"]):
                subprocess.run(
                    [str(airflow), *args], env=env, cwd=base, stdout=out, stderr=subprocess.STDOUT, timeout=900
                )
        trail = datatrail.connect(server.uri)
        try:
            if not trail.runs():
                pytest.fail(f"Airflow sent no event to datatrail:\n{log.read_text()[-5000:]}")
            yield trail, data
        finally:
            trail.close()


def _runs(trail: datatrail.Trail) -> dict[str, datatrail.Run]:
    return {r.job: r for r in trail.runs(limit=1000) if r.namespace == NAMESPACE}


def test_the_files_the_tasks_wrote_are_versions_with_their_lineage(shop: tuple[datatrail.Trail, Path]) -> None:
    trail, data = shop
    assert (data / "report.csv").read_text().splitlines() == ["customer,total", "ann,12.0", "bob,3.0"]
    for name in ("orders.csv", "shop.db", "report.csv"):
        assert [v.number for v in trail.versions(f"file:{data / name}")] == [1]
    runs = _runs(trail)
    load, export = runs["shop.load_sqlite"], runs["shop.export_report"]
    assert [v.name for v in load.inputs] == [str(data / "orders.csv")]
    assert [v.name for v in load.outputs] == [str(data / "shop.db")]
    assert [v.name for v in export.inputs] == [str(data / "shop.db")]
    assert trail.get(f"file:{data / 'report.csv'}@latest").run_id == export.id
    graph = trail.lineage(f"file:{data / 'report.csv'}", direction="upstream", depth=5)
    jobs = {n.data["job"] for n in graph.nodes.values() if n.type == "run"}
    assert jobs == {"shop.export_report", "shop.load_sqlite"}
    upstream = {n.data["name"] for n in graph.nodes.values() if n.type == "version"}
    assert upstream == {str(data / n) for n in ("orders.csv", "shop.db", "report.csv")}


def test_an_output_named_but_never_written_is_planned_not_a_version(shop: tuple[datatrail.Trail, Path]) -> None:
    trail, data = shop
    never = _runs(trail)["shop.write_never"]
    assert never.state is RunState.FAIL and "nothing written" in (never.error or "")
    assert not (data / "never_written.txt").exists()
    assert never.outputs == () and never.planned_outputs == (("file", str(data / "never_written.txt")),)
    assert trail.versions(f"file:{data / 'never_written.txt'}") == []
    with pytest.raises(NotFound):
        trail.get(f"file:{data / 'never_written.txt'}@latest")


def test_the_dag_run_lists_its_task_runs(shop: tuple[datatrail.Trail, Path]) -> None:
    trail, _ = shop
    runs = _runs(trail)
    dag = runs["shop"]
    tasks = {runs[f"shop.{t}"].id for t in ("load_sqlite", "summarize", "export_report", "write_never")}
    assert dag.state is RunState.FAIL  # write_never failed
    assert set(trail.get_run(dag.id).children) == tasks
    assert all(runs[f"shop.{t}"].parent_run_id == dag.id for t in ("load_sqlite", "export_report", "write_never"))
    # `airflow dags test` sends no START for the DAG run: its start comes from the DAG run's facets.
    assert dag.started_at is not None and dag.ended_at is not None and dag.started_at < dag.ended_at
    assert all(r.state is not RunState.RUNNING for r in runs.values())  # every run sent its ending


def test_jobs_are_lineage_nodes_and_run_ids_resolve(shop: tuple[datatrail.Trail, Path]) -> None:
    trail, _ = shop
    jobs = {j.name: j for j in trail.jobs(NAMESPACE)}
    assert {"shop", "shop.load_sqlite", "shop.summarize", "shop.export_report", "shop.write_never"} <= set(jobs)
    feeding = trail.job_lineage(NAMESPACE, "shop.export_report", direction="upstream", depth=3)
    assert {n.data["job"] for n in feeding.nodes.values() if n.type == "run"} == {
        "shop.export_report",
        "shop.load_sqlite",
    }
    assert jobs["shop.load_sqlite"].description == "Loads the orders into SQLite."  # doc_md
    assert jobs["shop"].description == "Orders to a report."
    queries = [j.sql for j in jobs.values() if j.sql]  # the SQL hook's per-query job
    assert queries and "CREATE TABLE IF NOT EXISTS totals" in queries[0]
    dag = trail.job_lineage(NAMESPACE, "shop", depth=1)  # a DAG reads and writes nothing itself
    assert {n.data["job"] for n in dag.nodes.values() if n.type == "run"} == {"shop"}
    # Airflow 3's run ids are UUIDv7: they share their first characters, the labels still resolve.
    ids = [r.id for r in trail.runs(limit=1000)]
    labels = trail.catalog.run_labels(ids)
    assert len({i[:8] for i in ids}) < len(ids) and len(set(labels.values())) == len(ids)
    assert all(trail.get_run(label).id == run_id for run_id, label in labels.items())
