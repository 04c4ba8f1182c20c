"""The ML lifecycle: evaluate, deploy, impact, drift, monitor, reproduce (``trail.ml``).

:class:`ModelOps` is composed into ``Trail``; every write is one OpenLineage run
event with a datatrail facet (``datatrail_deployment``, ``datatrail_drift``),
so it works the same on an embedded store, PostgreSQL or a remote server.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from datatrail.capture import facts
from datatrail.capture.run import start_run
from datatrail.catalog import MAX_DEPTH, Catalog
from datatrail.core.changes import Event
from datatrail.core.errors import InvalidInput
from datatrail.core.model import Ref, Run, RunState, Version, validate_name
from datatrail.core.privacy import redact_drift_column
from datatrail.core.records import Deployment, DriftRecord, DriftReport
from datatrail.core.times import parse_time
from datatrail.events import FACET_SCHEMA, PRODUCER, build_run_event
from datatrail.ml.models import load
from datatrail.ml.reproduce import ReproduceReport, check_provenance
from datatrail.recorder import Recorder

DEPLOY_JOB = "deploy"
MONITOR_JOB = "monitor"


def facet(name: str, schema: str, **fields: Any) -> dict[str, Any]:
    """A datatrail custom facet with its producer and schema URL."""
    return {"_producer": PRODUCER, "_schemaURL": f"{FACET_SCHEMA.format(name=name)}#/$defs/{schema}", **fields}


@dataclass(frozen=True)
class ModelCard:
    """What a model version is, what it was trained on, how it scored and where it is live."""

    version: Version
    training_run: Run | None
    training_data: tuple[Version, ...]
    evaluations: tuple[Run, ...]
    deployments: tuple[Deployment, ...]

    def to_dict(self) -> dict[str, Any]:
        run = self.training_run
        return {
            "version": self.version.to_dict(),
            "training_run": None
            if run is None
            else {
                "id": run.id,
                "job": run.job,
                "state": run.state.value,
                "params": run.params,
                "metrics": run.metrics,
                "code": {k: v for k, v in run.code.items() if k != "environment"},
                "command": run.command,
                "user": run.user,
                "started_at": run.started_at.isoformat() if run.started_at else None,
            },
            "training_data": [v.to_dict() for v in self.training_data],
            "evaluations": [
                {
                    "run_id": e.id,
                    "job": e.job,
                    "datasets": [v.ref for v in e.inputs if v.kind != "model"],
                    "metrics": e.metrics,
                    "params": e.params,
                    "evaluated_at": e.started_at.isoformat() if e.started_at else None,
                    "user": e.user,
                }
                for e in self.evaluations
            ],
            "deployments": [d.to_dict() for d in self.deployments],
        }


@dataclass(frozen=True)
class Impact:
    """Everything downstream of a version: datasets, models, runs and the deployments still live."""

    version: Version
    datasets: tuple[dict[str, Any], ...]
    models: tuple[dict[str, Any], ...]
    runs: tuple[dict[str, Any], ...]
    deployments: tuple[Deployment, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.ref,
            "datasets": list(self.datasets),
            "models": list(self.models),
            "runs": list(self.runs),
            "deployments": [d.to_dict() for d in self.deployments],
        }


@dataclass(frozen=True)
class DriftHistory:
    """The drift reports of an environment since its deployment, oldest first."""

    environment: str
    deployment: Deployment | None
    records: tuple[DriftRecord, ...]

    def features(self) -> list[str]:
        names: dict[str, None] = {}
        for r in self.records:
            for c in r.report.get("columns", []):
                names.setdefault(c["name"], None)
        return list(names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "deployment": self.deployment.to_dict() if self.deployment else None,
            "batches": [
                {
                    "run_id": r.run_id,
                    "created_at": r.created_at.isoformat(),
                    "reference": r.reference,
                    "current": r.current,
                    "drifted": r.drifted,
                    "scores": {c["name"]: c.get("score") for c in r.report.get("columns", [])},
                    "drifted_columns": r.report.get("drifted_columns", []),
                }
                for r in self.records
            ],
        }


def _environment(env: str) -> str:
    env = validate_name(env, "alias")
    if env == "latest":
        msg = "'latest' always names the newest version and cannot be an environment; choose another name"
        raise InvalidInput(msg)
    return env


def _check_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    if not isinstance(metrics, dict) or not metrics:
        msg = "evaluate needs metrics: a dict such as {'accuracy': 0.97}"
        raise InvalidInput(msg)
    for key, value in metrics.items():
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not isinstance(key, str) or not key or not ok:
            msg = f"metric {key!r}={value!r} must be a finite number under a non-empty name"
            raise InvalidInput(msg)
    return {k: float(v) for k, v in metrics.items()}


class ModelOps:
    """The ML lifecycle (``trail.ml``): reads through a :class:`Catalog`, writes through a :class:`Recorder`."""

    def __init__(self, catalog: Catalog, recorder: Recorder) -> None:
        self._catalog = catalog
        self._recorder = recorder

    def _run_facts(self, params: dict[str, Any]) -> dict[str, Any]:
        r = self._recorder
        return {
            "user": r.user,
            "host": r.host,
            "command": facts.command_line(),
            "cwd": os.getcwd(),
            "params": params,
            "code": facts.git_state(),
        }

    def _single_run_event(
        self, job: str, job_type: str, namespace: str, inputs: list[Version], params: dict[str, Any]
    ) -> tuple[str, Event]:
        run_id = str(uuid.uuid4())
        event = build_run_event(
            RunState.COMPLETE,
            run_id,
            namespace,
            job,
            run_facts=self._run_facts(params),
            inputs=[(v.namespace, v.name, v.key or str(v.digest)) for v in inputs],
            job_type=job_type,
        )
        return run_id, event

    # ------------------------------------------------------------ models and evaluations

    def evaluate(
        self,
        model: str | Ref | Version,
        dataset: str | Ref | Version,
        metrics: dict[str, float],
        *,
        params: dict[str, Any] | None = None,
        job: str = "evaluate",
    ) -> Run:
        """Record metrics of a model version on a dataset version (a run of job type ``evaluate``).

        The same metrics of the same model on the same data (with the same params) are the
        evaluation already recorded: it is returned, and nothing new is written.

        >>> trail.evaluate("models/penguins@1", "features/test@1", metrics={"accuracy": 0.97})  # doctest: +SKIP
        """
        c = self._catalog
        checked = _check_metrics(metrics)
        m, d = c.get(model), c.get(dataset)
        for earlier in c.evaluations(m):
            same_data = {(v.namespace, v.name, v.number) for v in earlier.inputs} == {
                (v.namespace, v.name, v.number) for v in (m, d)
            }
            if same_data and earlier.job == job and earlier.metrics == checked and earlier.params == (params or {}):
                return earlier
        run = start_run(self._recorder, c, job, params=params, namespace=m.namespace, job_type="evaluate")
        with run:
            run.input(m)
            run.input(d)
            run.log_metrics(checked)
        return c.get_run(run.id)

    def model_card(self, ref: str | Ref | Version) -> ModelCard:
        """Which data a model version was trained and evaluated on, with its metrics and deployments.

        >>> card = trail.model_card("models/penguins@2")                    # doctest: +SKIP
        >>> [v.ref for v in card.training_data], card.evaluations[0].metrics  # doctest: +SKIP
        """
        c = self._catalog
        version = c.get(ref)
        run = c.get_run(version.run_id) if version.run_id else None
        training = tuple(v for v in run.inputs if v.kind != "model") if run is not None else ()
        evaluations = tuple(c.evaluations(version))
        deployments = tuple(d for d in c.deployments(version.namespace, version.name) if d.version == version.number)
        return ModelCard(version, run, training, evaluations, deployments)

    def load_model(self, ref: str | Ref | Version, *, trusted: bool | Sequence[str] = False) -> Any:
        """Load a model version saved from memory, once its bytes match the version's digest.

        skops models load with skops' check of the types they hold (``trusted``
        lists more types to allow); torch state dicts and ONNX models load as
        data. A joblib file is a pickle, which runs any code it holds, so it
        loads only with ``trusted=True``: say so only for a model you trust
        and a store you trust (the store names the format and the file).

        >>> model = trail.load_model("models/penguins@2", trusted=["sklearn.tree._tree.Tree"])  # doctest: +SKIP
        >>> legacy = trail.load_model("models/old@1", trusted=True)  # a joblib pickle you made  # doctest: +SKIP
        """
        version = self._catalog.get(ref)
        payload = self._recorder.verified_bytes(version)
        return load(payload, version.format, name=version.ref, trusted=trusted)

    # ------------------------------------------------------------ deployments

    def deploy(self, ref: str | Ref | Version, env: str = "production") -> Deployment:
        """Record that a version is live in ``env`` (retiring the one before); the alias ``env`` follows it.

        A version already live in ``env`` stays so: its deployment is returned, and nothing is written.

        >>> trail.deploy("models/penguins@2", env="production").since   # doctest: +SKIP
        """
        env = _environment(env)
        version = self._catalog.get(ref)
        for live in self._catalog.deployments(version.namespace, version.name, environment=env, active=True):
            if live.version == version.number and env in version.aliases:
                return live
        key = version.key or str(version.digest)
        run_id, event = self._single_run_event(DEPLOY_JOB, "deploy", version.namespace, [version], {"environment": env})
        event["run"]["facets"]["datatrail_deployment"] = facet(
            "datatrail_deployment", "DatatrailDeploymentRunFacet", environment=env
        )
        event["inputs"][0]["facets"]["datatrail_alias"] = facet(
            "datatrail_alias", "DatatrailAliasFacet", datasetVersion=key, aliases=[env]
        )
        self._recorder.write(event, "model.deploy")
        for d in self._catalog.deployments(version.namespace, version.name, environment=env):
            if d.run_id == run_id:
                return d
        msg = f"the deployment of {version.ref} to {env} was not recorded"  # pragma: no cover
        raise InvalidInput(msg)  # pragma: no cover

    def deployments(self, env: str | None = None, name: str | None = None, *, active: bool = False) -> list[Deployment]:
        """Deployments, newest first: of one environment, of one dataset or model, only the live ones."""
        ref = Ref.parse(name) if name is not None else None
        if ref is not None and ref.selector is not None:
            msg = f"give a dataset or model name, not a version ({name!r}); drop the '@…'"
            raise InvalidInput(msg)
        env = _environment(env) if env is not None else None
        return self._catalog.deployments(
            ref.namespace if ref else None, ref.name if ref else None, environment=env, active=active
        )

    def impact(self, ref: str | Ref | Version) -> Impact:
        """Every downstream dataset, model and run of a version, and the deployments still live on any of them.

        >>> [m["ref"] for m in trail.impact("raw/penguins@1").models]  # doctest: +SKIP
        ['models/penguins@1']
        """
        version = self._catalog.get(ref)
        graph = self._catalog.lineage(version, direction="downstream", depth=MAX_DEPTH)
        reached = {(version.namespace, version.name, version.number)}
        datasets: list[dict[str, Any]] = []
        models: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        for node in sorted(graph.nodes.values(), key=lambda n: (n.depth, n.id)):
            if node.id == graph.root:
                continue
            d = node.data
            if node.type == "run":
                runs.append({"id": d.get("id"), "job": d.get("job"), "state": d.get("state"), "depth": node.depth})
                continue
            reached.add((d["namespace"], d["name"], d["version"]))
            item = {
                "ref": str(Ref(d["namespace"], d["name"], str(d["version"]))),
                "kind": d.get("kind"),
                "depth": node.depth,
            }
            (models if d.get("kind") == "model" else datasets).append(item)
        live = tuple(d for d in self._catalog.deployments(active=True) if (d.namespace, d.name, d.version) in reached)
        return Impact(version, tuple(datasets), tuple(models), tuple(runs), live)

    # ------------------------------------------------------------ drift

    def drift(
        self,
        reference: str | Ref | Version,
        current: str | Ref | Version,
        *,
        thresholds: dict[str, float] | None = None,
        exact: bool = False,
    ) -> DriftReport:
        """Compare a current version's distributions with a reference's (stored profiles; ``exact`` reads the data).

        >>> report = trail.drift("features/train@1", "features/batch@2")   # doctest: +SKIP
        >>> report.drifted, [c["name"] for c in report.drifted_columns]     # doctest: +SKIP
        """
        from datatrail.drift import compare_profiles, read_columns  # numpy: not on every `datatrail add`

        c = self._catalog
        a, b = c.get(reference), c.get(current)
        data = None
        if exact:
            data = tuple(read_columns(self._recorder.local_data(v), v.format or "") for v in (a, b))
        report = compare_profiles(
            c.profile(a),
            c.profile(b),
            names=(a.ref, b.ref),
            limits=thresholds,
            data=cast("tuple[dict[str, Any], dict[str, Any]]", data),
        )
        # A classified column of either version shows distances between distributions, never values.
        classified = {**c.classifications(a), **c.classifications(b)}
        return replace(report, columns=[redact_drift_column(col, classified) for col in report.columns])

    def _live(self, env: str, model: str | None) -> Deployment | None:
        ref = Ref.parse(model) if model is not None else None
        live = self._catalog.deployments(
            ref.namespace if ref else None, ref.name if ref else None, environment=env, active=True
        )
        if len(live) > 1:
            names = ", ".join(sorted(d.ref for d in live))
            msg = f"several versions are live in {env} ({names}); say which model with model=/--model"
            raise InvalidInput(msg)
        return live[0] if live else None

    def _training_reference(self, deployment: Deployment, current: Version) -> Version:
        """The training dataset of the deployed model that shares the most columns with ``current``."""
        card = self.model_card(Ref(deployment.namespace, deployment.name, str(deployment.version)))
        columns = {c["name"] for c in (self._catalog.profile(current) or {}).get("columns", [])}
        best: tuple[int, Version] | None = None
        for v in card.training_data:
            profile = self._catalog.profile(v)
            if profile is None:
                continue
            shared = len(columns & {c["name"] for c in profile.get("columns", [])})
            if best is None or shared > best[0]:
                best = (shared, v)
        if best is None:
            msg = f"{deployment.ref} has no recorded tabular training data; give the reference version"
            raise InvalidInput(msg)
        return best[1]

    def monitor(
        self,
        current: str | Ref | Version,
        *,
        reference: str | Ref | Version | None = None,
        env: str | None = None,
        model: str | None = None,
        thresholds: dict[str, float] | None = None,
        exact: bool = False,
    ) -> DriftRecord:
        """Compare a production batch with the reference and store the report (a run of job type ``monitor``).

        With ``env`` the report is tied to the deployment live there, and the
        reference defaults to the deployed model's training data.

        >>> record = trail.monitor("batches/2026-11-29", env="production")  # doctest: +SKIP
        >>> record.drifted, record.drift.drifted_columns                     # doctest: +SKIP
        """
        c = self._catalog
        env = _environment(env) if env is not None else None
        deployment = self._live(env, model) if env is not None else None
        if env is not None and deployment is None:
            msg = f"nothing is deployed in {env}; deploy a model first (datatrail deploy REF --env {env})"
            raise InvalidInput(msg)
        cur = c.get(current)
        if reference is not None:
            ref = c.get(reference)
        elif deployment is not None:
            ref = self._training_reference(deployment, cur)
        else:
            msg = "monitor needs a reference version, or an environment whose deployed model's training data to use"
            raise InvalidInput(msg)
        report = self.drift(ref, cur, thresholds=thresholds, exact=exact)
        body = report.to_dict()
        # The same batch compared again with the same result, for the same deployment, is that report.
        for earlier in c.drift_reports(environment=env, namespace=cur.namespace, name=cur.name):
            same = (earlier.reference, earlier.current, earlier.environment) == (ref.ref, cur.ref, env)
            live = earlier.deployment_run_id == (deployment.run_id if deployment else None)
            if same and live and earlier.report == body:
                return earlier
        params: dict[str, Any] = {"environment": env, "reference": ref.ref, "current": cur.ref}
        run_id, event = self._single_run_event(MONITOR_JOB, "monitor", cur.namespace, [ref, cur], params)
        event["run"]["facets"]["datatrail_drift"] = facet(
            "datatrail_drift",
            "DatatrailDriftRunFacet",
            environment=env,
            deploymentRunId=deployment.run_id if deployment else None,
            reference={"namespace": ref.namespace, "name": ref.name, "version": ref.key or str(ref.digest)},
            current={"namespace": cur.namespace, "name": cur.name, "version": cur.key or str(cur.digest)},
            drifted=report.drifted,
            report=body,
        )
        event["run"]["facets"]["datatrail_metrics"] = facet(
            "datatrail_metrics",
            "DatatrailMetricsFacet",
            metrics={"drifted_columns": [[0, len(report.drifted_columns)]]},
        )
        self._recorder.write(event, "model.monitor")
        return DriftRecord(
            run_id=run_id,
            reference=ref.ref,
            current=cur.ref,
            created_at=parse_time(event["eventTime"]),
            drifted=report.drifted,
            report=body,
            environment=env,
            deployment_run_id=deployment.run_id if deployment else None,
        )

    def drift_history(self, env: str, *, model: str | None = None) -> DriftHistory:
        """The stored drift reports of ``env``, batch by batch since its live deployment (all when none is live)."""
        env = _environment(env)
        deployment = self._live(env, model)
        records = self._catalog.drift_reports(environment=env)
        if deployment is not None:
            records = [r for r in records if r.deployment_run_id == deployment.run_id]
        return DriftHistory(env, deployment, tuple(records))

    # ------------------------------------------------------------ reproducibility

    def reproduce(self, ref: str | Ref | Version, *, use_cache: bool = True) -> ReproduceReport:
        """Walk a version's whole provenance: is every input still there, unchanged, and what produced each step?

        >>> report = trail.reproduce("models/penguins@1")   # doctest: +SKIP
        >>> report.ok, [s.job for s in report.steps]         # doctest: +SKIP
        (True, ['clean', 'features', 'train'])
        """
        return check_provenance(self._catalog, self._recorder, self._catalog.get(ref), use_cache=use_cache)


__all__ = ["DriftHistory", "Impact", "ModelCard", "ModelOps", "facet"]
