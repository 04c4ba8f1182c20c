"""Lineage traversal inside the database, level by level, never revisiting a node.

Each level is one read-only query: the frontier (the versions first reached at
the level before) goes to the database as one array parameter (``json_each`` in
SQLite, ``unnest`` in PostgreSQL) and comes back joined with ``run_io`` two
hops out: upstream, the runs that produced each frontier version and their
inputs; downstream, the runs that read it and their outputs. The visited set
stays on the Python side and holds only the nodes reached, so the work is
proportional to the nodes reached, not to the paths leading to them (a
recursive CTE keyed on (node, depth) revisits a node once per depth it is
reached at), and nothing is written, not even a temporary table.

The rows come back through the DB-API cursor as plain tuples: on a wide graph
a depth-50 query reaches some 75,000 nodes, and building Python objects for
them, not the SQL, is most of the time.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import orjson

from datatrail.core.errors import DatatrailError, GraphTooLarge
from datatrail.core.gcpause import paused_gc
from datatrail.core.limits import graph_limit
from datatrail.core.results import Direction, LineageColumns, LineageJson, LineageResult
from datatrail.store.sql.columncache import (
    KeptColumns,
    NodeRows,
    columns_bytes,
    run_nodes,
    stored_by,
    version_nodes,
)
from datatrail.store.sql.nodecache import (
    KeptWalk,
    Node,
    NodeCache,
    Stamp,
    Touched,
    named_datasets,
    run_key,
    version_key,
)

if TYPE_CHECKING:
    import sqlite3

    from sqlalchemy import Connection

_INPUT, _OUTPUT = 0, 1
# One statement carries at most this many ids.
_BATCH = 50_000

# A list of ids as a table ``f`` with one column ``value``.
_IDS = {
    "sqlite": "json_each(?) f",
    "postgresql": "unnest(%s::bigint[]) AS f(value)",
}
# The nodes' rows in the order of their ids (the ids asked for are sorted): SQLite's join, driven by
# json_each, gives them so; PostgreSQL may not (a hash join, a row moved by an update), so it sorts.
_ORDERED = {"sqlite": "", "postgresql": " ORDER BY 1"}

# Frontier versions, the runs one step away (producers upstream, readers
# downstream), and those runs' versions on the far side (inputs upstream,
# outputs downstream). LEFT JOIN: a run with nothing on the far side counts too.
_STEP = (
    "SELECT near.version_id, near.run_pk, far.version_id FROM {ids}"
    " JOIN run_io near ON near.version_id = f.value AND near.direction = {near}"
    " LEFT JOIN run_io far ON far.run_pk = near.run_pk AND far.direction = {far}"
)
# The same step for a walk that keeps no edges: the runs and their far side only.
_STEP_NODES = (
    "SELECT near.run_pk, far.version_id FROM {ids}"
    " JOIN run_io near ON near.version_id = f.value AND near.direction = {near}"
    " LEFT JOIN run_io far ON far.run_pk = near.run_pk AND far.direction = {far}"
)
# The same step as of a past time: with the run's start and the far version's creation time,
# so that runs and versions that did not exist yet are left out (see ``_walk``).
_STEP_AT = (
    "SELECT near.version_id, near.run_pk, far.version_id, r.started_at, fv.created_at FROM {ids}"
    " JOIN run_io near ON near.version_id = f.value AND near.direction = {near}"
    " JOIN runs r ON r.pk = near.run_pk"
    " LEFT JOIN run_io far ON far.run_pk = near.run_pk AND far.direction = {far}"
    " LEFT JOIN versions fv ON fv.id = far.version_id"
)
_NEAR = (
    "SELECT near.version_id, near.run_pk FROM {ids}"
    " JOIN run_io near ON near.version_id = f.value AND near.direction = {near}"
)
_RUN_EDGES = "SELECT io.run_pk, io.direction, io.version_id FROM {ids} JOIN run_io io ON io.run_pk = f.value"
# Every run_io row between a reached run and a reached version, as a pair of rows in the direction data
# flows (input version -> run -> output version): the edges of a walk (see ``_walk``). SQLite: the
# reached ids with their rows in two temporary tables (no write to the store's own file; dropped right
# after), the pairs as two JSON arrays, which orjson reads into lists of ints in one call each.
# PostgreSQL: the two id arrays with their ordinality, joined in one statement.
_ROW_TABLES = ("temp.datatrail_lineage_versions", "temp.datatrail_lineage_runs")
_PAIR = (
    "CASE WHEN io.direction = 0 THEN v.row ELSE r.row END AS o,"
    " CASE WHEN io.direction = 0 THEN r.row ELSE v.row END AS d"
)
_EDGES = {
    "sqlite": (
        f"SELECT json_group_array(o), json_group_array(d) FROM (SELECT {_PAIR} FROM {_ROW_TABLES[1]} r"
        f" CROSS JOIN run_io io ON io.run_pk = r.id CROSS JOIN {_ROW_TABLES[0]} v ON v.id = io.version_id)"
    ),
    "postgresql": (
        f"SELECT array_agg(o), array_agg(d) FROM (SELECT {_PAIR}"
        " FROM (SELECT id, row - 1 + %s AS row FROM unnest(%s::bigint[]) WITH ORDINALITY AS f(id, row)) r"
        " JOIN run_io io ON io.run_pk = r.id"
        " JOIN (SELECT id, row - 1 AS row FROM unnest(%s::bigint[]) WITH ORDINALITY AS f(id, row)) v"
        " ON v.id = io.version_id) e"
    ),
}
# SQLite keeps SQLAlchemy's UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]": reshaped to ISO 8601 in the
# query, as _iso would (NULL for anything else, which _iso then reads from the raw column).
# PostgreSQL gives datetimes: NULL here, _iso formats them.
_ISO = {
    "sqlite": (
        "CASE WHEN typeof({c}) = 'text' AND length({c}) >= 19 AND instr({c}, ' ') = 11"
        " AND instr(substr({c}, 20), '+') = 0 THEN substr({c}, 1, 10) || 'T' || substr({c}, 12) || '+00:00' END"
    ),
    "postgresql": "CAST(NULL AS text)",
}
# The stored times as they are: _iso reshapes SQLite's text in Python (the query's CASE, _ISO, costs
# more than _iso on the same values, and fetching both the reshaped and the raw text more again).
_VERSIONS = (
    "SELECT v.id, v.number, v.digest, v.size, v.created_at, v.created_by, d.name, d.kind, n.name"
    " FROM {ids} JOIN versions v ON v.id = f.value JOIN datasets d ON d.id = v.dataset_id"
    " JOIN namespaces n ON n.id = d.namespace_id{ordered}"
)
# The latest check evaluation of each version (failed results, all results), and whether a
# drift report on it raised an alert: the marks lineage pictures draw on a version.
_CHECKS = (
    "SELECT c.version_id, sum(CASE WHEN c.success THEN 0 ELSE 1 END), count(*) FROM {ids}"
    " JOIN check_results c ON c.version_id = f.value"
    " WHERE c.event_id = (SELECT max(c2.event_id) FROM check_results c2 WHERE c2.version_id = c.version_id)"
    " GROUP BY c.version_id"
)
_DRIFT = (
    "SELECT d.current_version_id, count(*) FROM {ids} JOIN drift_reports d ON d.current_version_id = f.value"
    " WHERE d.drifted GROUP BY d.current_version_id"
)
_RUNS = (
    "SELECT r.pk, r.run_id, r.state, r.started_at, r.ended_at, j.name, n.name"
    " FROM {ids} JOIN runs r ON r.pk = f.value JOIN jobs j ON j.id = r.job_id"
    " JOIN namespaces n ON n.id = j.namespace_id{ordered}"
)

# What events after one stamp up to another touched (nodecache.py): the runs they name (an event
# naming no run: NULL), those runs' run_io rows with their datasets' kinds, and new check marks.
_EVENT_RUNS = (
    "SELECT e.run_id, r.pk FROM events e LEFT JOIN runs r ON r.run_id = e.run_id WHERE e.id > {p} AND e.id <= {p}"
)
_RUN_IO = (
    "SELECT io.run_pk, io.direction, io.version_id, d.id, d.kind FROM {ids} JOIN run_io io ON io.run_pk = f.value"
    " JOIN versions v ON v.id = io.version_id JOIN datasets d ON d.id = v.dataset_id"
)
_DATASET_VERSIONS = "SELECT v.id FROM {ids} JOIN versions v ON v.dataset_id = f.value"
# Events that name no run: their payloads (nodecache.named_datasets), then the datasets under those names
# or linked from them (a list of (namespace, name) pairs: a JSON array of pairs in SQLite, two arrays in
# PostgreSQL).
_LOOSE = "SELECT payload FROM events WHERE id > {p} AND id <= {p} AND run_id IS NULL"
_NAMED = {
    "sqlite": (
        "SELECT d.id FROM json_each(?) f JOIN namespaces n ON n.name = json_extract(f.value, '$[0]')"
        " JOIN datasets d ON d.namespace_id = n.id AND d.name = json_extract(f.value, '$[1]')"
        " UNION SELECT l.dataset_id FROM json_each(?) f"
        " JOIN dataset_links l ON l.namespace = json_extract(f.value, '$[0]')"
        " AND l.name = json_extract(f.value, '$[1]')"
    ),
    "postgresql": (
        "SELECT d.id FROM unnest(%s::text[], %s::text[]) AS f(ns, name) JOIN namespaces n ON n.name = f.ns"
        " JOIN datasets d ON d.namespace_id = n.id AND d.name = f.name"
        " UNION SELECT l.dataset_id FROM unnest(%s::text[], %s::text[]) AS f(ns, name)"
        " JOIN dataset_links l ON l.namespace = f.ns AND l.name = f.name"
    ),
}
_CHECKED = "SELECT DISTINCT version_id FROM check_results WHERE event_id > {p} AND event_id <= {p}"
# More versions touched than this: everything is forgotten (a walk's cost to check grows with them).
_MAX_TOUCHED = 100_000

# SQLite writes each node's JSON itself (json_object: the bytes orjson writes from the same row, key for
# key, when no string needs an escape): a row whose JSON holds a backslash is written again in Python,
# and so is one whose number is not an integer, or whose time _ISO does not reshape (written as
# "\u0001", so that its JSON holds a backslash). A version's check and drift marks are added after.
_TIME = "coalesce({iso}, CASE WHEN {c} IS NOT NULL THEN char(1) END)"
_VERSIONS_JSON = (
    "SELECT v.id, n.name, CAST(json_object('namespace', n.name, 'name', d.name, 'version', v.number,"
    " 'kind', d.kind, 'digest', v.digest, 'size', v.size,"
    " 'created_at', " + _TIME.format(iso="{iso_created}", c="v.created_at") + ","
    " 'created_by', v.created_by) AS BLOB),"
    " typeof(v.number) = 'integer' AND typeof(v.size) IN ('integer', 'null'), d.name, v.number"
    " FROM {ids} JOIN versions v ON v.id = f.value JOIN datasets d ON d.id = v.dataset_id"
    " JOIN namespaces n ON n.id = d.namespace_id"
)
_RUNS_JSON = (
    "SELECT r.pk, n.name, CAST(json_object('id', r.run_id, 'namespace', n.name, 'job', j.name, 'state', r.state,"
    " 'started_at', " + _TIME.format(iso="{iso_started}", c="r.started_at") + ","
    " 'ended_at', " + _TIME.format(iso="{iso_ended}", c="r.ended_at") + ") AS BLOB), r.run_id"
    " FROM {ids} JOIN runs r ON r.pk = f.value JOIN jobs j ON j.id = r.job_id"
    " JOIN namespaces n ON n.id = j.namespace_id"
)

Edge = tuple[int, int, int]
"""A run_io row: (run pk, direction, version id)."""


class _TooMany(Exception):  # a walk's signal to _found, never raised beyond this module
    """A walk passed its room of nodes; ``fits``: the largest depth whose nodes stayed within it."""

    def __init__(self, fits: int) -> None:
        super().__init__(fits)
        self.fits = fits


class _Found(NamedTuple):
    versions: dict[int, int]  # version id -> depth
    runs: dict[int, int]  # run pk -> depth
    edges: set[Edge] | None  # None: not kept by the walk (``_Reader.edges`` reads them after it)


def _id_list(dialect: str, ids: Sequence[int]) -> str:
    """Ids as one parameter, joined as text: a JSON array for SQLite (json.dumps takes three times as long
    on 75,000 ids), an array literal for PostgreSQL (cast by the statement's ``::bigint[]``; psycopg's
    dump of a list of ints took five times the CPU, a fifth of a folded graph's Python time)."""
    joined = ",".join(map(str, ids))
    return f"[{joined}]" if dialect == "sqlite" else f"{{{joined}}}"


class _Reader:
    """Runs a statement over a list of ids, in the dialect's parameter style."""

    def __init__(self, dialect: str, cursor: Any) -> None:
        self.dialect = dialect
        if self.dialect not in _IDS:
            msg = f"lineage queries are not written for the {self.dialect} dialect; use SQLite or PostgreSQL"
            raise DatatrailError(msg)
        self.cursor = cursor

    @classmethod
    def of(cls, conn: Connection) -> _Reader:
        """A reader on a SQLAlchemy connection's DB-API cursor."""
        if conn.dialect.name in _IDS:
            # Once through SQLAlchemy, so that the connection is inside its
            # transaction (one snapshot for every level), then the DB-API cursor.
            conn.exec_driver_sql("SELECT 1").all()
        return cls(conn.dialect.name, conn.connection.cursor() if conn.dialect.name in _IDS else None)

    def rows(self, template: str, ids: Sequence[int]) -> list[Any]:
        iso = _ISO[self.dialect]
        sql = template.format(
            ids=_IDS[self.dialect],
            ordered=_ORDERED[self.dialect],
            iso_created=iso.format(c="v.created_at"),
            iso_started=iso.format(c="r.started_at"),
            iso_ended=iso.format(c="r.ended_at"),
        )
        out: list[Any] = []
        for i in range(0, len(ids), _BATCH):
            chunk = ids[i : i + _BATCH]
            self.cursor.execute(sql, (_id_list(self.dialect, chunk),))
            out.extend(self.cursor.fetchall())
        return out

    def stamp(self) -> Stamp:
        """The node cache's stamp (nodecache.py): the largest event id, and the SQLite file's epoch."""
        self.cursor.execute("SELECT max(id) FROM events")
        row = self.cursor.fetchone()
        epoch = 0
        if self.dialect == "sqlite":
            self.cursor.execute("PRAGMA user_version")
            epoch = int(self.cursor.fetchone()[0] or 0)
        return int(row[0] or 0) if row is not None else 0, epoch

    def mark(self, event_id: int) -> str | None:
        """The hash of the event ``event_id`` (None: there is none)."""
        self.cursor.execute(
            f"SELECT event_hash FROM events WHERE id = {'?' if self.dialect == 'sqlite' else '%s'}", (event_id,)
        )
        row = self.cursor.fetchone()
        return str(row[0]) if row is not None else None

    def touched(self, after: int, upto: int) -> Touched | None:
        """What the events with ids in (``after``, ``upto``] touched (nodecache.py); None: anything may
        have changed (a run not found, an event naming no run whose payload does not parse)."""
        p = "?" if self.dialect == "sqlite" else "%s"
        self.cursor.execute(_EVENT_RUNS.format(p=p), (after, upto))
        runs: set[int] = set()
        loose = False  # an event that names no run: a dataset or job event, a tag, a check
        for run_id, pk in self.cursor.fetchall():
            if run_id is None:
                loose = True
            elif pk is None:
                return None
            else:
                runs.add(int(pk))
        inputs: set[tuple[int, int]] = set()
        outputs: set[tuple[int, int]] = set()
        changed: set[int] = set()
        kinds: set[int] = set()
        for pk, direction, vid, dataset, kind in self.rows(_RUN_IO, sorted(runs)) if runs else ():
            (outputs if direction == _OUTPUT else inputs).add((pk, vid))
            changed.add(vid)
            if kind != "dataset":  # the event may have made it a model: every version's kind changed
                kinds.add(dataset)
        if loose:
            named = self._named(after, upto)
            if named is None:
                return None
            kinds.update(named)  # every version of each: its kind may have changed, or any one of them
        if kinds:
            changed.update(vid for (vid,) in self.rows(_DATASET_VERSIONS, sorted(kinds)))
        self.cursor.execute(_CHECKED.format(p=p), (after, upto))
        changed.update(vid for (vid,) in self.cursor.fetchall())
        if len(changed) > _MAX_TOUCHED:
            return None
        return Touched(frozenset(runs), frozenset(inputs), frozenset(outputs), frozenset(changed))

    def _named(self, after: int, upto: int) -> set[int] | None:
        """The datasets events with ids in (``after``, ``upto``] that name no run may have changed
        (nodecache.named_datasets); None: one of them does not parse."""
        p = "?" if self.dialect == "sqlite" else "%s"
        self.cursor.execute(_LOOSE.format(p=p), (after, upto))
        names = named_datasets(payload for (payload,) in self.cursor.fetchall())
        if not names:
            return None if names is None else set()
        pairs = sorted(names)
        if self.dialect == "sqlite":
            listed = orjson.dumps(pairs).decode()
            params: tuple[Any, ...] = (listed, listed)
        else:
            spaces, names_ = [ns for ns, _ in pairs], [name for _, name in pairs]
            params = (spaces, names_, spaces, names_)
        self.cursor.execute(_NAMED[self.dialect], params)
        return {int(dataset) for (dataset,) in self.cursor.fetchall()}

    def edges(self, vids: list[int], pks: list[int]) -> tuple[list[int], list[int]]:
        """Every run_io row between the runs ``pks`` and the versions ``vids`` (a version's row is its
        place in ``vids``, a run's ``len(vids)`` plus its place in ``pks``), as (origins, destinations):
        the walk's edges, read in one statement rather than kept edge by edge."""
        if not vids or not pks:
            return [], []
        if self.dialect != "sqlite":
            self.cursor.execute(
                _EDGES[self.dialect], (len(vids), _id_list(self.dialect, pks), _id_list(self.dialect, vids))
            )
            origins, destinations = self.cursor.fetchone()
            return list(origins or ()), list(destinations or ())
        for table in _ROW_TABLES:
            self.cursor.execute(f"DROP TABLE IF EXISTS {table}")
            self.cursor.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, row INTEGER NOT NULL)")
        try:
            fill = "INSERT INTO {} SELECT value, key + ? FROM json_each(?)"
            self.cursor.execute(fill.format(_ROW_TABLES[0]), (0, f"[{','.join(map(str, vids))}]"))
            self.cursor.execute(fill.format(_ROW_TABLES[1]), (len(vids), f"[{','.join(map(str, pks))}]"))
            self.cursor.execute(_EDGES["sqlite"])
            origins, destinations = self.cursor.fetchone()
        finally:
            for table in _ROW_TABLES:
                self.cursor.execute(f"DROP TABLE IF EXISTS {table}")
        return orjson.loads(origins), orjson.loads(destinations)

    def any(self, table: str) -> bool:
        """Whether a table has a row (so a graph of a store without checks pays nothing for them)."""
        self.cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")  # a table name of ours, never user input
        return self.cursor.fetchone() is not None

    def close(self) -> None:
        self.cursor.close()


