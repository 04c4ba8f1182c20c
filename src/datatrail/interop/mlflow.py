"""Import MLflow runs: parameters, metric histories, dataset inputs and logged models.

Each MLflow run becomes a run of the job named after its experiment (same run
id, as a UUID), with a START event at its start time and, once it ended, a
COMPLETE, FAIL or ABORT event carrying its metrics and logged models. Dataset
inputs become versions: hashed like ``datatrail add`` when their source is a
local file, keyed by MLflow's digest otherwise; MLflow's digest is kept either
way (``properties["mlflow"]``). Logged models become versions of model
datasets ``mlflow/<experiment>/<model>``, their artifact folder hashed when it
is local. MLflow is imported only here (the ``mlflow`` extra).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import uuid
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from datatrail.core.changes import Event, VersionInfo
from datatrail.core.errors import DatatrailError, InvalidInput, NotFound
from datatrail.core.model import validate_namespace
from datatrail.events import PRODUCER, SPEC, _facet, dataset_facets
from datatrail.files import inside
from datatrail.interop.common import ImportSummary, ingest_all, iso, safe_job_name, stable_uuid

if TYPE_CHECKING:
    from datatrail.service import Trail

STATES = {"FINISHED": "COMPLETE", "FAILED": "FAIL", "KILLED": "ABORT"}
SCHEMA_URL = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"


def _client(tracking_uri: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mlflow import MlflowClient
    except ImportError:
        msg = "importing from MLflow needs the mlflow package: pip install 'datatrail[mlflow]'"
        raise DatatrailError(msg) from None
    return MlflowClient(tracking_uri=tracking_uri)


def _safe_name(text: str) -> str:
    return "".join("_" if c in "@:" else c for c in text).strip() or "unnamed"


def _local_path(uri: str | None) -> Path | None:
    """The local path a URI or plain path names, if it exists."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = Path(uri)
    else:
        return None
    return path if path.exists() else None


