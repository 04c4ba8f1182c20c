"""Deployments and drift reports, derived from the ``datatrail_deployment`` and ``datatrail_drift`` run facets.

A deploy is a run (job type ``deploy``) whose one input is the deployed version
and whose run facets hold ``datatrail_deployment: {environment}``; a drift
report is a run (job type ``monitor``) whose inputs are the reference and the
current version and whose ``datatrail_drift`` facet holds the report. Both are
applied in the ingest transaction; like the core, the result does not depend on
the order events arrive in: a deployment is retired by the next deployment to
the same environment and dataset by deploy time, recomputed on every deploy.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from datatrail.core.errors import Conflict, InvalidInput
from datatrail.core.model import validate_name
from datatrail.core.times import stored_time
from datatrail.store.sql import tables as t
from datatrail.store.sql.applied import Applied, Touched

DEPLOYMENT = "datatrail_deployment"
DRIFT = "datatrail_drift"


def apply(applied: Applied) -> None:
    run = applied.changes.run
    if run is None or applied.run_pk is None:
        return
    deployment = run.run_facets.get(DEPLOYMENT)
    if deployment is not None:
        _apply_deployment(applied, deployment)
    drift = run.run_facets.get(DRIFT)
    if drift is not None:
        _apply_drift(applied, drift)


def _environment(facet: dict[str, Any], where: str) -> str:
    env = facet.get("environment")
    if not isinstance(env, str):
        msg = f"invalid event: run.facets.{where}.environment must be a string naming the environment"
        raise InvalidInput(msg)
    return validate_name(env, "alias")


def _apply_deployment(applied: Applied, facet: Any) -> None:
    if not isinstance(facet, dict):
        msg = f"invalid event: run.facets.{DEPLOYMENT} must be an object"
        raise InvalidInput(msg)
    env = _environment(facet, DEPLOYMENT)
    inputs = [d for d in applied.datasets if d.change.role == "input" and d.version_id is not None]
    if len(inputs) != 1:
        msg = f"invalid event: a run with {DEPLOYMENT} needs exactly one input with a version (the deployed one)"
        raise InvalidInput(msg)
    target = inputs[0]
    run = applied.changes.run
    assert run is not None and applied.run_pk is not None
    when = applied.changes.event_time
    d = t.deployments.c
    tx = applied.tx
    existing = tx.execute(
        select(d.id, d.deployed_at, d.environment, d.dataset_id).where(d.run_pk == applied.run_pk)
    ).first()
    if existing is not None and (existing.environment, existing.dataset_id) != (env, target.dataset_id):
        msg = (
            f"run {run.run_id} already deployed to {existing.environment!r}: a deploy run deploys one version"
            " to one environment; give this deployment its own runId"
        )
        raise Conflict(msg)
    if existing is None:
        tx.execute(
            t.deployments.insert().values(
                run_pk=applied.run_pk,
                event_id=applied.event_id,
                environment=env,
                dataset_id=target.dataset_id,
                version_id=target.version_id,
                deployed_at=when,
                deployed_by=run.user or applied.changes.actor,
            )
        )
    elif when < stored_time(existing.deployed_at):  # type: ignore[operator]
        tx.execute(t.deployments.update().where(d.id == existing.id).values(deployed_at=when))
    _retire_chain(applied, env, target.dataset_id)


def _retire_chain(applied: Applied, env: str, dataset_id: int) -> None:
    """Each deployment of (env, dataset) is retired by the next one in deploy-time order."""
    d, r = t.deployments.c, t.runs.c
    rows = applied.tx.execute(
        select(d.id, d.run_pk, d.deployed_at, d.retired_at, d.retired_by_run_pk, r.run_id)
        .join(t.runs, r.pk == d.run_pk)
        .where(d.environment == env, d.dataset_id == dataset_id)
    ).all()
    ordered = sorted(rows, key=lambda row: (stored_time(row.deployed_at), row.run_id))
    for row, nxt in zip(ordered, [*ordered[1:], None], strict=True):
        retired_at = stored_time(nxt.deployed_at) if nxt is not None else None
        retired_by = nxt.run_pk if nxt is not None else None
        if stored_time(row.retired_at) != retired_at or row.retired_by_run_pk != retired_by:
            applied.tx.execute(
                t.deployments.update().where(d.id == row.id).values(retired_at=retired_at, retired_by_run_pk=retired_by)
            )


def _find(applied: Applied, ref: Any, which: str) -> Touched:
    where = f"run.facets.{DRIFT}.{which}"
    if not isinstance(ref, dict) or not all(isinstance(ref.get(k), str) for k in ("namespace", "name", "version")):
        msg = f"invalid event: {where} must be {{namespace, name, version}} naming one of the run's inputs"
        raise InvalidInput(msg)
    for d in applied.datasets:
        info = d.change.version
        if (
            d.change.role == "input"
            and d.version_id is not None
            and d.change.namespace == ref["namespace"]
            and d.change.name == ref["name"]
            and info is not None
            and info.key == ref["version"]
        ):
            return d
    msg = f"invalid event: {where} names {ref['name']!r}, which is not an input of the run with that version"
    raise InvalidInput(msg)


def _apply_drift(applied: Applied, facet: Any) -> None:
    if not isinstance(facet, dict):
        msg = f"invalid event: run.facets.{DRIFT} must be an object"
        raise InvalidInput(msg)
    reference = _find(applied, facet.get("reference"), "reference")
    current = _find(applied, facet.get("current"), "current")
    report = facet.get("report")
    if not isinstance(report, dict):
        msg = f"invalid event: run.facets.{DRIFT}.report must be an object"
        raise InvalidInput(msg)
    env = _environment(facet, DRIFT) if facet.get("environment") is not None else None
    deployment = facet.get("deploymentRunId")
    if deployment is not None and not isinstance(deployment, str):
        msg = f"invalid event: run.facets.{DRIFT}.deploymentRunId must be a run id"
        raise InvalidInput(msg)
    assert applied.run_pk is not None
    applied.insert_ignore(
        t.drift_reports,
        [
            {
                "run_pk": applied.run_pk,
                "event_id": applied.event_id,
                "reference_version_id": reference.version_id,
                "current_version_id": current.version_id,
                "environment": env,
                "deployment_run_id": deployment,
                "created_at": applied.changes.event_time,
                "drifted": bool(facet.get("drifted", report.get("drifted", False))),
                "report": report,
            }
        ],
    )