def traverse(
    conn: Connection,
    start_ids: Sequence[int],
    direction: Direction,
    depth: int,
    as_of: datetime | None = None,
    cache: NodeCache | None = None,
) -> LineageResult:
    """Versions and runs within ``depth`` steps of ``start_ids``, with every edge between them.

    With ``as_of``, the graph as it was then: runs started later and versions
    created later are left out, and a run that ended later shows as RUNNING.
    """
    return traverse_columns(conn, start_ids, direction, depth, as_of, cache).result()


def traverse_columns(
    conn: Connection,
    start_ids: Sequence[int],
    direction: Direction,
    depth: int,
    as_of: datetime | None = None,
    cache: NodeCache | None = None,
) -> LineageColumns:
    """:func:`traverse`'s graph as columns (no object per node or edge but its data); the walk kept in
    ``cache`` between calls (columncache.py), unless it is None or ``as_of`` is given."""
    return _traverse(_Reader.of(conn), start_ids, direction, depth, as_of, cache)


def traverse_sqlite(
    db: sqlite3.Connection,
    start_ids: Sequence[int],
    direction: Direction,
    depth: int,
    as_of: datetime | None = None,
    cache: NodeCache | None = None,
) -> LineageColumns:
    """:func:`traverse_columns` on a standard-library SQLite connection (the embedded store's fast path),
    inside the caller's transaction (one snapshot for every level)."""
    return _traverse(_Reader("sqlite", db.cursor()), start_ids, direction, depth, as_of, cache)


