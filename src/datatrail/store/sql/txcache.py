"""What a write transaction has already looked up, so ingest asks the database once.

Ingest resolves the same namespace, dataset and job ids for nearly every
event, and reads the head of the audit chain for every entry it appends; on
PostgreSQL each of those is a round trip. Two kinds of memory remove them:

* ids of namespaces, datasets and jobs: a row's id never changes and these
  rows are never deleted, so one process may remember them across
  transactions (:class:`Known`). What a transaction adds is only remembered
  once it commits, and forgotten when a savepoint rolls back. A SQLite restore
  replaces the whole file: it writes a new epoch into the file header
  (``PRAGMA user_version``), and a changed epoch empties the memory.
* facts true only while the transaction holds the write lock: the audit head,
  and whether anything is classified. These die with the transaction.

Writes nothing reads back until the transaction ends (audit entries, run
inputs and outputs, run state updates) can be deferred (:meth:`Tx.defer`):
they wait in the transaction and go to the database in one pipelined
``executemany`` before the commit, or before any statement that may read
their table (every SQLAlchemy execution, and each prepared statement by the
tables it names). A batch of events then costs a few round trips, not a few
per event.

A cached ``created_at`` may be later than the database's (another process
moved it back): the conditional update that keeps the earliest time is then
issued and changes nothing, so the cache never skips a needed write.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

from sqlalchemy import Connection

# The open write transaction of each connection (not Connection.info: that outlives the
# Connection with its pooled DBAPI connection, and cannot be read once it is invalidated).
_OPEN: weakref.WeakKeyDictionary[Connection, Tx] = weakref.WeakKeyDictionary()
DURABLE = frozenset({"ns", "ds", "job"})  # key kinds remembered after commit
_MISSING = object()
_DEFERRED = ("deferred",)
_TABLES = ("deferred tables",)


class Known:
    """Ids of committed rows, shared by the write transactions of one store.

    Bounded: past ``limit`` entries the oldest quarter is forgotten (a server
    that sees millions of datasets keeps the recent ones, and asks again for
    the others).
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.rows: dict[tuple[Any, ...], Any] = {}
        self.epoch: int | None = None
        self.limit = limit

    def learn(self, rows: dict[tuple[Any, ...], Any]) -> None:
        for key, value in rows.items():
            self.rows.pop(key, None)  # re-inserted: the most recently used stay longest
            self.rows[key] = value
        if len(self.rows) > self.limit:
            for key in list(itertools.islice(self.rows, len(self.rows) - self.limit * 3 // 4)):
                del self.rows[key]

    def check_epoch(self, epoch: int) -> None:
        """Forget everything if the database was replaced since the last look."""
        if epoch != self.epoch:
            self.rows.clear()
            self.epoch = epoch


class Tx:
    """One write transaction's view: its own additions over the committed ids."""

    def __init__(self, known: Known | None = None) -> None:
        self._store_known = known
        self.known = known.rows if known is not None else {}
        self._immediate = known is None  # outside SqlStore._write nothing would flush: write at once
        self.pending: dict[tuple[Any, ...], Any] = {}
        self._journal: list[tuple[tuple[Any, ...], Any]] = []

    def get(self, key: tuple[Any, ...]) -> Any:
        value = self.pending.get(key, _MISSING)
        return self.known.get(key) if value is _MISSING else value

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        self._journal.append((key, self.pending.get(key, _MISSING)))
        self.pending[key] = value

    def take_id(self, table: str) -> int | None:
        """The next id reserved for ``table`` in this transaction, if any are left."""
        ids = self.get(("ids", table))
        if not ids:
            return None
        self.put(("ids", table), ids[1:])
        return int(ids[0])

    def mark(self) -> int:
        """A point to come back to when a savepoint rolls back."""
        return len(self._journal)

    def undo(self, mark: int) -> None:
        while len(self._journal) > mark:
            key, old = self._journal.pop()
            if old is _MISSING:
                self.pending.pop(key, None)
            else:
                self.pending[key] = old

    def defer(self, conn: Connection, statement: Any, table: str, row: dict[str, Any]) -> None:
        """Execute ``statement`` (a prepared one returning nothing) with ``row`` later, in order."""
        if self._immediate:
            statement.run_many(conn, [row])
            return
        # A linked list (previous, item): appending and undoing are O(1), whatever the batch size.
        self.put(_DEFERRED, (self.get(_DEFERRED), (statement, table, row)))
        tables = self.get(_TABLES) or frozenset()
        if table not in tables:
            self.put(_TABLES, tables | {table})

    def flush(self, conn: Connection, reads: frozenset[str] | None = None) -> None:
        """Send the deferred writes now (all of them, if any touches a table in ``reads``)."""
        node = self.get(_DEFERRED)
        if node is None or (reads is not None and not (reads & (self.get(_TABLES) or frozenset()))):
            return
        # Emptied first: a rolled-back savepoint restores the list, and the rows
        # flushed inside it are rolled back with it.
        self.put(_DEFERRED, None)
        self.put(_TABLES, frozenset())
        waiting = []
        while node is not None:
            node, item = node
            waiting.append(item)
        waiting.reverse()
        # One executemany per statement, rows in the order they came. Of the deferred
        # rows only audit entries refer to others (their event): events go first.
        groups: dict[Any, list[dict[str, Any]]] = {}
        first: dict[Any, bool] = {}
        for statement, table, row in waiting:
            groups.setdefault(statement, []).append(row)
            first[statement] = table == "events"
        from datatrail.store.sql.prepared import pipelined  # prepared.py imports this module

        with pipelined(conn):  # one round trip for them all on PostgreSQL
            for statement in sorted(groups, key=lambda st: not first[st]):
                statement.run_many(conn, groups[statement])

    def committed(self) -> None:
        """The transaction committed: its ids become known to later ones."""
        learned = {k: v for k, v in self.pending.items() if k[0] in DURABLE}
        if self._store_known is not None:
            self._store_known.learn(learned)


def begin(conn: Connection, known: Known) -> Tx:
    """Start remembering for the write transaction just begun on ``conn``."""
    tx = _OPEN[conn] = Tx(known)
    return tx


def end(conn: Connection) -> None:
    _OPEN.pop(conn, None)


def flush_deferred(conn: Connection, reads: frozenset[str] | None = None) -> None:
    """Before a statement that reads ``reads`` (None: anything), send the transaction's deferred writes."""
    found = _OPEN.get(conn)
    if found is not None:
        found.flush(conn, reads)


def tx_of(conn: Connection) -> Tx:
    """The write transaction's memory, or a fresh one that remembers nothing and defers nothing."""
    found = _OPEN.get(conn)
    return found if found is not None else Tx()
