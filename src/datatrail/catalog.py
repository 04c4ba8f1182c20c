"""Reading a store: versions by ref, datasets, runs, jobs, lineage at any depth and time, ML records.

:class:`Catalog` is the read half of :class:`~datatrail.service.Trail`. It holds
a :class:`~datatrail.store.base.Store` (on a server, the store seen through the
request's principal, which checks and audits each read) and a ``note`` function
that audits reads on the embedded store, where nothing else does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from datatrail.core.errors import GraphTooLarge, InvalidInput
from datatrail.core.limits import MAX_OFFSET
from datatrail.core.model import Dataset, FileEntry, Ref, Run, Version, short_ids
from datatrail.core.times import iso, parse_time, utc
from datatrail.lineage import Graph
from datatrail.store.base import Store

if TYPE_CHECKING:  # annotations only: a read builds no record types it does not return (start-up)
    from datatrail.core.records import ContentLocation, Deployment, DriftRecord
    from datatrail.core.results import (
        CheckResult,
        ColumnLineageResult,
        DatasetDetails,
        Direction,
        JobSummary,
        LatestVersion,
        LineageColumns,
        LineageJson,
        LineageNode,
        NamespaceSummary,
        SearchHit,
    )

MAX_DEPTH = 1000
Note = Callable[[str, str | None], None]
"""Records a read: (action, target)."""


def no_note(action: str, target: str | None) -> None:
    """For a store that audits its own reads (a server request's guarded store)."""


def parse_as_of(value: datetime | str | None) -> datetime | None:
    """A point in time for ``as_of``: a datetime or ISO 8601 text; no zone means UTC."""
    if value is None or value == "":
        return None
    return parse_time(value) if isinstance(value, str) else utc(value)


def check_lineage_options(direction: str, depth: int) -> None:
    """InvalidInput unless ``direction`` is upstream/downstream/both and ``depth`` is 0..MAX_DEPTH."""
    if direction not in ("upstream", "downstream", "both"):
        msg = f"invalid direction {direction!r}: use upstream, downstream or both"
        raise InvalidInput(msg)
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0 or depth > MAX_DEPTH:
        msg = f"invalid depth {depth!r}: use a whole number from 0 to {MAX_DEPTH}"
        raise InvalidInput(msg)


def check_run_id(run_id: str) -> str:
    """A run id or a prefix of one, lower-cased, without a ``run:`` prefix; InvalidInput if it cannot be one."""
    run_id = run_id.removeprefix("run:")
    if not run_id or len(run_id) > 36 or any(c not in "0123456789abcdef-" for c in run_id.lower()):
        msg = f"invalid run id {run_id[:80]!r}: a run id is a UUID (or a prefix of one)"
        raise InvalidInput(msg)
    return run_id.lower()


@dataclass(frozen=True)
class Overview:
    """The state of a store at a glance: what changed last, what fails its checks, what drifted."""

    recent: tuple[Version, ...]
    """The latest versions of the datasets changed last, newest first."""
    failing: tuple[tuple[Version, tuple[CheckResult, ...]], ...]
    """Latest versions whose latest check evaluation has failures, with the failed results, newest first."""
    drift_alerts: tuple[DriftRecord, ...]
    """Stored drift reports that raised an alert, newest first."""


@contextmanager
def _around(what: str) -> Iterator[None]:
    """A walk's GraphTooLarge, naming where the graph starts as the caller named it."""
    try:
        yield
    except GraphTooLarge as exc:
        raise exc.around(what) from None


def _versions_label(versions: Sequence[Version]) -> str:
    """Where a walk from ``versions`` starts, for a message: a version's ref, a dataset, or how many."""
    if len(versions) == 1:
        return versions[0].ref
    names = {str(Ref(v.namespace, v.name)) for v in versions}
    return f"dataset {names.pop()}" if len(names) == 1 else f"{len(versions)} versions"


def _run_node(run: Run) -> dict[str, Any]:
    """A run as a lineage node's data (as the stores' traversals give it)."""
    return {
        "id": run.id,
        "namespace": run.namespace,
        "job": run.job,
        "state": run.state.value,
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
    }


def _version_node(v: Version) -> str:
    return f"version:{v.namespace}:{v.name}@{v.number}"


def _with_job(
    own: Sequence[Run], job: str, nodes: dict[str, LineageNode], edges: tuple[tuple[str, str], ...]
) -> tuple[dict[str, LineageNode], tuple[tuple[str, str], ...]]:
    """A job's graph with the job in it: when none of its runs ``own`` (newest first) is a node yet
    (they read and wrote nothing reached, or the depth is 0), its latest run stands for it."""
    if not own or any(n.type == "run" and n.data.get("job") == job for n in nodes.values()):
        return nodes, edges
    from datatrail.core.results import LineageNode  # start-up: the results' types are built for lineage only

    latest, rid = own[0], f"run:{own[0].id}"
    nodes = {**nodes, rid: LineageNode(rid, "run", 0, _run_node(latest))}
    here = [(_version_node(v), rid) for v in latest.inputs] + [(rid, _version_node(v)) for v in latest.outputs]
    return nodes, (*edges, *sorted((s, t) for s, t in here if s in nodes and t in nodes))


class Catalog:
    """Reads, each returning frozen values (see the module docstring)."""

    def __init__(self, store: Store, note: Note = no_note) -> None:
        self._store = store
        self._note = note

    # ------------------------------------------------------------ versions

    def get(self, ref: str | Ref | Version) -> Version:
        """The version a ref names: ``name``, ``name@3``, ``name@latest``, ``name@ALIAS``, ``name@sha256:9f86d081``.

        A Version is looked up again by its number (so its aliases are current).
        """
        version = self.lookup(ref)
        self._note("dataset.read", version.ref)
        return version

    def lookup(self, ref: str | Ref | Version) -> Version:
        """:meth:`get` without the read audit entry: for lookups inside another operation."""
        if isinstance(ref, Version):
            ref = Ref(ref.namespace, ref.name, str(ref.number))
        return self._store.resolve(ref if isinstance(ref, Ref) else Ref.parse(ref))

    def find(self, namespace: str, name: str, selector: str) -> Version:
        """A version by number, ``latest``, alias, ``sha256:PREFIX`` or the producer's ``datasetVersion``.

        Names are taken as given (OpenLineage names may hold ``:``)."""
        found = self._store.find_version(namespace, name, selector)
        if found is not None:
            return found
        Ref.check_selector(f"{namespace}:{name}@{selector}", selector)
        return self._store.resolve(Ref(namespace, name, selector))

    def find_key(self, namespace: str, name: str, version_key: str) -> Version | None:
        """The version of a dataset with this key (its digest, or a producer's ``datasetVersion``), if any."""
        return self._store.find_version(namespace, name, version_key)

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        """Versions recorded at the location ``uri`` and, with ``digest``, versions of that content anywhere
        (newest first): how a path finds the dataset it already is (see :meth:`Recorder.identify`)."""
        return self._store.versions_at(uri, digest)

    def datasets(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[Dataset]:
        """The listed datasets, by namespace and name: of one ``namespace``, the one ``name``, or those whose
        name or namespace ``match`` Marquez's search pattern (``%`` any text, ``_`` one character)."""
        return self._store.list_datasets(namespace, name=name, match=match)

    def dataset_page(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[Dataset], int]:
        """A page of a namespace's datasets by name (``offset`` skipped after the name ``after``, ``limit``
        kept) and how many the namespace lists in all: the database pages, not the caller."""
        return self._store.dataset_page(namespace, limit=limit, offset=offset, after=after)

    def dataset_page_details(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[DatasetDetails], int]:
        """:meth:`dataset_page` with each dataset's latest version, what producers said of it
        (:meth:`describe`), its :meth:`classifications` and, with no schema reported, its :meth:`profile`:
        a page of full datasets in a few statements, whatever its size."""
        return self._store.dataset_page_details(namespace, limit=limit, offset=offset, after=after)

    def dataset_details(self, keys: Sequence[tuple[str, str]]) -> list[DatasetDetails]:
        """The listed datasets named by (namespace, name), in the order asked, each with what
        :meth:`dataset_page_details` reads: a lineage graph's datasets, read at once."""
        return self._store.dataset_details(keys)

    def versions(self, name: str) -> list[Version]:
        """Every version of a dataset (``[NAMESPACE:]NAME``), oldest first."""
        ref = Ref.parse(name)
        if ref.selector is not None:
            msg = f"`versions` takes a dataset name, not a version ref ({name!r}); drop the '@…'"
            raise InvalidInput(msg)
        found = self._store.list_versions(ref.namespace, ref.name)
        self._note("dataset.versions", str(ref))
        return found

    def latest_versions(self, limit: int | None = None, *, failing: bool = False) -> list[LatestVersion]:
        """The latest version of every dataset, newest first, with its latest check evaluation's counts;
        ``limit``: the first so many; ``failing``: those whose latest evaluation has a failed check."""
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_OFFSET
        ):
            msg = f"invalid limit {limit!r}: use a whole number from 1 to {MAX_OFFSET:,}, or none for every dataset"
            raise InvalidInput(msg)
        return self._store.latest_versions(limit, failing=failing)

    def dataset_versions(self, namespace: str, name: str) -> list[Version]:
        """:meth:`versions` by namespace and name as given (OpenLineage names may hold ``:``)."""
        return self._store.list_versions(namespace, name)

    def _version(self, ref: str | Ref | Version) -> Version:
        return ref if isinstance(ref, Version) else self.get(ref)

    def profile(self, ref: str | Ref | Version) -> dict[str, Any] | None:
        """The profile of a version (schema, statistics, quality metrics), None for non-tabular data."""
        return self._store.profile(self._version(ref))

    def content_locations(self, ref: str | Ref | Version) -> list[ContentLocation]:
        """The remotes (name, URL) a push recorded as holding every object of a version, most recent first."""
        return self._store.content_locations(self._version(ref))

    def check_results(self, ref: str | Ref | Version) -> list[CheckResult]:
        """Every stored check result on a version, oldest first (observed values of classified columns left out)."""
        return self._store.check_results(self._version(ref))

    def manifest(self, version: Version) -> list[FileEntry]:
        """The files of a directory version (empty for a file)."""
        return self._store.manifest(version) if version.is_directory else []

    def describe(self, ref: str | Ref | Version) -> dict[str, Any]:
        """What producers reported about a version: ``schema``, ``stats``, dataset ``facets``, ``lifecycle``.

        The statistics of classified columns keep their counts only, as in profiles. Given a
        Version (already read, and audited), it records no second read, as :meth:`profile`."""
        return self._store.describe(self._version(ref))

    def classifications(self, ref: str | Ref | Version) -> dict[str, list[str]]:
        """Column → labels of a version: set on its dataset or inherited from upstream."""
        # A Version read from this store is asked about as it is (the store checks access to it): no second
        # resolve per dataset in a listing.
        known = isinstance(ref, Version) and ref.id is not None
        return self._store.classifications(ref if known and isinstance(ref, Version) else self.lookup(ref))

    def diff(self, ref_a: str | Ref | Version, ref_b: str | Ref | Version) -> dict[str, Any]:
        """What changed from one version to another: schema, rows, column statistics, files.

        >>> d = trail.diff("raw/penguins@1", "raw/penguins@2")       # doctest: +SKIP
        >>> d["schema"]["added"], d["table"]["row_count"]["change"]  # doctest: +SKIP
        ([{'name': 'sex', 'type': 'string'}], -11)
        """
        from datatrail.diff import diff_versions  # start-up: only `diff` compares versions

        a, b = self._version(ref_a), self._version(ref_b)
        profiles = self._store.profile(a), self._store.profile(b)
        return diff_versions(a, b, *profiles, self.manifest(a), self.manifest(b))

    # ------------------------------------------------------------ runs and jobs

    def runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        return self._store.list_runs(job, limit)

    def jobs(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[JobSummary]:
        """The jobs by namespace and name: of one ``namespace``, the one ``name``, those matching ``match``."""
        return self._store.list_jobs(namespace, name=name, match=match)

    def versions_by_number(self, keys: Sequence[tuple[str, str, int]]) -> list[Version]:
        """The versions named by (namespace, dataset name, number), in the order asked, as :meth:`lookup`
        finds each: read at once."""
        return self._store.versions_by_number(keys)

    def jobs_by_name(self, keys: Sequence[tuple[str, str]]) -> list[JobSummary]:
        """The jobs named by (namespace, name), in the order asked, as :meth:`jobs` finds each by name: a
        lineage graph's jobs, read at once."""
        return self._store.jobs_by_name(keys)

    def namespaces(self, name: str | None = None) -> list[NamespaceSummary]:
        """The namespaces that list a dataset or have a job (or the one ``name``), by name, with their
        numbers of each and the first and last times one was recorded; the store reads no dataset or job.

        >>> [(s.name, s.datasets, s.jobs) for s in trail.catalog.namespaces()]  # doctest: +SKIP
        [('raw', 2, 1)]
        """
        return self._store.list_namespaces(name)

    def job_page(self, namespace: str, *, limit: int, offset: int = 0) -> tuple[list[JobSummary], int]:
        """A page of a namespace's jobs by name and how many it has: the database pages, not the caller."""
        return self._store.job_page(namespace, limit=limit, offset=offset)

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
    ) -> tuple[list[SearchHit], int]:
        """One page of the datasets and jobs whose name or namespace matches Marquez's pattern ``q`` (``%``
        any text, ``_`` one character), and how many match; the database pages (:meth:`Reads.search`).

        >>> hits, total = trail.catalog.search("orders", kind="dataset", limit=10)  # doctest: +SKIP
        """
        return self._store.search(
            q, kind=kind, namespace=namespace, sort=sort, before=before, after=after, limit=limit, offset=offset
        )

    def get_run(self, run_id: str) -> Run:
        """A run by its id, or by a prefix that only it has."""
        return self._store.get_run(check_run_id(run_id))

    def runs_by_id(self, run_ids: Sequence[str]) -> list[Run]:
        """The runs with these whole ids (as stored: lower case), in the order asked, those that exist and
        may be seen: :meth:`get_run` of each, read at once."""
        return self._store.runs_by_id(run_ids)

    # ------------------------------------------------------------ lineage

    def lineage(
        self,
        ref: str | Ref | Version,
        *,
        direction: Direction = "upstream",
        depth: int = 10,
        as_of: datetime | str | None = None,
    ) -> Graph:
        """The lineage graph around a version, ``depth`` steps (run + its datasets) each way.

        With ``as_of`` (a datetime or ISO 8601 text), the graph as it was at that time.

        >>> g = trail.lineage("clean/penguins", direction="upstream", depth=5)  # doctest: +SKIP
        >>> print(g.to_mermaid())                                               # doctest: +SKIP
        """
        check_lineage_options(direction, depth)
        version = self.lookup(ref)
        self._note("dataset.lineage", str(Ref(version.namespace, version.name)))
        with _around(version.ref):
            result = self._store.lineage([version], direction, depth, parse_as_of(as_of))
        root = f"version:{version.namespace}:{version.name}@{version.number}"
        return Graph(root, direction, depth, result.nodes, result.edges)

    def column_lineage(
        self,
        ref: str | Ref | Version,
        column: str | None = None,
        *,
        direction: Direction = "upstream",
        depth: int = 10,
    ) -> ColumnLineageResult:
        """Column-level lineage from one column of a version (every column when None).

        >>> cols = trail.column_lineage("features@3", "bill_ratio")  # doctest: +SKIP
        >>> sorted(cols.nodes)                                        # doctest: +SKIP
        ['column:default:clean@2#bill_depth_mm', 'column:default:clean@2#bill_length_mm', ...]
        """
        check_lineage_options(direction, depth)
        version = self.lookup(ref)
        self._note("dataset.lineage", str(Ref(version.namespace, version.name)))
        with _around(version.ref if column is None else f"{version.ref}#{column}"):
            return self._store.column_lineage([(version, column)], direction, depth)

    def columns_of(
        self, start: Sequence[tuple[Version, str | None]], *, direction: Direction = "upstream", depth: int = 10
    ) -> ColumnLineageResult:
        """Column-level lineage from several (version, column) pairs at once."""
        check_lineage_options(direction, depth)
        with _around(_versions_label([v for v, _ in start])):
            return self._store.column_lineage(start, direction, depth)

    def dataset_lineage(
        self,
        namespace: str,
        name: str,
        *,
        selector: str | None = None,
        direction: Direction = "both",
        depth: int = 10,
        as_of: datetime | str | None = None,
    ) -> Graph:
        """Lineage from one version of a dataset (``selector``), or from all of its versions when None.

        The selector is a version number, ``latest``, an alias, ``sha256:PREFIX``, or a
        producer's ``datasetVersion``. Names are taken as given (OpenLineage names may hold ``:``).
        """
        check_lineage_options(direction, depth)
        when = parse_as_of(as_of)
        if selector is None:
            start = self._store.list_versions(namespace, name)
            root, label = f"dataset:{namespace}:{name}", f"dataset {Ref(namespace, name)}"
        else:
            found = self.find(namespace, name, selector)
            start = [found]
            root, label = f"version:{found.namespace}:{found.name}@{found.number}", found.ref
        with _around(label):
            result = self._store.lineage(start, direction, depth, when)
        self._note("dataset.lineage", str(Ref(namespace, name)))
        return Graph(root, direction, depth, result.nodes, result.edges)

    def dataset_lineage_columns(
        self,
        namespace: str,
        name: str,
        *,
        selector: str | None,
        direction: Direction = "both",
        depth: int = 10,
        as_of: datetime | str | None = None,
    ) -> LineageColumns:
        """:meth:`dataset_lineage` as columns: the same nodes, data and edges with no object per node or
        edge (``LineageColumns.result()`` gives the graph's own shape). For answers of tens of thousands
        of nodes (``GET /api/v1/lineage``: a version's graph, and a dataset's before it is folded)."""
        check_lineage_options(direction, depth)
        when = parse_as_of(as_of)
        if selector is None:
            start, label = self._store.list_versions(namespace, name), f"dataset {Ref(namespace, name)}"
        else:
            found = self.find(namespace, name, selector)
            start, label = [found], found.ref
        with _around(label):
            columns = self._store.lineage_columns(start, direction, depth, when)
        self._note("dataset.lineage", str(Ref(namespace, name)))
        return columns

    def dataset_lineage_json(
        self,
        namespace: str,
        name: str,
        *,
        selector: str,
        direction: Direction = "both",
        depth: int = 10,
        as_of: datetime | str | None = None,
    ) -> LineageJson:
        """:meth:`dataset_lineage_columns` with each node's data as JSON bytes, from which
        ``GET /api/v1/lineage`` joins its answer (the SQL store keeps them between calls)."""
        check_lineage_options(direction, depth)
        when = parse_as_of(as_of)
        found = self.find(namespace, name, selector)
        with _around(found.ref):
            graph = self._store.lineage_json([found], direction, depth, when)
        self._note("dataset.lineage", str(Ref(namespace, name)))
        return graph

    def versions_lineage(
        self, start: Sequence[Version], *, direction: Direction = "both", depth: int = 10, as_of: datetime | None = None
    ) -> Graph:
        """Lineage from several versions at once (the HTTP store's traversal)."""
        check_lineage_options(direction, depth)
        with _around(_versions_label(start)):
            result = self._store.lineage(start, direction, depth, as_of)
        return Graph("", direction, depth, result.nodes, result.edges)

    def run_lineage(self, run_id: str, *, direction: Direction = "both", depth: int = 10) -> Graph:
        """Lineage from the versions a run read and wrote."""
        check_lineage_options(direction, depth)
        run = self.get_run(run_id)
        with _around(f"run {run.id}"):
            result = self._store.lineage([*run.inputs, *run.outputs], direction, depth)
        return Graph(f"run:{run.id}", direction, depth, result.nodes, result.edges)

    def job_lineage(
        self, namespace: str, name: str, *, direction: Direction = "both", depth: int = 10, runs: int = 1000
    ) -> Graph:
        """Lineage from the versions the latest ``runs`` runs of a job read and wrote.

        The job is always a node of its own graph (as in Marquez): when its runs read and wrote
        no version (a DAG, or a task whose outputs are only planned), its latest run stands for it.
        Folded to datasets and jobs, the graph links the job to the jobs that feed it through datasets.
        """
        check_lineage_options(direction, depth)
        own = [r for r in self._store.list_runs(name, runs) if r.namespace == namespace]
        start = {(v.namespace, v.name, v.number): v for r in own for v in (*r.inputs, *r.outputs)}
        with _around(f"job {Ref(namespace, name)}"):
            result = self._store.lineage(list(start.values()), direction, depth)
        nodes, edges = _with_job(own, name, result.nodes, result.edges)
        return Graph(f"job:{namespace}:{name}", direction, depth, nodes, edges)

    def run_labels(self, run_ids: Sequence[str], *, min_length: int = 8) -> dict[str, str]:
        """The shortest prefix of each run id (at least ``min_length`` characters) that names only it.

        Unique among ``run_ids`` and in the store, so ``get_run(label)`` (``datatrail show run:LABEL``)
        always finds the run: ids that share their first characters (UUIDv7, as Airflow 3 makes them,
        start with a timestamp) get longer labels.

        >>> trail.catalog.run_labels(["0193a24e-4812-7000-8000-000000000001"])  # doctest: +SKIP
        {'0193a24e-4812-7000-8000-000000000001': '0193a24e'}
        """
        labels = short_ids(run_ids, min_length)
        for run_id, label in labels.items():
            while len(label) < len(run_id):
                try:
                    if self._store.get_run(label).id == run_id:
                        break
                except InvalidInput:  # ambiguous in the store: another run shares the prefix
                    pass
                label = run_id[: len(label) + 4]
            labels[run_id] = label
        return labels

    def connected_lineage(
        self,
        namespace: str,
        name: str,
        *,
        kind: Literal["dataset", "job"] = "dataset",
        depth: int = 20,
        as_of: datetime | str | None = None,
        runs: int = 1000,
    ) -> Graph:
        """Marquez's lineage of a dataset or a job: everything connected to it through runs, whichever
        the direction (the other readers of an input are in it too), at most ``depth`` runs away.

        It starts from every version of the dataset, or from the versions the job's latest ``runs``
        runs read and wrote, and each step adds the runs that wrote or read what was reached, with
        what they read and wrote."""
        check_lineage_options("both", depth)
        when = parse_as_of(as_of)
        own: list[Run] = []
        if kind == "job":
            own = [r for r in self._store.list_runs(name, runs) if r.namespace == namespace]
            touched = {(v.namespace, v.name, v.number): v for r in own for v in (*r.inputs, *r.outputs)}
            start = list(touched.values())
        else:
            start = self._store.list_versions(namespace, name)
        with _around(f"{kind} {Ref(namespace, name)}"):
            result = self._store.connected(start, depth, when)
        if kind == "dataset":
            self._note("dataset.lineage", str(Ref(namespace, name)))
        found, linked = _with_job(own, name, result.nodes, result.edges)
        return Graph(f"{kind}:{namespace}:{name}", "both", depth, found, linked)

    # ------------------------------------------------------------ raw events and ML records

    def event_page(
        self, since: datetime | None, until: datetime | None, *, limit: int, offset: int = 0, newest_first: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """The stored raw events with an eventTime at or after ``since`` and before ``until``, ``limit`` of
        them from ``offset``, newest first (or oldest first), and how many there are: a SQL store counts
        and pages them by id rather than reading every event. Redacted as :meth:`events`."""
        return self._store.event_page(since, until, limit=limit, offset=offset, newest_first=newest_first)

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        """Stored raw events as (id, event), oldest first; page on with the last id.

        The column values of classified datasets are left out of the events' facets (by the store, as in
        profiles)."""
        return self._store.events(since, namespace, after_id, limit)

    def deployments(
        self,
        namespace: str | None = None,
        name: str | None = None,
        *,
        environment: str | None = None,
        active: bool = False,
    ) -> list[Deployment]:
        """Deployments, newest first; ``active`` keeps those still live."""
        return self._store.deployments(namespace, name, environment=environment, active=active)

    def drift_reports(
        self,
        *,
        environment: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 1000,
    ) -> list[DriftRecord]:
        """Stored drift reports, oldest first; ``name`` is the current version's dataset.

        A column classified in either version compared shows distances only (reports stored before the
        classification too)."""
        return self._store.drift_reports(environment=environment, namespace=namespace, name=name, limit=limit)

    def overview(self, limit: int = 10) -> Overview:
        """The datasets changed last, the latest versions failing their checks, the latest drift alerts.

        Three listings (the newest latest versions, the newest failing, drift reports), each of at most
        ``limit``, then the check results of the failing versions shown.

        >>> [v.ref for v in trail.overview().recent]   # doctest: +SKIP
        ['raw/penguins@2', 'models/penguin-classifier@1', ...]
        """
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            msg = f"invalid limit {limit!r}: use a whole number from 1 to 1000"
            raise InvalidInput(msg)
        recent = self._store.latest_versions(limit)
        failing: list[tuple[Version, tuple[CheckResult, ...]]] = []
        for item in self._store.latest_versions(limit, failing=True):
            results = self._store.check_results(item.version)
            last = max((r.checked_at for r in results), default=None)
            failing.append((item.version, tuple(r for r in results if r.checked_at == last and not r.success)))
        reports = self._store.drift_reports(limit=1000)
        alerts = tuple(r for r in reversed(reports) if r.drifted)[:limit]
        return Overview(tuple(x.version for x in recent), tuple(failing), alerts)

    def evaluations(self, ref: str | Ref | Version) -> list[Run]:
        """Runs of job type ``evaluate`` that read the version, oldest first."""
        return self._store.evaluations(self._version(ref))


__all__ = ["MAX_DEPTH", "Catalog", "Overview", "check_lineage_options", "check_run_id", "no_note", "parse_as_of"]