def traverse_json(
    conn: Connection,
    start_ids: Sequence[int],
    direction: Direction,
    depth: int,
    as_of: datetime | None,
    cache: NodeCache,
) -> LineageJson:
    """:func:`traverse_columns` with each node's data as JSON, the nodes ``cache`` keeps taken from it."""
    reader = _Reader.of(conn)
    try:
        # The stamp first: what is read after it is at least as new (nodecache.py).
        stamp = reader.stamp()
        cache.advance(stamp, reader.touched, reader.mark)
        walk = ("walk", tuple(start_ids), direction, depth) if as_of is None else None
        if walk is not None:
            [kept] = cache.take(stamp, [walk])
            if kept is not None:
                _check_kept(kept, depth)
                if kept.stale:
                    with paused_gc():
                        kept = _refresh(reader, kept, cache, stamp)
                    cache.store(stamp, {walk: kept}, size=_walk_bytes)
                graph = kept.graph
                assert isinstance(graph, LineageJson)
                return graph
        with paused_gc():
            found, vids, pks = _load_json(
                reader, _found(reader, start_ids, direction, depth, as_of), as_of, cache, stamp
            )
        if walk is not None:
            cache.store(stamp, {walk: KeptWalk(found, direction, vids, pks)}, size=_walk_bytes)
        return found
    finally:
        reader.close()


