"""Recording data as versions: hash it, describe it, and write one event — for local paths and URLs alike.

:class:`Recorder` is the write half of :class:`~datatrail.service.Trail` for
data: ``add``/``register``, ``tag``, ``check``, and what a run needs to record
its inputs and outputs. Local files and remote objects take the same path —
hash, look the digest up, describe, build a DatasetEvent, ingest — and differ
only in how they are hashed and profiled (``hashing.py`` for files, ``remote/``
for fsspec URLs). :class:`Workspace` (datatrail/workspace.py) is this machine's side: the folder
that names datasets by relative path, and the caches of file digests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from datatrail.checks import CheckReport, Rule, RuleSource, load_rules
from datatrail.core.changes import Event, VersionInfo
from datatrail.core.errors import IntegrityError, InvalidInput
from datatrail.core.model import DEFAULT_NAMESPACE, Version, validate_name, validate_namespace
from datatrail.core.results import IngestResult
from datatrail.events import PRODUCER, build_alias_event, build_check_event, build_dataset_event
from datatrail.facets import check_facets
from datatrail.files import read_regular
from datatrail.formats import detect_directory_format, detect_format, is_tabular
from datatrail.frames import data_info, is_data
from datatrail.hashing import (
    HashResult,
    KnownTree,
    LayeredCache,
    Listing,
    ProgressFn,
    StatCache,
    hash_path,
    known_tree,
)
from datatrail.ml.models import save_object
from datatrail.remote import is_url, redact
from datatrail.store.base import Store
from datatrail.workspace import Workspace

if TYPE_CHECKING:
    from datatrail.remote.data import RemoteData


LOCATION = "location"
CONTENT = "content"


@dataclass(frozen=True)
class Identity:
    """Which dataset the data at a path (or URL) is, decided before anything is written.

    ``existing`` is the version of that dataset already holding these bytes, if any.
    ``found_by`` says how a path given without a name found a dataset other than the
    one its path names: ``"location"`` (a version of it was recorded there) or
    ``"content"`` (a version of it elsewhere has these bytes, and the caller links
    content). ``same_content`` is such a version when the caller does not link.
    """

    namespace: str
    name: str
    existing: Version | None
    found_by: str | None = None
    same_content: Version | None = None

    def note(self, path: str | os.PathLike[str], version: Version) -> str | None:
        """One line telling how ``path`` became ``version``, when its name does not say it."""
        shown = redact(os.fspath(path))
        if self.found_by == CONTENT:
            digest = version.digest.short if version.digest else version.key
            return f"{shown} is {version.ref} (same content, {digest})"
        if self.found_by == LOCATION and self.existing is None:
            return f"{shown} is {version.ref} (new content at the location of {version.name})"
        if self.found_by == LOCATION:
            return f"{shown} is {version.ref} (its location)"
        if self.same_content is not None:
            return f"{shown} has the same content as {self.same_content.ref}; recorded as {version.ref}"
        return None


@dataclass(frozen=True)
class AddResult:
    """A version, whether this call created it, the checks evaluated on it (when asked for), and a note
    when a path given without a name found its dataset by location or content (see :class:`Identity`)."""

    version: Version
    created: bool
    checks: CheckReport | None = None
    note: str | None = None

    @property
    def status(self) -> str:
        return "new" if self.created else "unchanged"


def _outcome(result: dict[str, Any]) -> str:
    """What a check result says, as comparable text (not who checked it, nor when)."""
    fields = ("rule", "name", "column", "severity", "success", "observed", "expected", "message")
    return json.dumps([result.get(f) for f in fields], default=str, sort_keys=True)


def _or_default(namespace: str | None) -> str:
    return DEFAULT_NAMESPACE if namespace is None else namespace


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
        listing: Listing | None = None,
    ) -> HashResult:
        """Hash a local ``path``; ``hint`` knows digests computed ahead of time (see ``cli/prefetch.py``).

        ``listing`` is what :meth:`known_tree` listed already."""
        stats = self.workspace.stat_cache() if use_cache else None
        cache: StatCache | None = stats
        if hint is not None:
            cache = LayeredCache(hint, cache)
        return hash_path(path, cache=cache, progress=progress, trees=stats, listing=listing)

    def known_tree(self, path: str | os.PathLike[str]) -> tuple[KnownTree | None, Listing]:
        """A directory listed exactly as when it was last hashed here (its digest, no file read); and the listing."""
        return known_tree(path, self.workspace.stat_cache())

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
        namespace: str | None = None,
        kind: str = "dataset",
        message: str | None = None,
        profile: bool = True,
        fallback: tuple[str, str] | None = None,
    ) -> tuple[str, str, VersionInfo]:
        """(namespace, name, what to record) of local or remote data, hashed and profiled (a run's output).

        Without a ``name``, data written where a dataset's version was recorded is the
        next version of that dataset (see :meth:`identify`); else it is named by its path
        (or ``fallback``)."""
        check_kind(kind)
        if name is not None or (fallback is None and not self._located(path)):
            self._name(path, name, _or_default(namespace))  # a bad name fails before any hashing
        if is_url(path):
            data = self.hash_url(str(path))
            who = self.identify(path, data.result, data.uri, name=name, namespace=namespace, fallback=fallback)
            return who.namespace, who.name, self._remote_info(data, message=message, kind=kind, profile=profile)
        p = Path(path)
        hashed = self.hash(p)
        who = self.identify(p, hashed, p.resolve().as_uri(), name=name, namespace=namespace, fallback=fallback)
        return who.namespace, who.name, self.version_info(p, hashed, message=message, kind=kind, profile=profile)

    def identify(
        self,
        path: str | os.PathLike[str],
        hashed: HashResult,
        uri: str,
        *,
        name: str | None,
        namespace: str | None,
        link_content: bool = False,
        fallback: tuple[str, str] | None = None,
    ) -> Identity:
        """Which dataset hashed data at ``path`` (recorded as ``uri``) is: lineage must not split silently.

        A given ``name`` is that dataset. Otherwise, in this order (within ``namespace``
        when one is given):

        1. the location is where versions were recorded: the dataset of the newest of them
           (one named with ``--name`` before one its path names by default) — its version
           with these bytes, or the next one: an edited file is a new version of the
           dataset it was added as;
        2. with ``link_content``, a version elsewhere holds these bytes: that version (the
           first recorded) — a copy read as a run's input continues the copy's lineage;
        3. a new location: the dataset its path names (``fallback`` for a path outside the
           root, else the path relative to the root, or a URL's own name).
        """
        digest = str(hashed.digest)
        if name is not None:
            ns, nm = self._name(path, name, _or_default(namespace))
            return Identity(ns, nm, self.store.find_version(ns, nm, digest))
        found = [v for v in self.store.versions_at(uri, digest) if namespace is None or v.namespace == namespace]
        here = [v for v in found if v.uri == uri]
        same = [v for v in found if str(v.digest) == digest]
        if here:
            own = self._own_name(path, namespace, fallback)
            chosen = sorted(here, key=lambda v: (v.namespace, v.name) == own)[0]  # stable: newest first
            existing = chosen if str(chosen.digest) == digest else None
            if existing is None:
                existing = self.store.find_version(chosen.namespace, chosen.name, digest)
            how = None if (chosen.namespace, chosen.name) == own else LOCATION
            return Identity(chosen.namespace, chosen.name, existing, how)
        if same and link_content:
            return Identity(same[-1].namespace, same[-1].name, same[-1], CONTENT)
        if fallback is not None:
            ns, nm = validate_namespace(fallback[0]), validate_name(fallback[1])
        else:
            ns, nm = self._name(path, None, _or_default(namespace))
        existing = self.store.find_version(ns, nm, digest)
        other = next((v for v in reversed(same) if (v.namespace, v.name) != (ns, nm)), None)
        return Identity(ns, nm, existing, None, other if existing is None else None)

    def _own_name(
        self, path: str | os.PathLike[str], namespace: str | None, fallback: tuple[str, str] | None
    ) -> tuple[str, str] | None:
        """The (namespace, name) a path's location gives it by default; None outside the root without a fallback."""
        if fallback is not None:
            return fallback
        try:
            return self._name(path, None, _or_default(namespace))
        except InvalidInput:
            return None

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
        namespace: str | None = None,
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
        link_content: bool = False,
        fallback: tuple[str, str] | None = None,
        keep: Callable[[Path, HashResult], object] | None = None,
    ) -> AddResult:
        """Hash ``path`` and record it as a version; unchanged content creates nothing.

        Without a ``name`` the data is the dataset its location already is (see
        :meth:`identify`); ``link_content`` (a run's input) also takes the version of
        another location with the same bytes; ``fallback`` names a new location
        instead of its path; ``namespace`` (default ``default``) limits the search.

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
        if name is not None or (fallback is None and not link_content and not self._located(path)):
            self._name(path, name, _or_default(namespace))  # a bad name fails before any hashing
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
        uri = data.uri if data is not None else Path(path).resolve().as_uri()
        who = self.identify(
            path, hashed, uri, name=name, namespace=namespace, link_content=link_content, fallback=fallback
        )
        namespace, name, existing = who.namespace, who.name, who.existing
        if existing is not None and (who.found_by == CONTENT or all(a in existing.aliases for a in aliases)):
            if aliases and who.found_by == CONTENT:
                msg = f"{os.fspath(path)!r} has the content of {existing.ref}, recorded elsewhere; tag that version"
                raise InvalidInput(msg)
            report = self._check_version(existing, rules, Path(path)) if rules is not None else None
            return AddResult(existing, False, report, who.note(path, existing))
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
        return AddResult(version, created, report, who.note(path, version))

    def _located(self, path: str | os.PathLike[str]) -> bool:
        """Whether a local path is where some version was recorded (asked only when it has no name of its own)."""
        if is_url(path):
            return False
        try:
            self.workspace.default_name(Path(path))
        except InvalidInput:
            return bool(self.store.versions_at(Path(path).resolve().as_uri()))
        return False

    def tag(self, version: Version, alias: str) -> None:
        """Point ``alias`` (``production``, ``candidate``…) at ``version``."""
        alias = validate_name(alias, "alias")
        if alias == "latest":
            msg = "'latest' always names the newest version and cannot be moved; choose another alias"
            raise InvalidInput(msg)
        event = build_alias_event(version.namespace, version.name, version.key or str(version.digest), alias)
        self.store.ingest(event, self.user, "version.tag")

    def record_locations(self, versions: Sequence[Version], remote: str, url: str, *, actor: str | None = None) -> int:
        """Record that the remote ``remote`` at ``url`` holds every object of ``versions`` (after a push)."""
        return self.store.record_content_location(versions, remote, url, actor=actor or self.user)

    def forget_locations(self, versions: Sequence[Version], url: str, *, actor: str | None = None) -> int:
        """Forget that ``url`` holds ``versions`` (their objects there were collected)."""
        return self.store.forget_content_location(versions, url, actor=actor or self.user)

    # ------------------------------------------------------------ checks

    def check(self, version: Version, rules: RuleSource) -> CheckReport:
        """Evaluate rules against a version's data and store every result (observed value, who, when).

        The same rules giving the same results as the version's latest evaluation store
        nothing again: the report is that evaluation (a version is immutable, so checking
        it again with the same rules only repeats it)."""
        return self._check_version(version, load_rules(rules))

    def _check_version(self, version: Version, rules: list[Rule], path: Path | None = None) -> CheckReport:
        if path is None:
            path = self.local_data(version)
        results = self._evaluate(rules, path, version.format, self.store.profile(version))
        stored = self.store.check_results(version)
        if results and len(stored) >= len(results):
            latest = stored[-len(results) :]
            if [_outcome(dataclasses.asdict(r)) for r in latest] == [_outcome(r) for r in results]:
                return CheckReport(version, tuple(latest))
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
