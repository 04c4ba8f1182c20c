"""Lineage nodes' data as the in-process columns give it: made from the cursor's rows, and kept between calls.

``Trail.dataset_lineage_columns`` (and ``Trail.dataset_lineage``, the CLI's ``lineage``) answer with
every node's data as a dict: at depth 50 on the benchmark's 1,000,000-node graph some 75,000 dicts,
most of the call's time (issue 22, item 1). The SQL store keeps each walk's columns in its node cache
(``nodecache.py``: the same stamp, the same invalidation of what new events touched, the same bound by
bytes, ``DATATRAIL_LINEAGE_CACHE_MB``), keyed by where the walk started, its direction and depth, so
that a call asked again answers without the database but for the stamp.

What a caller gets must never let it change the cache: a warm call hands out copies (a shallow copy of
each dict, and of the check and drift marks inside it; the lists are new lists; strings and ints are
immutable), which costs about 0.3 µs a node (25 ms for 75,000 nodes here) against the 1 µs a node of
making each dict from its row. A read-only mapping would cost nothing per call, but it is another type
(``json.dumps``, ``copy.deepcopy``, pickling and every caller that adds a key to a node's data behave
differently) than what the same call answers cold, and "do not mutate" would be a rule nothing checks.

A cold call must not pay for the cache either: it keeps the rows its dicts were made from (tuples the
cursor made anyway; no copy) and copies of its five lists (a list copy is a pointer copy), not copies of
its dicts. The first call that finds the walk makes the kept dicts from those rows, with the same
functions (:func:`version_nodes`, :func:`run_nodes`), and hands out copies of them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from datatrail.core.results import LineageColumns
from datatrail.core.times import iso, stored_time

VersionRow = tuple[Any, ...]
"""(version id, number, digest, size, created_at, created_by, dataset name, kind, namespace)."""
RunRow = tuple[Any, ...]
"""(run pk, run id, state, started_at, ended_at, job name, namespace)."""

_MARKS = ("checks", "drift")  # the data's keys whose values are dicts (copied too)
_SHARED = frozenset(("namespace", "name", "kind", "created_by", "job", "state"))  # one string per value once made
_SAMPLE = 256  # nodes whose sizes are measured to estimate a kept walk's bytes


@dataclass(frozen=True)
class NodeRows:
    """The rows a walk's nodes' data is made from, as the cursor gave them: versions with their latest
    check evaluation ``(version id, failed, total)`` and drift alerts ``(version id, reports)``, and runs."""

    versions: list[VersionRow]
    checks: list[tuple[Any, ...]]
    drift: list[tuple[Any, ...]]
    runs: list[RunRow]


def stored_iso(value: Any) -> str | None:
    """ISO 8601 in UTC, whether the driver gave a datetime (psycopg) or SQLite's stored text."""
    if value is None:
        return None
    if type(value) is str and len(value) >= 19 and value[10] == " " and "+" not in value[19:]:
        # SQLAlchemy stores UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]": reshaped, not parsed (74,000 nodes add up).
        return value.replace(" ", "T", 1) + "+00:00"
    return iso(stored_time(value))


def stored_by(value: Any, as_of: datetime) -> bool:
    """Whether a stored time is at or before ``as_of`` (unknown times count as before)."""
    when = stored_time(value)
    return when is None or when <= as_of


def version_nodes(
    rows: Sequence[VersionRow],
    checks: Sequence[tuple[Any, ...]],
    drift: Sequence[tuple[Any, ...]],
    share: dict[Any, Any] | None = None,
) -> tuple[list[str], list[dict[str, Any]], list[int]]:
    """Each version's node id and data, in the rows' order, and the rows whose data holds marks. With
    ``share``, equal names, kinds and users are one string (what the cache keeps: fewer bytes)."""
    ids: list[str] = []
    data: list[dict[str, Any]] = []
    for _, number, digest, size, created_at, created_by, name, kind, ns in rows:
        if share is not None:
            ns, name, kind = share.setdefault(ns, ns), share.setdefault(name, name), share.setdefault(kind, kind)
            created_by = share.setdefault(created_by, created_by)
        ids.append(f"version:{ns}:{name}@{number}")
        data.append(
            {
                "namespace": ns,
                "name": name,
                "version": number,
                "kind": kind,
                "digest": digest,
                "size": size,
                "created_at": stored_iso(created_at),
                "created_by": created_by,
            }
        )
    marked: list[int] = []
    if checks or drift:
        at = {row[0]: i for i, row in enumerate(rows)}
        for vid, failed, total in checks:
            data[at[vid]]["checks"] = {"failed": int(failed), "total": int(total)}
            marked.append(at[vid])
        for vid, alerts in drift:
            data[at[vid]]["drift"] = {"alert": True, "reports": int(alerts)}
            marked.append(at[vid])
    return ids, data, marked


