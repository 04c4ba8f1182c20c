"""Pack files: many small objects in one file, with an index, so they travel in a few requests.

A pack is the objects' bytes one after another. Its index (``.idx``) is::

    b"DTPACK1\\n"                                  8 bytes
    per object, sorted by digest:
        SHA-256 of the object                    32 bytes
        offset in the pack                        8 bytes, big-endian
        length                                    8 bytes, big-endian
    SHA-256 of everything above                  32 bytes

A pack is named by the SHA-256 of its index (``<hex>.pack`` beside
``<hex>.idx``): the index lists each object's SHA-256, offset and length, so
it names the pack's bytes as surely as hashing them would (a push hashes each
object instead, and refuses one whose bytes no longer match its name).
Uploading the same objects twice writes the same names, and a pack without
its index (an upload cut short) is ignored until collected. (Packs written
before were named by the SHA-256 of their bytes; nothing reads a pack's name
as a digest, so both kinds are read alike.)

>>> data, index = build_pack([(b"a" * 3, "9834…")])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from datatrail.core.errors import IntegrityError

MAGIC = b"DTPACK1\n"
_ENTRY = struct.Struct(">32sQQ")
PACK_TARGET = 4 * 1024 * 1024
"""A pack is closed once it holds this many bytes: 100,000 files of 4 KiB make about 100 packs."""
PACK_BELOW = 1024 * 1024
"""Objects smaller than this travel in packs; bigger ones alone (multipart uploads, ranged downloads)."""


class PackEntry(NamedTuple):
    """Where one object lies in a pack (a tuple: an index of 100,000 entries is read in milliseconds)."""

    digest: str  # hex SHA-256
    offset: int
    length: int


@dataclass(frozen=True)
class Pack:
    """A pack ready to upload: its name, bytes and index."""

    name: str  # hex SHA-256 of data
    data: bytes
    index: bytes
    entries: tuple[PackEntry, ...]


def group(items: Iterable[tuple[str, int]], target: int = PACK_TARGET) -> Iterator[list[str]]:
    """The digests of ``items`` (digest, size), in groups of about ``target`` bytes each."""
    batch: list[str] = []
    size = 0
    for hexd, n in items:
        batch.append(hexd)
        size += n
        if size >= target:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def build_pack(objects: Sequence[tuple[str, bytes]]) -> Pack:
    """One pack of ``objects`` (hex digest, bytes), which the caller verified against their digests."""
    parts: list[bytes] = []
    entries: list[PackEntry] = []
    offset = 0
    for hexd, data in sorted(objects, key=_first):
        parts.append(data)
        entries.append(PackEntry(hexd, offset, len(data)))
        offset += len(data)
    index = encode_index(entries)
    return Pack(hashlib.sha256(index).hexdigest(), b"".join(parts), index, tuple(entries))


def _first(item: tuple[str, bytes]) -> str:
    return item[0]


def encode_index(entries: Sequence[PackEntry]) -> bytes:
    body = MAGIC + b"".join(_ENTRY.pack(bytes.fromhex(e.digest), e.offset, e.length) for e in entries)
    return body + hashlib.sha256(body).digest()


def parse_index(data: bytes, name: str = "") -> list[PackEntry]:
    """The entries of an index; IntegrityError when it is torn or corrupt."""
    body, check = data[:-32], data[-32:]
    if not data.startswith(MAGIC) or hashlib.sha256(body).digest() != check or (len(body) - 8) % _ENTRY.size:
        msg = f"the pack index {name or '?'} is corrupt; run `datatrail gc --remote` or push again"
        raise IntegrityError(msg)
    return [PackEntry(raw.hex(), offset, length) for raw, offset, length in _ENTRY.iter_unpack(body[len(MAGIC) :])]


__all__ = ["PACK_BELOW", "PACK_TARGET", "Pack", "PackEntry", "build_pack", "encode_index", "group", "parse_index"]
