"""Core statements compiled once per dialect and run on the DB-API cursor.

Ingest runs some twenty small statements per event. Through
``Connection.execute`` each one pays for building the expression, its cache
key and SQLAlchemy's execution context — about ten times the cost of the
statement itself in SQLite. A :class:`Prepared` statement is written in
SQLAlchemy Core like every other query, compiled once per dialect, and then
executed straight on the DB-API cursor of the same connection (so inside the
same transaction), with SQLAlchemy's own bind and result processors for each
column type (datetimes stored as SQLite text, JSON, and so on). SQLAlchemy has
no public "prepared statement" API that skips that per-call work, hence this
small module.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_EVERY: list[Prepared] = []  # every statement, module-level constants all (see compile_every)


class _Compiled(NamedTuple):
    sql: str
    names: tuple[str, ...] | None  # positional order of the parameters, or None for named ones
    # Rendered parameter name -> (the caller's key, the value when not given, its bind processor).
    binds: dict[str, tuple[str, Any, Any]]
    results: tuple[Callable[[Any], Any] | None, ...]
    fields: tuple[str, ...]
    # The binds in the order the DB-API takes them (positional: once per occurrence), for _args.
    order: tuple[tuple[str, str, Any, Any], ...]


def compile_every(dialect: Dialect) -> None:
    """Compile every statement made so far for ``dialect``, ahead of its first use.

    ``Store.prepare`` does this while a big file hashes in another thread: the
    first write of a process would otherwise compile its statements after the
    hash is done, on the way to the command's answer.
    """
    for statement in list(_EVERY):
        statement._compile(dialect)


class Prepared:
    """One statement, compiled on first use for each dialect; a write transaction runs it (``Tx.first``…).

    >>> FIND = Prepared(select(t.namespaces.c.id).where(t.namespaces.c.name == bindparam("name")))  # doctest: +SKIP
    >>> tx.first(FIND, name="default")                                                             # doctest: +SKIP
    Row(id=1)
    """

    def __init__(
        self,
        statement: ClauseElement,
        *,
        dialects: dict[str, ClauseElement] | None = None,
        reads: frozenset[str] | None = None,
        rank: int = 9,
    ) -> None:
        self.statement = statement
        # Statements written per dialect (INSERT … ON CONFLICT has one construct for each).
        self.dialects = dialects or {}
        # The tables whose deferred writes must reach the database before this statement
        # runs (see transaction.Tx.defer); None: all of them.
        self.reads = reads
        # Deferred, its rows go to the database before those of statements of a higher rank
        # (an insert before the updates and rows that refer to it; see transaction.Tx.flush).
        self.rank = rank
        self._compiled: dict[str, _Compiled] = {}
        _EVERY.append(self)

    def _compile(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        statement = self.dialects.get(dialect.name, self.statement)
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        binds = {
            name: (bind.key, bind.effective_value, _bind_processor(bind.type.dialect_impl(dialect), dialect))
            for bind, name in compiled.bind_names.items()
        }
        columns = list(getattr(statement, "selected_columns", ()))
        if not columns and getattr(statement, "_returning", None):
            columns = list(statement._returning)  # type: ignore[attr-defined]
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        fields = tuple(c.key or f"c{i}" for i, c in enumerate(columns))
        positional = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        order = tuple((name, *binds[name]) for name in (positional if positional is not None else binds))
        found = _Compiled(compiled.string, positional, binds, results, fields, order)
        self._compiled[dialect.name] = found
        return found

    def _args(self, c: _Compiled, params: dict[str, Any]) -> Any:
        # Built in one pass over the precomputed order: ingest runs this a dozen times per event.
        get = params.get
        if c.names is not None:
            return tuple(
                process(value) if process is not None and value is not None else value
                for _, key, default, process in c.order
                for value in (get(key, default),)
            )
        values = {}
        for name, key, default, process in c.order:
            value = get(key, default)
            values[name] = process(value) if process is not None and value is not None else value
        return values

    def _execute(self, conn: Connection, params: dict[str, Any]) -> tuple[Any, _Compiled]:
        c = self._compile(conn.dialect)
        args = self._args(c, params)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(c.sql, args)
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            # Wrapped as SQLAlchemy wraps it (OperationalError…), so the store's error mapping applies.
            raise DBAPIError.instance(c.sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect) from exc
        return cursor, c

    def run_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Execute a statement that returns nothing once per row, in one call (pipelined by psycopg)."""
        c = self._compile(conn.dialect)
        args = [self._args(c, row) for row in rows]
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(c.sql, args)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(c.sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect) from exc
        finally:
            cursor.close()

    def _row(self, c: _Compiled, raw: Any) -> Any:
        values = [p(v) if p is not None else v for p, v in zip(c.results, raw, strict=True)]
        return _row_type(c.fields)(*values)

    def first(self, conn: Connection, **params: Any) -> Any:
        """The first row (a named tuple), or None."""
        cursor, c = self._execute(conn, params)
        try:
            raw = cursor.fetchone()
        finally:
            cursor.close()
        return None if raw is None else self._row(c, raw)

    def scalar(self, conn: Connection, **params: Any) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, **params)
        return None if row is None else row[0]

    def run(self, conn: Connection, **params: Any) -> None:
        """Execute a statement that returns nothing."""
        cursor, _ = self._execute(conn, params)
        cursor.close()

    def send(self, conn: Connection, **params: Any) -> Sent:
        """Execute now, read the rows later: inside :func:`pipelined`, many statements share a round trip."""
        cursor, c = self._execute(conn, params)
        return Sent(self, cursor, c)


