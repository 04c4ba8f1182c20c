"""autolog with real PySpark in local mode (Java 17+): runs, inputs, outputs and column lineage from the plan.

Marked ``spark``: ``pytest -m "not spark"`` skips them on a machine without Java.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

import datatrail
from datatrail.core.model import RunState
from datatrail.server import create_app
from tests.conftest import write
from tests.test_cli import datatrail_command

pytestmark = [
    pytest.mark.spark,
    # PySpark's note, on Python UDFs, that it prefers pandas < 3 (the project's pandas is 3).
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # PySpark's note that it prefers pandas < 3
    from pyspark.errors import AnalysisException, PythonException, UnsupportedOperationException
    from pyspark.sql import DataFrame, SparkSession, Window
    from pyspark.sql import functions as F


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One local Spark for the module: two threads, two shuffle partitions, no UI."""
    home = tmp_path_factory.mktemp("spark")
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as env:
        env.setenv("PYSPARK_PYTHON", sys.executable)  # Python UDFs run in this environment's Python
        warnings.simplefilter("ignore", FutureWarning)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("datatrail-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.warehouse.dir", str(home / "warehouse"))
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={home}")
            # A DataSource V2 catalog that Spark ships: JDBC, over Derby in memory.
            .config("spark.sql.catalog.db", "org.apache.spark.sql.execution.datasources.v2.jdbc.JDBCTableCatalog")
            .config("spark.sql.catalog.db.url", "jdbc:derby:memory:datatrail;create=true")
            .config("spark.sql.catalog.db.driver", "org.apache.derby.iapi.jdbc.AutoloadedDriver")
            .getOrCreate()
        )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def trail(workdir: Path) -> Iterator[datatrail.Trail]:
    t = datatrail.init(workdir)
    datatrail.autolog(trail=t)
    try:
        yield t
    finally:
        datatrail.autolog(disable=True)
        t.close()


def shop(root: Path) -> tuple[Path, Path]:
    """customers.csv (id, name, country) and orders.parquet (order_id, customer_id, amount)."""
    customers = write(root / "data" / "customers.csv", "id,name,country\n1,Ada,UK\n2,Bo,SE\n3,Cy,UK\n4,Di,NO\n")
    orders = root / "data" / "orders.parquet"
    table = pa.table(
        {
            "order_id": pa.array(range(1, 9), pa.int64()),
            "customer_id": pa.array([1, 1, 2, 3, 3, 3, 4, 9], pa.int64()),
            "amount": pa.array([10.0, 5.0, 7.5, 1.0, 2.0, 3.0, 100.0, 50.0]),
        }
    )
    pq.write_table(table, orders)
    return customers, orders


def by_country(spark: SparkSession, customers: Path, orders: Path) -> DataFrame:
    c = spark.read.option("header", True).option("inferSchema", True).csv(str(customers))
    o = spark.read.parquet(str(orders))
    joined = o.join(c, o.customer_id == c.id).where(F.col("amount") > 1.5)
    return joined.groupBy("country").agg(F.sum("amount").alias("total"), F.count("*").alias("orders"))


def edges_into(trail: datatrail.Trail, ref: str | datatrail.Version, column: str) -> dict[str, list[dict[str, Any]]]:
    """The input columns feeding one output column, by ``name#column``, with their transformations."""
    result = trail.column_lineage(ref, column, depth=1)
    found: dict[str, list[dict[str, Any]]] = {}
    for source, target, transformations in result.edges:
        if target.endswith(f"#{column}"):
            node = result.nodes[source]
            found[f"{node['name']}#{node['column']}"] = transformations or []
    return found


def subtypes(transformations: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(t["type"], t["subtype"]) for t in transformations}


def child_runs(trail: datatrail.Trail, parent: str) -> list[datatrail.Run]:
    return [r for r in trail.runs(limit=100) if r.parent_run_id == parent]


# ---------------------------------------------------------------- a DataFrame job


