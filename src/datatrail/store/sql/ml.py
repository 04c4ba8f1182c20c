"""The SQL store's reads of the ML lifecycle: deployments, drift reports, evaluations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

from datatrail.core.model import Ref, Run, Version
from datatrail.core.privacy import redact_drift_report
from datatrail.core.records import Deployment, DriftRecord
from datatrail.core.times import stored_time
from datatrail.store.sql import tables as t
from datatrail.store.sql.classifications import effective_classifications
from datatrail.store.sql.database import Database
from datatrail.store.sql.queries import run_select, to_run
from datatrail.store.sql.rows import json_value


class MLReads:
    """The ML lifecycle's part of the store's :class:`~datatrail.store.base.Reads`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def deployments(
        self,
        namespace: str | None = None,
        name: str | None = None,
        *,
        environment: str | None = None,
        active: bool = False,
    ) -> list[Deployment]:
        """Deployments, newest first; ``active`` keeps those still live."""
        d, v, ds, n, r = t.deployments.c, t.versions.c, t.datasets.c, t.namespaces.c, t.runs.c
        retired_by = t.runs.alias()  # Core's alias: sqlalchemy.orm's aliased() costs its import
        q = (
            select(
                d.environment,
                d.deployed_at,
                d.deployed_by,
                d.retired_at,
                v.number,
                v.digest,
                ds.name,
                ds.kind,
                n.name.label("namespace"),
                r.run_id,
                retired_by.c.run_id.label("retired_by_run_id"),
            )
            .select_from(t.deployments)
            .join(t.versions, v.id == d.version_id)
            .join(t.datasets, ds.id == d.dataset_id)
            .join(t.namespaces, n.id == ds.namespace_id)
            .join(t.runs, r.pk == d.run_pk)
            .outerjoin(retired_by, retired_by.c.pk == d.retired_by_run_pk)
            .order_by(d.deployed_at.desc(), r.run_id.desc())
        )
        if namespace is not None:
            q = q.where(n.name == namespace)
        if name is not None:
            q = q.where(ds.name == name)
        if environment is not None:
            q = q.where(d.environment == environment)
        if active:
            q = q.where(d.retired_at.is_(None))
        with self._db.read() as conn:
            return [
                Deployment(
                    environment=row.environment,
                    namespace=row.namespace,
                    name=row.name,
                    version=row.number,
                    kind=row.kind,
                    digest=row.digest,
                    deployed_at=stored_time(row.deployed_at),  # type: ignore[arg-type]
                    deployed_by=row.deployed_by,
                    run_id=row.run_id,
                    retired_at=stored_time(row.retired_at),
                    retired_by_run_id=row.retired_by_run_id,
                )
                for row in conn.execute(q)
            ]

    def drift_reports(
        self,
        *,
        environment: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 1000,
    ) -> list[DriftRecord]:
        """Stored drift reports, oldest first (the last ``limit``); ``name`` filters on the current dataset."""
        dr, r = t.drift_reports.c, t.runs.c
        ref_v, cur_v = t.versions.alias(), t.versions.alias()
        ref_d, cur_d = t.datasets.alias(), t.datasets.alias()
        ref_n, cur_n = t.namespaces.alias(), t.namespaces.alias()
        q = (
            select(
                r.run_id,
                dr.environment,
                dr.deployment_run_id,
                dr.created_at,
                dr.drifted,
                dr.report,
                ref_n.c.name.label("ref_ns"),
                ref_d.c.name.label("ref_name"),
                ref_v.c.number.label("ref_number"),
                ref_v.c.id.label("ref_id"),
                cur_v.c.id.label("cur_id"),
                cur_n.c.name.label("cur_ns"),
                cur_d.c.name.label("cur_name"),
                cur_v.c.number.label("cur_number"),
            )
            .select_from(t.drift_reports)
            .join(t.runs, r.pk == dr.run_pk)
            .join(ref_v, ref_v.c.id == dr.reference_version_id)
            .join(ref_d, ref_d.c.id == ref_v.c.dataset_id)
            .join(ref_n, ref_n.c.id == ref_d.c.namespace_id)
            .join(cur_v, cur_v.c.id == dr.current_version_id)
            .join(cur_d, cur_d.c.id == cur_v.c.dataset_id)
            .join(cur_n, cur_n.c.id == cur_d.c.namespace_id)
            .order_by(dr.created_at.desc(), r.run_id.desc())
            .limit(limit)
        )
        if environment is not None:
            q = q.where(dr.environment == environment)
        if namespace is not None:
            q = q.where(cur_n.c.name == namespace)
        if name is not None:
            q = q.where(cur_d.c.name == name)
        with self._db.read() as conn:
            rows = conn.execute(q).all()
            # A column classified in either version keeps its distances only (reports stored before, too).
            known: dict[int, dict[str, set[str]]] = {}
            for row in rows:
                for vid in (int(row.ref_id), int(row.cur_id)):
                    if vid not in known:
                        known[vid] = effective_classifications(conn, vid)
        out = [
            DriftRecord(
                run_id=row.run_id,
                reference=str(Ref(row.ref_ns, row.ref_name, str(row.ref_number))),
                current=str(Ref(row.cur_ns, row.cur_name, str(row.cur_number))),
                created_at=stored_time(row.created_at),  # type: ignore[arg-type]
                drifted=bool(row.drifted),
                report=redact_drift_report(_object(row.report), {**known[row.ref_id], **known[row.cur_id]}),
                environment=row.environment,
                deployment_run_id=row.deployment_run_id,
            )
            for row in rows
        ]
        return out[::-1]

    def evaluations(self, version: Version) -> list[Run]:
        """Runs of job type ``evaluate`` that read the version, oldest first (with inputs and metrics)."""
        io, r, j = t.run_io.c, t.runs.c, t.jobs.c
        q = (
            run_select()
            .join(t.run_io, and_(io.run_pk == r.pk, io.direction == t.INPUT, io.version_id == version.id))
            .where(j.type == "evaluate")
            .order_by(r.started_at, r.run_id)
        )
        with self._db.read() as conn:
            return [to_run(conn, row) for row in conn.execute(q).all()]


def _object(value: Any) -> dict[str, Any]:
    """A JSON column holding an object; anything else reads as empty."""
    value = json_value(value)
    return value if isinstance(value, dict) else {}
