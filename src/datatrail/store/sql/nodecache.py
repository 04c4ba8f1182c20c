"""The lineage nodes' JSON, kept between answers, bounded by bytes, and forgotten when the store changes.

A big lineage answer (``GET /api/v1/lineage`` with a ``#<version>`` nodeId: thousands of nodes)
spends most of its time fetching each node's row and writing it as JSON, not walking the graph;
neighbouring answers share most of their nodes. So each node's JSON (with its id and namespace,
which access control reads) is kept here, keyed by version id or run key, and so is each walk's
result (its rows, sharing those nodes' strings, and its edges) keyed by where it started, its
direction and depth; least recently used first out once ``DATATRAIL_LINEAGE_CACHE_MB`` is reached.

A node's data is not strictly immutable: a run's state and times move until it ends (and between
two endings), a version's creation time and missing fields are filled in by later events, its
check and drift marks and its dataset's kind change. Every such change is an ingested event, and
writers take turns (the writer lock file and ``BEGIN IMMEDIATE`` in SQLite, an advisory lock held
to the commit in PostgreSQL), so the events' largest id grows with every commit that can change a
node, and a restored SQLite file has a new epoch (``PRAGMA user_version``). That pair is the
cache's *stamp*: read in the answer's transaction before its rows, and when it differs from the
stamp the cache holds, everything is forgotten. A cache never holds rows read under a stamp older
than its own label (rows are only stored while the label is the stamp they were read after).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from datatrail.core.limits import megabytes_setting

CACHE_ENV = "DATATRAIL_LINEAGE_CACHE_MB"
DEFAULT_CACHE_MB = 32.0
# What one kept node costs beyond its bytes and strings: the ordered dict's slot and link, the
# tuple, the int key and the objects' headers (measured with tracemalloc: about 250 bytes).
_ENTRY_BYTES = 250

Stamp = tuple[int, int]
"""(the largest event id, the SQLite file's epoch; 0 in PostgreSQL)."""

Node = tuple[str, str, bytes]
"""A node's (id, namespace, data as JSON)."""


def cache_bytes() -> int:
    """The bytes the cache may hold: ``$DATATRAIL_LINEAGE_CACHE_MB`` (default 32), per store and process."""
    return megabytes_setting(CACHE_ENV, DEFAULT_CACHE_MB, "0 keeps nothing")


def node_bytes(node: Node) -> int:
    """An estimate of what keeping ``node`` costs, in bytes."""
    return _ENTRY_BYTES + len(node[0]) + len(node[1]) + len(node[2])


def version_key(version_id: int) -> int:
    return version_id << 1


def run_key(run_pk: int) -> int:
    return (run_pk << 1) | 1


class NodeCache:
    """Nodes by key (:func:`version_key`, :func:`run_key`), and other values (a walk's result) by other
    keys, each with its size; least recently used first out, under one stamp. What it hands out is
    shared between answers: read it, never change it.

    >>> cache = NodeCache(1 << 20)
    >>> cache.store((1, 0), {version_key(7): ("version:ns:a@1", "ns", b"{}")})
    >>> cache.take((1, 0), [version_key(7), version_key(8)])
    [('version:ns:a@1', 'ns', b'{}'), None]
    >>> cache.take((2, 0), [version_key(7)])  # the store changed: forgotten
    [None]
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.stamp: Stamp | None = None
        self._nodes: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._nodes)

    def _sync(self, stamp: Stamp) -> None:
        if stamp != self.stamp:
            self._nodes.clear()
            self.size = 0
            self.stamp = stamp

    def take(self, stamp: Stamp, keys: Sequence[Hashable]) -> list[Any]:
        """The kept value of each of ``keys`` (None: not kept), read under ``stamp`` (a new stamp
        forgets everything first)."""
        if self.limit <= 0:
            return [None] * len(keys)
        with self._lock:
            self._sync(stamp)
            get, touch = self._nodes.get, self._nodes.move_to_end
            found = [get(key) for key in keys]
            for key, entry in zip(keys, found, strict=True):
                if entry is not None:
                    touch(key)
                    self.hits += 1
        return [entry[0] if entry is not None else None for entry in found]

    def store(self, stamp: Stamp, fresh: dict[Any, Any], size: Callable[[Any], int] = node_bytes) -> None:
        """Keep ``fresh`` (each value ``size`` bytes), read under ``stamp``: only while that is still the
        cache's stamp. A value larger than the whole bound is not kept."""
        if self.limit <= 0 or not fresh:
            return
        with self._lock:
            self.misses += len(fresh)
            if stamp != self.stamp:
                return  # another answer saw another state of the store meanwhile
            nodes = self._nodes
            for key, value in fresh.items():
                cost = size(value)
                if cost > self.limit:
                    continue
                old = nodes.pop(key, None)
                if old is not None:
                    self.size -= old[1]
                nodes[key] = (value, cost)
                self.size += cost
            while self.size > self.limit and nodes:
                _, (_, cost) = nodes.popitem(last=False)
                self.size -= cost

    def clear(self) -> None:
        with self._lock:
            self._nodes.clear()
            self.size = 0
            self.stamp = None


__all__ = ["CACHE_ENV", "NodeCache", "cache_bytes", "node_bytes", "run_key", "version_key"]