def test_a_join_and_aggregation_written_as_parquet_is_a_run_with_its_inputs_and_column_lineage(
    spark: SparkSession, trail: datatrail.Trail, workdir: Path
) -> None:
    customers, orders = shop(workdir)
    out = workdir / "out" / "by_country.parquet"
    with trail.run("pipeline") as outer:
        df = by_country(spark, customers, orders)
        df.write.mode("overwrite").parquet(str(out))
    expected = {r["country"]: (r["total"], r["orders"]) for r in by_country(spark, customers, orders).collect()}
    assert {r["country"]: (r["total"], r["orders"]) for r in spark.read.parquet(str(out)).collect()} == expected
    assert expected == {"UK": (20.0, 4), "SE": (7.5, 1), "NO": (100.0, 1)}  # capture changed nothing

    # The reads are inputs of the surrounding run, like pandas reads.
    assert sorted(v.name for v in trail.get_run(outer.id).inputs) == ["data/customers.csv", "data/orders.parquet"]
    (write_run,) = child_runs(trail, outer.id)
    run = trail.get_run(write_run.id)
    assert run.state is RunState.COMPLETE
    assert run.job == "datatrail-tests.write_parquet.out_by_country.parquet"
    assert sorted(v.name for v in run.inputs) == ["data/customers.csv", "data/orders.parquet"]
    (output,) = run.outputs
    assert (output.namespace, output.name) == ("default", "out/by_country.parquet")
    assert output.digest is not None and output.format == "parquet-dir"
    assert [f.path for f in trail.manifest(output) if f.path.endswith(".parquet")]  # the part files, hashed
    assert trail.add(out, name="out/by_country.parquet").digest == output.digest  # as `datatrail add` hashes it

    # Facts: Spark itself, the call site, the schemas, and the row count Spark reported.
    details = run.facets["spark_applicationDetails"]["value"]
    assert details["appName"] == "datatrail-tests" and details["master"] == "local[2]"
    assert details["applicationId"] == spark.sparkContext.applicationId
    assert run.facets["processing_engine"]["value"]["version"] == spark.version
    job = run.facets["spark_job"]["value"]
    assert job["rowCount"] == 3
    assert job["callSite"].startswith(f"{__file__}:")
    assert job["schemas"]["default:out/by_country.parquet"] == [
        ["country", "string"],
        ["total", "double"],
        ["orders", "bigint"],
    ]
    assert ["amount", "double"] in job["schemas"]["default:data/orders.parquet"]

    # Column lineage from the plan: aggregated, grouped and joined columns.
    ref = "out/by_country.parquet"
    assert edges_into(trail, ref, "total") == {
        "data/orders.parquet#amount": [
            {"type": "DIRECT", "subtype": "AGGREGATION", "description": "", "masking": False}
        ]
    }
    assert subtypes(edges_into(trail, ref, "country")["data/customers.csv#country"]) == {("DIRECT", "IDENTITY")}
    assert edges_into(trail, ref, "orders") == {}  # count(*) reads no column
    whole = edges_into(trail, ref, "*")
    assert subtypes(whole["data/orders.parquet#customer_id"]) == {("INDIRECT", "JOIN")}
    assert subtypes(whole["data/customers.csv#id"]) == {("INDIRECT", "JOIN")}
    assert subtypes(whole["data/orders.parquet#amount"]) == {("INDIRECT", "FILTER")}
    assert subtypes(whole["data/customers.csv#country"]) == {("INDIRECT", "GROUP_BY")}

    # The Marquez-shaped endpoint reads the same facet.
    with TestClient(create_app(trail._store)) as client:
        node = "datasetField:default:out/by_country.parquet:total"
        body = client.get("/api/v1/column-lineage", params={"nodeId": node, "direction": "upstream"}).json()
        fields = {n["id"]: n for n in body["graph"]}[node]["data"]["inputFields"]
        assert {(f["dataset"], f["field"]) for f in fields} == {("data/orders.parquet", "amount")}


