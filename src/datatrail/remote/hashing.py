"""Remote objects and prefixes as a hashing backend, with the same digest rules as local files.

One object's digest is the SHA-256 of its bytes; a prefix's is the digest of
its manifest (:func:`datatrail.hashing.manifest_digest`). The engine
(:func:`datatrail.hashing.build.build`) hashes; this module lists through
``fs.find``, keys the remote cache on what the store says of an object (ETag,
version id, size, last modified), so an unchanged object is not read again,
and reads an object by streaming it in chunks (nothing is copied locally), one
connection per thread of a bounded pool. With ``use_store_checksum`` an S3
full-object SHA-256 checksum is taken instead of reading the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from datatrail.core.errors import InvalidInput
from datatrail.hashing import RACY_SECONDS
from datatrail.hashing.build import CONTENT, DigestCache, Entry, HashResult, ProgressFn, Read, build
from datatrail.remote.cache import Cached, ObjectKey
from datatrail.remote.fs import Remote, translate

# Bigger than the local chunk: each read of an object store is a request.
CHUNK = 8 * 1024 * 1024
DEFAULT_JOBS = 8
STORE_CHECKSUM = "store-checksum"


@dataclass(frozen=True)
class RemoteHash:
    """A remote object's or prefix's digest, and what the store said of a single object."""

    result: HashResult
    etag: str | None = None
    version_id: str | None = None

    @property
    def source(self) -> str:
        """How the digests were obtained: "content", "store-checksum", or "content+store-checksum"."""
        return self.result.source

    @property
    def is_dir(self) -> bool:
        """Whether the URL named a prefix (the result has a manifest)."""
        return self.result.files is not None


# What filesystems call the time an object last changed (s3fs, adlfs, gcsfs, local, HTTP headers).
_MODIFIED = ("LastModified", "last_modified", "updated", "mtime", "Last-Modified")


def _text(value: Any) -> str:
    """A listing's value as the text the cache compares (times in UTC ISO form, nothing as '')."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat()
    return str(value)


def _recent(modified: Any) -> bool:
    """Whether a last-modified value (time stamp, HTTP date or ISO text) is within RACY_SECONDS of now."""
    if isinstance(modified, str):
        try:
            modified = parsedate_to_datetime(modified)
        except (TypeError, ValueError):
            try:
                modified = datetime.fromisoformat(modified)
            except ValueError:
                return False
    if isinstance(modified, datetime):
        when = modified if modified.tzinfo is not None else modified.replace(tzinfo=UTC)
        modified = when.timestamp()
    return isinstance(modified, int | float) and time.time() - modified <= RACY_SECONDS


def _key(remote: Remote, rel: str, info: dict[str, Any]) -> ObjectKey:
    """The remote cache key of one listed object, from whichever names its filesystem gives the fields."""
    etag = _text(info.get("ETag") or info.get("etag") or info.get("e_tag") or info.get("md5Hash")).strip('"')
    version = _text(info.get("VersionId") or info.get("version_id") or info.get("generation"))
    modified = next((info[k] for k in _MODIFIED if info.get(k)), None)
    if modified is None and remote.protocol == "memory":
        modified = info.get("created")  # a memory file is replaced, never modified in place
    elif not etag and not version and _recent(modified):
        # With only a time stamp to go by (a local file, an HTTP Last-Modified of whole
        # seconds), one that recent may not move on the next change: do not vouch.
        modified = None
    url = remote.child_url(rel) if rel else remote.url
    return ObjectKey(url, etag, version, int(info.get("size") or 0), _text(modified))


def _entry(remote: Remote, rel: str, path: str, info: dict[str, Any]) -> Entry[ObjectKey]:
    """The listing entry of one object, keyed on what the store says of it."""
    key = _key(remote, rel, info)
    return Entry(rel, path, key.size, key)


def list_objects(remote: Remote) -> tuple[list[Entry[ObjectKey]], bool]:
    """The objects at a URL (one, or every object under a prefix, sorted) and whether it is a prefix."""
    fs, path = remote.fs, remote.path
    with translate(remote.url, remote.secrets):
        if hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()  # listings are cached per filesystem instance; we want the store's now
        info = fs.info(path)
        if info.get("type") != "directory":
            return [_entry(remote, "", path, info)], False
        found = fs.find(path, detail=True)
    prefix = path.rstrip("/") + "/"
    out: list[Entry[ObjectKey]] = []
    for name, item in found.items():
        if item.get("type") == "directory" or name.endswith("/"):
            continue  # a folder, or the empty "folder/" marker object some tools create
        rel = name[len(prefix) :] if name.startswith(prefix) else name.rsplit("/", 1)[-1]
        if not rel or any(c in rel for c in "\t\n\r"):
            msg = f"cannot add {remote.child_url(rel)!r}: object names with tabs or line breaks are not supported"
            raise InvalidInput(msg)
        out.append(_entry(remote, rel, name, item))
    if not out:
        msg = f"{remote.url!r} is an empty prefix; there is nothing to add"
        raise InvalidInput(msg)
    out.sort(key=lambda o: o.rel)
    return out, True