def traverse_connected(
    conn: Connection, start_ids: Sequence[int], depth: int, as_of: datetime | None = None
) -> LineageResult:
    """Marquez's connected graph from ``start_ids`` (:func:`_connected`), loaded once."""
    return _connected_result(_Reader.of(conn), start_ids, depth, as_of)


def traverse_connected_sqlite(
    db: sqlite3.Connection, start_ids: Sequence[int], depth: int, as_of: datetime | None = None
) -> LineageResult:
    """:func:`traverse_connected` on a standard-library SQLite connection, inside the caller's transaction."""
    return _connected_result(_Reader("sqlite", db.cursor()), start_ids, depth, as_of)


def _connected_result(reader: _Reader, start_ids: Sequence[int], depth: int, as_of: datetime | None) -> LineageResult:
    try:
        with paused_gc():
            return _load(reader, _connected(reader, start_ids, depth, as_of), as_of).columns.result()
    finally:
        reader.close()


def _connected(reader: _Reader, start_ids: Sequence[int], depth: int, as_of: datetime | None) -> _Found:
    """Up to ``depth`` steps (at least one), each a walk of depth 1 both ways from the versions the step
    before reached first; a node at the step that first reached it, the edges of every step's walk.

    Only ids cross between steps, and nothing is loaded until the last: the limit is checked on the
    whole graph after each step, so a refusal costs the steps' id queries, no node's data."""
    limit = graph_limit()
    versions: dict[int, int] = dict.fromkeys(start_ids, 0)
    runs: dict[int, int] = {}
    edges: set[Edge] = set()
    frontier = list(versions)
    for step in range(max(depth, 1)):
        if not frontier:
            break
        try:
            found = _found(reader, frontier, "both", 1 if depth else 0, as_of)
        except GraphTooLarge as exc:  # the graph of ``step`` steps fitted (checked below)
            raise GraphTooLarge.at(limit, depth, step or exc.fits) from None
        reached = [vid for vid in found.versions if vid not in versions]
        for vid in reached:
            versions[vid] = step + 1
        for pk in found.runs:
            runs.setdefault(pk, step + 1)
        if len(versions) + len(runs) > limit:
            raise GraphTooLarge.at(limit, depth, step)
        edges.update(found.edges or ())  # kept by the step's walk: those between its own nodes
        frontier = reached
    return _Found(versions, runs, edges)


