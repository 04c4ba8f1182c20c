"""Recording data as versions: hash it, describe it, and write one event — for local paths and URLs alike.

:class:`Recorder` is the write half of :class:`~datatrail.service.Trail` for
data: ``add``/``register``, ``tag``, ``check``, and what a run needs to record
its inputs and outputs. Local files and remote objects take the same path —
hash, look the digest up, describe, build a DatasetEvent, ingest — and differ
only in how they are hashed and profiled (``hashing.py`` for files, ``remote/``
for fsspec URLs). :class:`Workspace` is this machine's side: the folder that
names datasets by relative path, and the caches of file digests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from datatrail.checks import CheckReport, Rule, RuleSource, load_rules
from datatrail.config import Location
from datatrail.core.changes import Event, VersionInfo
from datatrail.core.errors import IntegrityError, InvalidInput
from datatrail.core.model import DEFAULT_NAMESPACE, Version, validate_name, validate_namespace
from datatrail.core.results import IngestResult
from datatrail.events import PRODUCER, build_alias_event, build_check_event, build_dataset_event
from datatrail.facets import check_facets
from datatrail.files import read_regular
from datatrail.formats import detect_directory_format, detect_format, is_tabular
from datatrail.frames import data_info, is_data
from datatrail.hashing import HashResult, LayeredCache, ProgressFn, StatCache, hash_path
from datatrail.ml.models import save_object
from datatrail.remote import is_url, redact
from datatrail.statcache import SqliteStatCache
from datatrail.store.base import Store

if TYPE_CHECKING:
    from datatrail.remote.data import RemoteData


@dataclass(frozen=True)
class AddResult:
    """A version, whether this call created it, and the checks evaluated on it (when asked for)."""

    version: Version
    created: bool
    checks: CheckReport | None = None

    @property
    def status(self) -> str:
        return "new" if self.created else "unchanged"


class Workspace:
    """The folder datasets are named relative to, and this machine's caches of file and object digests."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._stat_cache: SqliteStatCache | None = None

    @property
    def root(self) -> Path:
        return self.location.root

    @property
    def cache_path(self) -> Path:
        """The SQLite file of both caches: in ``.datatrail/``, else under ``$XDG_CACHE_HOME/datatrail/``."""
        if self.location.config_dir is not None:
            return self.location.config_dir / "statcache.db"
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        return Path(base) / "datatrail" / "statcache.db"

    def stat_cache(self) -> SqliteStatCache:
        if self._stat_cache is None:
            self._stat_cache = SqliteStatCache(self.cache_path)
        return self._stat_cache

    @property
    def objects_dir(self) -> Path:
        """Where models saved from memory are kept: ``.datatrail/objects/`` (beside the config, or in the root)."""
        return (self.location.config_dir or (self.root / ".datatrail")) / "objects"

    def default_name(self, path: Path) -> str:
        """The dataset name for a path: its location relative to the root."""
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

    def close(self) -> None:
        if self._stat_cache is not None:
            self._stat_cache.close()


def check_aliases(tags: Sequence[str]) -> tuple[str, ...]:
    aliases = tuple(validate_name(tag, "alias") for tag in tags)
    if "latest" in aliases:
        msg = "'latest' always names the newest version; choose another alias"
        raise InvalidInput(msg)
    return aliases


def check_kind(kind: str) -> str:
    if kind not in ("dataset", "model"):
        msg = f"invalid kind {kind!r}: use 'dataset' or 'model'"
        raise InvalidInput(msg)
    return kind


