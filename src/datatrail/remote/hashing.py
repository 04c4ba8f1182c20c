"""Streaming SHA-256 of remote objects and prefixes, with the same digest rules as local files.

One object's digest is the SHA-256 of its bytes; a prefix's is the digest of
its manifest (:func:`datatrail.hashing.manifest_digest`). Objects are streamed
in chunks (nothing is copied locally) by a bounded pool of threads, each one
connection. What the store says of an object (ETag, version id, size, last
modified) keys the remote cache, so an unchanged object is not read again;
with ``use_store_checksum`` an S3 full-object SHA-256 checksum is taken
instead of reading the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from datatrail.core.errors import InvalidInput
from datatrail.core.model import Digest, FileEntry
from datatrail.hashing import RACY_SECONDS, HashResult, ProgressFn, manifest_digest
from datatrail.remote.cache import Cached, ObjectKey, SqliteRemoteCache
from datatrail.remote.fs import Remote, translate

# Bigger than the local chunk: each read of an object store is a request.
CHUNK = 8 * 1024 * 1024
DEFAULT_JOBS = 8
CONTENT = "content"
STORE_CHECKSUM = "store-checksum"


@dataclass(frozen=True)
class Listed:
    """One object of a listing."""

    rel: str  # path relative to the prefix ('' for a single object)
    path: str  # the filesystem's path
    key: ObjectKey
    checksum: str | None = None  # hex SHA-256 the store already holds, when it said so in the listing


@dataclass(frozen=True)
class RemoteHash:
    """A remote object's or prefix's digest, and how it was obtained."""

    result: HashResult
    source: str  # "content", "store-checksum", or "content+store-checksum" for a prefix of both
    is_dir: bool
    etag: str | None = None
    version_id: str | None = None


# What filesystems call the time an object last changed (s3fs, adlfs, gcsfs, local, HTTP headers).
_MODIFIED = ("LastModified", "last_modified", "updated", "mtime", "Last-Modified")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat()
    return str(value)


def _recent(modified: Any) -> bool:
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


def list_objects(remote: Remote) -> tuple[list[Listed], bool]:
    """The objects at a URL (one, or every object under a prefix, sorted) and whether it is a prefix."""
    fs, path = remote.fs, remote.path
    with translate(remote.url, remote.secrets):
        if hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()  # listings are cached per filesystem instance; we want the store's now
        info = fs.info(path)
        if info.get("type") != "directory":
            return [Listed("", path, _key(remote, "", info))], False
        found = fs.find(path, detail=True)
    prefix = path.rstrip("/") + "/"
    out: list[Listed] = []
    for name, item in found.items():
        if item.get("type") == "directory" or name.endswith("/"):
            continue  # a folder, or the empty "folder/" marker object some tools create
        rel = name[len(prefix) :] if name.startswith(prefix) else name.rsplit("/", 1)[-1]
        if not rel or any(c in rel for c in "\t\n\r"):
            msg = f"cannot add {remote.child_url(rel)!r}: object names with tabs or line breaks are not supported"
            raise InvalidInput(msg)
        out.append(Listed(rel, name, _key(remote, rel, item)))
    if not out:
        msg = f"{remote.url!r} is an empty prefix; there is nothing to add"
        raise InvalidInput(msg)
    out.sort(key=lambda o: o.rel)
    return out, True


def store_checksum(remote: Remote, obj: Listed) -> str | None:
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


def read_digest(remote: Remote, obj: Listed, progress: ProgressFn | None) -> tuple[str, int]:
    """(hex SHA-256, bytes read) of one object, streamed in chunks."""
    h = hashlib.sha256()
    read = 0
    with translate(obj.key.url, remote.secrets):
        opts: dict[str, Any] = {"block_size": CHUNK}
        if remote.protocol not in ("file", "memory"):
            opts.update(cache_type="none", size=obj.key.size)  # no HEAD before the GETs, no read-ahead copy
        with remote.fs.open(obj.path, "rb", **opts) as f:
            while data := f.read(CHUNK):
                h.update(data)
                read += len(data)
                if progress is not None:
                    progress(0, len(data))
    return h.hexdigest(), read


def hash_remote(
    remote: Remote,
    *,
    cache: SqliteRemoteCache | None = None,
    progress: ProgressFn | None = None,
    jobs: int | None = None,
    use_store_checksum: bool = False,
) -> RemoteHash:
    """Hash the object or prefix ``remote`` names, reading only what the cache does not know."""
    jobs = DEFAULT_JOBS if jobs is None else jobs
    if jobs < 1:
        msg = f"invalid --jobs {jobs}: give the number of parallel connections, at least 1"
        raise InvalidInput(msg)
    objects, is_dir = list_objects(remote)
    known = cache.lookup([o.key for o in objects]) if cache is not None else {}
    results: list[tuple[str, str, int, int] | None] = [None] * len(objects)  # (hex, source, size, bytes read)
    todo: list[int] = []
    for i, obj in enumerate(objects):
        hit = known.get(obj.key)
        # A digest once read from the bytes serves a checksum request too, not the other way round.
        if hit is not None and (use_store_checksum or hit.source == CONTENT):
            results[i] = (hit.sha256, hit.source, obj.key.size, 0)
        else:
            todo.append(i)
    if progress is not None and len(todo) < len(objects):
        progress(len(objects) - len(todo), 0)

    def work(i: int) -> tuple[int, str, str, int]:
        obj = objects[i]
        if use_store_checksum:
            found = store_checksum(remote, obj)
            if found is not None:
                if progress is not None:
                    progress(1, 0)
                return i, found, STORE_CHECKSUM, 0
        hexd, read = read_digest(remote, obj, progress)
        if progress is not None:
            progress(1, 0)
        return i, hexd, CONTENT, read

    if len(todo) <= 1 or jobs == 1:
        finished = [work(i) for i in todo]
    else:
        pool = ThreadPoolExecutor(max_workers=min(jobs, len(todo)), thread_name_prefix="datatrail-remote")
        try:
            finished = list(pool.map(work, todo))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    fresh: list[tuple[ObjectKey, Cached]] = []
    for i, hexd, source, read in finished:
        obj = objects[i]
        results[i] = (hexd, source, read if source == CONTENT else obj.key.size, read)
        # Only vouch for an object read to the size its listing gave.
        if source == STORE_CHECKSUM or read == obj.key.size:
            fresh.append((obj.key, Cached(hexd, source)))
    if cache is not None and fresh:
        cache.store(fresh)
    done = [r for r in results if r is not None]
    sources = sorted({r[1] for r in done})
    source = "+".join(sources) if len(sources) > 1 else sources[0]
    read_total = sum(r[3] for r in done)
    if not is_dir:
        obj = objects[0]
        result = HashResult(Digest.sha256(done[0][0]), done[0][2], None, read_total)
        return RemoteHash(result, source, False, obj.key.etag or None, obj.key.version_id or None)
    entries = tuple(FileEntry(o.rel, r[2], Digest.sha256(r[0])) for o, r in zip(objects, done, strict=True))
    result = HashResult(manifest_digest(entries), sum(e.size for e in entries), entries, read_total)
    return RemoteHash(result, source, True)


__all__ = ["CHUNK", "DEFAULT_JOBS", "RemoteHash", "hash_remote", "list_objects"]