def test_windows_udfs_and_unions_in_column_lineage(spark: SparkSession, trail: datatrail.Trail, workdir: Path) -> None:
    customers, orders = shop(workdir)
    o = spark.read.parquet(str(orders))
    shout = F.udf(lambda s: s.upper(), "string")
    c = spark.read.option("header", True).option("inferSchema", True).csv(str(customers))
    ranked = (
        o.join(c, o.customer_id == c.id)
        .withColumn("rank", F.row_number().over(Window.partitionBy("country").orderBy(F.desc("amount"))))
        .select(
            shout("name").alias("who"),
            "amount",
            "rank",
            F.when(F.col("amount") > 5, "big").otherwise("small").alias("size"),
        )
    )
    both = ranked.unionByName(ranked.where(F.col("rank") == 1))
    both.write.mode("overwrite").json(str(workdir / "out" / "ranked"))
    ref = "out/ranked"
    who = edges_into(trail, ref, "who")["data/customers.csv#name"]
    assert subtypes(who) == {("DIRECT", "TRANSFORMATION")} and who[0]["description"] == "UDF <lambda>"
    assert subtypes(edges_into(trail, ref, "amount")["data/orders.parquet#amount"]) == {("DIRECT", "IDENTITY")}
    rank = edges_into(trail, ref, "rank")
    assert subtypes(rank["data/customers.csv#country"]) == {("INDIRECT", "WINDOW")}
    assert subtypes(rank["data/orders.parquet#amount"]) == {("INDIRECT", "WINDOW")}
    assert subtypes(edges_into(trail, ref, "size")["data/orders.parquet#amount"]) == {("INDIRECT", "CONDITIONAL")}
    assert [v.name for v in trail.get_run(trail.runs(limit=1)[0].id).outputs] == ["out/ranked"]


# ---------------------------------------------------------------- SQL and catalog tables


def test_sql_ctas_into_a_warehouse_table_reaches_the_files_it_was_read_from(
    spark: SparkSession, trail: datatrail.Trail, workdir: Path
) -> None:
    customers, orders = shop(workdir)
    spark.sql("DROP TABLE IF EXISTS sales")
    spark.sql("DROP TABLE IF EXISTS top_sales")
    by_country(spark, customers, orders).createOrReplaceTempView("by_country")
    statement = "CREATE TABLE sales USING parquet AS SELECT country, total * 100 AS cents FROM by_country"
    spark.sql(statement)
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    table = trail.get(f"{warehouse}:spark_catalog.default.sales")
    assert table.digest is not None  # the table's directory of part files, hashed
    run = trail.get_run(trail.runs(limit=1)[0].id)
    assert run.state is RunState.COMPLETE
    assert run.job == "datatrail-tests.create_table_as_select.spark_catalog.default.sales"
    (job,) = [j for j in trail.jobs() if j.name == run.job]
    assert job.facets["sql"]["value"]["query"] == statement
    assert run.facets["spark_job"]["value"]["rowCount"] == 3
    assert sorted(v.name for v in run.inputs) == ["data/customers.csv", "data/orders.parquet"]
    cents = edges_into(trail, table.ref, "cents")
    assert subtypes(cents["data/orders.parquet#amount"]) == {("DIRECT", "AGGREGATION")}

    # A table read by the next write: the lineage of that one reaches the files.
    spark.table("sales").where("cents > 1000").write.saveAsTable("top_sales")
    top = trail.get(f"{warehouse}:spark_catalog.default.top_sales")
    upstream = trail.lineage(top.ref, direction="upstream", depth=5)
    names = {n.data.get("name") for n in upstream.nodes.values()}
    assert {"spark_catalog.default.sales", "data/orders.parquet", "data/customers.csv"} <= names
    deep = trail.column_lineage(top.ref, "cents", depth=5)
    reached = {(n["name"], n["column"]) for n in deep.nodes.values()}
    assert ("data/orders.parquet", "amount") in reached

    # The CLI: the column tree and JSON.
    tree = subprocess.run(
        [*datatrail_command(), "lineage", top.ref, "--columns", "cents"], capture_output=True, text=True, cwd=workdir
    )
    assert tree.returncode == 0, tree.stderr
    assert "cents" in tree.stdout and "data/orders.parquet.amount" in tree.stdout and "AGGREGATION" in tree.stdout
    raw = subprocess.run(
        [*datatrail_command(), "lineage", top.ref, "--columns", "--json"], capture_output=True, text=True, cwd=workdir
    )
    assert raw.returncode == 0, raw.stderr
    doc = json.loads(raw.stdout)
    assert any(e["source"].endswith("data/orders.parquet@1#amount") for e in doc["edges"])
    stray = subprocess.run(
        [*datatrail_command(), "lineage", top.ref, "cents"], capture_output=True, text=True, cwd=workdir
    )
    assert stray.returncode != 0 and "goes with --columns" in stray.stderr and "Traceback" not in stray.stderr


