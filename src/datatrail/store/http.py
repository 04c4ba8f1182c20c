"""The HTTP store: the Store protocol over a remote ``datatrail serve``.

Files are hashed on the client; only events and metadata travel. Every call is
one or a few JSON requests to ``/api/v1``; the server's ``{"error", "detail"}``
answers become the same :mod:`datatrail.core.errors` a local store raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from datatrail.core.chain import Checkpoint
from datatrail.core.changes import Event
from datatrail.core.errors import (
    Conflict,
    DatatrailError,
    Forbidden,
    GraphTooLarge,
    IntegrityError,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    StoreVersionError,
)
from datatrail.core.model import Dataset, FileEntry, Ref, Run, Version
from datatrail.core.records import ContentLocation, Deployment, DriftRecord
from datatrail.core.results import (
    AuditEntry,
    CheckResult,
    ColumnLineageResult,
    DatasetDetails,
    Direction,
    IngestResult,
    JobSummary,
    LatestVersion,
    LineageColumns,
    LineageJson,
    LineageResult,
    NamespaceSummary,
    SearchHit,
)
from datatrail.core.times import stored_time
from datatrail.core.touches import Check
from datatrail.store import wire
from datatrail.store.connected import connected_steps
from datatrail.store.event_pages import walk_event_page

PAGE = 1000
AUDIT_WINDOW = 10_000  # the most entries GET /api/v1/audit hands out at once
_ERRORS: dict[str, type[DatatrailError]] = {
    "invalid_input": InvalidInput,
    "not_found": NotFound,
    "store_not_found": NotFound,
    "conflict": Conflict,
    "forbidden": Forbidden,
    "unauthorized": Forbidden,
    "integrity_error": IntegrityError,
    "store_version_error": StoreVersionError,
    "store_unavailable": StoreUnavailable,
    "payload_too_large": InvalidInput,
    "graph_too_large": GraphTooLarge,
}
_BY_STATUS: dict[int, type[DatatrailError]] = {
    400: InvalidInput,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidInput,
    422: InvalidInput,
    503: StoreUnavailable,
}


def _seg(value: str) -> str:
    """One path segment, with '/' and ':' encoded (the server routes on the raw path)."""
    return quote(value, safe="")


class HttpStore:
    """A store behind a datatrail server at ``uri`` (``http://host:port``).

    >>> store = HttpStore("http://localhost:8000", token="…")  # doctest: +SKIP
    """

    def __init__(self, uri: str, *, token: str | None = None, timeout: float = 60.0, retries: int = 3) -> None:
        self.uri = uri
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._retries = retries
        self._client = httpx.Client(base_url=uri.rstrip("/"), headers=headers, timeout=timeout)

    # ------------------------------------------------------------ transport

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self._retries + 1):
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                # Every request is safe to repeat: ingest is idempotent on the event's hash.
                if attempt < self._retries:
                    time.sleep(0.2 * 2**attempt)
                    continue
                msg = f"cannot reach the datatrail server at {self.uri}: {exc}; is `datatrail serve` running?"
                raise StoreUnavailable(msg) from None
            if response.status_code == 503 and attempt < self._retries:
                time.sleep(0.2 * 2**attempt)
                continue
            if response.is_success:
                return response.json()
            raise self._error(response)
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)  # pragma: no cover

    def _error(self, response: httpx.Response) -> DatatrailError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("error") if isinstance(body, dict) else None
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, str):
            detail = "; ".join(map(str, detail)) if isinstance(detail, list) else response.reason_phrase
        cls = _ERRORS.get(code or "") or _BY_STATUS.get(response.status_code, DatatrailError)
        return cls(" ".join(detail.split()) or f"the server answered {response.status_code}")

    def add_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> bool:
        """Give a role through the server (admins, and owners inside their namespaces; see security.md)."""
        body = {"user": user, "role": role, "pattern": pattern}
        return bool(self._request("POST", "/api/v1/grants", json=body)["added"])

    def remove_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> None:
        self._request("POST", "/api/v1/grants/revoke", json={"user": user, "role": role, "pattern": pattern})

    def _paged(self, path: str, key: str, params: dict[str, Any] | None = None) -> list[Any]:
        items: list[Any] = []
        while True:
            page = self._request("GET", path, params={**(params or {}), "limit": PAGE, "offset": len(items)})[key]
            items.extend(page)
            if len(page) < PAGE:
                return items

    # ------------------------------------------------------------ the Store protocol

    @property
    def accounts(self) -> None:
        """Users and tokens are managed where the store is, never through a server."""
        return None

    def ingest(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
        check: Check | None = None,
    ) -> IngestResult:
        """One event; the server records who sent it (its token) and from where, and checks what it may do
        (``origin`` and ``check`` are the server's business, not sent)."""
        body = self._request("POST", "/api/v1/events", json={"event": event, "actor": actor, "action": action})
        return wire.ingest_from_wire(body)

    def ingest_soon(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
    ) -> Future[IngestResult] | None:
        """None: an event goes to the server in a request of its own (:meth:`ingest`, which blocks)."""
        return None

    def ingest_many(
        self,
        events: Sequence[Event],
        actor: str,
        action: str,
        *,
        origin: str | None = None,
        check: Check | None = None,
    ) -> list[IngestResult | DatatrailError]:
        """Each event in its own request, with the error that refused it (the server is idempotent on repeats)."""
        out: list[IngestResult | DatatrailError] = []
        for event in events:
            try:
                out.append(self.ingest(event, actor, action, detail=False))
            except (InvalidInput, NotFound) as exc:
                out.append(exc)
        return out

    def prepare(self) -> None:
        return None

    def list_datasets(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[Dataset]:
        given = {"namespace": namespace, "name": name, "match": match}
        params = {k: v for k, v in given.items() if v is not None}
        return [wire.dataset_from_wire(d) for d in self._request("GET", "/api/v1/datasets", params=params)["datasets"]]

    def dataset_page(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[Dataset], int]:
        params: dict[str, Any] = {"namespace": namespace, "limit": limit, "offset": offset}
        if after is not None:
            params["after"] = after
        answer = self._request("GET", "/api/v1/dataset-page", params=params)
        return [wire.dataset_from_wire(d) for d in answer["datasets"]], int(answer["total"])

    def dataset_page_details(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[DatasetDetails], int]:
        params: dict[str, Any] = {"namespace": namespace, "limit": limit, "offset": offset}
        if after is not None:
            params["after"] = after
        answer = self._request("GET", "/api/v1/dataset-page-details", params=params)
        return [wire.details_from_wire(d) for d in answer["datasets"]], int(answer["total"])

    def dataset_details(self, keys: Sequence[tuple[str, str]]) -> list[DatasetDetails]:
        out: list[DatasetDetails] = []
        wanted = list(dict.fromkeys(keys))
        for i in range(0, len(wanted), 100):
            chunk = wanted[i : i + 100]
            params = {"namespace": [k[0] for k in chunk], "name": [k[1] for k in chunk]}
            answer = self._request("GET", "/api/v1/dataset-details", params=params)
            out += [wire.details_from_wire(d) for d in answer["datasets"]]
        return out

    def resolve(self, ref: Ref) -> Version:
        params = {"namespace": ref.namespace, "name": ref.name}
        if ref.selector is not None:
            params["selector"] = ref.selector
        return wire.version_from_wire(self._request("GET", "/api/v1/resolve", params=params))

    def versions_by_number(self, keys: Sequence[tuple[str, str, int]]) -> list[Version]:
        out: list[Version] = []
        wanted = list(dict.fromkeys(keys))
        for i in range(0, len(wanted), 100):
            chunk = wanted[i : i + 100]
            params = {
                "namespace": [k[0] for k in chunk],
                "name": [k[1] for k in chunk],
                "number": [k[2] for k in chunk],
            }
            answer = self._request("GET", "/api/v1/versions-by-number", params=params)
            out += [wire.version_from_wire(v) for v in answer["versions"]]
        found = {(v.namespace, v.name, v.number): v for v in out}
        return [found[k] for k in keys if k in found]

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        params = {"namespace": namespace, "name": name, "key": version_key}
        found = self._request("GET", "/api/v1/version-by-key", params=params)["version"]
        return wire.version_from_wire(found) if found is not None else None

    def _dataset_path(self, namespace: str, name: str) -> str:
        return f"/api/v1/namespaces/{_seg(namespace)}/datasets/{_seg(name)}"

    def list_versions(self, namespace: str, name: str) -> list[Version]:
        items = self._paged("/api/v1/dataset-versions", "versions", {"namespace": namespace, "name": name})
        return [wire.version_from_wire(v) for v in items]

    def latest_versions(self, limit: int | None = None, *, failing: bool = False) -> list[LatestVersion]:
        params: dict[str, Any] = {} if limit is None else {"limit": limit}
        if failing:
            params["failing"] = "true"
        found = self._request("GET", "/api/v1/latest-versions", params=params)["versions"]
        return [wire.latest_from_wire(item) for item in found]

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        params = {"uri": uri} if digest is None else {"uri": uri, "digest": digest}
        found = self._request("GET", "/api/v1/versions-at", params=params)["versions"]
        return [wire.version_from_wire(v) for v in found]

    def manifest(self, version: Version) -> list[FileEntry]:
        path = f"{self._dataset_path(version.namespace, version.name)}/versions/{version.number}/files"
        return [wire.file_from_wire(f) for f in self._paged(path, "files")]

    def profile(self, version: Version) -> dict[str, Any] | None:
        path = f"{self._dataset_path(version.namespace, version.name)}/versions/{version.number}/profile"
        found: dict[str, Any] | None = self._request("GET", path)["profile"]
        return found

    def check_results(self, version: Version) -> list[CheckResult]:
        path = f"{self._dataset_path(version.namespace, version.name)}/versions/{version.number}/checks"
        return [wire.check_from_wire(c) for c in self._request("GET", path)["checks"]]

    def classifications(self, version: Version) -> dict[str, list[str]]:
        """Column → labels, as the server marks them in the version's profile (``classified``)."""
        columns = (self.profile(version) or {}).get("columns") or ()
        return {c["name"]: sorted(c["classified"]) for c in columns if c.get("classified")}

    def get_run(self, run_id: str, visible: Callable[[str], bool] | None = None) -> Run:
        """The run a prefix names; the server looks only among the runs the token may see (``visible`` unused)."""
        return wire.run_from_wire(self._request("GET", f"/api/v1/runs/{_seg(run_id)}"))

    def runs_by_id(self, run_ids: Sequence[str]) -> list[Run]:
        out: list[Run] = []
        wanted = list(dict.fromkeys(run_ids))
        for i in range(0, len(wanted), 100):
            params = {"id": wanted[i : i + 100]}
            out += [wire.run_from_wire(r) for r in self._request("GET", "/api/v1/runs-by-id", params=params)["runs"]]
        found = {r.id: r for r in out}
        return [found[rid] for rid in run_ids if rid in found]

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        params: dict[str, Any] = {"limit": limit}
        if job is not None:
            params["job"] = job
        return [wire.run_from_wire(r) for r in self._request("GET", "/api/v1/runs", params=params)["runs"]]

    def list_jobs(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[JobSummary]:
        given = {"namespace": namespace, "name": name, "match": match}
        params = {k: v for k, v in given.items() if v is not None}
        return [wire.job_from_wire(j) for j in self._request("GET", "/api/v1/jobs", params=params)["jobs"]]

    def jobs_by_name(self, keys: Sequence[tuple[str, str]]) -> list[JobSummary]:
        out: list[JobSummary] = []
        wanted = list(dict.fromkeys(keys))
        for i in range(0, len(wanted), 100):
            chunk = wanted[i : i + 100]
            params = {"namespace": [k[0] for k in chunk], "name": [k[1] for k in chunk]}
            out += [wire.job_from_wire(j) for j in self._request("GET", "/api/v1/jobs-by-name", params=params)["jobs"]]
        found = {(j.namespace, j.name): j for j in out}
        return [found[k] for k in keys if k in found]

    def list_namespaces(self, name: str | None = None) -> list[NamespaceSummary]:
        params = {} if name is None else {"name": name}
        answer = self._request("GET", "/api/v1/namespace-summaries", params=params)
        return [wire.namespace_from_wire(s) for s in answer["namespaces"]]

    def job_page(self, namespace: str, *, limit: int, offset: int = 0) -> tuple[list[JobSummary], int]:
        params: dict[str, Any] = {"namespace": namespace, "limit": limit, "offset": offset}
        answer = self._request("GET", "/api/v1/job-page", params=params)
        return [wire.job_from_wire(j) for j in answer["jobs"]], int(answer["total"])

    def search(
        self,
        q: str,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        sort: str = "name",
        before: date | None = None,
        after: date | None = None,
        limit: int = 100,
        offset: int = 0,
        visible: Callable[[str], bool] | None = None,
    ) -> tuple[list[SearchHit], int]:
        """Marquez's ``GET /api/v1/search``: the server pages, among what the token may see (``visible`` unused)."""
        given = {
            "q": q,
            "filter": kind,
            "namespace": namespace,
            "sort": sort,
            "before": before.isoformat() if before is not None else None,
            "after": after.isoformat() if after is not None else None,
            "limit": limit,
            "offset": offset,
        }
        answer = self._request("GET", "/api/v1/search", params={k: v for k, v in given.items() if v is not None})
        hits = [SearchHit(h["type"], h["namespace"], h["name"], stored_time(h["updatedAt"])) for h in answer["results"]]
        return hits, int(answer["totalCount"])

    def lineage(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageResult:
        body = [[v.namespace, v.name, v.number] for v in start]
        params: dict[str, Any] = {"direction": direction, "depth": depth}
        if as_of is not None:
            params["asOf"] = as_of.isoformat()
        return wire.lineage_from_wire(self._request("POST", "/api/v1/lineage/traverse", params=params, json=body))

    def connected(self, start: Sequence[Version], depth: int, as_of: datetime | None = None) -> LineageResult:
        return connected_steps(self, start, depth, as_of)  # a request per step: the server walks each

    def lineage_columns(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageColumns:
        # The wire carries the result's shape; the server builds it from columns.
        return LineageColumns.of(self.lineage(start, direction, depth, as_of))

    def lineage_json(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageJson:
        return LineageJson.of(self.lineage_columns(start, direction, depth, as_of))

    def column_lineage(
        self, start: Sequence[tuple[Version, str | None]], direction: Direction, depth: int
    ) -> ColumnLineageResult:
        body = [[v.namespace, v.name, v.number, column] for v, column in start]
        params = {"direction": direction, "depth": depth}
        return wire.column_lineage_from_wire(
            self._request("POST", "/api/v1/column-lineage/traverse", params=params, json=body)
        )

    def describe(self, version: Version) -> dict[str, Any]:
        path = f"{self._dataset_path(version.namespace, version.name)}/versions/{version.number}/facets"
        found: dict[str, Any] = self._request("GET", path)
        return found

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        entries = self._request("GET", "/api/v1/audit", params={"limit": limit})["entries"]
        return [wire.audit_from_wire(e) for e in entries]

    def audit_entries(
        self,
        *,
        dataset: Ref | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        params: dict[str, Any] = {"limit": limit}
        if dataset is not None:
            params["dataset"] = str(Ref(dataset.namespace, dataset.name))
        if user is not None:
            params["user"] = user
        if action is not None:
            params["action"] = action
        if since is not None:
            params["since"] = since.isoformat()
        return [wire.audit_from_wire(e) for e in self._request("GET", "/api/v1/audit", params=params)["entries"]]

    def audit_rows(self) -> tuple[Checkpoint | None, Iterator[dict[str, Any]]]:
        """The newest 10,000 entries, oldest first (the window a server hands out), from their first link."""
        rows = [wire.audit_to_wire(e) for e in reversed(self.audit_log(AUDIT_WINDOW))]
        start = Checkpoint(int(rows[0]["seq"]) - 1, rows[0]["prev_hash"]) if rows and int(rows[0]["seq"]) > 1 else None
        return start, iter(rows)

    def audit_head(self) -> Checkpoint | None:
        entries = self.audit_log(1)
        return Checkpoint(entries[0].seq, entries[0].hash) if entries else None

    def record_access(
        self,
        *,
        actor: str,
        action: str,
        target: str | None,
        outcome: str = "allowed",
        origin: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Nothing: the server records every read it serves, under the token's user."""
        return None

    def record_accesses(self, *, actor: str, action: str, targets: Sequence[str], origin: str | None = None) -> None:
        """Nothing: the server records every read it serves, under the token's user."""
        return None

    def event_page(
        self, since: datetime | None, until: datetime | None, *, limit: int, offset: int = 0, newest_first: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        return walk_event_page(self.events, since, until, limit, offset, newest_first)

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        out: list[tuple[int, dict[str, Any]]] = []
        while len(out) < limit:
            params: dict[str, Any] = {"after_id": after_id, "limit": min(PAGE, limit - len(out))}
            if since is not None:
                params["since"] = since.isoformat()
            if namespace is not None:
                params["namespace"] = namespace
            page = self._request("GET", "/api/v1/events", params=params)["events"]
            if not page:  # a short page is no end: the server leaves out events the caller may not read
                break
            out.extend((int(item["id"]), item["event"]) for item in page)
            after_id = out[-1][0]
        return out

    def content_locations(self, version: Version) -> list[ContentLocation]:
        params = {"namespace": version.namespace, "name": version.name, "version": version.number}
        found = self._request("GET", "/api/v1/content-locations", params=params)["locations"]
        return [ContentLocation.from_dict(d) for d in found]

    def record_content_location(
        self, versions: Sequence[Version], remote: str, url: str, *, actor: str, origin: str | None = None
    ) -> int:
        """Tell the server where the bytes are (the server records who from the token; ``actor`` when open)."""
        added = 0
        for start in range(0, len(versions), PAGE):  # the server takes at most 10,000 per request
            batch = [[v.namespace, v.name, v.number] for v in versions[start : start + PAGE]]
            body = {"remote": remote, "url": url, "actor": actor, "versions": batch}
            added += int(self._request("POST", "/api/v1/content-locations", json=body)["added"])
        return added

    def forget_content_location(
        self, versions: Sequence[Version], url: str, *, actor: str, origin: str | None = None
    ) -> int:
        forgotten = 0
        for start in range(0, len(versions), PAGE):
            batch = [[v.namespace, v.name, v.number] for v in versions[start : start + PAGE]]
            body = {"url": url, "actor": actor, "versions": batch}
            forgotten += int(self._request("POST", "/api/v1/content-locations/forget", json=body)["forgotten"])
        return forgotten

    def deployments(
        self,
        namespace: str | None = None,
        name: str | None = None,
        *,
        environment: str | None = None,
        active: bool = False,
    ) -> list[Deployment]:
        params = {"namespace": namespace, "name": name, "environment": environment, "active": active}
        body = self._request("GET", "/api/v1/deployments", params={k: v for k, v in params.items() if v is not None})
        return [Deployment.from_dict(d) for d in body["deployments"]]

    def drift_reports(
        self,
        *,
        environment: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 1000,
    ) -> list[DriftRecord]:
        params = {"environment": environment, "namespace": namespace, "name": name, "limit": limit}
        body = self._request("GET", "/api/v1/drift", params={k: v for k, v in params.items() if v is not None})
        return [DriftRecord.from_dict(d) for d in body["reports"]]

    def evaluations(self, version: Version) -> list[Run]:
        params = {"namespace": version.namespace, "name": version.name, "version": version.number}
        return [wire.run_from_wire(r) for r in self._request("GET", "/api/v1/evaluations", params=params)["runs"]]

    def check_integrity(self) -> list[str]:
        """What the server's store finds wrong in its audit chain; empty when sound."""
        problems: list[str] = self._request("GET", "/api/v1/integrity")["problems"]
        return problems

    def close(self) -> None:
        self._client.close()
