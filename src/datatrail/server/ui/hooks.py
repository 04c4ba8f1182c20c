"""Where the web UI meets access control, deployments, drift and column lineage.

Each hook is a small function the pages call, answering through the request's
Trail (so through the caller's grants); every hook runs in the thread pool.
"""

from __future__ import annotations

from typing import Any

from datatrail.core.errors import Forbidden
from datatrail.core.model import Ref, Version
from datatrail.core.records import Deployment
from datatrail.core.results import AuditEntry
from datatrail.ml.lifecycle import DriftHistory
from datatrail.server import access
from datatrail.server.state import ServerState
from datatrail.service import Trail


def auth_enabled(server: ServerState) -> bool:
    """Whether the UI asks for a token: when the store has users or the server has API keys."""
    return access.auth_required(server)


def is_admin(server: ServerState, principal: str | None) -> bool:
    """Whether ``principal`` may read the audit log in the UI.

    Everyone when the server runs without users, else admins (and the legacy API keys).
    """
    if not auth_enabled(server):
        return True
    found = access.principal_named(server, principal)
    return found is not None and found.everything


def access_entries(trail: Trail, namespace: str, name: str, limit: int = 100) -> list[AuditEntry]:
    """Audit entries that target a version of the dataset, newest first ("who accessed it").

    Reads are audited (issue 6): this lists reads, writes and refused attempts, for
    admins and the namespace's owners; others see nothing here.
    """

    try:
        entries: list[AuditEntry] = trail.audit_entries(dataset=Ref(namespace, name), limit=limit)
    except Forbidden:
        return []
    return entries


def deployments(trail: Trail, namespace: str, name: str) -> list[dict[str, Any]]:
    """Where versions of the dataset (a model, usually) were deployed (``datatrail deploy``), newest first.

    Each is ``Deployment.to_dict()``: environment, version, deployed_at/by, run_id,
    retired_at, active. Empty for a store without deployment records.
    """
    return [d.to_dict() for d in trail.catalog.deployments(namespace, name)]


def environment_deployments(trail: Trail, environment: str | None = None) -> list[Deployment]:
    """Every deployment the caller may read (of one environment, or of all), newest first.

    The request's Trail reads through the caller's grants, so a deployment of a
    dataset in a namespace the caller may not read is not there at all.
    """
    return trail.catalog.deployments(environment=environment)


def drift_histories(trail: Trail, environment: str, deployments: list[Deployment]) -> list[DriftHistory]:
    """The drift history of each deployment live in ``environment`` (``deployments``: the environment's).

    As ``Trail.drift_history``: the stored reports tied to the live deployment,
    batch by batch, oldest first; one history per live model (an environment may
    serve several), or one of every report when none is live. Reports comparing
    a version the caller may not read are left out by the request's Trail.
    """
    records = trail.catalog.drift_reports(environment=environment)
    live = [d for d in deployments if d.active]
    if not live:
        return [DriftHistory(environment, None, tuple(records))]
    return [DriftHistory(environment, d, tuple(r for r in records if r.deployment_run_id == d.run_id)) for d in live]


def column_lineage(trail: Trail, version: Version) -> list[dict[str, Any]]:
    """Column edges into a version: output column ← input dataset version and column, with transformations.

    From the store's column lineage (the producers' ``columnLineage`` facets), one
    step upstream; empty when the store has none for this version.
    """
    result = trail.column_lineage(version, None, direction="upstream", depth=1)
    prefix = f"column:{version.namespace}:{version.name}@{version.number}#"
    rows: list[dict[str, Any]] = []
    for source, target, transformations in result.edges:
        if not target.startswith(prefix) or source not in result.nodes:
            continue
        src = result.nodes[source]
        rows.append(
            {
                "output_column": target[len(prefix) :],
                "input_namespace": src.get("namespace"),
                "input_name": src.get("name"),
                "input_version": src.get("version"),
                "input_column": src.get("column"),
                "transformations": transformations,
            }
        )
    return sorted(rows, key=lambda r: (str(r["output_column"]), str(r["input_name"]), str(r["input_column"])))