def test_insert_into_by_dataframe_and_by_sql_are_runs(
    spark: SparkSession, trail: datatrail.Trail, workdir: Path
) -> None:
    _, orders = shop(workdir)
    spark.sql("DROP TABLE IF EXISTS amounts")
    spark.sql("CREATE TABLE amounts (id BIGINT, value DOUBLE) USING parquet")
    spark.read.parquet(str(orders)).select("order_id", "amount").write.insertInto("amounts")
    spark.sql(f"INSERT INTO amounts SELECT order_id, amount * 2 FROM parquet.`{orders}`")
    runs = trail.runs(limit=2)
    assert [r.job for r in reversed(runs)] == ["datatrail-tests.insert_into.spark_catalog.default.amounts"] * 2
    assert all(trail.get_run(r.id).state is RunState.COMPLETE for r in runs)
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    first, second = trail.versions(f"{warehouse}:spark_catalog.default.amounts")
    assert first.digest != second.digest  # each write changed the table's files
    # insertInto is by position: the table's column names, fed by the DataFrame's.
    assert subtypes(edges_into(trail, first.ref, "value")["data/orders.parquet#amount"]) == {("DIRECT", "IDENTITY")}
    assert subtypes(edges_into(trail, second.ref, "value")["data/orders.parquet#amount"]) == {
        ("DIRECT", "TRANSFORMATION")
    }
    assert spark.table("amounts").count() == 16


def test_dataframe_writer_v2_into_a_v2_catalog(spark: SparkSession, trail: datatrail.Trail, workdir: Path) -> None:
    _, orders = shop(workdir)
    spark.read.parquet(str(orders)).writeTo("db.APP.ORDERS").createOrReplace()
    totals = spark.table("db.APP.ORDERS").groupBy("customer_id").agg(F.sum("amount").alias("spent"))
    totals.writeTo("db.APP.SPENT").createOrReplace()
    spark.sql("INSERT INTO db.APP.SPENT SELECT customer_id, max(amount) FROM db.APP.ORDERS GROUP BY customer_id")
    first, second, third = reversed(trail.runs(limit=3))
    assert [r.job for r in (first, second, third)] == [
        "datatrail-tests.write_to_create_or_replace.db.APP.ORDERS",
        "datatrail-tests.write_to_create_or_replace.db.APP.SPENT",
        "datatrail-tests.insert_into.db.APP.SPENT",
    ]
    assert all(trail.get_run(r.id).state is RunState.COMPLETE for r in (first, second, third))
    assert [v.name for v in trail.get_run(first.id).inputs] == ["data/orders.parquet"]
    ns = "derby:memory:datatrail"  # the JDBC catalog's url
    assert [(v.namespace, v.name) for v in trail.get_run(second.id).inputs] == [(ns, "db.APP.ORDERS")]
    (spent,) = trail.get_run(second.id).outputs
    assert (spent.namespace, spent.name) == (ns, "db.APP.SPENT")
    assert subtypes(edges_into(trail, spent, "spent")["db.APP.ORDERS#amount"]) == {("DIRECT", "AGGREGATION")}
    upstream = trail.lineage(trail.get_run(third.id).outputs[0], direction="upstream", depth=5)
    assert "data/orders.parquet" in {n.data.get("name") for n in upstream.nodes.values()}


