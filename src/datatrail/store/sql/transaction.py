"""A write transaction: its connection, what it has already looked up, and the writes it holds back.

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
their table. Every statement of the transaction runs through its :class:`Tx`,
which sends them first: before any SQLAlchemy statement
(:meth:`Tx.execute`), and before a prepared one that names a table among
theirs (:meth:`Tx.first`…). A batch of events then costs a few round trips,
not a few per event.

A cached ``created_at`` may be later than the database's (another process
moved it back): the conditional update that keeps the earliest time is then
issued and changes nothing, so the cache never skips a needed write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from sqlalchemy import Connection, CursorResult
from sqlalchemy.sql.base import Executable

from datatrail.core.limits import megabytes_setting
from datatrail.store.sql.prepared import Prepared, Sent, pipelined

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]
DURABLE = frozenset({"ns", "ds", "job"})  # key kinds remembered after commit
_MISSING = object()
_DEFERRED = ("deferred",)
_TABLES = ("deferred tables",)


class Executes(Protocol):
    """Where a SQLAlchemy statement runs: a read's ``Connection``, or a write's :class:`Tx`."""

    def execute(self, statement: Executable, parameters: Params | None = None, /) -> CursorResult[Any]: ...


ID_MEMORY_ENV = "DATATRAIL_ID_MEMORY_MB"
DEFAULT_ID_MEMORY_MB = 8.0
# What one remembered id costs: its key tuple, the dict's slot and the int (measured: ~180 bytes),
# plus the name string the key keeps alive (~50 bytes and its characters).
_ENTRY_BYTES = 230


def id_memory_bytes() -> int:
    """The bytes the id memory may hold: ``$DATATRAIL_ID_MEMORY_MB`` (default 8), per store and process."""
    return megabytes_setting(ID_MEMORY_ENV, DEFAULT_ID_MEMORY_MB, "0 remembers nothing")


def entry_bytes(key: tuple[Any, ...]) -> int:
    """An estimate of what remembering ``key`` costs, in bytes."""
    return _ENTRY_BYTES + sum(len(part) for part in key if isinstance(part, str))


class Known:
    """Ids of committed rows, shared by the write transactions of one store.

    Bounded by an estimate of its bytes (``max_bytes``, default :func:`id_memory_bytes`: 8 MB,
    some 30,000 datasets) and by ``limit`` entries: past either, the oldest quarter is
    forgotten (a server that sees millions of datasets keeps the recent ones, and asks
    the database again for the others).
    """

    def __init__(self, limit: int = 200_000, max_bytes: int | None = None) -> None:
        self.rows: dict[tuple[Any, ...], Any] = {}
        self.epoch: int | None = None
        self.limit = limit
        self.max_bytes = id_memory_bytes() if max_bytes is None else max_bytes
        self.bytes = 0

    def learn(self, rows: dict[tuple[Any, ...], Any]) -> None:
        for key, value in rows.items():
            if self.rows.pop(key, _MISSING) is _MISSING:  # re-inserted: the most recently used stay longest
                self.bytes += entry_bytes(key)
            self.rows[key] = value
        if len(self.rows) > self.limit or self.bytes > self.max_bytes:
            keep_rows, keep_bytes = self.limit * 3 // 4, self.max_bytes * 3 // 4
            oldest = iter(list(self.rows))
            while self.rows and (len(self.rows) > keep_rows or self.bytes > keep_bytes):
                key = next(oldest)
                del self.rows[key]
                self.bytes -= entry_bytes(key)

    def check_epoch(self, epoch: int) -> None:
        """Forget everything if the database was replaced since the last look."""
        if epoch != self.epoch:
            self.rows.clear()
            self.bytes = 0
            self.epoch = epoch


class Tx:
    """One write transaction: every statement runs through it, over its own additions to the committed ids.

    >>> with database.write() as tx:  # doctest: +SKIP
    ...     tx.execute(t.users.insert().values(name="ada", admin=False, created_at=now))
    """

    def __init__(self, conn: Connection, known: Known) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self._known = known
        self._committed = known.rows
        self._pending: dict[tuple[Any, ...], Any] = {}
        self._journal: list[tuple[tuple[Any, ...], Any]] = []

    # ------------------------------------------------------------ statements

    def execute(self, statement: Executable, parameters: Params | None = None, /) -> CursorResult[Any]:
        """Run a SQLAlchemy statement, after the deferred writes (it may read any table)."""
        self.flush()
        return self.conn.execute(statement, parameters)

    def first(self, statement: Prepared, **params: Any) -> Any:
        """The first row of a prepared statement (a named tuple), or None."""
        self.flush(statement.reads)
        return statement.first(self.conn, **params)

    def scalar(self, statement: Prepared, **params: Any) -> Any:
        """The first column of a prepared statement's first row, or None."""
        self.flush(statement.reads)
        return statement.scalar(self.conn, **params)

    def run(self, statement: Prepared, **params: Any) -> None:
        """Run a prepared statement that returns nothing."""
        self.flush(statement.reads)
        statement.run(self.conn, **params)

    def send(self, statement: Prepared, **params: Any) -> Sent:
        """Send a prepared statement now, read its rows later (see :meth:`pipelined`)."""
        self.flush(statement.reads)
        return statement.send(self.conn, **params)

    def pipelined(self) -> AbstractContextManager[None]:
        """Statements sent inside share round trips on PostgreSQL (see :func:`~.prepared.pipelined`)."""
        return pipelined(self.conn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A savepoint: if it rolls back, what it added to the memory and deferred is forgotten too."""
        mark = len(self._journal)
        try:
            with self.conn.begin_nested():
                yield
        except BaseException:
            self._undo(mark)
            raise

    # ------------------------------------------------------------ memory

    def get(self, key: tuple[Any, ...]) -> Any:
        value = self._pending.get(key, _MISSING)
        return self._committed.get(key) if value is _MISSING else value

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        self._journal.append((key, self._pending.get(key, _MISSING)))
        self._pending[key] = value

    def take_id(self, table: str) -> int | None:
        """The next id reserved for ``table`` in this transaction, if any are left."""
        ids = self.get(("ids", table))
        if not ids:
            return None
        self.put(("ids", table), ids[1:])
        return int(ids[0])

    def _undo(self, mark: int) -> None:
        while len(self._journal) > mark:
            key, old = self._journal.pop()
            if old is _MISSING:
                self._pending.pop(key, None)
            else:
                self._pending[key] = old

    def committed(self) -> None:
        """The transaction committed: its ids become known to later ones."""
        self._known.learn({k: v for k, v in self._pending.items() if k[0] in DURABLE})

    # ------------------------------------------------------------ deferred writes

    def defer(self, statement: Prepared, table: str, row: dict[str, Any]) -> None:
        """Run ``statement`` (a prepared one returning nothing) with ``row`` later, in order."""
        # A linked list (previous, item): appending and undoing are O(1), whatever the batch size.
        self.put(_DEFERRED, (self.get(_DEFERRED), (statement, table, row)))
        tables = self.get(_TABLES) or frozenset()
        if table not in tables:
            self.put(_TABLES, tables | {table})

    def flush(self, reads: frozenset[str] | None = None, *, commit: bool = False) -> None:
        """Send the deferred writes now (all of them, if any touches a table in ``reads``; None: any table).

        With ``commit`` (PostgreSQL, the end of the transaction) the COMMIT goes in their round trip.
        """
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
        # One executemany per statement, rows in the order they came, statements by rank
        # (inserts of rows that later ones refer to or update first: events, datasets,
        # versions and runs written with ids reserved by prefetch.py), then in order of appearance.
        groups: dict[Prepared, list[dict[str, Any]]] = {}
        for statement, _, row in waiting:
            groups.setdefault(statement, []).append(row)
        with pipelined(self.conn):  # one round trip for them all on PostgreSQL
            for statement in sorted(groups, key=lambda st: st.rank):
                statement.run_many(self.conn, groups[statement])
            if commit:
                cursor = self.conn.connection.cursor()
                try:
                    cursor.execute("COMMIT")
                finally:
                    cursor.close()