_SQLITE_DATETIME = sqlite.DATETIME._storage_format  # "YYYY-MM-DD HH:MM:SS.ffffff", the time zone dropped


def _bind_processor(impl: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The type's bind processor; SQLite's default DATETIME one replaced by the same text, faster.

    Ingest binds several times per event. ``isoformat(" ", "microseconds")``
    starts with exactly the default storage format (the year has four digits;
    the offset of an aware time, which SQLAlchemy drops, follows it); anything
    but a plain datetime goes to SQLAlchemy's own processor.
    """
    process: Callable[[Any], Any] | None = impl.bind_processor(dialect)
    if process is None or not isinstance(impl, sqlite.DATETIME) or impl._storage_format != _SQLITE_DATETIME:
        return process
    slow = process

    def sqlite_datetime(value: Any) -> Any:
        if type(value) is datetime:
            return value.isoformat(" ", "microseconds")[:26]
        return slow(value)

    return sqlite_datetime


class Sent:
    """A statement sent by :meth:`Prepared.send`, whose rows are read once (:meth:`all`)."""

    def __init__(self, prepared: Prepared, cursor: Any, compiled: _Compiled) -> None:
        self._prepared, self._cursor, self._compiled = prepared, cursor, compiled

    def all(self) -> list[Any]:
        try:
            raw = self._cursor.fetchall()
        finally:
            self._cursor.close()
        return [self._prepared._row(self._compiled, r) for r in raw]


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """Send the prepared statements run inside without waiting for each answer (PostgreSQL).

    psycopg's pipeline mode: a statement's result is awaited only when it is
    fetched, so statements whose results are not needed share one round trip
    with the next fetch. Statements still run in order, each with its own
    snapshot. Elsewhere (SQLite, in process) this does nothing.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
            yield
    except dbapi_error as exc:
        statement = "(pipelined statements)"
        raise DBAPIError.instance(statement, None, exc, dbapi_error, dialect=conn.dialect) from exc


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def _row_type(fields: tuple[str, ...]) -> Any:
    """A named tuple type for these column names (made once per set of names)."""
    known = _ROW_TYPES.get(fields)
    if known is None:
        # A plain named tuple: the field types vary per statement.
        known = _ROW_TYPES[fields] = namedtuple("Row", fields)
    return known