def _check_kept(kept: KeptWalk, depth: int) -> None:
    """GraphTooLarge for a kept walk of more nodes than ``graph_limit()`` (lowered since it was kept)."""
    limit = graph_limit()
    if len(kept.vids) + len(kept.pks) > limit:
        raise GraphTooLarge.at(limit, depth, None)


def _refresh(reader: _Reader, kept: KeptWalk, cache: NodeCache, stamp: Stamp) -> KeptWalk:
    """A kept walk with its stale nodes' data read again: the same walk (and its joined answer) when
    their bytes did not change, else a new graph with the new bytes."""
    stale = sorted(kept.stale)
    nodes = _nodes(reader, [k >> 1 for k in stale if k & 1 == 0], [k >> 1 for k in stale if k & 1], None, cache, stamp)
    graph = kept.graph
    assert isinstance(graph, LineageJson)
    data = graph.data
    for key in stale:
        node, row = nodes.get(key), kept.row(key)
        if node is None or node[0] != graph.ids[row]:  # never: a node's id does not change
            msg = f"the lineage cache lost track of {graph.ids[row]}; ask again"
            raise DatatrailError(msg)
        if node[2] != data[row]:
            if data is graph.data:
                data = list(data)
            data[row] = node[2]
    if data is not graph.data:
        old = graph
        graph = LineageJson(graph.ids, graph.types, graph.namespaces, data, graph.origins, graph.destinations)
        if old.derived:  # what was made from the old bytes may be patched rather than made anew
            changed = [(row, old.data[row]) for row in range(len(data)) if data[row] is not old.data[row]]
            graph.before.append((dict(old.derived), changed))
    return KeptWalk(graph, kept.direction, kept.vids, kept.pks)


