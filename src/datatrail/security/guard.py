"""The store as one principal may see it: access checks, redaction and read audit.

:class:`GuardedStore` wraps any :class:`~datatrail.store.base.Store` for one
request. What the principal may not read answers NotFound (never Forbidden, so
existence does not leak) and is left out of lists; in a lineage graph a node
it may not see becomes a placeholder that keeps its type and loses its name,
namespace and data, with an opaque id, so the caller sees that lineage goes on.
Reads of a dataset's metadata, versions or lineage, and every denied attempt,
are recorded through :class:`Access` (one audit entry each, once per request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import replace
from datetime import date, datetime
from typing import Any, TypeVar

from datatrail.core.chain import Checkpoint
from datatrail.core.changes import Event
from datatrail.core.errors import DatatrailError, Forbidden, InvalidInput, NotFound
from datatrail.core.model import DEFAULT_NAMESPACE, Dataset, FileEntry, Ref, Run, Version
from datatrail.core.records import ContentLocation, Deployment, DriftRecord
from datatrail.core.results import (
    REDACTED_JSON,
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
    LineageNode,
    LineageResult,
    NamespaceSummary,
    SearchHit,
)
from datatrail.core.roles import Principal, may_grant
from datatrail.core.touches import Check, Touch, touches
from datatrail.events import parse_event
from datatrail.security.access import Access as Access  # re-exported: it lived here
from datatrail.security.admission import Both, Checker, admit
from datatrail.store.base import Store
from datatrail.store.connected import connected_steps
from datatrail.store.event_pages import walk_event_page

_T = TypeVar("_T")

# Opaque ids of hidden nodes: stable within one server process, meaningless outside it.
_KEY = secrets.token_bytes(32)
OWNER_WINDOW = 10_000  # the newest entries an owner's audit query looks through


def opaque(node_id: str) -> str:
    return "hidden:" + hmac.new(_KEY, node_id.encode(), hashlib.sha256).hexdigest()[:16]


def dataset_target(namespace: str, name: str) -> str:
    return str(Ref(namespace, name, None))


def _not_found(namespace: str, name: str) -> NotFound:
    # The same words the store uses for a dataset that does not exist.
    where = "" if namespace == DEFAULT_NAMESPACE else f" in namespace {namespace!r}"
    return NotFound(f"no dataset named {name!r}{where}; `datatrail ls` lists the datasets")


def event_touches(event: Any, actor: str) -> tuple[Touch, ...] | None:
    """What a stored raw event touches; None when it no longer parses (then only admins see it)."""
    try:
        return touches(parse_event(event, actor))
    except DatatrailError:
        return None


class GuardedStore:
    """A Store seen through one principal's grants (see the module docstring)."""

    def __init__(self, inner: Store, access: Access, *, audit_lookups: bool = True) -> None:
        self.inner = inner  # the shared store; only this class reaches it
        self.access = access
        self.audit_lookups = audit_lookups

    @property
    def uri(self) -> str:
        return self.inner.uri

    @property
    def accounts(self) -> None:
        """Users and tokens are managed where the store is, not through one principal's view."""
        return None

    @property
    def principal(self) -> Principal:
        return self.access.principal

    def _can(self, namespace: str) -> bool:
        return self.access.allows("read", namespace)

    def _need(self, namespace: str, name: str, action: str, target: str | None = None) -> None:
        """NotFound (and a denied audit entry) unless the principal may read the namespace."""
        if not self._can(namespace):
            self.access.note(action, target or dataset_target(namespace, name), "denied")
            raise _not_found(namespace, name)

    # ------------------------------------------------------------ writes

    def _admit(self, event: Event, action: str) -> Event:
        """The event as this principal may store it; Forbidden (audited) otherwise (see admission.py)."""

        return admit(event, self.principal.name, self.access.allows, self._denier(action))

    def _deny_all(self, action: str, targets: list[str]) -> None:
        for target in targets:
            self.access.note(action, target, "denied")

    def _denier(self, action: str) -> Callable[[str], None]:
        def deny(target: str) -> None:
            self.access.note(action, target, "denied")

        return deny

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
        where = origin or self.access.origin
        if self.principal.everything:  # an admin (or an open server) may touch anything: nothing to decide
            return self.inner.ingest(event, actor, action, detail=detail, origin=where, check=check)
        admitted = self._admit(event, action)
        denied: list[str] = []
        mine = Checker(self.principal.name, self.access.allows, denied.append)
        both = mine if check is None else Both(mine, check)
        try:
            return self.inner.ingest(admitted, actor, action, detail=detail, origin=where, check=both)
        finally:  # the store asked inside its transaction; the refusal is recorded once that is over
            self._deny_all(action, denied)

    def ingest_soon(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
    ) -> Future[IngestResult] | None:
        """Queued as is for an admin (or an open server); None for anyone else, whose admission
        records its refusals in the audit log (a blocking write): :meth:`ingest` in a thread."""
        if not self.principal.everything:
            return None
        return self.inner.ingest_soon(event, actor, action, detail=detail, origin=origin or self.access.origin)

    def ingest_many(
        self,
        events: Sequence[Event],
        actor: str,
        action: str,
        *,
        origin: str | None = None,
        check: Check | None = None,
    ) -> list[IngestResult | DatatrailError]:
        """Every event in one transaction of the store's; Forbidden for the whole batch (nothing
        stored) when any event writes or reads where the principal may not."""
        where = origin or self.access.origin
        if self.principal.everything:
            return self.inner.ingest_many(events, actor, action, origin=where, check=check)
        admitted = [self._admit_in_batch(event, action) for event in events]
        denied: list[str] = []
        mine = Checker(self.principal.name, self.access.allows, denied.append)
        both = mine if check is None else Both(mine, check)
        try:
            return self.inner.ingest_many(admitted, actor, action, origin=where, check=both)
        finally:
            self._deny_all(action, denied)

    def _admit_in_batch(self, event: Event, action: str) -> Event:
        """As :meth:`_admit`, but a malformed event passes on unchanged: the store names it in its result."""
        try:
            return self._admit(event, action)
        except InvalidInput:
            return event

    def prepare(self) -> None:
        self.inner.prepare()

    # ------------------------------------------------------------ datasets and versions

    def list_datasets(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[Dataset]:
        return [d for d in self.inner.list_datasets(namespace, name=name, match=match) if self._can(d.namespace)]

    def dataset_page(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[Dataset], int]:
        if not self._can(namespace):  # as list_datasets: a namespace the caller may not read lists nothing
            return [], 0
        return self.inner.dataset_page(namespace, limit=limit, offset=offset, after=after)

    def dataset_page_details(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[DatasetDetails], int]:
        """As :meth:`dataset_page`; each latest version is a read of it, audited as :meth:`resolve` and
        :meth:`describe` audit one (the dataset's own namespace, which the page's is)."""
        if not self._can(namespace):
            return [], 0
        found, total = self.inner.dataset_page_details(namespace, limit=limit, offset=offset, after=after)
        self.access.note_all("dataset.read", [x.latest.ref for x in found if x.latest is not None])
        return found, total

    def dataset_details(self, keys: Sequence[tuple[str, str]]) -> list[DatasetDetails]:
        """Those in namespaces the principal may read (others are left out, as in :meth:`list_datasets`);
        each latest version is a read of it, audited as in :meth:`dataset_page_details`."""
        found = self.inner.dataset_details([k for k in keys if self._can(k[0])])
        self.access.note_all("dataset.read", [x.latest.ref for x in found if x.latest is not None])
        return found

    def resolve(self, ref: Ref) -> Version:
        self._need(ref.namespace, ref.name, "dataset.read", str(ref))
        version = self.inner.resolve(ref)
        if version.namespace != ref.namespace:  # another name of it (symlinks): its own namespace decides too
            self._need(version.namespace, version.name, "dataset.read", version.ref)
        self.access.note("dataset.read", version.ref)
        return version

    def versions_by_number(self, keys: Sequence[tuple[str, str, int]]) -> list[Version]:
        """As :meth:`resolve` of each: refused (raised) for a dataset the principal may not read, each version
        read audited, the entries written at once."""
        for ns, name, number in keys:
            self._need(ns, name, "dataset.read", str(Ref(ns, name, str(number))))
        found = self.inner.versions_by_number(keys)
        self.access.note_all("dataset.read", [ver.ref for ver in found])
        return found

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        if not self._can(namespace):
            self.access.note("dataset.read", dataset_target(namespace, name), "denied")
            return None
        found = self.inner.find_version(namespace, name, version_key)
        if found is not None and self.audit_lookups:
            self.access.note("dataset.read", found.ref)
        return found

    def latest_versions(self, limit: int | None = None, *, failing: bool = False) -> list[LatestVersion]:
        # A listing like list_datasets: what the principal may read, no read of a version audited.
        if limit is None or self.principal.everything:
            found = self.inner.latest_versions(limit, failing=failing)
            return [item for item in found if self._can(item.version.namespace)]
        # The first ``limit`` readable: ask for twice as many each time until enough are readable or the
        # store has no more (at worst every one, as without a limit; at most twice the rows that takes).
        asked = limit
        while True:
            found = self.inner.latest_versions(asked, failing=failing)
            shown = [item for item in found if self._can(item.version.namespace)]
            if len(shown) >= limit or len(found) < asked:
                return shown[:limit]
            asked *= 2

    def list_versions(self, namespace: str, name: str) -> list[Version]:
        self._need(namespace, name, "dataset.versions")
        found = self.inner.list_versions(namespace, name)
        if found and found[0].namespace != namespace:  # another name of it (symlinks)
            self._need(found[0].namespace, found[0].name, "dataset.versions")
        self.access.note("dataset.versions", dataset_target(namespace, name))
        return found

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        """Only versions the principal may read: one it may not is simply not there (as in ``find_version``)."""
        found = [v for v in self.inner.versions_at(uri, digest) if self._can(v.namespace)]
        if self.audit_lookups:
            for v in found:
                self.access.note("dataset.read", v.ref)
        return found

    def _version(self, version: Version) -> None:
        self._need(version.namespace, version.name, "dataset.read", version.ref)
        self.access.note("dataset.read", version.ref)

    def manifest(self, version: Version) -> list[FileEntry]:
        self._version(version)
        return self.inner.manifest(version)

    def profile(self, version: Version) -> dict[str, Any] | None:
        self._version(version)
        return self.inner.profile(version)

    def check_results(self, version: Version) -> list[CheckResult]:
        self._version(version)
        return self.inner.check_results(version)

    def describe(self, version: Version) -> dict[str, Any]:
        self._version(version)
        return self.inner.describe(version)

    def classifications(self, version: Version) -> dict[str, list[str]]:
        self._version(version)
        return self.inner.classifications(version)

    # ------------------------------------------------------------ runs and jobs

    def _visible_run(self, run: Run) -> Run:
        return replace(
            run,
            inputs=tuple(v for v in run.inputs if self._can(v.namespace)),
            outputs=tuple(v for v in run.outputs if self._can(v.namespace)),
        )

    def get_run(self, run_id: str, visible: Callable[[str], bool] | None = None) -> Run:
        """Among the runs the principal may see only: a hidden run is indistinguishable from a missing one.

        Every answer is audited: the run read, or the id (or prefix) that found none or several."""
        try:
            run = self.inner.get_run(run_id, lambda ns: self._can(ns) and (visible is None or visible(ns)))
        except (NotFound, InvalidInput):
            self.access.note("run.read", f"run:{run_id[:64]}", "denied")
            raise
        self.access.note("run.read", f"run:{run.id}")
        return self._visible_run(run)

    def runs_by_id(self, run_ids: Sequence[str]) -> list[Run]:
        """As :meth:`get_run` of each: a run the principal may not see is left out (its id audited as refused,
        as a missing one's), each one read audited."""
        found = [r for r in self.inner.runs_by_id(run_ids) if self._can(r.namespace)]
        shown = {r.id for r in found}
        for rid in dict.fromkeys(run_ids):
            if rid not in shown:
                self.access.note("run.read", f"run:{rid[:64]}", "denied")
        self.access.note_all("run.read", [f"run:{r.id}" for r in found])
        return [self._visible_run(r) for r in found]

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        return [self._visible_run(r) for r in self.inner.list_runs(job, limit) if self._can(r.namespace)]

    def list_jobs(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[JobSummary]:
        return [j for j in self.inner.list_jobs(namespace, name=name, match=match) if self._can(j.namespace)]

    def jobs_by_name(self, keys: Sequence[tuple[str, str]]) -> list[JobSummary]:
        """Those in namespaces the principal may read (others are left out, as in :meth:`list_jobs`)."""
        return self.inner.jobs_by_name([k for k in keys if self._can(k[0])])

    def list_namespaces(self, name: str | None = None) -> list[NamespaceSummary]:
        """Those the principal may read, as :meth:`list_datasets` and :meth:`list_jobs` leave out the rest."""
        return [s for s in self.inner.list_namespaces(name) if self._can(s.name)]

    def job_page(self, namespace: str, *, limit: int, offset: int = 0) -> tuple[list[JobSummary], int]:
        if not self._can(namespace):  # as list_jobs: a namespace the caller may not read lists nothing
            return [], 0
        return self.inner.job_page(namespace, limit=limit, offset=offset)

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
        """Only namespaces the principal may read count, in the page and in the total (as :meth:`list_datasets`
        and :meth:`list_jobs` leave hidden ones out, and a count would otherwise tell they exist)."""
        shown = visible
        if not self.principal.everything:

            def shown(ns: str) -> bool:
                return self._can(ns) and (visible is None or visible(ns))

        return self.inner.search(
            q,
            kind=kind,
            namespace=namespace,
            sort=sort,
            before=before,
            after=after,
            limit=limit,
            offset=offset,
            visible=shown,
        )

    def evaluations(self, version: Version) -> list[Run]:
        self._version(version)
        return [self._visible_run(r) for r in self.inner.evaluations(version) if self._can(r.namespace)]

    def deployments(
        self,
        namespace: str | None = None,
        name: str | None = None,
        *,
        environment: str | None = None,
        active: bool = False,
    ) -> list[Deployment]:
        found = self.inner.deployments(namespace, name, environment=environment, active=active)
        return [d for d in found if self._can(d.namespace)]

    def drift_reports(
        self,
        *,
        environment: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 1000,
    ) -> list[DriftRecord]:
        found = self.inner.drift_reports(environment=environment, namespace=namespace, name=name, limit=limit)
        if self.principal.everything:
            return found
        out = []
        for d in found:  # a report compares two versions (refs): both must be readable
            refs = list(_target_refs(f"{d.reference}, {d.current}"))
            if refs and all(self._can(r.namespace) for r in refs):
                out.append(d)
        return out

    def event_page(
        self, since: datetime | None, until: datetime | None, *, limit: int, offset: int = 0, newest_first: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """The store's page for a principal who may read everything; for others, every event is read and
        sifted by :meth:`events`, as the count must leave out what they may not see."""
        if self.principal.everything:
            return self.inner.event_page(since, until, limit=limit, offset=offset, newest_first=newest_first)
        return walk_event_page(self.events, since, until, limit, offset, newest_first)

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        found = self.inner.events(since, namespace, after_id, limit)
        if self.principal.everything:
            return found
        out = []
        for event_id, event in found:
            named = event_touches(event, self.principal.name)
            if named is not None and all(self._can(t.namespace) for t in named):
                out.append((event_id, event))
        return out

    # ------------------------------------------------------------ lineage

    def _walked(self, start: Sequence[Version], walk: Callable[[], _T]) -> _T:
        """A lineage walk from ``start``: each start version must be readable; each dataset is noted once."""
        for v in start:
            self._need(v.namespace, v.name, "dataset.lineage", v.ref)
        found = walk()
        # One entry per dataset, written at once (Marquez's connected graph starts from thousands at a step).
        self.access.note_all("dataset.lineage", sorted({dataset_target(v.namespace, v.name) for v in start}))
        return found

    def lineage(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageResult:
        result = self._walked(start, lambda: self.inner.lineage(start, direction, depth, as_of))
        return result if self.principal.everything else redact_lineage(result, self._can)

    def connected(self, start: Sequence[Version], depth: int, as_of: datetime | None = None) -> LineageResult:
        if not self.principal.everything:  # each step redacted, and no step on from what it hides
            return connected_steps(self, start, depth, as_of)
        result = self._walked(start, lambda: self.inner.connected(start, depth, as_of))
        # Audited as the steps would have been: each step's start resolved (read), then walked from.
        steps: dict[int, list[tuple[str, str, int]]] = {}
        for node in result.nodes.values():
            if node.type == "version" and 0 < node.depth < depth:
                d = node.data
                steps.setdefault(node.depth, []).append((d["namespace"], d["name"], int(d["version"])))
        for step in sorted(steps):
            keys = steps[step]
            self.access.note_all("dataset.read", [str(Ref(ns, name, str(number))) for ns, name, number in keys])
            self.access.note_all("dataset.lineage", sorted({dataset_target(ns, name) for ns, name, _ in keys}))
        return result

    def lineage_columns(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageColumns:
        columns = self._walked(start, lambda: self.inner.lineage_columns(start, direction, depth, as_of))
        return columns if self.principal.everything else redact_columns(columns, self._can)

    def lineage_json(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageJson:
        found = self._walked(start, lambda: self.inner.lineage_json(start, direction, depth, as_of))
        return found if self.principal.everything else redact_json(found, self._can)

    def column_lineage(
        self, start: Sequence[tuple[Version, str | None]], direction: Direction, depth: int
    ) -> ColumnLineageResult:
        for v, _ in start:
            self._need(v.namespace, v.name, "dataset.lineage", v.ref)
        result = self.inner.column_lineage(start, direction, depth)
        for target in sorted({dataset_target(v.namespace, v.name) for v, _ in start}):
            self.access.note("dataset.lineage", target)
        if self.principal.everything:
            return result
        ids = {
            nid: (nid if self._can(str(data.get("namespace", ""))) else opaque(nid))
            for nid, data in result.nodes.items()
        }
        nodes = {
            ids[nid]: (data if ids[nid] == nid else {"redacted": True, "depth": data.get("depth")})
            for nid, data in result.nodes.items()
        }
        edges = tuple(
            (ids.get(s, opaque(s)), ids.get(t, opaque(t)), x if ids.get(t) == t else None) for s, t, x in result.edges
        )
        return ColumnLineageResult(nodes, edges)

    # ------------------------------------------------------------ audit and integrity

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        if self.principal.everything:
            return self.inner.audit_log(limit)
        self._need_owner()
        return [e for e in self.inner.audit_log(limit) if self.owns_target(e.target)]

    def audit_entries(
        self,
        *,
        dataset: Ref | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """An admin's query as asked; an owner's among the newest 10,000 matching entries, those it owns."""
        if self.principal.everything:
            return self.inner.audit_entries(dataset=dataset, user=user, action=action, since=since, limit=limit)
        self._need_owner()
        found = self.inner.audit_entries(dataset=dataset, user=user, action=action, since=since, limit=OWNER_WINDOW)
        return [e for e in found if self.owns_target(e.target)][:limit]

    def audit_rows(self) -> tuple[Checkpoint | None, Iterator[dict[str, Any]]]:
        self._need_admin("verify the audit log", "audit.verify")
        return self.inner.audit_rows()

    def audit_head(self) -> Checkpoint | None:
        self._need_admin("read the audit checkpoint", "audit.checkpoint")
        return self.inner.audit_head()

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
        self.inner.record_access(
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            origin=origin or self.access.origin,
            details=details,
        )

    def record_accesses(self, *, actor: str, action: str, targets: Sequence[str], origin: str | None = None) -> None:
        self.inner.record_accesses(actor=actor, action=action, targets=targets, origin=origin or self.access.origin)

    def _need_owner(self) -> None:
        if not any(g.role == "owner" for g in self.principal.grants):
            self.access.note("audit.read", None, "denied")
            msg = f"{self.principal.name} may not read the audit log: it is for admins, and owners of namespaces"
            raise Forbidden(msg)

    def _need_admin(self, what: str, action: str) -> None:
        if not self.principal.everything:
            self.access.note(action, None, "denied")
            msg = f"{self.principal.name} may not {what}: it needs an admin"
            raise Forbidden(msg)

    def owns_target(self, target: str | None) -> bool:
        """Whether every dataset an audit target names lies in a namespace the principal owns."""
        refs = list(_target_refs(target))
        return bool(refs) and all(self.access.allows("grant", ref.namespace) for ref in refs)

    def check_integrity(self) -> list[str]:
        if not self.principal.everything:
            self.access.note("integrity.check", None, "denied")
            msg = f"{self.principal.name} may not check the store's integrity: it is for admins"
            raise Forbidden(msg)
        return self.inner.check_integrity()

    # ------------------------------------------------------------ grants

    def add_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> bool:
        self._may_grant(pattern)
        return self.inner.add_grant(user, role, pattern, actor=actor, origin=origin or self.access.origin)

    def remove_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> None:
        self._may_grant(pattern)
        self.inner.remove_grant(user, role, pattern, actor=actor, origin=origin or self.access.origin)

    def _may_grant(self, pattern: str) -> None:
        if not may_grant(self.principal, pattern):
            self.access.note("grant", f"namespace:{pattern}", "denied")
            msg = (
                f"{self.principal.name} may not grant on {pattern!r}: it needs an admin or an owner of those namespaces"
            )
            raise Forbidden(msg)

    # ------------------------------------------------------------ locations

    def content_locations(self, version: Version) -> list[ContentLocation]:
        """Where a version's bytes are: for a principal who may read the version (else NotFound, as for the version)."""
        self._version(version)
        return self.inner.content_locations(version)

    def record_content_location(
        self, versions: Sequence[Version], remote: str, url: str, *, actor: str, origin: str | None = None
    ) -> int:
        """Only for a principal who may write every version's namespace (Forbidden, audited, otherwise)."""
        self._may_place(versions, "content.locate", "record")
        return self.inner.record_content_location(
            versions, remote, url, actor=actor, origin=origin or self.access.origin
        )

    def forget_content_location(
        self, versions: Sequence[Version], url: str, *, actor: str, origin: str | None = None
    ) -> int:
        """As recording: only for a principal who may write every version's namespace."""
        self._may_place(versions, "content.forget", "change")
        return self.inner.forget_content_location(versions, url, actor=actor, origin=origin or self.access.origin)

    def _may_place(self, versions: Sequence[Version], action: str, verb: str) -> None:
        """Forbidden (the refusal audited as ``action``) unless the principal may write every version's namespace."""
        for v in versions:
            self._need(v.namespace, v.name, action, v.ref)
            if not self.access.allows("write", v.namespace):
                self.access.note(action, v.ref, "denied")
                msg = f"{self.principal.name} may not {verb} where {v.ref} is kept: it needs write on {v.namespace!r}"
                raise Forbidden(msg)

    def close(self) -> None:
        return None  # the inner store is shared by every request


def _target_refs(target: str | None) -> Iterable[Ref]:
    for item in (target or "").split(", "):
        item = item.strip()
        if not item or item.startswith(("user:", "run:", "namespace:")):
            continue
        try:
            yield Ref.parse(item)
        except Exception:
            continue


def redact_lineage(result: LineageResult, can_read: Callable[[str], bool]) -> LineageResult:
    """Hidden nodes become placeholders: type kept, name, namespace and data removed, id opaque."""
    ids: dict[str, str] = {}
    nodes: dict[str, LineageNode] = {}
    readable: dict[str, bool] = {}  # per namespace: a graph of thousands of nodes spans a few
    for nid, node in result.nodes.items():
        namespace = str(node.data.get("namespace", ""))
        if namespace not in readable:
            readable[namespace] = can_read(namespace)
        if readable[namespace]:
            ids[nid] = nid
            nodes[nid] = node
        else:
            hidden = opaque(nid)
            ids[nid] = hidden
            nodes[hidden] = LineageNode(hidden, node.type, node.depth, {"redacted": True})
    # An edge's ends are nodes of the graph; an opaque id is made only for one that is not (never, today).
    edges = tuple((ids[s] if s in ids else opaque(s), ids[t] if t in ids else opaque(t)) for s, t in result.edges)
    return LineageResult(nodes, edges)


def redact_json(graph: LineageJson, can_read: Callable[[str], bool]) -> LineageJson:
    """:func:`redact_columns` on JSON rows: a hidden row's id becomes opaque and its data
    :data:`REDACTED_JSON`; the namespace column is emptied for it too."""
    ids = list(graph.ids)
    namespaces = list(graph.namespaces)
    data = list(graph.data)
    readable: dict[str, bool] = {}
    for i, namespace in enumerate(graph.namespaces):
        if namespace not in readable:
            readable[namespace] = can_read(namespace)
        if not readable[namespace]:
            ids[i] = opaque(ids[i])
            namespaces[i] = ""
            data[i] = REDACTED_JSON
    return LineageJson(ids, graph.types, namespaces, data, graph.origins, graph.destinations)


def redact_columns(columns: LineageColumns, can_read: Callable[[str], bool]) -> LineageColumns:
    """:func:`redact_lineage` on columns: a hidden row keeps its type and depth, its id becomes opaque
    and its data ``{"redacted": True}``; the edges, pairs of rows, stay as they are."""
    ids = list(columns.ids)
    data = list(columns.data)
    readable: dict[str, bool] = {}  # per namespace: a graph of thousands of nodes spans a few
    for i, d in enumerate(columns.data):
        namespace = str(d.get("namespace", ""))
        if namespace not in readable:
            readable[namespace] = can_read(namespace)
        if not readable[namespace]:
            ids[i] = opaque(ids[i])
            data[i] = {"redacted": True}
    return LineageColumns(ids, columns.types, columns.depths, data, columns.origins, columns.destinations)
