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
cache's *stamp*: read in the answer's transaction before its rows. A cache never holds rows read
under a stamp older than its own label (rows are only stored while the label is the stamp they were
read after).

When the stamp has moved on by a few events (at most :data:`MAX_GAP`), only what they touched is
forgotten (:meth:`NodeCache.advance`): the store reads, for the events after the label, the runs
they name and those runs' inputs and outputs (run_io), the versions whose check marks they added,
and every version of a dataset among those whose kind is not ``dataset`` (an event may have made it
a model). What changes a walk's shape is a new run_io row, and each is a row of a run an event
named: a walk is forgotten when such a row is one it would follow from one of its nodes (upstream: a
run's inputs, a version's producers; downstream: a run's outputs, a version's readers; both: either)
and is not already one of its edges. A walk that only holds a touched node keeps its shape and has
that node's data read again at its next answer (the same bytes: the kept answer stays).

An event that names no run (a DatasetEvent: ``datatrail add``, a tag, a check; a JobEvent) adds no
run_io row, so no walk changes shape; it can only change the data of versions of the datasets it
names: it fills a version's missing fields or moves its creation back, makes a dataset a model (every
version's kind), adds check marks. The store reads such events' stored payloads back, parses them as
ingest did (:func:`named_datasets`) and counts every version of every dataset stored under a name
they give (their own names, their symlinks' names, and the datasets those names link to) as touched.
A payload that does not parse, a new epoch, a much newer stamp or one whose event is not the one the
cache saw (a database restored under it): everything is forgotten; under an older stamp (an older
snapshot) nothing is read from the cache.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

from datatrail.core.errors import DatatrailError
from datatrail.core.limits import megabytes_setting
from datatrail.core.results import Direction, LineageJson

CACHE_ENV = "DATATRAIL_LINEAGE_CACHE_MB"
DEFAULT_CACHE_MB = 128.0
"""In a process that opens a store itself (a script, a notebook, the CLI): a depth-50 walk of 75,000 nodes
keeps about 60 MB of columns and 35 MB of JSON, and a kept walk is what makes a repeated call fast. A
``datatrail serve`` worker defaults to 32 instead (server/memory.py, ``LINEAGE_CACHE_MB``), within its
per-worker memory bound; the cache only grows as big walks are asked for."""
# What one kept node costs beyond its bytes and strings: the ordered dict's slot and link, the
# tuple, the int key and the objects' headers (measured with tracemalloc: about 250 bytes).
_ENTRY_BYTES = 250
MAX_GAP = 1000
"""More events than this since the cache's stamp: everything is forgotten, not what they touched."""

Stamp = tuple[int, int]
"""(the largest event id, the SQLite file's epoch; 0 in PostgreSQL)."""

Node = tuple[str, str, bytes]
"""A node's (id, namespace, data as JSON)."""


class KeptGraph(Protocol):
    """A kept walk's graph as :meth:`KeptWalk.moved` reads it: its edges as pairs of rows."""

    @property
    def origins(self) -> Sequence[int]: ...

    @property
    def destinations(self) -> Sequence[int]: ...


def cache_bytes() -> int:
    """The bytes the cache may hold: ``$DATATRAIL_LINEAGE_CACHE_MB`` (default 128; 32 in a server worker), per
    store and process."""
    return megabytes_setting(CACHE_ENV, DEFAULT_CACHE_MB, "0 keeps nothing")


def node_bytes(node: Node) -> int:
    """An estimate of what keeping ``node`` costs, in bytes."""
    return _ENTRY_BYTES + len(node[0]) + len(node[1]) + len(node[2])


def version_key(version_id: int) -> int:
    return version_id << 1


def run_key(run_pk: int) -> int:
    return (run_pk << 1) | 1


def named_datasets(payloads: Iterable[str]) -> set[tuple[str, str]] | None:
    """Every (namespace, name) under which events that name no run (their stored payloads) may have
    changed a dataset's versions: each dataset entry's own name and the names its symlinks facet gives
    (ingest stores it under one of them, or under the dataset a link from its name points to: the
    caller looks those links up). None: a payload that does not parse as ingest parsed it, or names a
    run (anything may have changed).

    >>> from datatrail.events import build_alias_event
    >>> named_datasets([json.dumps(build_alias_event("ns", "d", "k1", "gold"))])
    {('ns', 'd')}
    >>> named_datasets(["{}"]) is None
    True
    """
    # Here, not at the top: the CLI's plain `lineage` imports this module, and the event parser brings
    # hashing and its thread pool with it (start-up; tests/test_cli_startup.py).
    from datatrail.events import parse_event

    names: set[tuple[str, str]] = set()
    for payload in payloads:
        try:
            changes = parse_event(json.loads(payload), "")
        except (ValueError, TypeError, DatatrailError):  # not JSON, or not an event ingest would take now
            return None
        if changes.run is not None:
            return None
        for ds in changes.datasets:
            names.add((ds.namespace, ds.name))
            names.update(ds.names)
            if ds.canonical is not None:
                names.add(ds.canonical)
    return names


class Touched(NamedTuple):
    """What some events touched: the runs they name, those runs' run_io rows as (run, version) pairs,
    and every version whose data they may have changed (those, and versions with new check marks)."""

    runs: frozenset[int]
    inputs: frozenset[tuple[int, int]]
    outputs: frozenset[tuple[int, int]]
    changed: frozenset[int]


@dataclass(frozen=True)
class KeptWalk:
    """A walk's result as the cache keeps it: the graph (each node's JSON, :class:`LineageJson`, for the
    server's answers; or its data as the in-process columns, ``columncache.KeptColumns``), its
    versions' ids and its runs' keys (``vids``, ``pks``: ascending), where their rows are (``places``:
    row of the i-th of ``vids`` then of ``pks``; None: in that order, the versions first), and the keys
    whose data must be read again (``stale``)."""

    graph: LineageJson | KeptGraph
    direction: Direction
    vids: Sequence[int]
    pks: Sequence[int]
    places: Sequence[int] | None = None
    stale: frozenset[int] = frozenset()

    def _position(self, key: int) -> tuple[Sequence[int], int, int]:
        ids = self.pks if key & 1 else self.vids
        return ids, key >> 1, bisect_left(ids, key >> 1)

    def holds(self, key: int) -> bool:
        ids, wanted, i = self._position(key)
        return i < len(ids) and ids[i] == wanted

    def row(self, key: int) -> int:
        """The row of a node the walk holds."""
        _, _, i = self._position(key)
        if key & 1:
            i += len(self.vids)
        return i if self.places is None else self.places[i]

    def moved(self, touched: Touched) -> bool:
        """Whether the events may have changed the walk's shape: a run_io row of a touched run that the
        walk would follow from one of its nodes (upstream: a run's inputs, a version's producers;
        downstream: a run's outputs, a version's readers) and that is not one of its edges."""
        up, down = self.direction != "downstream", self.direction != "upstream"
        pairs: set[tuple[int, int]] | None = None
        for rows, is_input in ((touched.inputs, True), (touched.outputs, False)):
            for run, version in rows:
                has_run, has_version = self.holds(run_key(run)), self.holds(version_key(version))
                followed = (has_run if is_input else has_version) if up else False
                followed = followed or (down and (has_version if is_input else has_run))
                if not followed:
                    continue
                if not (has_run and has_version):
                    return True
                if pairs is None:
                    pairs = set(zip(self.graph.origins, self.graph.destinations, strict=True))
                v, r = self.row(version_key(version)), self.row(run_key(run))
                if ((v, r) if is_input else (r, v)) not in pairs:
                    return True
        return False

    def touching(self, touched: Touched) -> frozenset[int]:
        """The node keys of the walk whose data the events may have changed."""
        keys = [*map(run_key, touched.runs), *map(version_key, touched.changed)]
        return frozenset(k for k in keys if self.holds(k))


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
        self.mark: str | None = None
        self._nodes: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._walks: set[Hashable] = set()  # the keys of the values that are KeptWalks
        self._lock = threading.Lock()
        self.hits = self.misses = self.advances = 0

    def __len__(self) -> int:
        return len(self._nodes)

    def _sync(self, stamp: Stamp) -> bool:
        """Whether what is kept may be read under ``stamp``: a stamp of an older snapshot reads
        nothing and changes nothing; any other new stamp (:meth:`advance` was not asked or lost a
        race) forgets everything first."""
        label = self.stamp
        if stamp == label:
            return True
        if label is not None and stamp[1] == label[1] and stamp[0] < label[0]:
            return False
        self._forget_all(stamp)
        return True

    def _forget_all(self, stamp: Stamp | None) -> None:
        self._nodes.clear()
        self._walks.clear()
        self.size = 0
        self.stamp = stamp
        self.mark = None  # the hash of the stamp's event, once advance has read it

    def advance(
        self, stamp: Stamp, since: Callable[[int, int], Touched | None], mark: Callable[[int], str | None]
    ) -> None:
        """Move the cache on to ``stamp``, forgetting only what the events since its own stamp touched:
        ``since(after, upto)`` tells (None: anything may have changed). ``mark(id)`` is the event's
        hash: the cache's own stamp's event must still be there, the same, or the database is another
        one (a PostgreSQL database restored under the server: everything is forgotten). Asked in the
        answer's transaction right after the stamp was read."""
        if self.limit <= 0:
            return
        for _ in range(3):  # another answer may move the cache meanwhile: then from where it left it
            with self._lock:
                label, label_mark = self.stamp, self.mark
            if label == stamp or (label is not None and label[1] == stamp[1] and stamp[0] < label[0]):
                return  # nothing new, or an older snapshot (take reads nothing under it)
            touched: Touched | None = None
            if (
                label is not None
                and label[1] == stamp[1]
                and stamp[0] - label[0] <= MAX_GAP
                and label_mark is not None
                and mark(label[0]) == label_mark
            ):
                touched = since(label[0], stamp[0])
            new_mark = mark(stamp[0])
            with self._lock:
                if self.stamp != label:
                    continue
                if touched is None:
                    self._forget_all(stamp)
                else:
                    self._forget(touched)
                    self.stamp = stamp
                self.mark = new_mark
                self.advances += 1
                return

    def _forget(self, touched: Touched) -> None:
        nodes = self._nodes
        for node in [*map(run_key, touched.runs), *map(version_key, touched.changed)]:
            old = nodes.pop(node, None)
            if old is not None:
                self.size -= old[1]
        for key in list(self._walks):
            walk, cost = nodes[key]
            if walk.moved(touched):
                del nodes[key]
                self._walks.discard(key)
                self.size -= cost
            else:
                stale = walk.touching(touched)
                if stale:
                    nodes[key] = (replace(walk, stale=walk.stale | stale), cost)

    def take(self, stamp: Stamp, keys: Sequence[Hashable]) -> list[Any]:
        """The kept value of each of ``keys`` (None: not kept), read under ``stamp`` (see :meth:`_sync`)."""
        if self.limit <= 0:
            return [None] * len(keys)
        with self._lock:
            if not self._sync(stamp):
                return [None] * len(keys)
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
                if isinstance(value, KeptWalk):
                    self._walks.add(key)
            while self.size > self.limit and nodes:
                key, (_, cost) = nodes.popitem(last=False)
                self._walks.discard(key)
                self.size -= cost

    def clear(self) -> None:
        with self._lock:
            self._forget_all(None)


__all__ = [
    "CACHE_ENV",
    "MAX_GAP",
    "KeptWalk",
    "NodeCache",
    "Touched",
    "cache_bytes",
    "named_datasets",
    "node_bytes",
    "run_key",
    "version_key",
]
