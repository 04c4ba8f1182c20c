"""Reading a store: versions by ref, datasets, runs, jobs, lineage at any depth and time, ML records.

:class:`Catalog` is the read half of :class:`~datatrail.service.Trail`. It holds
a :class:`~datatrail.store.base.Store` (on a server, the store seen through the
request's principal, which checks and audits each read) and a ``note`` function
that audits reads on the embedded store, where nothing else does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from datatrail.core.errors import InvalidInput
from datatrail.core.model import Dataset, FileEntry, Ref, Run, Version
from datatrail.core.records import Deployment, DriftRecord
from datatrail.core.results import CheckResult, ColumnLineageResult, Direction, JobSummary
from datatrail.core.times import parse_time, utc
from datatrail.diff import diff_versions
from datatrail.lineage import Graph
from datatrail.store.base import Store

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

    def datasets(self, namespace: str | None = None) -> list[Dataset]:
        return self._store.list_datasets(namespace)

    def versions(self, name: str) -> list[Version]:
        """Every version of a dataset (``[NAMESPACE:]NAME``), oldest first."""
        ref = Ref.parse(name)
        if ref.selector is not None:
            msg = f"`versions` takes a dataset name, not a version ref ({name!r}); drop the '@…'"
            raise InvalidInput(msg)
        found = self._store.list_versions(ref.namespace, ref.name)
        self._note("dataset.versions", str(ref))
        return found

    def dataset_versions(self, namespace: str, name: str) -> list[Version]:
        """:meth:`versions` by namespace and name as given (OpenLineage names may hold ``:``)."""
        return self._store.list_versions(namespace, name)

    def _version(self, ref: str | Ref | Version) -> Version:
        return ref if isinstance(ref, Version) else self.get(ref)

    def profile(self, ref: str | Ref | Version) -> dict[str, Any] | None:
        """The profile of a version (schema, statistics, quality metrics), None for non-tabular data."""
        return self._store.profile(self._version(ref))

    def check_results(self, ref: str | Ref | Version) -> list[CheckResult]:
        """Every stored check result on a version, oldest first (observed values of classified columns left out)."""
        return self._store.check_results(self._version(ref))

    def manifest(self, version: Version) -> list[FileEntry]:
        """The files of a directory version (empty for a file)."""
        return self._store.manifest(version) if version.is_directory else []

    def describe(self, ref: str | Ref | Version) -> dict[str, Any]:
        """What producers reported about a version: ``schema``, ``stats``, dataset ``facets``, ``lifecycle``.

        The statistics of classified columns keep their counts only, as in profiles."""
        return self._store.describe(self.get(ref))

    def classifications(self, ref: str | Ref | Version) -> dict[str, list[str]]:
        """Column → labels of a version: set on its dataset or inherited from upstream."""
        return self._store.classifications(self.lookup(ref))

    def diff(self, ref_a: str | Ref | Version, ref_b: str | Ref | Version) -> dict[str, Any]:
        """What changed from one version to another: schema, rows, column statistics, files.

        >>> d = trail.diff("raw/penguins@1", "raw/penguins@2")       # doctest: +SKIP
        >>> d["schema"]["added"], d["table"]["row_count"]["change"]  # doctest: +SKIP
        ([{'name': 'sex', 'type': 'string'}], -11)
        """
        a, b = self._version(ref_a), self._version(ref_b)
        profiles = self._store.profile(a), self._store.profile(b)
        return diff_versions(a, b, *profiles, self.manifest(a), self.manifest(b))

    # ------------------------------------------------------------ runs and jobs

    def runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        return self._store.list_runs(job, limit)

    def jobs(self, namespace: str | None = None) -> list[JobSummary]:
        return self._store.list_jobs(namespace)

    def get_run(self, run_id: str) -> Run:
        """A run by its id, or by a prefix that only it has."""
        return self._store.get_run(check_run_id(run_id))

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
        return self._store.column_lineage([(version, column)], direction, depth)

    def columns_of(
        self, start: Sequence[tuple[Version, str | None]], *, direction: Direction = "upstream", depth: int = 10
    ) -> ColumnLineageResult:
        """Column-level lineage from several (version, column) pairs at once."""
        check_lineage_options(direction, depth)
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
            root = f"dataset:{namespace}:{name}"
        else:
            found = self.find(namespace, name, selector)
            start = [found]
            root = f"version:{found.namespace}:{found.name}@{found.number}"
        result = self._store.lineage(start, direction, depth, when)
        self._note("dataset.lineage", str(Ref(namespace, name)))
        return Graph(root, direction, depth, result.nodes, result.edges)

    def versions_lineage(
        self, start: Sequence[Version], *, direction: Direction = "both", depth: int = 10, as_of: datetime | None = None
    ) -> Graph:
        """Lineage from several versions at once (the HTTP store's traversal)."""
        check_lineage_options(direction, depth)
        result = self._store.lineage(start, direction, depth, as_of)
        return Graph("", direction, depth, result.nodes, result.edges)

    def run_lineage(self, run_id: str, *, direction: Direction = "both", depth: int = 10) -> Graph:
        """Lineage from the versions a run read and wrote."""
        check_lineage_options(direction, depth)
        run = self.get_run(run_id)
        result = self._store.lineage([*run.inputs, *run.outputs], direction, depth)
        return Graph(f"run:{run.id}", direction, depth, result.nodes, result.edges)

    def job_lineage(
        self, namespace: str, name: str, *, direction: Direction = "both", depth: int = 10, runs: int = 1000
    ) -> Graph:
        """Lineage from the versions the latest ``runs`` runs of a job read and wrote."""
        check_lineage_options(direction, depth)
        start = {
            (v.namespace, v.name, v.number): v
            for r in self._store.list_runs(name, runs)
            if r.namespace == namespace
            for v in (*r.inputs, *r.outputs)
        }
        result = self._store.lineage(list(start.values()), direction, depth)
        return Graph(f"job:{namespace}:{name}", direction, depth, result.nodes, result.edges)

    # ------------------------------------------------------------ raw events and ML records

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

    def evaluations(self, ref: str | Ref | Version) -> list[Run]:
        """Runs of job type ``evaluate`` that read the version, oldest first."""
        return self._store.evaluations(self._version(ref))


__all__ = ["MAX_DEPTH", "Catalog", "check_lineage_options", "check_run_id", "no_note", "parse_as_of"]
