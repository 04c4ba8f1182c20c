"""The operations of datatrail: the Python API, which the CLI and server call.

A :class:`Trail` holds a store (passed in, any :class:`~datatrail.store.base.Store`),
the acting user and the working tree; every write goes through
:meth:`Store.ingest` as one OpenLineage event.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrail.capture import facts
from datatrail.checks import CheckReport, Rule, RuleSource, load_rules
from datatrail.config import Location, init_config, locate
from datatrail.core.changes import Event, VersionInfo
from datatrail.core.errors import DatatrailError, InvalidInput, NotFound
from datatrail.core.model import (
    DEFAULT_NAMESPACE,
    Dataset,
    FileEntry,
    Ref,
    Run,
    Version,
    validate_name,
    validate_namespace,
)
from datatrail.core.results import CheckResult, ColumnLineageResult, Direction, IngestResult, JobSummary
from datatrail.events import PRODUCER, build_alias_event, build_check_event, build_dataset_event
from datatrail.facets import check_facets
from datatrail.formats import detect_directory_format, detect_format, is_tabular
from datatrail.hashing import HashResult, LayeredCache, ProgressFn, StatCache, hash_path
from datatrail.lineage import Graph
from datatrail.ml.lifecycle import TrailML
from datatrail.remote import is_url
from datatrail.security.service import SecurityOps
from datatrail.store import Store, open_store

if TYPE_CHECKING:
    from datatrail.capture.run import RunContext
    from datatrail.verify import VerifyReport

MAX_DEPTH = 1000


@dataclass(frozen=True)
class AddResult:
    """A version, whether this call created it, and the checks evaluated on it (when asked for)."""

    version: Version
    created: bool
    checks: CheckReport | None = None

    @property
    def status(self) -> str:
        return "new" if self.created else "unchanged"


class Trail(TrailML, SecurityOps):
    """A connection to a datatrail store, acting as one user.

    >>> import datatrail                                    # doctest: +SKIP
    >>> trail = datatrail.connect()                         # doctest: +SKIP
    >>> v = trail.add("data/raw.csv", name="raw/penguins")  # doctest: +SKIP
    >>> trail.get("raw/penguins@latest").digest == v.digest # doctest: +SKIP
    True
    """

    def __init__(self, store: Store, location: Location, user: str | None = None) -> None:
        self.store = store
        self.location = location
        self.user = facts.current_user(user or location.user)
        self.host = facts.hostname()
        self._stat_cache: StatCache | None = None
        self._init_access()  # the acting principal; reads are audited (security/service.py)

    # ------------------------------------------------------------ helpers

    @property
    def root(self) -> Path:
        return self.location.root

    def stat_cache(self) -> StatCache:
        if self._stat_cache is None:
            from datatrail.store.statcache import SqliteStatCache

            if self.location.config_dir is not None:
                path = self.location.config_dir / "statcache.db"
            else:
                base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
                path = Path(base) / "datatrail" / "statcache.db"
            self._stat_cache = SqliteStatCache(path)
        return self._stat_cache

    def close(self) -> None:
        self.store.close()
        if self._stat_cache is not None:
            self._stat_cache.close()  # type: ignore[attr-defined]

    def __enter__(self) -> Trail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def default_name(self, path: Path) -> str:
        """The dataset name for a path: its location relative to the store's root."""
        resolved = path.resolve()
        try:
            rel = resolved.relative_to(self.root)
        except ValueError:
            msg = f"{os.fspath(path)!r} is outside the store's root {os.fspath(self.root)!r}; give a name with --name"
            raise InvalidInput(msg) from None
        if not rel.parts:
            msg = "the store's root itself needs a name; give one with --name"
            raise InvalidInput(msg)
        return rel.as_posix()

    def hash(
        self,
        path: str | os.PathLike[str],
        *,
        use_cache: bool = True,
        progress: ProgressFn | None = None,
        hint: StatCache | None = None,
    ) -> HashResult:
        """Hash ``path``; ``hint`` knows digests computed ahead of time (see ``cli/prefetch.py``)."""
        cache = self.stat_cache() if use_cache else None
        if hint is not None:
            cache = LayeredCache(hint, cache)
        return hash_path(path, cache=cache, progress=progress)

    def version_info(
        self,
        path: Path,
        hashed: HashResult,
        *,
        message: str | None = None,
        kind: str = "dataset",
        profile: bool = True,
        uri: str | None = None,
        profiler: Callable[[str], dict[str, Any] | None] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> VersionInfo:
        """What an event says of a hashed path; ``profile`` profiles tabular data (CSV, Parquet…).

        A remote object passes its ``uri``, the ``profiler`` that reads it where it
        lives (given the format), and ``properties`` saying how its digest was obtained.
        """
        files = hashed.files
        fmt = detect_format(path.name) if files is None else detect_directory_format(f.path for f in files)
        stats = None
        if profile and kind == "dataset" and is_tabular(fmt):
            assert fmt is not None
            if profiler is None:
                from datatrail.profiling import profile_path  # pyarrow: only when a profile is due

                stats = profile_path(path, fmt)
            else:
                stats = profiler(fmt)
        return VersionInfo(
            key=str(hashed.digest),
            digest=hashed.digest,
            size=hashed.size,
            uri=uri or path.resolve().as_uri(),
            format=fmt,
            files=files,
            created_by=self.user,
            host=self.host,
            message=message,
            kind=kind,
            properties=properties or {},
            profile=stats,
        )

    # ------------------------------------------------------------ writes

    def register(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        message: str | None = None,
        tags: Sequence[str] = (),
        kind: str = "dataset",
        use_cache: bool = True,
        progress: ProgressFn | None = None,
        hint: StatCache | None = None,
        profile: bool = True,
        checks: RuleSource | None = None,
        jobs: int | None = None,
        use_store_checksum: bool = False,
    ) -> AddResult:
        """Hash ``path`` and record it as a version; unchanged content creates nothing.

        ``hint`` supplies digests hashed ahead of time in another thread; meanwhile
        the store gets ready for the write, so the two overlap. ``checks`` (a rules
        file, or a list of rule dicts and callables) are evaluated against the data
        and stored with the version, in the same event when the version is new.
        A URL (``s3://bucket/raw/``, ``gs://…``, any fsspec URL) is hashed remotely
        by ``jobs`` parallel connections (default 8); ``use_store_checksum`` takes an
        S3 full-object SHA-256 checksum instead of reading the bytes.
        """
        if is_url(path):  # s3://, gs://, file://…: streamed through fsspec (datatrail.remote)
            from datatrail.remote.add import register_url

            assert isinstance(path, str)
            return register_url(
                self, path, name=name, namespace=namespace, message=message, tags=tags, kind=kind,
                use_cache=use_cache, progress=progress, profile=profile, checks=checks, jobs=jobs,
                use_store_checksum=use_store_checksum,
            )  # fmt: skip
        rules = load_rules(checks) if checks is not None else None  # a bad rule fails before any work
        p = Path(path)
        namespace = validate_namespace(namespace)
        name = validate_name(name) if name is not None else validate_name(self.default_name(p))
        aliases = tuple(validate_name(tag, "alias") for tag in tags)
        if "latest" in aliases:
            msg = "'latest' always names the newest version; choose another alias"
            raise InvalidInput(msg)
        if hint is not None:
            self.store.prepare()
        hashed = self.hash(p, use_cache=use_cache, progress=progress, hint=hint)
        existing = self.store.find_version(namespace, name, str(hashed.digest))
        if existing is not None and all(a in existing.aliases for a in aliases):
            report = self._check_version(existing, rules, p) if rules is not None else None
            return AddResult(existing, False, report)
        info = self.version_info(p, hashed, message=message, kind=kind, profile=profile and existing is None)
        event = build_dataset_event(namespace, name, info, aliases)
        if rules is not None:
            results = self._evaluate(rules, p, info.format, info.profile)
            event["dataset"]["facets"].update(check_facets(results, PRODUCER))
        result = self.store.ingest(event, self.user, "dataset.add")
        version, created = result.versions[0]
        report = None
        if rules is not None:
            stored = self.store.check_results(version)
            report = CheckReport(version, tuple(stored[-len(results) :]) if results else ())
        return AddResult(version, created, report)

    def add(self, path: str | os.PathLike[str], *, name: str | None = None, **options: Any) -> Version:
        """Hash a file or directory and record it as a version of dataset ``name``.

        >>> v = trail.add("data/raw.csv", name="raw/penguins", tags=["candidate"])  # doctest: +SKIP
        >>> v.ref, v.digest.short                                                  # doctest: +SKIP
        ('raw/penguins@1', 'sha256:9f86d081884c')
        """
        return self.register(path, name=name, **options).version

    def tag(self, ref: str | Ref | Version, alias: str) -> Version:
        """Point ``alias`` (``production``, ``candidate``…) at the version ``ref`` names."""
        alias = validate_name(alias, "alias")
        if alias == "latest":
            msg = "'latest' always names the newest version and cannot be moved; choose another alias"
            raise InvalidInput(msg)
        version = self._lookup(ref)
        event = build_alias_event(version.namespace, version.name, version.key or str(version.digest), alias)
        self.store.ingest(event, self.user, "version.tag")
        return self._lookup(Ref(version.namespace, version.name, str(version.number)))

    def run(
        self,
        job: str,
        *,
        params: dict[str, Any] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        workflow: str | None = None,
        job_type: str | None = None,
    ) -> RunContext:
        """A run of ``job``, to use as a context manager.

        >>> with trail.run("clean", params={"dropna": True}) as run:        # doctest: +SKIP
        ...     run.input("raw/penguins@latest")
        ...     v = run.output("data/clean.parquet", name="clean/penguins")
        ...     run.log_metric("rows", 333)
        """
        from datatrail.capture.run import RunContext

        return RunContext(
            self, validate_name(job, "job name"), params or {}, validate_namespace(namespace), workflow, job_type
        )

    def ingest(
        self, event: Event, *, actor: str | None = None, action: str = "lineage.ingest", detail: bool = True
    ) -> IngestResult:
        """Store one OpenLineage event from any producer (idempotent, order-independent), as ``actor``.

        Without ``detail`` the result does not list the versions written (cheaper)."""
        return self.store.ingest(event, actor or self.user, action, detail=detail)

    def ingest_many(
        self, events: Sequence[Event], *, actor: str | None = None, action: str = "lineage.ingest"
    ) -> list[IngestResult | DatatrailError]:
        """Store many events, each with its result or the error that refused it.

        A store that offers it (the SQL store) writes them in one transaction; any
        other store takes them one by one. An error of the store itself raises.
        """
        many = getattr(self.store, "ingest_many", None)
        if many is not None:
            results: list[IngestResult | DatatrailError] = many(events, actor or self.user, action)
            return results
        out: list[IngestResult | DatatrailError] = []
        for event in events:
            try:
                out.append(self.store.ingest(event, actor or self.user, action, detail=False))
            except (InvalidInput, NotFound) as exc:
                out.append(exc)
        return out

    # ------------------------------------------------------------ reads

    def get(self, ref: str | Ref | Version) -> Version:
        """The version a ref names: ``name``, ``name@3``, ``name@latest``, ``name@ALIAS``, ``name@sha256:9f86d081``.

        A Version is looked up again by its number (so its aliases are current).
        """
        version = self._lookup(ref)
        self._note("dataset.read", version.ref)
        return version

    def _lookup(self, ref: str | Ref | Version) -> Version:
        """:meth:`get` without the read audit entry: for lookups inside another operation."""
        if isinstance(ref, Version):
            ref = Ref(ref.namespace, ref.name, str(ref.number))
        return self.store.resolve(ref if isinstance(ref, Ref) else Ref.parse(ref))

    def datasets(self, namespace: str | None = None) -> list[Dataset]:
        return self.store.list_datasets(namespace)

    def versions(self, name: str) -> list[Version]:
        ref = Ref.parse(name)
        if ref.selector is not None:
            msg = f"`versions` takes a dataset name, not a version ref ({name!r}); drop the '@…'"
            raise InvalidInput(msg)
        found = self.store.list_versions(ref.namespace, ref.name)
        self._note("dataset.versions", str(ref))
        return found

    def profile(self, ref: str | Ref | Version) -> dict[str, Any] | None:
        """The profile of a version (schema, statistics, quality metrics), None for non-tabular data."""
        version = ref if isinstance(ref, Version) else self.get(ref)
        return self.store.profile(version)

    def check_results(self, ref: str | Ref | Version) -> list[CheckResult]:
        """Every stored check result on a version, oldest first."""
        version = ref if isinstance(ref, Version) else self.get(ref)
        return self.store.check_results(version)

    def check(self, ref: str | Ref | Version, rules: RuleSource) -> CheckReport:
        """Evaluate rules against a version's data and store every result (observed value, who, when).

        >>> report = trail.check("raw/penguins", "rules.yaml")  # doctest: +SKIP
        >>> report.passed, [r.rule for r in report.failed]       # doctest: +SKIP
        (False, ['between'])
        """
        loaded = load_rules(rules)
        version = ref if isinstance(ref, Version) else self._lookup(ref)
        return self._check_version(version, loaded)

    def _check_version(self, version: Version, rules: list[Rule], path: Path | None = None) -> CheckReport:
        if path is None:
            path = self._local_data(version)
        results = self._evaluate(rules, path, version.format, self.store.profile(version))
        event = build_check_event(version.namespace, version.name, version.key or str(version.digest), results)
        self.store.ingest(event, self.user, "version.check")
        stored = self.store.check_results(version)
        return CheckReport(version, tuple(stored[-len(results) :]) if results else ())

    def _local_data(self, version: Version) -> Path:
        """The local file behind a version, refused if it is gone or its content changed since."""
        from urllib.parse import unquote, urlparse

        uri = urlparse(version.uri or "")
        if uri.scheme != "file":
            msg = f"{version.ref} has no local file to check (uri {version.uri!r})"
            raise InvalidInput(msg)
        path = Path(unquote(uri.path))
        if not path.exists():
            msg = f"the data of {version.ref} is gone from {os.fspath(path)!r}; cannot check it"
            raise InvalidInput(msg)
        if version.digest is not None and self.hash(path).digest != version.digest:
            msg = f"{os.fspath(path)!r} changed since {version.ref} was added; add it again and check the new version"
            raise InvalidInput(msg)
        return path

    def _evaluate(self, rules: list[Rule], path: Path, fmt: str | None, profile: dict[str, Any] | None) -> list[Any]:
        if not is_tabular(fmt):
            what = fmt or "an unknown format"
            msg = f"cannot check {os.fspath(path)!r}: checks need tabular data (CSV, Parquet, JSON Lines…), not {what}"
            raise InvalidInput(msg)
        from datatrail.check_data import evaluate_path  # pyarrow: only when checks are due

        assert fmt is not None
        results = evaluate_path(rules, path, fmt, profile)
        return [{**r, "checked_by": self.user} for r in results]

    def diff(self, ref_a: str | Ref | Version, ref_b: str | Ref | Version) -> dict[str, Any]:
        """What changed from one version to another: schema, rows, column statistics, files.

        >>> d = trail.diff("raw/penguins@1", "raw/penguins@2")       # doctest: +SKIP
        >>> d["schema"]["added"], d["table"]["row_count"]["change"]  # doctest: +SKIP
        ([{'name': 'sex', 'type': 'string'}], -11)
        """
        from datatrail.diff import diff_versions

        a = ref_a if isinstance(ref_a, Version) else self.get(ref_a)
        b = ref_b if isinstance(ref_b, Version) else self.get(ref_b)
        return diff_versions(a, b, self.store.profile(a), self.store.profile(b), self.manifest(a), self.manifest(b))

    def manifest(self, version: Version) -> list[FileEntry]:
        return self.store.manifest(version) if version.is_directory else []

    def runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        return self.store.list_runs(job, limit)

    def jobs(self, namespace: str | None = None) -> list[JobSummary]:
        return self.store.list_jobs(namespace)

    def get_run(self, run_id: str) -> Run:
        run_id = run_id.removeprefix("run:")
        if not run_id or any(c not in "0123456789abcdef-" for c in run_id.lower()):
            msg = f"invalid run id {run_id!r}: a run id is a UUID (or a prefix of one)"
            raise InvalidInput(msg)
        return self.store.get_run(run_id.lower())

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
        _check_lineage_options(direction, depth)
        version = self._lookup(ref)
        self._note("dataset.lineage", str(Ref(version.namespace, version.name)))
        when = parse_as_of(as_of)
        result = self.store.lineage([version], direction, depth, when)
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
        _check_lineage_options(direction, depth)
        version = self._lookup(ref)
        self._note("dataset.lineage", str(Ref(version.namespace, version.name)))
        return self.store.column_lineage([(version, column)], direction, depth)

    def describe(self, ref: str | Ref | Version) -> dict[str, Any]:
        """What producers reported about a version: ``schema``, ``stats``, dataset ``facets``, ``lifecycle``."""
        return self.store.describe(self.get(ref))

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
        _check_lineage_options(direction, depth)
        when = parse_as_of(as_of)
        if selector is None:
            start = self.store.list_versions(namespace, name)
            root = f"dataset:{namespace}:{name}"
        else:
            found = self.store.find_version(namespace, name, selector)
            if found is None:
                Ref._check_selector(f"{namespace}:{name}@{selector}", selector)
                found = self.store.resolve(Ref(namespace, name, selector))
            start = [found]
            root = f"version:{found.namespace}:{found.name}@{found.number}"
        result = self.store.lineage(start, direction, depth, when)
        self._note("dataset.lineage", str(Ref(namespace, name)))
        return Graph(root, direction, depth, result.nodes, result.edges)

    def run_lineage(self, run_id: str, *, direction: Direction = "both", depth: int = 10) -> Graph:
        """Lineage from the versions a run read and wrote."""
        _check_lineage_options(direction, depth)
        run = self.get_run(run_id)
        result = self.store.lineage([*run.inputs, *run.outputs], direction, depth)
        return Graph(f"run:{run.id}", direction, depth, result.nodes, result.edges)

    def job_lineage(
        self, namespace: str, name: str, *, direction: Direction = "both", depth: int = 10, runs: int = 1000
    ) -> Graph:
        """Lineage from the versions the latest ``runs`` runs of a job read and wrote."""
        _check_lineage_options(direction, depth)
        start = {
            (v.namespace, v.name, v.number): v
            for r in self.store.list_runs(name, runs)
            if r.namespace == namespace
            for v in (*r.inputs, *r.outputs)
        }
        result = self.store.lineage(list(start.values()), direction, depth)
        return Graph(f"job:{namespace}:{name}", direction, depth, result.nodes, result.edges)

    def verify(
        self,
        refs: Sequence[str] = (),
        *,
        use_cache: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Re-hash the data behind versions (the latest of every dataset when no ref is given)."""
        from datatrail.verify import verify_versions

        if refs:
            versions = [self.get(r) for r in refs]
        else:
            versions = [self.get(Ref(d.namespace, d.name)) for d in self.datasets() if d.latest is not None]
        return verify_versions(self, versions, use_cache=use_cache, progress=progress)

    def check_store(self) -> list[str]:
        """Check the store itself (`datatrail fsck`): one line per problem, empty when sound.

        SQLite's integrity check, the audit hash chain, every event with its audit
        entry, every version with the audit entry that created it, gapless version
        numbers, whole manifests, and no lineage edge pointing at nothing.

        >>> trail.check_store()  # doctest: +SKIP
        []
        """
        check = getattr(self.store, "check_integrity", None)
        if check is None:
            msg = "this store cannot check its own integrity"
            raise InvalidInput(msg)
        problems: list[str] = check()
        return problems


def parse_as_of(value: datetime | str | None) -> datetime | None:
    """A point in time for ``as_of``: a datetime or ISO 8601 text; no zone means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            msg = f"invalid time {value!r}: use ISO 8601, as in 2026-11-29T10:00:00Z"
            raise InvalidInput(msg) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _check_lineage_options(direction: str, depth: int) -> None:
    if direction not in ("upstream", "downstream", "both"):
        msg = f"invalid direction {direction!r}: use upstream, downstream or both"
        raise InvalidInput(msg)
    if not isinstance(depth, int) or depth < 0 or depth > MAX_DEPTH:
        msg = f"invalid depth {depth!r}: use a whole number from 0 to {MAX_DEPTH}"
        raise InvalidInput(msg)


def connect(uri: str | None = None, *, user: str | None = None, token: str | None = None) -> Trail:
    """Open the store named by ``uri``, ``$DATATRAIL_URI``, or the nearest ``.datatrail/``.

    ``token`` (else ``$DATATRAIL_TOKEN``) is sent as a Bearer token to a remote server.

    >>> trail = datatrail.connect()                           # doctest: +SKIP
    >>> trail = datatrail.connect("postgresql://me@db:5432/trail")  # doctest: +SKIP
    >>> trail = datatrail.connect("http://datatrail:8000", token="…")  # doctest: +SKIP
    """
    location = locate(uri)
    return Trail(open_store(location.uri, token=token), location, user)


def init(folder: str | os.PathLike[str] = ".", uri: str | None = None) -> Trail:
    """Create ``.datatrail/`` in ``folder`` with an embedded store (or the store ``uri``)."""
    location = init_config(Path(folder), uri)
    return Trail(open_store(location.uri, create=True), location)