# ---------------------------------------------------------------- failure, cost, laziness


def test_a_failing_spark_action_is_a_fail_run_with_sparks_error(
    spark: SparkSession, trail: datatrail.Trail, workdir: Path
) -> None:
    _, orders = shop(workdir)
    spark.sql("DROP TABLE IF EXISTS once")
    spark.read.parquet(str(orders)).write.saveAsTable("once")
    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_ALREADY_EXISTS"):
        spark.read.parquet(str(orders)).write.saveAsTable("once")
    failed = trail.get_run(trail.runs(limit=1)[0].id)
    assert failed.state is RunState.FAIL
    assert "TABLE_OR_VIEW_ALREADY_EXISTS" in (failed.error or "")
    assert failed.outputs == ()

    boom = F.udf(lambda x: int(f"bad amount {x}"), "int")  # raises ValueError in the Python worker
    bad = spark.read.parquet(str(orders)).select(boom("amount").alias("x"))
    with pytest.raises(PythonException, match="bad amount"):
        bad.write.mode("overwrite").parquet(str(workdir / "out" / "bad.parquet"))
    failed = trail.get_run(trail.runs(limit=1)[0].id)
    assert failed.state is RunState.FAIL and "bad amount" in (failed.error or "")
    assert failed.job == "datatrail-tests.write_parquet.out_bad.parquet"

    # DataFrameWriterV2 and MERGE need a catalog that supports them; the session catalog's parquet tables do not.
    with pytest.raises(AnalysisException):
        spark.read.parquet(str(orders)).writeTo("once").append()
    failed = trail.get_run(trail.runs(limit=1)[0].id)
    assert (failed.state, failed.job) == (RunState.FAIL, "datatrail-tests.write_to_append.spark_catalog.default.once")
    with pytest.raises(UnsupportedOperationException, match="MERGE INTO TABLE"):
        spark.sql(
            f"MERGE INTO once USING parquet.`{orders}` src ON once.order_id = src.order_id WHEN MATCHED THEN DELETE"
        )
    failed = trail.get_run(trail.runs(limit=1)[0].id)
    assert (failed.state, failed.job) == (RunState.FAIL, "datatrail-tests.merge_into.spark_catalog.default.once")
    assert failed.error


def test_capture_triggers_no_extra_spark_job(spark: SparkSession, workdir: Path) -> None:
    customers, orders = shop(workdir)
    tracker = spark.sparkContext.statusTracker()

    def jobs_of(group: str, target: Path) -> int:
        spark.sparkContext.setJobGroup(group, group)
        try:
            by_country(spark, customers, orders).write.mode("overwrite").parquet(str(target))
        finally:
            spark.sparkContext.setJobGroup("", "")
        return len(tracker.getJobIdsForGroup(group))

    plain = jobs_of("plain", workdir / "plain.parquet")
    t = datatrail.init(workdir)
    datatrail.autolog(trail=t)
    try:
        captured = jobs_of("captured", workdir / "captured.parquet")
    finally:
        datatrail.autolog(disable=True)
        t.close()
    assert captured == plain
    assert datatrail.connect().runs(limit=1)[0].job.endswith("captured.parquet")


def test_autolog_does_not_import_pyspark(workdir: Path) -> None:
    code = "import sys, datatrail; datatrail.autolog(); assert 'pyspark' not in sys.modules, 'imported'; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=workdir)
    assert done.stdout.strip() == "ok", done.stderr