def _walk_bytes(kept: KeptWalk) -> int:
    """What keeping a walk's result costs: its lists, its nodes' strings (counted again, though the
    nodes' own entries share them: an upper bound), its rows' keys, and room for the answer joined
    from it (``LineageJson.derived``): each node's id and data with some 70 bytes of keys, and each
    edge's two ids twice."""
    found = kept.graph
    assert isinstance(found, LineageJson)
    rows, edges = len(found.ids), len(found.origins)
    ids, data = sum(map(len, found.ids)), sum(map(len, found.data))
    strings = ids + data + 90 * rows
    answer = ids + data + 70 * rows + edges * (4 * ids // max(rows, 1) + 60)
    return 600 + 40 * rows + 16 * edges + 28 * 2 * edges + strings + answer


KEEP_FROM_NODES = 500
"""The smallest walk whose columns the cache keeps. A small walk costs a few milliseconds to make again, while
every kept walk costs each later call after new events a check of what they touched (``NodeCache.advance``):
a server's readers asking for thousands of small graphs (one per new dataset) made that check most of each
call, ever longer as the cache filled (the soak of round seven)."""


def _traverse(
    reader: _Reader,
    start_ids: Sequence[int],
    direction: Direction,
    depth: int,
    as_of: datetime | None,
    cache: NodeCache | None = None,
) -> LineageColumns:
    try:
        if cache is None or cache.limit <= 0 or as_of is not None:
            with paused_gc():
                return _load(reader, _found(reader, start_ids, direction, depth, as_of, edges=False), as_of).columns
        # The stamp first: what is read after it is at least as new (nodecache.py).
        stamp = reader.stamp()
        cache.advance(stamp, reader.touched, reader.mark)
        walk = ("columns", tuple(start_ids), direction, depth)
        [kept] = cache.take(stamp, [walk])
        with paused_gc():
            if kept is not None:
                _check_kept(kept, depth)
                fresh = _refresh_columns(reader, kept)
                if fresh is not None:
                    if fresh is not kept:
                        cache.store(stamp, {walk: fresh}, size=_columns_walk_bytes)
                    graph = fresh.graph
                    assert isinstance(graph, KeptColumns)
                    return graph.hand_out()
            loaded = _load(reader, _found(reader, start_ids, direction, depth, None, edges=False))
            if len(loaded.vids) + len(loaded.pks) >= KEEP_FROM_NODES:
                cache.store(stamp, {walk: _kept_columns(loaded, direction)}, size=_columns_walk_bytes)
            return loaded.columns
    finally:
        reader.close()


def _kept_columns(loaded: _Loaded, direction: Direction) -> KeptWalk:
    """What the cache keeps of a walk's columns: copies of the lists, the rows its data was made from."""
    vids, pks = loaded.vids, loaded.pks  # lists of the call's own, never handed out: kept as they are
    ordered_vids, ordered_pks = sorted(vids), sorted(pks)
    if ordered_vids == vids and ordered_pks == pks:  # as SQLite gives them: in the order asked
        return KeptWalk(KeptColumns.of(loaded.columns, loaded.rows), direction, vids, pks)
    at = {vid: row for row, vid in enumerate(vids)}  # another order (PostgreSQL may give one)
    places = [at[vid] for vid in ordered_vids]
    at = {pk: row for row, pk in enumerate(pks, len(vids))}
    places += [at[pk] for pk in ordered_pks]
    return KeptWalk(KeptColumns.of(loaded.columns, loaded.rows), direction, ordered_vids, ordered_pks, places)


def _refresh_columns(reader: _Reader, kept: KeptWalk) -> KeptWalk | None:
    """A kept walk of columns with its data as dicts and its stale nodes' data read again (``kept``
    itself when neither was needed); None when a stale node is gone (the walk is made anew)."""
    graph = kept.graph
    assert isinstance(graph, KeptColumns)
    if not kept.stale:
        if graph.data is not None:
            return kept
        # Made once: the dicts, and the ids as arrays (the rows' int objects go with the rows).
        places = None if kept.places is None else array("q", kept.places)
        return KeptWalk(graph.made(), kept.direction, array("q", kept.vids), array("q", kept.pks), places)
    stale = sorted(kept.stale)
    rows = _node_rows(reader, [k >> 1 for k in stale if k & 1 == 0], [k >> 1 for k in stale if k & 1])
    ids, data, _ = version_nodes(rows.versions, rows.checks, rows.drift)
    run_ids, run_data = run_nodes(rows.runs, None)
    keys = [version_key(row[0]) for row in rows.versions] + [run_key(row[0]) for row in rows.runs]
    if len(keys) < len(stale):
        return None
    nodes = zip(ids + run_ids, data + run_data, strict=True)
    fresh = {kept.row(key): node for key, node in zip(keys, nodes, strict=True)}
    return KeptWalk(graph.patched(fresh), kept.direction, kept.vids, kept.pks, kept.places)


def _columns_walk_bytes(kept: KeptWalk) -> int:
    graph = kept.graph
    assert isinstance(graph, KeptColumns)
    return columns_bytes(graph, len(kept.vids) + len(kept.pks) + (len(kept.places) if kept.places else 0))


def _found(
    reader: _Reader,
    start_ids: Sequence[int],
    direction: Direction,
    depth: int,
    as_of: datetime | None,
    *,
    edges: bool = True,
) -> _Found:
    """The walk's nodes, and its edges unless ``edges`` is false (then ``_Reader.edges`` reads them);
    GraphTooLarge as soon as a level takes it past ``graph_limit()`` nodes, before any node is loaded.

    Both ways, the walk down may reach what the walk up left of the limit (and the start again, which
    the graph holds once: a DAG's ancestors and descendants share nothing else), so a graph that
    passes the limit stops in its second walk, and one within it is never refused."""
    limit = graph_limit()
    try:
        if direction != "both":
            return _walk(reader, start_ids, direction == "upstream", depth, as_of, edges=edges, room=limit)
        up = _walk(reader, start_ids, True, depth, as_of, edges=edges, room=limit)
        room = limit - len(up.versions) - len(up.runs) + len(set(start_ids))
        down = _walk(reader, start_ids, False, depth, as_of, edges=edges, room=room)
    except _TooMany as exc:
        raise GraphTooLarge.at(limit, depth, exc.fits) from None
    versions = _shallowest(up.versions, down.versions)
    runs = _shallowest(up.runs, down.runs)
    if not edges:
        return _Found(versions, runs, None)
    # A run reached one way and a version reached the other may be linked too.
    found = {e for e in reader.rows(_RUN_EDGES, sorted(runs)) if e[2] in versions}
    return _Found(versions, runs, found)


def _shallowest(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    out = dict(a)
    for node, dep in b.items():
        if dep < out.get(node, dep + 1):
            out[node] = dep
    return out


def _walk(
    reader: _Reader,
    start_ids: Sequence[int],
    up: bool,
    depth: int,
    as_of: datetime | None = None,
    *,
    edges: bool = True,
    room: int,
) -> _Found:
    """The nodes within ``depth`` steps (a run sits at the level of the step it starts) and their edges;
    _TooMany once they are more than ``room``.

    Each level keeps the edges from its frontier versions to their runs and
    from those runs to their far side, all of whose ends are reached by then.
    That finds every edge between two reached nodes but those from the last
    level's versions to runs reached some other way; one more query adds them.
    So the edges are exactly the run_io rows between a reached run and a
    reached version: with ``edges`` false they are not kept here (a set of
    some 150,000 tuples at depth 50, and the walk's slowest part), and
    ``_Reader.edges`` reads them after the walk in one statement.
    """
    if not edges:
        return _nodes_within(reader, start_ids, up, depth, as_of, room)
    near, far = (_OUTPUT, _INPUT) if up else (_INPUT, _OUTPUT)
    step = (_STEP if as_of is None else _STEP_AT).format(ids="{ids}", near=near, far=far)
    versions: dict[int, int] = dict.fromkeys(start_ids, 0)
    runs: dict[int, int] = {}
    kept: set[Edge] = set()
    frontier = list(versions)
    for level in range(1, depth + 1):
        if len(versions) + len(runs) > room:
            raise _TooMany(level - 2)
        if not frontier:
            break
        reached: list[int] = []
        rows = reader.rows(step, frontier)
        if as_of is not None:
            rows = [
                (version, run, other if other is not None and stored_by(created, as_of) else None)
                for version, run, other, started, created in rows
                if stored_by(started, as_of)
            ]
        for version, run, other in rows:
            kept.add((run, near, version))
            if run not in runs:
                runs[run] = level
            if other is not None:
                kept.add((run, far, other))
                if other not in versions:
                    versions[other] = level
                    reached.append(other)
        frontier = reached
    if len(versions) + len(runs) > room:
        raise _TooMany(depth - 1)
    if frontier and runs:
        kept.update(
            (run, near, version)
            for version, run in reader.rows(_NEAR.format(ids="{ids}", near=near), frontier)
            if run in runs
        )
    return _Found(versions, runs, kept)


def _nodes_within(
    reader: _Reader, start_ids: Sequence[int], up: bool, depth: int, as_of: datetime | None, room: int
) -> _Found:
    """:func:`_walk`'s nodes without its edges (the same levels, the same depth rule, the same room)."""
    near, far = (_OUTPUT, _INPUT) if up else (_INPUT, _OUTPUT)
    step = (_STEP_NODES if as_of is None else _STEP_AT).format(ids="{ids}", near=near, far=far)
    versions: dict[int, int] = dict.fromkeys(start_ids, 0)
    runs: dict[int, int] = {}
    frontier = list(versions)
    for level in range(1, depth + 1):
        if len(versions) + len(runs) > room:
            raise _TooMany(level - 2)
        if not frontier:
            break
        reached: list[int] = []
        rows = reader.rows(step, frontier)
        if as_of is not None:
            rows = [
                (run, other if other is not None and stored_by(created, as_of) else None)
                for _, run, other, started, created in rows
                if stored_by(started, as_of)
            ]
        for run, other in rows:
            if run not in runs:
                runs[run] = level
            if other is not None and other not in versions:
                versions[other] = level
                reached.append(other)
        frontier = reached
    if len(versions) + len(runs) > room:
        raise _TooMany(depth - 1)
    return _Found(versions, runs, None)


def _node_rows(reader: _Reader, vids: Sequence[int], pks: Sequence[int]) -> NodeRows:
    """The rows the data of versions ``vids`` and runs ``pks`` (each sorted) is made from (columncache.py)."""
    versions = reader.rows(_VERSIONS, vids) if vids else []
    checks = reader.rows(_CHECKS, vids) if versions and reader.any("check_results") else []
    drift = reader.rows(_DRIFT, vids) if versions and reader.any("drift_reports") else []
    return NodeRows(versions, checks, drift, reader.rows(_RUNS, pks) if pks else [])


def _version_rows(reader: _Reader, vids: Sequence[int]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(version id, node id, data) of each of ``vids`` (sorted), rows straight from the cursor."""
    rows = _node_rows(reader, vids, ())
    ids, data, _ = version_nodes(rows.versions, rows.checks, rows.drift)
    return zip([row[0] for row in rows.versions], ids, data, strict=True)


def _run_rows(reader: _Reader, pks: Sequence[int], as_of: datetime | None) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(run pk, node id, data) of each of ``pks`` (sorted); with ``as_of``, as the run was then."""
    rows = reader.rows(_RUNS, pks)
    ids, data = run_nodes(rows, as_of)
    return zip([row[0] for row in rows], ids, data, strict=True)


def _edge_rows(edges: set[Edge], version_rows: dict[int, int], run_rows: dict[int, int]) -> tuple[list[int], list[int]]:
    """The edges as pairs of rows, following the data: input version -> run -> output version."""
    origins: list[int] = []
    destinations: list[int] = []
    for r, d, v in edges:
        if v in version_rows and r in run_rows:
            if d == _INPUT:
                origins.append(version_rows[v])
                destinations.append(run_rows[r])
            else:
                origins.append(run_rows[r])
                destinations.append(version_rows[v])
    return origins, destinations


class _Loaded(NamedTuple):
    columns: LineageColumns
    rows: NodeRows  # what its data was made from
    vids: list[int]  # the versions' ids in their rows' order, then the runs' pks
    pks: list[int]


def _load(reader: _Reader, found: _Found, as_of: datetime | None = None) -> _Loaded:
    """The nodes' data and the edges between them, as columns: rows straight from the cursor."""
    versions, runs, edges = found
    rows = _node_rows(reader, sorted(versions), sorted(runs))
    ids, data, _ = version_nodes(rows.versions, rows.checks, rows.drift)
    run_ids, run_data = run_nodes(rows.runs, as_of)
    vids = [row[0] for row in rows.versions]
    pks = [row[0] for row in rows.runs]
    types: list[Literal["version", "run"]] = ["version"] * len(vids)
    types += ["run"] * len(pks)
    depths = [versions[vid] for vid in vids]
    depths += [runs[pk] for pk in pks]
    ids += run_ids
    data += run_data
    if edges is None:  # not kept by the walk: read now, as row pairs
        origins, destinations = reader.edges(vids, pks)
    else:
        version_rows = {vid: row for row, vid in enumerate(vids)}
        run_rows = {pk: row for row, pk in enumerate(pks, len(vids))}
        origins, destinations = _edge_rows(edges, version_rows, run_rows)
    return _Loaded(LineageColumns(ids, types, depths, data, origins, destinations), rows, vids, pks)


def _nodes(
    reader: _Reader, vids: Sequence[int], pks: Sequence[int], as_of: datetime | None, cache: NodeCache, stamp: Stamp
) -> dict[int, Node]:
    """The nodes of versions ``vids`` and runs ``pks`` by key, those ``cache`` keeps taken from it and
    the others read and kept (but a run's data as of a past time, which depends on that time)."""
    keys = [version_key(v) for v in vids]
    if as_of is None:
        keys += [run_key(pk) for pk in pks]
    found = dict(zip(keys, cache.take(stamp, keys), strict=True))
    fresh: dict[int, Node] = {}
    missing = [vid for vid in vids if found[version_key(vid)] is None]
    if missing and reader.dialect == "sqlite":
        missing = _sqlite_versions(reader, missing, fresh)
    for vid, nid, d in _version_rows(reader, missing) if missing else ():
        fresh[version_key(vid)] = (nid, d["namespace"], _compact(orjson.dumps(d)))
    missing = list(pks) if as_of is not None else [pk for pk in pks if found[run_key(pk)] is None]
    if missing and reader.dialect == "sqlite" and as_of is None:
        missing = _sqlite_runs(reader, missing, fresh)
    for pk, nid, d in _run_rows(reader, missing, as_of) if missing else ():
        fresh[run_key(pk)] = (nid, d["namespace"], _compact(orjson.dumps(d)))
    cache.store(stamp, fresh if as_of is None else {k: n for k, n in fresh.items() if k & 1 == 0})
    found.update(fresh)
    return found


def _sqlite_versions(reader: _Reader, vids: list[int], fresh: dict[int, Node]) -> list[int]:
    """The nodes of ``vids`` as SQLite writes their JSON, into ``fresh``; the versions it may not write."""
    left: list[int] = []
    for vid, ns, data, plain, name, number in reader.rows(_VERSIONS_JSON, vids):
        if plain and b"\\" not in data:
            fresh[version_key(vid)] = (f"version:{ns}:{name}@{number}", ns, data)
        else:
            left.append(vid)
    marks: dict[int, bytes] = {}
    if len(left) < len(vids):
        written = [vid for vid in vids if version_key(vid) in fresh]
        if reader.any("check_results"):
            for vid, failed, total in reader.rows(_CHECKS, written):
                marks[vid] = b',"checks":{"failed":%d,"total":%d}' % (int(failed), int(total))
        if reader.any("drift_reports"):
            for vid, alerts in reader.rows(_DRIFT, written):
                marks[vid] = marks.get(vid, b"") + b',"drift":{"alert":true,"reports":%d}' % int(alerts)
    for vid, mark in marks.items():
        nid, ns, data = fresh[version_key(vid)]
        fresh[version_key(vid)] = (nid, ns, data[:-1] + mark + b"}")
    return left


def _sqlite_runs(reader: _Reader, pks: list[int], fresh: dict[int, Node]) -> list[int]:
    """The nodes of ``pks`` as SQLite writes their JSON, into ``fresh``; the runs it may not write."""
    left: list[int] = []
    for pk, ns, data, run_id in reader.rows(_RUNS_JSON, pks):
        if b"\\" not in data:
            fresh[run_key(pk)] = (f"run:{run_id}", ns, data)
        else:
            left.append(pk)
    return left


def _load_json(
    reader: _Reader, found: _Found, as_of: datetime | None, cache: NodeCache, stamp: Stamp
) -> tuple[LineageJson, array[int], array[int]]:
    """:func:`_load` with each node's data as JSON, the nodes ``cache`` keeps taken from it; with the
    rows' version ids and run pks (each ascending: the versions' rows first, then the runs').

    The cache's ``stamp`` was read first, in the walk's transaction: rows read after it are at least
    as new as it, so they are kept under it (nodecache.py)."""
    versions, runs, edges = found
    assert edges is not None, "the kept walks' graph is made with the walk's own edges"
    vids = sorted(versions)
    pks = sorted(runs)
    by_key = _nodes(reader, vids, pks, as_of, cache, stamp)
    nodes = [by_key.get(key) for key in [version_key(v) for v in vids] + [run_key(pk) for pk in pks]]
    rows = [i for i, node in enumerate(nodes) if node is not None]  # every reached node, but checked
    if len(rows) < len(nodes):
        nodes = [nodes[i] for i in rows]
    present: list[Node] = nodes  # type: ignore[assignment]  # no None left
    split = len(vids)
    version_rows = {vids[i]: row for row, i in enumerate(rows) if i < split}
    run_rows = {pks[i - split]: row for row, i in enumerate(rows) if i >= split}
    types: list[Literal["version", "run"]] = ["version"] * len(version_rows)
    types += ["run"] * len(run_rows)
    graph = LineageJson(
        [n[0] for n in present],
        types,
        [n[1] for n in present],
        [n[2] for n in present],
        *_edge_rows(edges, version_rows, run_rows),
    )
    return graph, array("q", version_rows), array("q", run_rows)


def _compact(data: bytes) -> bytes:
    """A copy of exactly its length: orjson's bytes keep the 4 KB it wrote them into (tracemalloc:
    4,097 bytes for a 151-byte node), which would make the cache's bound by bytes a fiction."""
    return bytes(memoryview(data))