def run_nodes(
    rows: Sequence[RunRow], as_of: datetime | None, share: dict[Any, Any] | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """Each run's node id and data, in the rows' order; with ``as_of``, as the run was then; with
    ``share``, equal namespaces, jobs and states are one string."""
    ids: list[str] = []
    data: list[dict[str, Any]] = []
    for _, run_id, state, started, ended, job, ns in rows:
        if share is not None:
            ns, job, state = share.setdefault(ns, ns), share.setdefault(job, job), share.setdefault(state, state)
        if as_of is not None and ended is not None and not stored_by(ended, as_of):
            state, ended = "RUNNING", None  # it had not ended yet
        ids.append(f"run:{run_id}")
        data.append(
            {
                "id": run_id,
                "namespace": ns,
                "job": job,
                "state": state,
                "started_at": stored_iso(started),
                "ended_at": stored_iso(ended),
            }
        )
    return ids, data


@dataclass(frozen=True)
class KeptColumns:
    """A walk's columns as the node cache keeps them: never handed out, only copies (:meth:`hand_out`).
    Its data is the dicts (``data``), or until a call asks for the walk again the rows they are made
    from (``rows``, kept by the call that walked)."""

    ids: list[str]
    types: list[Literal["version", "run"]]
    depths: list[int]
    origins: list[int]
    destinations: list[int]
    data: list[dict[str, Any]] | None = None
    rows: NodeRows | None = None
    marked: tuple[int, ...] = ()  # the rows whose data holds check or drift marks (dicts in the dict)

    @classmethod
    def of(cls, columns: LineageColumns, rows: NodeRows) -> KeptColumns:
        """What to keep of a cold call's ``columns`` (made from ``rows``), which the caller keeps."""
        return cls(
            list(columns.ids),
            list(columns.types),
            list(columns.depths),
            list(columns.origins),
            list(columns.destinations),
            rows=rows,
        )

    def made(self) -> KeptColumns:
        """The same, with its data as dicts (made from its rows, as the call that walked made them)."""
        if self.data is not None or self.rows is None:
            return self
        rows = self.rows
        share: dict[Any, Any] = {}
        _, data, marked = version_nodes(rows.versions, rows.checks, rows.drift, share)
        data += run_nodes(rows.runs, None, share)[1]
        ints = list(range(len(self.ids)))  # the edges' rows as one int object each (not one per edge end)
        return replace(
            self,
            origins=[ints[row] for row in self.origins],
            destinations=[ints[row] for row in self.destinations],
            data=data,
            rows=None,
            marked=tuple(sorted(set(marked))),
        )

    def hand_out(self) -> LineageColumns:
        """Columns a caller may change as it likes: new lists, a copy of each dict (and of its marks)."""
        kept = self.data
        assert kept is not None, "made() first"
        data = list(map(dict.copy, kept))
        for row in self.marked:
            node = data[row]
            for key in _MARKS:
                if key in node:
                    node[key] = dict(node[key])
        return LineageColumns(
            list(self.ids), list(self.types), list(self.depths), data, list(self.origins), list(self.destinations)
        )

    def patched(self, rows: dict[int, tuple[str, dict[str, Any]]]) -> KeptColumns:
        """The same walk with the nodes at ``rows`` (row: (id, data)) made anew from the store."""
        base = self.made()
        assert base.data is not None
        ids, data = list(base.ids), list(base.data)
        marked = set(base.marked) - set(rows)
        for row, (nid, node) in rows.items():
            ids[row], data[row] = nid, node
            if any(key in node for key in _MARKS):
                marked.add(row)
        return replace(base, ids=ids, data=data, marked=tuple(sorted(marked)))


def columns_bytes(kept: KeptColumns, keys: int) -> int:
    """An estimate of what keeping ``kept`` costs: the lists' slots, the edges' ints, ``keys`` ints of
    the walk's ids, and each node's id and row (or dict) with its values, measured on :data:`_SAMPLE`
    nodes spread over the walk and scaled (a full count costs as much as the cold call's own copies;
    the nodes of one walk are alike). Strings the dicts share are counted once per distinct value in
    the sample, scaled too: an upper bound (tests/test_lineage_cache.py compares it with tracemalloc)."""
    n, edges = len(kept.ids), len(kept.origins)
    size = 600 + 8 * 5 * n + 40 * keys
    if not n:
        return size
    picks = range(0, n, max(1, n // _SAMPLE))
    measured = sum(sys.getsizeof(kept.ids[i]) for i in picks)
    if kept.data is not None:  # the dicts, sharing their names (made()); the edges' rows one int each
        size += 16 * edges + 32 * n
        shared: dict[int, int] = {}
        for i in picks:
            node = kept.data[i]
            measured += sys.getsizeof(node)
            for key, value in node.items():
                if key in _SHARED:
                    shared[id(value)] = sys.getsizeof(value)
                elif value is not None:
                    measured += sys.getsizeof(value) + (300 if key in _MARKS else 0)
        measured += sum(shared.values())
    else:  # the cursor's rows (a tuple and its values each), and an int per edge end
        assert kept.rows is not None
        rows = kept.rows
        size += 80 * edges + 120 * (len(rows.checks) + len(rows.drift))
        versions = len(rows.versions)
        for i in picks:
            row = rows.versions[i] if i < versions else rows.runs[i - versions]
            measured += sys.getsizeof(row) + sum(sys.getsizeof(value) for value in row if value is not None)
    return size + measured * n // len(picks)


__all__ = [
    "KeptColumns",
    "NodeRows",
    "columns_bytes",
    "run_nodes",
    "stored_by",
    "stored_iso",
    "version_nodes",
]