class Recorder:
    """Hashes, describes and records data as versions of a store, as one user on one host."""

    def __init__(self, store: Store, workspace: Workspace, user: str, host: str) -> None:
        self.store = store
        self.workspace = workspace
        self.user = user
        self.host = host

    def write(self, event: Event, action: str) -> IngestResult:
        """Ingest one event as this recorder's user (``action`` names it in the audit log)."""
        return self.store.ingest(event, self.user, action)

    # ------------------------------------------------------------ hashing and describing

    def hash(
        self,
        path: str | os.PathLike[str],
        *,
        use_cache: bool = True,
        progress: ProgressFn | None = None,
        hint: StatCache | None = None,
    ) -> HashResult:
        """Hash a local ``path``; ``hint`` knows digests computed ahead of time (see ``cli/prefetch.py``)."""
        cache: StatCache | None = self.workspace.stat_cache() if use_cache else None
        if hint is not None:
            cache = LayeredCache(hint, cache)
        return hash_path(path, cache=cache, progress=progress)

    def hash_url(
        self,
        url: str,
        *,
        use_cache: bool = True,
        progress: ProgressFn | None = None,
        jobs: int | None = None,
        use_store_checksum: bool = False,
    ) -> RemoteData:
        """Hash the object or prefix a URL names, reading only what the remote cache does not know."""
        from datatrail.remote.data import RemoteData, hash_url  # fsspec: only for URLs

        cache_path = self.workspace.cache_path if use_cache else None
        remote, hashed = hash_url(
            url, cache_path=cache_path, progress=progress, jobs=jobs, use_store_checksum=use_store_checksum
        )
        return RemoteData(remote, hashed)

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
        """What an event says of hashed data; ``profile`` profiles tabular data (CSV, Parquet…).

        Remote data passes its ``uri``, the ``profiler`` that reads it where it lives
        (given the format), and ``properties`` saying how its digest was obtained.
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

    def _remote_info(self, data: RemoteData, *, message: str | None, kind: str, profile: bool) -> VersionInfo:
        return self.version_info(
            data.leaf,
            data.result,
            message=message,
            kind=kind,
            profile=profile,
            uri=data.uri,
            profiler=data.profile,
            properties=data.properties(),
        )

    def _name(self, path: str | os.PathLike[str], name: str | None, namespace: str) -> tuple[str, str]:
        """(namespace, name) of data: the given name, else the path relative to the root or the URL's own."""
        if is_url(path):
            from datatrail.remote.data import url_name  # fsspec: only for URLs

            return url_name(str(path), name, namespace, self.host)
        namespace = validate_namespace(namespace)
        return namespace, validate_name(name if name is not None else self.workspace.default_name(Path(path)))

    def describe(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        kind: str = "dataset",
        message: str | None = None,
        profile: bool = True,
    ) -> tuple[str, str, VersionInfo]:
        """(namespace, name, what to record) of local or remote data, hashed and profiled (a run's output)."""
        namespace, name = self._name(path, name, namespace)
        check_kind(kind)
        if is_url(path):
            data = self.hash_url(str(path))
            return namespace, name, self._remote_info(data, message=message, kind=kind, profile=profile)
        p = Path(path)
        return namespace, name, self.version_info(p, self.hash(p), message=message, kind=kind, profile=profile)

    def describe_object(self, obj: Any, *, kind: str = "dataset", message: str | None = None) -> VersionInfo:
        """What to record of an object in memory: a table hashed and profiled in memory, or a model saved
        (skops or joblib, so the same model gives the same bytes) under ``.datatrail/objects/``."""
        if is_data(obj) and kind == "dataset":
            info = data_info(obj, self.user, self.host)
            profile = None
            if info.format == "arrow":
                from datatrail.profiling import profile_table  # pyarrow: only when a profile is due

                profile = profile_table(obj)
            return dataclasses.replace(info, message=message, profile=profile)
        path, saved = save_object(self.workspace.objects_dir, obj)
        info = self.version_info(path, self.hash(path), message=message, kind="model", profile=False)
        return dataclasses.replace(info, format=saved.format, properties=saved.properties)

    # ------------------------------------------------------------ writes

    def record_data(self, name: str, value: Any, namespace: str = DEFAULT_NAMESPACE) -> Version:
        """Record a DataFrame, Arrow table or array as a version of ``name`` (unchanged data creates nothing)."""
        info = data_info(value, self.user, self.host)
        existing = self.store.find_version(namespace, name, info.key)
        if existing is not None:
            return existing
        result = self.store.ingest(build_dataset_event(namespace, name, info), self.user, "dataset.add")
        return result.versions[0][0]

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
        keep: Callable[[Path, HashResult], object] | None = None,
    ) -> AddResult:
        """Hash ``path`` and record it as a version; unchanged content creates nothing.

        ``hint`` supplies digests hashed ahead of time in another thread; meanwhile
        the store gets ready for the write, so the two overlap. ``checks`` (a rules
        file, or a list of rule dicts and callables) are evaluated against the data
        and stored with the version, in the same event when the version is new.
        A URL (``s3://bucket/raw/``, ``gs://…``, any fsspec URL) is hashed remotely
        by ``jobs`` parallel connections (default 8); ``use_store_checksum`` takes an
        S3 full-object SHA-256 checksum instead of reading the bytes. ``keep``
        (``trail.storage.keep``) keeps the bytes of a local path once hashed.
        """
        remote = is_url(path)
        if remote and checks is not None:
            msg = (
                f"checks read local data only; copy {redact(str(path))!r} locally to check it, or add it without checks"
            )
            raise InvalidInput(msg)
        rules = load_rules(checks) if checks is not None else None  # a bad rule fails before any work
        namespace, name = self._name(path, name, namespace)
        aliases = check_aliases(tags)
        if hint is not None:
            self.store.prepare()
        data: RemoteData | None = None
        if remote:
            data = self.hash_url(
                str(path), use_cache=use_cache, progress=progress, jobs=jobs, use_store_checksum=use_store_checksum
            )
            hashed = data.result
        else:
            hashed = self.hash(path, use_cache=use_cache, progress=progress, hint=hint)
            if keep is not None:
                keep(Path(path), hashed)
        existing = self.store.find_version(namespace, name, str(hashed.digest))
        if existing is not None and all(a in existing.aliases for a in aliases):
            report = self._check_version(existing, rules, Path(path)) if rules is not None else None
            return AddResult(existing, False, report)
        describe = profile and existing is None
        if data is not None:
            info = self._remote_info(data, message=message, kind=kind, profile=describe)
        else:
            info = self.version_info(Path(path), hashed, message=message, kind=kind, profile=describe)
        event = build_dataset_event(namespace, name, info, aliases)
        results: list[Any] = []
        if rules is not None:
            results = self._evaluate(rules, Path(path), info.format, info.profile)
            event["dataset"]["facets"].update(check_facets(results, PRODUCER))
        version, created = self.store.ingest(event, self.user, "dataset.add").versions[0]
        report = None
        if rules is not None:
            stored = self.store.check_results(version)
            report = CheckReport(version, tuple(stored[-len(results) :]) if results else ())
        return AddResult(version, created, report)

    def tag(self, version: Version, alias: str) -> None:
        """Point ``alias`` (``production``, ``candidate``…) at ``version``."""
        alias = validate_name(alias, "alias")
        if alias == "latest":
            msg = "'latest' always names the newest version and cannot be moved; choose another alias"
            raise InvalidInput(msg)
        event = build_alias_event(version.namespace, version.name, version.key or str(version.digest), alias)
        self.store.ingest(event, self.user, "version.tag")

    # ------------------------------------------------------------ checks

    def check(self, version: Version, rules: RuleSource) -> CheckReport:
        """Evaluate rules against a version's data and store every result (observed value, who, when)."""
        return self._check_version(version, load_rules(rules))

    def _check_version(self, version: Version, rules: list[Rule], path: Path | None = None) -> CheckReport:
        if path is None:
            path = self.local_data(version)
        results = self._evaluate(rules, path, version.format, self.store.profile(version))
        event = build_check_event(version.namespace, version.name, version.key or str(version.digest), results)
        self.store.ingest(event, self.user, "version.check")
        stored = self.store.check_results(version)
        return CheckReport(version, tuple(stored[-len(results) :]) if results else ())

    def local_data(self, version: Version) -> Path:
        """The local file behind a version, refused if it is gone or its content changed since."""
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

    def verified_bytes(self, version: Version) -> bytes:
        """The bytes of a version's local file, read once and refused unless they hash to its stored digest.

        For bytes about to be deserialized: they are checked as read (no stat
        cache, no second read that could see another file).
        """
        uri = urlparse(version.uri or "")
        if uri.scheme != "file":
            msg = f"{version.ref} has no local file to load (uri {version.uri!r}); fetch it and add it locally"
            raise InvalidInput(msg)
        if version.digest is None:
            msg = f"{version.ref} has no SHA-256 digest to check its bytes against; add the file again to load it"
            raise InvalidInput(msg)
        path = Path(unquote(uri.path))
        payload = read_regular(path)
        if hashlib.sha256(payload).hexdigest() != version.digest.hex:
            msg = (
                f"{os.fspath(path)!r} does not hold the bytes of {version.ref} (its SHA-256 differs from the "
                "stored digest); not loading it: add the file again if it changed on purpose"
            )
            raise IntegrityError(msg)
        return payload

    def _evaluate(self, rules: list[Rule], path: Path, fmt: str | None, profile: dict[str, Any] | None) -> list[Any]:
        if not is_tabular(fmt):
            what = fmt or "an unknown format"
            msg = f"cannot check {os.fspath(path)!r}: checks need tabular data (CSV, Parquet, JSON Lines…), not {what}"
            raise InvalidInput(msg)
        from datatrail.check_data import evaluate_path  # pyarrow: only when checks are due

        assert fmt is not None
        results = evaluate_path(rules, path, fmt, profile)
        return [{**r, "checked_by": self.user} for r in results]


__all__ = ["AddResult", "Recorder", "Workspace", "check_aliases", "check_kind"]
