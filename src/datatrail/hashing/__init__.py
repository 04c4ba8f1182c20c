"""Streaming SHA-256 of files and directories, parallel over files, with a stat cache.

A file's digest is the SHA-256 of its bytes. A directory's digest is the
SHA-256 of its manifest: one ``relative/path<TAB>size<TAB>sha256hex<LF>`` line
per file, sorted by path, so one changed file changes the directory digest and
the manifest says which.

One engine hashes for every backend (:mod:`datatrail.hashing.build`); local
files are one backend (:mod:`datatrail.hashing.local`), fsspec URLs another
(:mod:`datatrail.remote.hashing`). This package imports nothing heavy:
``datatrail add`` imports it at start-up.

>>> r = hash_path(__file__)
>>> r.digest.algorithm
'sha256'
"""

from __future__ import annotations

from datatrail.core.filedigest import CHUNK, StatKey, hash_stream, stat_key
from datatrail.hashing.build import CONTENT, DigestCache, HashResult, ProgressFn, manifest_digest
from datatrail.hashing.local import (
    RACY_SECONDS,
    KnownTree,
    LayeredCache,
    Listing,
    StatCache,
    TreeCache,
    hash_path,
    is_racy,
    known_tree,
)

__all__ = [
    "CHUNK",
    "CONTENT",
    "RACY_SECONDS",
    "DigestCache",
    "HashResult",
    "KnownTree",
    "LayeredCache",
    "Listing",
    "ProgressFn",
    "StatCache",
    "StatKey",
    "TreeCache",
    "hash_path",
    "hash_stream",
    "is_racy",
    "known_tree",
    "manifest_digest",
    "stat_key",
]
