"""Database rows to domain objects, shared by the SQLAlchemy store and the quick reader."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from datatrail.core.errors import DatatrailError, InvalidInput, NotFound
from datatrail.core.model import Dataset, Digest, Ref, Run, RunState, Version
from datatrail.core.times import stored_time

if TYPE_CHECKING:
    from datatrail.core.results import CheckResult


def json_value(value: Any) -> Any:
    """A JSON column's value (SQLite may hand back text)."""
    return json.loads(value) if isinstance(value, str) else value


VERSION_COLUMNS = (
    "id",
    "number",
    "version_key",
    "digest",
    "size",
    "uri",
    "format",
    "file_count",
    "created_at",
    "created_by",
    "host",
    "message",
    "properties",
    "dataset",
    "kind",
    "namespace",
    "run_id",
)


def version_from_row(r: Any, aliases: Iterable[str]) -> Version:
    """A Version from a row with the attributes named in VERSION_COLUMNS."""
    props = r.properties
    if isinstance(props, str):
        props = json.loads(props)
    return Version(
        namespace=r.namespace,
        name=r.dataset,
        number=r.number,
        digest=Digest.parse(r.digest) if r.digest else None,
        size=r.size,
        uri=r.uri,
        format=r.format,
        created_at=stored_time(r.created_at) or datetime.now(UTC),
        created_by=r.created_by,
        host=r.host,
        message=r.message,
        kind=r.kind,
        file_count=r.file_count,
        run_id=r.run_id,
        aliases=tuple(sorted(aliases)),
        properties=props or {},
        id=r.id,
        key=r.version_key,
    )


DATASET_COLUMNS = ("namespace", "name", "kind", "description", "created_at", "version_count", "latest")


def dataset_from_row(r: Any) -> Dataset:
    """A Dataset (with its version count and latest number) from a row with DATASET_COLUMNS."""
    return Dataset(r.namespace, r.name, r.kind, r.description, stored_time(r.created_at), r.version_count, r.latest)


RUN_COLUMNS = (
    "pk",
    "run_id",
    "job_id",
    "state",
    "state_time",
    "started_at",
    "ended_at",
    "user",
    "host",
    "command",
    "cwd",
    "params",
    "code",
    "error",
    "parent_run_id",
    "workflow",
    "facets",
    "start_seen",
    "start_hint",
    "job",
    "namespace",
)


def started(row: Any) -> datetime | None:
    """When the run of a row with RUN_COLUMNS started: its earliest event, or the start its facets tell
    while only endings are stored (``start_seen`` false; SQLite without SQLAlchemy hands back 0, not False)."""
    first, hint = stored_time(row.started_at), stored_time(row.start_hint)
    if row.start_seen is not None and not row.start_seen and hint is not None and (first is None or hint < first):
        return hint
    return first


def planned(names: Iterable[tuple[str, str]], outputs: Sequence[Version]) -> tuple[tuple[str, str], ...]:
    """The planned outputs of a run (``names``: namespace and name, sorted) it produced no version of."""
    produced = {(v.namespace, v.name) for v in outputs}
    return tuple((namespace, name) for namespace, name in names if (namespace, name) not in produced)


def run_from_row(
    row: Any,
    metrics: dict[str, Any],
    inputs: Sequence[Version],
    outputs: Sequence[Version],
    planned_outputs: tuple[tuple[str, str], ...],
    children: tuple[str, ...],
) -> Run:
    """A Run from a row with RUN_COLUMNS, its metrics (latest step per key), inputs, outputs, the outputs it
    planned without producing (:func:`planned`) and the ids of its child runs (oldest first)."""
    return Run(
        id=row.run_id,
        namespace=row.namespace,
        job=row.job,
        state=RunState.stored(row.state),
        started_at=started(row),
        ended_at=stored_time(row.ended_at),
        user=row.user,
        host=row.host,
        command=row.command,
        cwd=row.cwd,
        params=json_value(row.params) or {},
        metrics=metrics,
        code=json_value(row.code) or {},
        error=row.error,
        parent_run_id=row.parent_run_id,
        workflow=row.workflow,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        facets=json_value(row.facets) or {},
        planned_outputs=planned_outputs,
        children=children,
    )


CHECK_COLUMNS = (
    "id",
    "version_id",
    "event_id",
    "position",
    "rule",
    "name",
    "column_name",
    "severity",
    "success",
    "observed",
    "expected",
    "message",
    "checked_at",
    "checked_by",
)


def check_from_row(r: Any, hidden: bool, observed: Any) -> CheckResult:
    """A CheckResult from a row with CHECK_COLUMNS (``observed`` decoded); ``hidden`` leaves out values."""
    from datatrail.core.results import CheckResult  # start-up: the results' types are built when one is read

    return CheckResult(
        rule=r.rule,
        name=r.name,
        column=r.column_name,
        severity=r.severity,
        success=bool(r.success),
        observed=None if hidden else observed,
        expected=r.expected,
        message=None if hidden else r.message,
        checked_at=stored_time(r.checked_at),
        checked_by=r.checked_by,
    )


MIN_PREFIX = 4  # characters of a run id a prefix needs
PREFIX_CANDIDATES = 1000  # runs sharing a prefix that a filtered lookup looks through
SHOWN_CANDIDATES = 5  # runs an "ambiguous" error names
RENAMED_AWAY = "RENAMED"  # the lifecycle of a dataset under its previous name (facet_map.py sets it)


def no_dataset(namespace: str, name: str) -> NotFound:
    """The error for a dataset that does not exist."""
    where = "" if namespace == "default" else f" in namespace {namespace!r}"
    return NotFound(f"no dataset named {name!r}{where}; `datatrail ls` lists the datasets")


def no_version(ref: Ref, lifecycle: str | None, facets: Any) -> NotFound:
    """The error for a ref whose dataset has no such version (naming the new name of a renamed dataset)."""
    sel = ref.selector
    what = "has no versions" if sel in (None, "latest") else f"has no version {sel!r}"
    msg = f"dataset {ref.name!r} {what}; `datatrail versions {ref.name}` lists them"
    moved = (json_value(facets) or {}).get("renamedTo") if lifecycle == RENAMED_AWAY else None
    if isinstance(moved, dict) and isinstance(moved.get("value"), dict):
        to = moved["value"]
        msg = (
            f"dataset {ref.name!r} {what}: it was renamed to {to.get('name')!r}"
            f" in namespace {to.get('namespace')!r}; use that name"
        )
    return NotFound(msg)


def ambiguous_ref(ref: Ref) -> InvalidInput:
    return InvalidInput(f"ref {str(ref)!r} is ambiguous: several versions match; give more hex digits")


def run_prefix_error(run_id: str, found: Sequence[str] | None) -> DatatrailError:
    """The error for a run id (prefix) that names no run (``found`` empty), several (their ids, the first
    SHOWN_CANDIDATES + 1 at least), or is too short (None)."""
    if found is None:
        return InvalidInput(f"run id prefix {run_id!r} is too short; give at least {MIN_PREFIX} characters")
    if len(found) > 1:
        shown = ", ".join(found[:SHOWN_CANDIDATES])
        more = " …" if len(found) > SHOWN_CANDIDATES else ""
        return InvalidInput(f"run id prefix {run_id!r} is ambiguous: it matches {shown}{more}; give more characters")
    return NotFound(f"no run with id {run_id!r}; `datatrail runs` lists them")
