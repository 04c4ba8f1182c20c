"""Registering remote data as versions: ``trail.add("s3://bucket/raw/")`` and run outputs at URLs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from datatrail.core.changes import VersionInfo
from datatrail.core.errors import InvalidInput
from datatrail.core.model import DEFAULT_NAMESPACE, validate_name, validate_namespace
from datatrail.events import build_dataset_event
from datatrail.hashing import ProgressFn
from datatrail.remote import default_name, redact
from datatrail.remote.cache import SqliteRemoteCache
from datatrail.remote.fs import Remote, open_url, translate
from datatrail.remote.hashing import RemoteHash, hash_remote

if TYPE_CHECKING:
    from datatrail.service import AddResult, Trail


def remote_cache(trail: Trail) -> SqliteRemoteCache:
    """The remote cache, in the same SQLite file as the trail's local stat cache."""
    path = getattr(trail.stat_cache(), "path", None)
    if path is None:  # pragma: no cover - a stat cache of another kind
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        path = Path(base) / "datatrail" / "statcache.db"
    return SqliteRemoteCache(path)


def hash_url(
    trail: Trail,
    url: str,
    *,
    use_cache: bool = True,
    progress: ProgressFn | None = None,
    jobs: int | None = None,
    use_store_checksum: bool = False,
) -> tuple[Remote, RemoteHash]:
    """Open ``url`` and hash what it names (an object or a prefix)."""
    remote = open_url(url)
    cache = remote_cache(trail) if use_cache else None
    hashed = hash_remote(remote, cache=cache, progress=progress, jobs=jobs, use_store_checksum=use_store_checksum)
    return remote, hashed


def profile_remote(remote: Remote, path: str, fmt: str) -> dict[str, Any] | None:
    """Profile tabular data on a remote filesystem through pyarrow, reading only what the format needs."""
    from pyarrow.fs import FSSpecHandler, PyFileSystem, SubTreeFileSystem

    from datatrail.profiling import profile_path

    filesystem: Any = PyFileSystem(FSSpecHandler(remote.fs))
    if "://" in path:  # an https:// path is a whole URL, which a Path would mangle: root a subtree at its host
        scheme_, _, rest = path.partition("://")
        host, _, path = rest.partition("/")
        filesystem = SubTreeFileSystem(f"{scheme_}://{host}/", filesystem)
    with translate(remote.url, remote.secrets):
        return profile_path(path, fmt, filesystem=filesystem)


def version_info(
    trail: Trail,
    remote: Remote,
    hashed: RemoteHash,
    *,
    message: str | None = None,
    kind: str = "dataset",
    profile: bool = True,
) -> VersionInfo:
    """What an event says of a hashed remote object or prefix; tabular data is profiled remotely."""
    leaf = urlsplit(remote.url).path.rstrip("/").rsplit("/", 1)[-1]  # not the query of an https:// URL
    properties: dict[str, Any] = {"digest_source": hashed.source}
    if hashed.etag:
        properties["etag"] = hashed.etag
    if hashed.version_id:
        properties["version_id"] = hashed.version_id
    return trail.version_info(
        Path(leaf),
        hashed.result,
        message=message,
        kind=kind,
        profile=profile,
        uri=remote.url,
        profiler=lambda fmt: profile_remote(remote, remote.path.rstrip("/"), fmt),
        properties=properties,
    )


def dataset_name(trail: Trail, url: str, name: str | None, namespace: str) -> tuple[str, str]:
    """(namespace, name) for a URL: the given name, else the URL's own (``s3://bucket`` + key)."""
    namespace = validate_namespace(namespace)
    if name is not None:
        return namespace, validate_name(name)
    url_namespace, url_name = default_name(url, trail.host)
    return (url_namespace if namespace == DEFAULT_NAMESPACE else namespace), validate_name(url_name)


def register_url(
    trail: Trail,
    url: str,
    *,
    name: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    message: str | None = None,
    tags: Sequence[str] = (),
    kind: str = "dataset",
    use_cache: bool = True,
    progress: ProgressFn | None = None,
    profile: bool = True,
    checks: object = None,
    jobs: int | None = None,
    use_store_checksum: bool = False,
) -> AddResult:
    """Hash remote data and record it as a version; unchanged content creates nothing."""
    from datatrail.service import AddResult

    if checks is not None:
        msg = f"checks read local data only; copy {redact(url)!r} locally to check it, or add it without checks"
        raise InvalidInput(msg)
    namespace, name = dataset_name(trail, url, name, namespace)
    aliases = tuple(validate_name(tag, "alias") for tag in tags)
    if "latest" in aliases:
        msg = "'latest' always names the newest version; choose another alias"
        raise InvalidInput(msg)
    remote, hashed = hash_url(
        trail, url, use_cache=use_cache, progress=progress, jobs=jobs, use_store_checksum=use_store_checksum
    )
    existing = trail.store.find_version(namespace, name, str(hashed.result.digest))
    if existing is not None and all(a in existing.aliases for a in aliases):
        return AddResult(existing, False)
    info = version_info(trail, remote, hashed, message=message, kind=kind, profile=profile and existing is None)
    event = build_dataset_event(namespace, name, info, aliases)
    result = trail.store.ingest(event, trail.user, "dataset.add")
    version, created = result.versions[0]
    return AddResult(version, created)


def describe_url(
    trail: Trail,
    url: str,
    *,
    name: str | None,
    namespace: str,
    kind: str = "dataset",
    message: str | None = None,
    profile: bool = True,
) -> tuple[str, str, VersionInfo]:
    """(namespace, name, what to record) of remote data written by a run."""
    namespace, name = dataset_name(trail, url, name, namespace)
    if kind not in ("dataset", "model"):
        msg = f"invalid kind {kind!r}: use 'dataset' or 'model'"
        raise InvalidInput(msg)
    remote, hashed = hash_url(trail, url)
    return namespace, name, version_info(trail, remote, hashed, message=message, kind=kind, profile=profile)


def exists(url: str) -> bool:
    """Whether ``url`` names an object or a non-empty prefix."""
    remote = open_url(url)
    with translate(remote.url, remote.secrets):
        if hasattr(remote.fs, "invalidate_cache"):
            remote.fs.invalidate_cache()
        return bool(remote.fs.exists(remote.path))


__all__ = ["describe_url", "exists", "hash_url", "register_url", "remote_cache", "version_info"]
