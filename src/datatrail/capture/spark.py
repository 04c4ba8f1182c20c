"""PySpark capture for ``datatrail.autolog()``: each write is a run, its lineage taken from Spark's analysed plan.

autolog patches ``DataFrameWriter`` (``save``, ``parquet``, ``csv``, ``json``,
``orc``, ``text``, ``saveAsTable``, ``insertInto``), ``DataFrameWriterV2``
(``create``, ``replace``, ``createOrReplace``, ``append``, ``overwrite``,
``overwritePartitions``), ``SparkSession.sql`` (statements that write: INSERT,
CREATE TABLE AS SELECT, REPLACE TABLE AS SELECT, MERGE) and ``DataFrameReader``
(reads become inputs of the surrounding ``trail.run``, like pandas reads).

A write is one run (a child of the surrounding ``trail.run`` when there is
one): START before Spark acts, then COMPLETE with the relations the written
plan reads (from ``queryExecution().analyzed()``, not from which readers were
called), the written path or table, the schema of each, the ``columnLineage``
facet, the written row count from Spark's own SQL metrics, and the Spark
version, application and SQL text or call site — or FAIL with Spark's error.
Reading the plan runs no Spark job. Local files (a directory of part files)
are hashed and profiled like ``datatrail add`` does; catalog tables are named
``<namespace>:<catalog>.<schema>.<table>`` (see docs/capture.md).
Spark Connect sessions have no JVM plan here and are not captured.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import traceback
import uuid
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datatrail._version import __version__
from datatrail.capture import facts
from datatrail.capture.run import RunContext
from datatrail.capture.spark_names import (
    identities,
    label,
    local_path,
    location_identity,
    path_identity,
    qualify,
    resolve_parts,
    table_location,
    table_namespace,
    table_parts,
)
from datatrail.capture.spark_plan import PlanLineage, analyse, catalog_leaf, leaves_of
from datatrail.core.errors import DatatrailError, InvalidInput
from datatrail.core.model import DEFAULT_NAMESPACE, EventType, RunState
from datatrail.events import PRODUCER, build_run_event, dataset_facets
from datatrail.recorder import Recorder
from datatrail.service import Trail

CurrentRun = Callable[[], RunContext | None]
GetTrail = Callable[[], Trail]

READERS = ("load", "parquet", "csv", "json", "orc", "text", "table")
WRITERS = ("save", "parquet", "csv", "json", "orc", "text", "saveAsTable", "insertInto")
WRITERS_V2 = ("create", "replace", "createOrReplace", "append", "overwrite", "overwritePartitions")
_RW = "pyspark.sql.readwriter"
# autolog's targets: (module:class, attribute, role, -, -); the role "spark" hands the wrapping to wrap() below.
TARGETS: list[tuple[str, str, str, int, str]] = [
    *[(f"{_RW}:DataFrameReader", m, "spark", -1, "") for m in READERS],
    *[(f"{_RW}:DataFrameWriter", m, "spark", -1, "") for m in WRITERS],
    (f"{_RW}:DataFrameWriterV2", "__init__", "spark", -1, ""),
    *[(f"{_RW}:DataFrameWriterV2", m, "spark", -1, "") for m in WRITERS_V2],
    ("pyspark.sql.session:SparkSession", "sql", "spark", -1, ""),
]
# Parsed statements that write, and the verb that names their job.
SQL_WRITES = {
    "InsertIntoStatement": "insert_into",
    "CreateTableAsSelect": "create_table_as_select",
    "ReplaceTableAsSelect": "replace_table_as_select",
    "MergeIntoTable": "merge_into",
    "InsertIntoDir": "insert_overwrite_directory",
}
FACET_URL = "https://openlineage.io/spec/facets/{v}/{name}.json#/$defs/{name}"
_local = threading.local()


def _std(schema: str, spec: str = "1-0-1", **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACET_URL.format(v=spec, name=schema), **fields}


@dataclass
class Target:
    """Where a write goes: a path (URI) or a catalog table (its name parts)."""

    uri: str | None = None
    table: tuple[str, ...] = ()
    names: list[str] | None = None  # the table's columns, for an insert by position


@dataclass
class Write:
    """One write about to happen: the session, what it writes, and the plan of what it writes (when known)."""

    spark: Any
    verb: str
    target: Target | None
    jplan: Any = None  # the analysed plan of the written data (a DataFrame write); a statement's comes later
    sql: str | None = None
    call_site: str = ""


# ---------------------------------------------------------------- wrapping


def wrap(original: Callable[..., Any], owner: str, method: str, current_run: CurrentRun, trail: GetTrail) -> Any:
    """The patched ``owner.method``: records the read or write, runs ``original`` unchanged."""
    if owner == "DataFrameReader":
        return _wrap_read(original, current_run)
    if owner == "DataFrameWriterV2" and method == "__init__":

        @functools.wraps(original)
        def init(self: Any, df: Any, table: str, *args: Any, **kwargs: Any) -> None:
            original(self, df, table, *args, **kwargs)
            self._datatrail_table = table  # the JVM writer keeps the name private

        init.__datatrail_original__ = original  # type: ignore[attr-defined]
        return init

    def prepare(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Write | None:
        if owner == "SparkSession":
            return _sql_write(obj, args, kwargs)
        if owner == "DataFrameWriterV2":
            table = getattr(obj, "_datatrail_table", None)
            target = Target(table=table_parts(obj._spark, table)) if isinstance(table, str) else None
            return Write(obj._spark, f"write_to_{_snake(method)}", target, _jplan(obj._df))
        return _writer_write(obj, method, args, kwargs)

    @functools.wraps(original)
    def capture(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "busy", False):
            return original(self, *args, **kwargs)
        run: _SparkRun | None = None
        try:
            write = prepare(self, args, kwargs)
            if write is not None:
                write.call_site = _call_site()
                run = _SparkRun.start(write, current_run, trail)
        except Exception as exc:  # py4j or store errors: losing a lineage record must not stop the job
            _warn(f"could not prepare the capture of {owner}.{method}", exc)
            run = None
        if run is None:
            return original(self, *args, **kwargs)
        _local.busy = True
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            _local.busy = False
            run.fail(exc)
            raise
        _local.busy = False
        run.complete(result)
        return result

    capture.__datatrail_original__ = original  # type: ignore[attr-defined]
    return capture


def _wrap_read(original: Callable[..., Any], current_run: CurrentRun) -> Any:
    seen: weakref.WeakKeyDictionary[RunContext, set[tuple[str, str]]] = weakref.WeakKeyDictionary()

    @functools.wraps(original)
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        df = original(self, *args, **kwargs)
        run = current_run()
        if run is None or getattr(_local, "busy", False):
            return df
        try:
            keys = seen.setdefault(run, set())
            for leaf in leaves_of(_jplan(df)).values():
                for namespace, name, local in identities(run.recorder, self._spark, leaf):
                    if local is not None and (namespace, name) not in keys and local.exists():
                        keys.add((namespace, name))
                        version = run.recorder.register(local, name=name, namespace=namespace, profile=False).version
                        run.input(version)
        except Exception as exc:
            _warn("could not record a Spark read", exc)
        return df

    read.__datatrail_original__ = original  # type: ignore[attr-defined]
    return read


def _writer_write(writer: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Write | None:
    spark = writer._spark
    verb = {"saveAsTable": "save_as_table", "insertInto": "insert_into"}.get(method, f"write_{method}")
    if method in ("saveAsTable", "insertInto"):
        name = args[0] if args else kwargs.get("name", kwargs.get("tableName"))
        if not isinstance(name, str):
            return None
        target = Target(table=table_parts(spark, name))
        if method == "insertInto":
            try:
                target.names = list(spark.table(name).columns)  # analysis only: no job
            except Exception:
                target.names = None  # no such table: Spark's own error ends the run FAIL
        return Write(spark, verb, target, _jplan(writer._df))
    path = args[0] if args else kwargs.get("path")
    if not isinstance(path, str | os.PathLike):
        return None  # a source without a path (JDBC, a sink configured by options): nothing to name
    return Write(spark, verb, Target(uri=qualify(spark, os.fspath(path))), _jplan(writer._df))


def _sql_write(spark: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Write | None:
    query = args[0] if args else kwargs.get("sqlQuery")
    if not isinstance(query, str) or not hasattr(spark, "_jsparkSession"):
        return None
    try:
        parsed = spark._jsparkSession.sessionState().sqlParser().parsePlan(query)
    except Exception:
        return None  # Spark reports the syntax error itself, and nothing was written
    kind = parsed.getClass().getSimpleName()
    if kind not in SQL_WRITES:
        return None
    target: Target | None = None
    parts = _parsed_target(parsed, kind)
    if parts:
        target = Target(table=resolve_parts(spark, parts))
    return Write(spark, SQL_WRITES[kind], target, sql=query.strip())


def _parsed_target(parsed: Any, kind: str) -> list[str]:
    """The table a parsed statement writes (``UnresolvedRelation`` or ``UnresolvedIdentifier``)."""
    node = {
        "InsertIntoStatement": "table",
        "CreateTableAsSelect": "name",
        "ReplaceTableAsSelect": "name",
        "MergeIntoTable": "targetTable",
    }.get(kind)
    if node is None:
        return []
    found = getattr(parsed, node)()
    for _ in range(4):  # through SubqueryAlias and friends to the name
        simple = found.getClass().getSimpleName()
        if simple in ("UnresolvedRelation", "UnresolvedIdentifier"):
            seq = found.multipartIdentifier() if simple == "UnresolvedRelation" else found.nameParts()
            return [str(seq.apply(i)) for i in range(seq.size())]
        children = found.children()
        if children.size() == 0:
            return []
        found = children.apply(0)
    return []


# ---------------------------------------------------------------- one write as one run


class _SparkRun:
    def __init__(self, write: Write, recorder: Recorder, parent: RunContext | None) -> None:
        self.write = write
        self.recorder = recorder
        self.id = str(uuid.uuid4())
        self.namespace = parent.namespace if parent is not None else DEFAULT_NAMESPACE
        self.parent: tuple[str, str, str] | None = None
        if parent is not None:
            self.parent = (parent.id, parent.namespace, parent.job)
        elif (env := facts.parent_from_env()) is not None:
            self.parent = (env.run_id, env.namespace, env.job)
        self.workflow = parent.workflow if parent is not None else facts.workflow_from_env()
        spark = write.spark
        target = write.target
        what = ".".join(target.table) if target and target.table else label(target.uri if target else None)
        self.job = f"{spark.sparkContext.appName}.{write.verb}.{what}"
        self.executions = _execution_count(spark)

    @classmethod
    def start(cls, write: Write, current_run: CurrentRun, get_trail: GetTrail) -> _SparkRun:
        parent = current_run()
        recorder = parent.recorder if parent is not None else get_trail().recorder
        run = cls(write, recorder, parent)
        run.send(
            EventType.START,
            run_facts={
                "user": recorder.user,
                "host": recorder.host,
                "command": facts.command_line(),
                "cwd": os.getcwd(),
                "params": {},
                "workflow": run.workflow,
                "pid": os.getpid(),
            },
        )
        return run

    def send(self, state: EventType | RunState, **kwargs: Any) -> dict[str, Any]:
        event = build_run_event(
            state, self.id, self.namespace, self.job, parent=self.parent, job_type="spark", **kwargs
        )
        event["run"]["facets"].update(_engine_facets(self.write.spark))
        if self.write.sql:
            event["job"]["facets"]["sql"] = _std("SQLJobFacet", query=self.write.sql)
        self.recorder.write(event, f"run.{state.value.lower()}")
        return event

    def fail(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        try:
            self.send(RunState.FAIL, error=text, run_facts={"params": {}, "spark": self._job_facts()})
        except Exception as err:
            _warn("could not record the failed Spark run", err)

    def complete(self, result: Any) -> None:
        try:
            event = self._complete_event(result)
        except Exception as exc:
            _warn("could not read what the Spark write did", exc)
            event = None
        try:
            if event is None:
                self.send(RunState.COMPLETE, run_facts={"params": {}, "spark": self._job_facts()})
            else:
                self.recorder.write(event, "run.complete")
        except Exception as exc:
            _warn("could not record the Spark run", exc)

    def _job_facts(self) -> dict[str, Any]:
        write = self.write
        out: dict[str, Any] = {"call": write.verb, "callSite": write.call_site}
        if write.sql:
            out["sql"] = write.sql
        if write.target is not None:
            out["target"] = ".".join(write.target.table) if write.target.table else write.target.uri
        return out

    def _complete_event(self, result: Any) -> dict[str, Any]:
        write = self.write
        spark = write.spark
        jplan, names = write.jplan, write.target.names if write.target else None
        if jplan is None and result is not None and hasattr(result, "_jdf"):
            jplan, table = _statement_query(_jplan(result))
            if write.target is None and table is not None:
                write.target = Target(table=table)
        lineage = analyse(jplan.toJSON(), jplan.schema().json(), leaves_of(jplan), names) if jplan else None
        rows = _row_count(spark, self.executions)
        recorder = self.recorder
        inputs: list[dict[str, Any]] = []
        refs: dict[int, list[tuple[str, str]]] = {}  # relation → the datasets it names
        schemas: dict[str, list[list[str]]] = {}
        known: dict[tuple[str, str], int] = {}
        for index, relation in enumerate(lineage.relations if lineage else []):
            refs[index] = []
            for namespace, name, local in identities(recorder, spark, relation.leaf):
                refs[index].append((namespace, name))
                if (namespace, name) in known:
                    continue
                known[(namespace, name)] = len(inputs)
                fields = [{"name": c, "type": t} for c, t in relation.columns]
                dataset_facets_: dict[str, Any] = {"schema": _std("SchemaDatasetFacet", fields=fields)}
                if local is not None and local.exists():
                    # Hashed, not profiled: a profile is a pass over data Spark inputs can be terabytes of.
                    version = recorder.register(local, name=name, namespace=namespace, profile=False).version
                    key = version.key or str(version.digest)
                    dataset_facets_["version"] = _std("DatasetVersionDatasetFacet", datasetVersion=key)
                inputs.append({"namespace": namespace, "name": name, "facets": dataset_facets_})
                schemas[f"{namespace}:{name}"] = [[c, t] for c, t in relation.columns]
        outputs = []
        if write.target is not None:
            outputs.append(self._output(write.target, lineage, refs, rows))
            out = outputs[0]
            if lineage is not None:
                schemas[f"{out['namespace']}:{out['name']}"] = [[c, t] for c, t in lineage.columns]
        job = {**self._job_facts(), "schemas": schemas}
        if rows is not None:
            job["rowCount"] = rows
        event = build_run_event(
            RunState.COMPLETE,
            self.id,
            self.namespace,
            self.job,
            parent=self.parent,
            job_type="spark",
            run_facts={"params": {}, "code": {**facts.git_state(), "environment": facts.environment()}, "spark": job},
        )
        event["run"]["facets"].update(_engine_facets(spark))
        event["run"]["facets"]["spark_job"] = _std("SparkJobRunFacet", **job)
        if write.sql:
            event["job"]["facets"]["sql"] = _std("SQLJobFacet", query=write.sql)
        event["inputs"], event["outputs"] = inputs, outputs
        return event

    def _output(
        self, target: Target, lineage: PlanLineage | None, refs: dict[int, list[tuple[str, str]]], rows: int | None
    ) -> dict[str, Any]:
        recorder, spark = self.recorder, self.write.spark
        location = target.uri
        symlinks: list[dict[str, str]] = []
        if target.table:
            namespace, name = table_namespace(spark, target.table[0]), ".".join(target.table)
            location = table_location(spark, target.table)
            if location:
                ol_ns, ol_name = location_identity(location)
                symlinks.append({"namespace": ol_ns, "name": ol_name, "type": "LOCATION"})
            local = local_path(location) if location else None
        else:
            assert target.uri is not None
            namespace, name, local = path_identity(recorder, target.uri)
        facets: dict[str, Any] = {}
        if local is not None and local.exists():
            _, _, info = recorder.describe(local, name=name, namespace=namespace)
            facets.update(dataset_facets(info))
        if lineage is not None:
            if "schema" not in facets:
                fields = [{"name": c, "type": t} for c, t in lineage.columns]
                facets["schema"] = _std("SchemaDatasetFacet", fields=fields)
            facets["columnLineage"] = _column_lineage(lineage, refs)
        if symlinks:
            facets["symlinks"] = _std("SymlinksDatasetFacet", identifiers=symlinks)
        entry: dict[str, Any] = {"namespace": namespace, "name": name, "facets": facets}
        if rows is not None:
            entry["outputFacets"] = {"outputStatistics": _std("OutputStatisticsOutputDatasetFacet", rowCount=rows)}
        return entry


def _column_lineage(lineage: PlanLineage, refs: dict[int, list[tuple[str, str]]]) -> dict[str, Any]:
    def items(sources: list[Any]) -> list[dict[str, Any]]:
        grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for s in sources:
            t = {"type": s.type, "subtype": s.subtype, "description": s.description, "masking": s.masking}
            for namespace, name in refs.get(s.relation, []):
                listed = grouped.setdefault((namespace, name, s.column), [])
                if t not in listed:
                    listed.append(t)
        return [{"namespace": n, "name": d, "field": c, "transformations": ts} for (n, d, c), ts in grouped.items()]

    fields = {column: {"inputFields": items(sources)} for column, sources in lineage.fields.items()}
    return _std(
        "ColumnLineageDatasetFacet",
        "1-2-0",
        fields={k: v for k, v in fields.items() if v["inputFields"]},
        dataset=items(lineage.dataset),
    )


# ---------------------------------------------------------------- Spark, over py4j


def _jplan(df: Any) -> Any:
    """The analysed logical plan of a DataFrame (a Spark Connect one has none here)."""
    jdf = getattr(df, "_jdf", None)
    if jdf is None:
        msg = "a Spark Connect DataFrame has no JVM plan to read; datatrail captures classic PySpark sessions"
        raise InvalidInput(msg)
    return jdf.queryExecution().analyzed()


def _statement_query(command: Any) -> tuple[Any, tuple[str, ...] | None]:
    """The query an executed write statement wrote, and the catalog table it wrote when it names one."""
    if command.getClass().getSimpleName() == "CommandResult":
        command = command.commandLogicalPlan()
    table: tuple[str, ...] | None = None
    for attribute in ("table", "catalogTable"):
        try:
            value = getattr(command, attribute)()
        except Exception:
            continue
        if value.getClass().getSimpleName() in ("Some", "CatalogTable"):
            meta = value.get() if value.getClass().getSimpleName() == "Some" else value
            table = catalog_leaf(meta).table
            break
    for attribute in ("query", "sourceTable"):
        try:
            return getattr(command, attribute)(), table
        except Exception:
            continue
    return None, table


def _execution_count(spark: Any) -> int:
    return int(spark._jsparkSession.sharedState().statusStore().executionsCount())


def _row_count(spark: Any, before: int) -> int | None:
    """Rows written, from the write node's SQL metric of the executions since ``before`` (no extra pass)."""
    try:
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty()
        store = spark._jsparkSession.sharedState().statusStore()
        total = int(store.executionsCount())
        count = max(1, min(total - before, 8))
        executions = store.executionsList(max(0, total - count), count)
        for i in reversed(range(executions.size())):
            execution_id = executions.apply(i).executionId()
            nodes = store.planGraph(execution_id).allNodes()
            values = store.executionMetrics(execution_id)
            for n in range(nodes.size()):
                node = nodes.apply(n)
                if not str(node.name()).startswith(("Execute ", "AppendData", "OverwriteByExpression", "Overwrite")):
                    continue
                metrics = node.metrics()
                for m in range(metrics.size()):
                    metric = metrics.apply(m)
                    value = values.get(metric.accumulatorId())
                    if metric.name() == "number of output rows" and value.isDefined():
                        return int(str(value.get()).replace(",", ""))
    except Exception:
        return None  # Spark did not report it: the count is left out, never computed with another job
    return None


