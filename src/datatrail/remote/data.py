"""Remote data as the recorder sees it: a URL's digest, its default name, and what an event says of it.

The one registration path (:class:`~datatrail.recorder.Recorder`) asks the same
three questions of local and remote data; this module answers them for URLs
(``s3://…``, ``gs://…``, ``file://…``, any fsspec URL), streaming the bytes
through fsspec and profiling tabular data where it lives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from datatrail.core.model import DEFAULT_NAMESPACE, validate_name, validate_namespace
from datatrail.hashing import HashResult, ProgressFn
from datatrail.profiling import profile_path
from datatrail.remote import default_name, redact
from datatrail.remote.cache import SqliteRemoteCache
from datatrail.remote.fs import Remote, open_url, translate
from datatrail.remote.hashing import RemoteHash, hash_remote


def hash_url(
    url: str,
    *,
    cache_path: Path | None,
    progress: ProgressFn | None = None,
    jobs: int | None = None,
    use_store_checksum: bool = False,
) -> tuple[Remote, RemoteHash]:
    """Open ``url`` and hash what it names (an object or a prefix); ``cache_path`` holds the remote cache."""
    remote = open_url(url)
    cache = SqliteRemoteCache(cache_path) if cache_path is not None else None
    hashed = hash_remote(remote, cache=cache, progress=progress, jobs=jobs, use_store_checksum=use_store_checksum)
    return remote, hashed


def profile_remote(remote: Remote, path: str, fmt: str) -> dict[str, Any] | None:
    """Profile tabular data on a remote filesystem through pyarrow, reading only what the format needs."""
    from pyarrow.fs import FSSpecHandler, PyFileSystem, SubTreeFileSystem  # pyarrow: only when a profile is due

    filesystem: Any = PyFileSystem(FSSpecHandler(remote.fs))
    if "://" in path:  # an https:// path is a whole URL, which a Path would mangle: root a subtree at its host
        scheme_, _, rest = path.partition("://")
        host, _, path = rest.partition("/")
        filesystem = SubTreeFileSystem(f"{scheme_}://{host}/", filesystem)
    with translate(remote.url, remote.secrets):
        return profile_path(path, fmt, filesystem=filesystem)


def url_name(url: str, name: str | None, namespace: str, host: str) -> tuple[str, str]:
    """(namespace, name) for a URL: the given name, else the URL's own (``s3://bucket`` + key)."""
    namespace = validate_namespace(namespace)
    if name is not None:
        return namespace, validate_name(name)
    url_namespace, own = default_name(url, host)
    return (url_namespace if namespace == DEFAULT_NAMESPACE else namespace), validate_name(own)


class RemoteData:
    """A URL once hashed: what the recorder needs to name, compare and describe it."""

    def __init__(self, remote: Remote, hashed: RemoteHash) -> None:
        self.remote = remote
        self.hashed = hashed

    @property
    def result(self) -> HashResult:
        return self.hashed.result

    @property
    def leaf(self) -> Path:
        """The last part of the URL's path (not the query of an https:// URL), for its format."""
        return Path(urlsplit(self.remote.url).path.rstrip("/").rsplit("/", 1)[-1])

    @property
    def uri(self) -> str:
        return self.remote.url

    def properties(self) -> dict[str, Any]:
        """How the digest was obtained (bytes or the store's checksum), with the object's ETag and version."""
        out: dict[str, Any] = {"digest_source": self.hashed.source}
        if self.hashed.etag:
            out["etag"] = self.hashed.etag
        if self.hashed.version_id:
            out["version_id"] = self.hashed.version_id
        return out

    def profile(self, fmt: str) -> dict[str, Any] | None:
        return profile_remote(self.remote, self.remote.path.rstrip("/"), fmt)


def exists(url: str) -> bool:
    """Whether ``url`` names an object or a non-empty prefix."""
    remote = open_url(url)
    with translate(remote.url, remote.secrets):
        if hasattr(remote.fs, "invalidate_cache"):
            remote.fs.invalidate_cache()
        return bool(remote.fs.exists(remote.path))


__all__ = ["RemoteData", "exists", "hash_url", "profile_remote", "redact", "url_name"]