def store_checksum(remote: Remote, obj: Entry[ObjectKey]) -> str | None:
    """The hex SHA-256 the store holds for a whole object (S3 ChecksumSHA256 of a full-object checksum)."""
    fs = remote.fs
    if not hasattr(fs, "call_s3") or not hasattr(fs, "split_path"):
        return None
    bucket, key, version = fs.split_path(obj.path)
    extra = {"VersionId": version} if version else {}
    with translate(obj.key.url, remote.secrets):
        head = fs.call_s3("head_object", Bucket=bucket, Key=key, ChecksumMode="ENABLED", **extra)
    value = head.get("ChecksumSHA256")
    kind = head.get("ChecksumType")
    # A composite checksum of a multipart upload ("…-3") is a checksum of checksums, not of the bytes.
    if not value or (kind is not None and kind != "FULL_OBJECT") or "-" in value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def read_digest(remote: Remote, obj: Entry[ObjectKey], progress: ProgressFn | None) -> tuple[str, int]:
    """(hex SHA-256, bytes read) of one object, streamed in chunks."""
    h = hashlib.sha256()
    read = 0
    with translate(obj.key.url, remote.secrets):
        opts: dict[str, Any] = {"block_size": CHUNK}
        if remote.protocol not in ("file", "memory"):
            opts.update(cache_type="none", size=obj.size)  # no HEAD before the GETs, no read-ahead copy
        with remote.fs.open(obj.path, "rb", **opts) as f:
            while data := f.read(CHUNK):
                h.update(data)
                read += len(data)
                if progress is not None:
                    progress(0, len(data))
    return h.hexdigest(), read


class ObjectReader:
    """Reads the objects of one remote for :func:`datatrail.hashing.build.build`; cached values are :class:`Cached`."""

    # Every object is a request of its own: one task per object keeps ``jobs`` connections busy.
    batch_below = 0
    thread_name = "datatrail-remote"

    def __init__(self, remote: Remote, *, use_store_checksum: bool = False) -> None:
        self.remote = remote
        self.use_store_checksum = use_store_checksum

    def reuse(self, cached: Cached) -> tuple[str, str] | None:
        """A digest once read from the bytes serves a checksum request too, not the other way round."""
        if self.use_store_checksum or cached.source == CONTENT:
            return cached.sha256, cached.source
        return None

    def read(self, entry: Entry[ObjectKey], progress: ProgressFn | None) -> Read[Cached]:
        """The store's checksum when asked for and there is one, else the bytes streamed through SHA-256."""
        if self.use_store_checksum:
            found = store_checksum(self.remote, entry)
            if found is not None:
                return found, entry.size, 0, STORE_CHECKSUM, Cached(found, STORE_CHECKSUM)
        hexd, read = read_digest(self.remote, entry, progress)
        # Only vouch for an object read to the size its listing gave.
        return hexd, read, read, CONTENT, Cached(hexd, CONTENT) if read == entry.size else None


def hash_remote(
    remote: Remote,
    *,
    cache: DigestCache[ObjectKey, Cached] | None = None,
    progress: ProgressFn | None = None,
    jobs: int | None = None,
    use_store_checksum: bool = False,
) -> RemoteHash:
    """Hash the object or prefix ``remote`` names, reading only what the cache does not know.

    ``cache`` is usually the ``remote_stat`` table (:class:`datatrail.remote.cache.SqliteRemoteCache`).
    """
    jobs = DEFAULT_JOBS if jobs is None else jobs
    if jobs < 1:
        msg = f"invalid --jobs {jobs}: give the number of parallel connections, at least 1"
        raise InvalidInput(msg)
    objects, is_dir = list_objects(remote)
    reader = ObjectReader(remote, use_store_checksum=use_store_checksum)
    result = build(objects, reader, is_dir=is_dir, cache=cache, progress=progress, workers=jobs)
    if is_dir:
        return RemoteHash(result)
    key = objects[0].key
    return RemoteHash(result, key.etag or None, key.version_id or None)


__all__ = [
    "CHUNK",
    "CONTENT",
    "DEFAULT_JOBS",
    "STORE_CHECKSUM",
    "ObjectReader",
    "RemoteHash",
    "hash_remote",
    "list_objects",
]