_ENGINE: dict[str, dict[str, Any]] = {}


def _engine_facets(spark: Any) -> dict[str, Any]:
    """``processing_engine`` and ``spark_applicationDetails`` as the OpenLineage Spark integration sends them."""
    sc = spark.sparkContext
    key = str(sc.applicationId)
    if key not in _ENGINE:
        _ENGINE[key] = {
            "processing_engine": _std(
                "ProcessingEngineRunFacet",
                "1-1-1",
                version=spark.version,
                name="spark",
                openlineageAdapterVersion=__version__,
            ),
            "spark_applicationDetails": _std(
                "SparkApplicationDetailsFacet",
                master=sc.master,
                appName=sc.appName,
                applicationId=key,
                sparkVersion=spark.version,
                userName=sc.sparkUser(),
            ),
        }
    return _ENGINE[key]


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _call_site() -> str:
    """The first frame outside PySpark and datatrail: where the user's code asked for the write."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module.startswith(("pyspark", "py4j", "datatrail.capture")) or module == "functools"):
            return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return ""


def _warn(what: str, exc: BaseException) -> None:
    lines = str(exc).strip().splitlines()
    detail = exc.message if isinstance(exc, DatatrailError) else f"{type(exc).__name__}: {lines[0] if lines else ''}"
    warnings.warn(f"datatrail autolog {what}: {detail}", stacklevel=3)


__all__ = ["READERS", "TARGETS", "WRITERS", "WRITERS_V2", "wrap"]
