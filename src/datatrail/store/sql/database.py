"""One SQL database as the store's parts share it: its engine, its write locks, and its transactions.

A write transaction (:meth:`Database.write`) waits its turn on every lock that
orders writers: a thread lock for this process's writers, the lock file beside
a SQLite store for other processes' (writelock.py), then the database's own
(``BEGIN IMMEDIATE`` in SQLite, an advisory lock in PostgreSQL). It yields the
:class:`~datatrail.store.sql.transaction.Tx` that everything written in it runs
through. Database errors leave both kinds of transaction as datatrail errors
(faults.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from datatrail.core.chain import GENESIS, Checkpoint
from datatrail.core.errors import DatatrailError
from datatrail.store.sql.engine import WRITE_OPTION, ensure_schema, make_engine, run_raw, sqlite_path
from datatrail.store.sql.faults import known_fault, unavailable
from datatrail.store.sql.statements import AUDIT_HEAD_AND_LINKS, PG_WRITE_LOCK
from datatrail.store.sql.transaction import Known, Tx
from datatrail.store.sql.writelock import WriterLock

AUDIT_HEAD = ("audit",)  # the transaction's memory of the chain's head (see audit.py)
LINKS = ("links?",)  # ... and of whether the store has any dataset link (see apply.py)


def _raw(conn: Connection, statement: str) -> None:
    """``statement`` on the connection's DB-API cursor (in a pipeline: sent, not waited for)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _idle(conn: Connection | None) -> bool:
    """Whether the connection is usable and outside any transaction (a refused event's was rolled back)."""
    with suppress(Exception):
        if conn is None or _lost(conn):
            return False
        driver: Any = conn.connection.driver_connection
        return bool(driver.info.transaction_status.name == "IDLE")  # psycopg's TransactionStatus
    return False


def _lost(conn: Connection) -> bool:
    """Whether the connection to the database is gone (the server restarted, or the network broke)."""
    if conn.closed or conn.invalidated:  # asking an invalidated connection for its DB-API one would reconnect
        return True
    with suppress(Exception):
        driver: Any = conn.connection.driver_connection
        return bool(driver.closed)  # psycopg: also when broken
    return True