def _tracking_folder(tracking_uri: str) -> Path | None:
    """The local folder of a tracking store (the SQLite file's folder, a file store's root), if it is local.

    The user named it, so what lies inside it (artifacts, the data logged
    beside them) may be read; paths the database names elsewhere may not.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite" and parsed.path not in ("", "/", "/:memory:"):
        return Path(unquote(parsed.path.removeprefix("/"))).resolve().parent
    if parsed.scheme not in ("file", "") or not tracking_uri:
        return None
    folder = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(tracking_uri)
    return folder.resolve() if folder.is_dir() else None


def _run_uuid(mlflow_id: str) -> str:
    try:
        return str(uuid.UUID(hex=mlflow_id))
    except ValueError:
        return stable_uuid("mlflow", mlflow_id)


class _Importer:
    def __init__(
        self, trail: Trail, client: Any, namespace: str, summary: ImportSummary, roots: tuple[Path, ...]
    ) -> None:
        self.trail = trail
        self.client = client
        self.namespace = namespace
        self.summary = summary
        self.roots = roots

    def _readable(self, uri: str | None, what: str) -> Path | None:
        """The local file or folder ``uri`` names, if datatrail may hash it: inside one of the roots, not a FIFO.

        The tracking database names these paths, and whoever wrote it chose them:
        anything else is recorded by its URI alone.
        """
        path = _local_path(uri)
        if path is None:
            return None
        if not any(inside(path, root) for root in self.roots):
            self.summary.skipped.append(
                f"{what}: {uri} is outside the MLflow tracking folder and the project; recorded by its URI, not read"
            )
            return None
        mode = os.stat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            self.summary.skipped.append(f"{what}: {uri} is not a regular file or folder; recorded by its URI, not read")
            return None
        return path

    def _dataset_input(self, item: Any) -> dict[str, Any]:
        ds = item.dataset
        context = next((t.value for t in item.tags or () if t.key == "mlflow.data.context"), None)
        try:
            source = json.loads(ds.source) if ds.source else {}
        except ValueError:
            source = {"text": ds.source}
        uri = source.get("uri") or source.get("url") or source.get("path") if isinstance(source, dict) else None
        mlflow = {"digest": ds.digest, "name": ds.name, "source_type": ds.source_type, "source": source}
        if context:
            mlflow["context"] = context
        if ds.profile:
            with contextlib.suppress(ValueError):
                mlflow["profile"] = json.loads(ds.profile)
        local = self._readable(uri if isinstance(uri, str) else None, f"dataset {ds.name}")
        if local is not None:
            info = self.trail.version_info(local, self.trail.hash(local), profile=False)
            info = replace(info, properties={"mlflow": mlflow})
        else:
            info = VersionInfo(
                key=f"mlflow:{ds.digest}", uri=uri if isinstance(uri, str) else None, properties={"mlflow": mlflow}
            )
        facets = dataset_facets(info)
        fields = self._schema(ds.schema)
        if fields:
            facets["schema"] = {"_producer": PRODUCER, "_schemaURL": SCHEMA_URL, "fields": fields}
        return {"namespace": self.namespace, "name": _safe_name(ds.name), "facets": facets}

    @staticmethod
    def _schema(text: str | None) -> list[dict[str, Any]]:
        try:
            schema = json.loads(text) if text else {}
        except ValueError:
            return []
        columns = schema.get("mlflow_colspec") if isinstance(schema, dict) else None
        if not isinstance(columns, list):
            return []
        return [
            {"name": str(c["name"]), "type": str(c.get("type"))}
            for c in columns
            if isinstance(c, dict) and c.get("name") is not None
        ]

    def _model_output(self, experiment: str, model_id: str) -> dict[str, Any]:
        model = self.client.get_logged_model(model_id)
        mlflow = {
            "model_id": model.model_id,
            "model_uri": f"models:/{model.model_id}",
            "artifact_location": model.artifact_location,
            "source_run_id": model.source_run_id,
            "model_type": model.model_type,
        }
        local = self._readable(model.artifact_location, f"model {model.name}")
        if local is not None:
            info = self.trail.version_info(local, self.trail.hash(local), kind="model", profile=False)
            info = replace(info, properties={"mlflow": mlflow})
        else:
            info = VersionInfo(
                key=f"mlflow:{model.model_id}", uri=model.artifact_location, kind="model", properties={"mlflow": mlflow}
            )
        name = f"mlflow/{_safe_name(experiment)}/{_safe_name(model.name)}"
        return {"namespace": self.namespace, "name": name, "facets": dataset_facets(info)}

    def _metrics(self, run_id: str, keys: list[str]) -> dict[str, list[list[Any]]]:
        out: dict[str, list[list[Any]]] = {}
        for key in sorted(keys):
            by_step: dict[int, Any] = {}
            for m in sorted(self.client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)):
                value = m.value
                if isinstance(value, float) and not math.isfinite(value):
                    value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                by_step[int(m.step)] = value  # the last value logged at a step wins
            out[key] = [[s, v] for s, v in sorted(by_step.items())]
        return out

    def run_events(self, experiment: Any, run: Any) -> list[Event]:
        info, data = run.info, run.data
        run_id = _run_uuid(info.run_id)
        final = STATES.get(info.status)
        try:
            stored = self.trail.get_run(run_id)
            if stored.state.finished:
                return []  # imported before, and it had ended: nothing can have changed
        except NotFound:
            pass
        tags = data.tags or {}
        code: dict[str, Any] = {
            "mlflow": {
                "run_id": info.run_id,
                "run_name": info.run_name,
                "experiment_id": info.experiment_id,
                "artifact_uri": info.artifact_uri,
            }
        }
        if tags.get("mlflow.source.git.commit"):
            code["commit"] = tags["mlflow.source.git.commit"]
        if tags.get("mlflow.source.git.repoURL"):
            code["remote"] = tags["mlflow.source.git.repoURL"]
        job = {"namespace": self.namespace, "name": safe_job_name(experiment.name), "facets": {}}
        start_facts: dict[str, Any] = {
            "user": info.user_id or tags.get("mlflow.user"),
            "command": tags.get("mlflow.source.name"),
            "params": dict(data.params or {}),
            "code": code,
        }
        inputs = [self._dataset_input(item) for item in (run.inputs.dataset_inputs if run.inputs else [])]
        events: list[Event] = [
            {
                "eventType": "START",
                "eventTime": iso(info.start_time / 1000),
                "producer": PRODUCER,
                "schemaURL": f"{SPEC}#/$defs/RunEvent",
                "run": {
                    "runId": run_id,
                    "facets": {"datatrail_run": _facet("datatrail_run", "DatatrailRunFacet", **start_facts)},
                },
                "job": job,
                "inputs": inputs,
                "outputs": [],
            }
        ]
        outputs = [
            self._model_output(experiment.name, m.model_id) for m in (run.outputs.model_outputs if run.outputs else [])
        ]
        metrics = self._metrics(info.run_id, list((data.metrics or {}).keys()))
        run_facets: dict[str, Any] = {}
        if metrics:
            run_facets["datatrail_metrics"] = _facet("datatrail_metrics", "DatatrailMetricsFacet", metrics=metrics)
        if final is None:
            if not outputs and not metrics:
                return events
            event_type, when = "RUNNING", info.start_time / 1000
        else:
            event_type, when = final, (info.end_time or info.start_time) / 1000
            if final == "FAIL":
                run_facets["errorMessage"] = _facet(
                    "errorMessage",
                    "ErrorMessageRunFacet",
                    True,
                    message="the MLflow run FAILED",
                    programmingLanguage="python",
                )
        events.append(
            {
                "eventType": event_type,
                "eventTime": iso(when),
                "producer": PRODUCER,
                "schemaURL": f"{SPEC}#/$defs/RunEvent",
                "run": {"runId": run_id, "facets": run_facets},
                "job": job,
                "inputs": [],
                "outputs": outputs,
            }
        )
        return events


def _experiments(client: Any, tracking_uri: str, name: str | None) -> list[Any]:
    if name is None:
        return list(client.search_experiments())
    found = client.get_experiment_by_name(name)
    if found is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
        msg = f"no MLflow experiment named {name!r} at {tracking_uri} (experiments there: {names})"
        raise NotFound(msg)
    return [found]


def import_mlflow(
    trail: Trail, tracking_uri: str, *, experiment: str | None = None, namespace: str = "default"
) -> ImportSummary:
    """Bring the runs of an MLflow tracking store (one experiment, or all) into datatrail.

    >>> summary = import_mlflow(trail, "sqlite:///mlflow.db", experiment="penguins")  # doctest: +SKIP
    >>> summary.runs                                                                  # doctest: +SKIP
    ['7467f600-d346-44c4-ad26-3e9886c0fd70']
    """
    namespace = validate_namespace(namespace)
    client = _client(tracking_uri)
    summary = ImportSummary(source=f"mlflow:{tracking_uri}")
    folder = _tracking_folder(tracking_uri)
    importer = _Importer(trail, client, namespace, summary, (trail.root, *([folder] if folder else [])))
    events: list[Event] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow warns about its own deprecations on every call
        try:
            experiments = _experiments(client, tracking_uri, experiment)
            for exp in experiments:
                token = None
                while True:
                    page = client.search_runs(
                        [exp.experiment_id], max_results=1000, page_token=token, order_by=["attributes.start_time ASC"]
                    )
                    for run in page:
                        events += importer.run_events(exp, run)
                    token = page.token
                    if not token:
                        break
        except DatatrailError:
            raise
        except Exception as exc:  # MLflow's own errors: a bad URI, an unreadable store
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            msg = f"cannot read the MLflow tracking store {tracking_uri}: {first}"
            raise InvalidInput(msg) from None
    return ingest_all(trail, events, summary, "import.mlflow")
