"""Values of the ML lifecycle that the store returns: deployments and stored drift reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datatrail.core.model import Ref
from datatrail.core.times import iso, stored_time

# PSI >= 0.2 is the usual "significant shift"; KS and JS bounds are on the statistic, not
# the p-value: with thousands of rows any tiny change is "significant".
DEFAULT_THRESHOLDS: dict[str, float] = {"psi": 0.2, "ks": 0.3, "js": 0.1, "missing": 0.05}


@dataclass(frozen=True)
class Deployment:
    """One version live in one environment, from ``deployed_at`` until ``retired_at`` (None: still live)."""

    environment: str
    namespace: str
    name: str
    version: int
    kind: str
    digest: str | None
    deployed_at: datetime
    deployed_by: str | None
    run_id: str
    retired_at: datetime | None = None
    retired_by_run_id: str | None = None

    @property
    def active(self) -> bool:
        return self.retired_at is None

    @property
    def ref(self) -> str:
        return str(Ref(self.namespace, self.name, str(self.version)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "kind": self.kind,
            "digest": self.digest,
            "deployed_at": iso(self.deployed_at),
            "deployed_by": self.deployed_by,
            "run_id": self.run_id,
            "retired_at": iso(self.retired_at),
            "retired_by_run_id": self.retired_by_run_id,
            "active": self.active,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Deployment:
        deployed = stored_time(d.get("deployed_at"))
        assert deployed is not None, "a deployment always has a time"
        return cls(
            environment=d["environment"],
            namespace=d["namespace"],
            name=d["name"],
            version=int(d["version"]),
            kind=d.get("kind") or "dataset",
            digest=d.get("digest"),
            deployed_at=deployed,
            deployed_by=d.get("deployed_by"),
            run_id=d["run_id"],
            retired_at=stored_time(d.get("retired_at")),
            retired_by_run_id=d.get("retired_by_run_id"),
        )


@dataclass(frozen=True)
class ContentLocation:
    """A remote that holds every object of one version: its name and URL (never credentials), as a push recorded.

    The store keeps metadata only; a client that lacks the remote in its own config
    fetches from ``url`` directly, with its own credentials (``datatrail pull``).
    """

    namespace: str
    name: str
    version: int
    remote: str
    url: str
    recorded_at: datetime
    recorded_by: str | None = None

    @property
    def ref(self) -> str:
        return str(Ref(self.namespace, self.name, str(self.version)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "remote": self.remote,
            "url": self.url,
            "recorded_at": iso(self.recorded_at),
            "recorded_by": self.recorded_by,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContentLocation:
        when = stored_time(d.get("recorded_at"))
        assert when is not None, "a location always has a time"
        return cls(
            namespace=d["namespace"],
            name=d["name"],
            version=int(d["version"]),
            remote=d["remote"],
            url=d["url"],
            recorded_at=when,
            recorded_by=d.get("recorded_by"),
        )


@dataclass(frozen=True)
class DriftRecord:
    """A drift report stored by a monitor run: the two versions compared, where, when, and the report."""

    run_id: str
    reference: str
    current: str
    created_at: datetime
    drifted: bool
    report: dict[str, Any] = field(default_factory=dict)
    environment: str | None = None
    deployment_run_id: str | None = None

    @property
    def drift(self) -> DriftReport:
        """The stored report as a :class:`DriftReport`."""
        return DriftReport.from_dict(self.report)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "reference": self.reference,
            "current": self.current,
            "created_at": iso(self.created_at),
            "drifted": self.drifted,
            "environment": self.environment,
            "deployment_run_id": self.deployment_run_id,
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftRecord:
        created = stored_time(d.get("created_at"))
        assert created is not None, "a drift report always has a time"
        return cls(
            run_id=d["run_id"],
            reference=d["reference"],
            current=d["current"],
            created_at=created,
            drifted=bool(d.get("drifted")),
            report=d.get("report") or {},
            environment=d.get("environment"),
            deployment_run_id=d.get("deployment_run_id"),
        )


@dataclass(frozen=True)
class DriftReport:
    """Drift of ``current`` against ``reference``: per column statistics, schema and missing-value drift."""

    reference: str
    current: str
    method: str
    thresholds: dict[str, float]
    rows: dict[str, int]
    schema: dict[str, Any]
    columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drifted_columns(self) -> list[dict[str, Any]]:
        return [c for c in self.columns if c["drifted"]]

    @property
    def drifted(self) -> bool:
        return bool(self.schema["drifted"] or self.drifted_columns)

    def column(self, name: str) -> dict[str, Any]:
        for c in self.columns:
            if c["name"] == name:
                return c
        msg = f"no column {name!r} in the drift report"
        raise KeyError(msg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "current": self.current,
            "method": self.method,
            "thresholds": self.thresholds,
            "rows": self.rows,
            "drifted": self.drifted,
            "drifted_columns": [c["name"] for c in self.drifted_columns],
            "schema": self.schema,
            "columns": self.columns,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftReport:
        return cls(
            reference=d.get("reference", ""),
            current=d.get("current", ""),
            method=d.get("method", "profile"),
            thresholds=dict(d.get("thresholds") or DEFAULT_THRESHOLDS),
            rows=dict(d.get("rows") or {}),
            schema=dict(d.get("schema") or {"drifted": False}),
            columns=list(d.get("columns") or []),
        )


__all__ = ["DEFAULT_THRESHOLDS", "ContentLocation", "Deployment", "DriftRecord", "DriftReport"]