class Database:
    """The engine of a store's URI (migrated on open) and its read and write transactions."""

    def __init__(self, uri: str, *, create: bool = False) -> None:
        self.uri = uri
        self.engine = make_engine(uri, create=create)
        try:
            ensure_schema(self.engine)
        except BaseException:
            self.engine.dispose()  # a refused store must not leak a pooled connection
            raise
        self.dialect = self.engine.dialect.name
        # Writers of this process take turns here before the database lock: a waiting
        # thread wakes the moment the lock is free, where SQLite's busy handler would
        # poll it with growing sleeps (the server's threads all write through one store).
        self.writers = threading.RLock()
        # ... and writers of all processes on a lock file, which hands over at once (writelock.py).
        # PostgreSQL needs none: its advisory lock orders writers (see write).
        path = sqlite_path(uri)
        self._file_lock = WriterLock(path) if path is not None else None
        self.known = Known()  # committed namespace, dataset and job ids (see transaction.py)
        # PostgreSQL: the connection write transactions run on, kept between them (see _writer_connection).
        self._writer_conn: Connection | None = None
        self._writer_busy = False

    def close(self) -> None:
        with self.writers:
            self._drop_writer_connection()
        self.engine.dispose()
        if self._file_lock is not None:
            self._file_lock.close()

    def _turn(self) -> AbstractContextManager[None]:
        return self._file_lock.held() if self._file_lock is not None else nullcontext()

    @contextmanager
    def _writer_connection(self) -> Iterator[tuple[Connection, bool]]:
        """PostgreSQL: the write connection (taken with :attr:`writers` held) and whether it was used before.

        Kept between transactions, it costs no pool checkout and no pre-ping (a
        round trip per transaction): a connection that broke since is found by the
        transaction's first round trip, which writes nothing, and :meth:`write` then
        starts again on a new one. In DB-API autocommit mode, so that BEGIN goes in
        that first round trip too (psycopg waits for the answer of its own BEGIN).
        A write inside a write (the lock is reentrant) gets a pooled connection.
        """
        options = {WRITE_OPTION: True, "isolation_level": "AUTOCOMMIT"}
        if self._writer_busy:
            with self.engine.connect().execution_options(**options) as conn:
                yield conn, False
            return
        reused = self._writer_conn is not None
        if self._writer_conn is None:
            self._writer_conn = self.engine.connect().execution_options(**options)
        self._writer_busy = True
        try:
            yield self._writer_conn, reused
        except BaseException:
            if not _idle(self._writer_conn):  # broken, or left in a transaction: the next one starts afresh
                self._drop_writer_connection()
            raise
        finally:
            self._writer_busy = False

    def _drop_writer_connection(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            with suppress(Exception):  # closed, not pooled again: it may be broken, or in autocommit mode
                conn.invalidate()
                conn.close()

    @contextmanager
    def write(self, first: Callable[[Tx], Callable[[], None] | None] | None = None) -> Iterator[Tx]:
        """A write transaction, committed when the block ends (its deferred writes first).

        ``first`` sends the transaction's first reads (prefetch.py's lookups) once the lock is
        taken and returns what reads their answers: on PostgreSQL BEGIN, the lock, the audit head
        and those reads are one round trip, and the deferred writes go with the COMMIT.
        """
        try:
            if self.dialect == "postgresql":
                with self._pg_write(first) as tx:
                    yield tx
                return
            with (
                self.writers,
                self._turn(),
                self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn,
            ):
                with conn.begin():
                    # A restore writes a new epoch into the file header: forget the ids it replaced.
                    epoch = run_raw(conn, "PRAGMA user_version")
                    self.known.check_epoch(int(epoch[0] or 0) if epoch else 0)
                    tx = Tx(conn, self.known)
                    read = first(tx) if first is not None else None
                    if read is not None:
                        read()
                    yield tx
                    tx.flush()
                tx.committed()
        except DatatrailError:
            raise
        except OperationalError as exc:
            raise (known_fault(exc) or unavailable(exc)) from exc

    @contextmanager
    def _pg_write(self, first: Callable[[Tx], Callable[[], None] | None] | None) -> Iterator[Tx]:
        """:meth:`write` on PostgreSQL: BEGIN, the lock, the audit head and ``first``'s reads in one round trip."""
        with self.writers:
            for attempt in (1, 2):
                reused = lost = False
                try:
                    with self._writer_connection() as (conn, reused), conn.begin():
                        tx = Tx(conn, self.known)
                        # One writer at a time keeps version numbers and the audit chain gapless.
                        # The audit head and the first reads are sent in the same round trip, by
                        # statements that start (and take their snapshots) once the lock is held.
                        try:
                            with tx.pipelined():
                                _raw(conn, "BEGIN")
                                tx.run(PG_WRITE_LOCK)
                                head_q = tx.send(AUDIT_HEAD_AND_LINKS)
                                tx.put(LINKS, True)  # being asked: prefetch.py does not ask again
                                read = first(tx) if first is not None else None
                            (head,) = head_q.all()
                        except Exception:
                            lost = _lost(conn)  # asked before the rollback and the drop of the connection
                            raise
                        tx.put(LINKS, bool(head.links))
                        known = head.seq is not None
                        tx.put(AUDIT_HEAD, Checkpoint(int(head.seq), head.hash) if known else Checkpoint(0, GENESIS))
                        if read is not None:
                            read()
                        yield tx
                        # The deferred writes with the COMMIT: SQLAlchemy's commit that follows
                        # finds the transaction over and sends nothing.
                        tx.flush(commit=True)
                    tx.committed()
                    return
                except Exception:
                    # The kept connection broke since its last transaction (the first round trip, which
                    # writes nothing, failed on it): the transaction starts again, on a new connection.
                    if not (lost and reused and attempt == 1):
                        raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads; its transaction is rolled back when the block ends."""
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise unavailable(exc) from exc
        with conn:
            try:
                yield conn
            except DBAPIError as exc:
                broken = known_fault(exc)
                if broken is not None:
                    raise broken from exc
                if isinstance(exc, OperationalError):
                    raise unavailable(exc) from exc  # the connection broke under a read (the database restarted)
                raise
