"""Engines for SQLite and PostgreSQL, and the schema check on open.

SQLite runs in WAL mode with a busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing
with "database is locked" at commit time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from datatrail.core.errors import InvalidInput, StoreNotFound, StoreUnavailable, StoreVersionError
from datatrail.store.sql.faults import no_space_left
from datatrail.store.sql.pragmas import BUSY_TIMEOUT_S, sqlite_synchronous
from datatrail.store.sql.revisions import HEAD, REVISIONS

WRITE_OPTION = "datatrail_write"


def sqlite_path(uri: str) -> Path | None:
    """The file behind a ``sqlite:///`` URI, or None for other URIs."""
    if not uri.startswith("sqlite:"):
        return None
    try:
        database = make_url(uri).database
    except ArgumentError:
        msg = f"invalid store URI {uri!r}: write sqlite:///path/to/trail.db"
        raise InvalidInput(msg) from None
    if not database or database == ":memory:":
        msg = f"invalid store URI {uri!r}: an embedded store needs a file, as in sqlite:///path/to/trail.db"
        raise InvalidInput(msg)
    return Path(database)


def make_engine(uri: str, *, create: bool = False) -> Engine:
    """An engine for ``uri``; SQLite files must exist unless ``create``."""
    path = sqlite_path(uri)
    if path is not None:
        if not create and not path.is_file():
            msg = f"no datatrail store at {os.fspath(path)!r}; run `datatrail init` to create one"
            raise StoreNotFound(msg)
        sqlite_synchronous()  # a bad setting fails here, with its message, before anything is opened
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_S})
        _configure_sqlite(engine)
        return engine
    if uri.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        url = make_url(uri.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")
        return create_engine(url, pool_pre_ping=True)
    msg = f"unsupported store URI {uri!r}: use sqlite:///path/trail.db or postgresql://user@host:port/db"
    raise InvalidInput(msg)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute(f"PRAGMA synchronous = {sqlite_synchronous()}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        run_raw(conn, "BEGIN IMMEDIATE" if write else "BEGIN")


def run_raw(conn: Any, statement: str) -> Any:
    """``statement`` on the connection's DB-API cursor: its first row, or None.

    For the statements every transaction runs (BEGIN, PRAGMA user_version): SQLAlchemy's
    execution context costs more than they do. Errors are wrapped as SQLAlchemy wraps them
    (OperationalError…), so the store's error mapping applies.
    """
    error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        cursor.execute(statement)
        return cursor.fetchone()
    except error as exc:
        raise DBAPIError.instance(statement, (), exc, error, dialect=conn.dialect) from exc
    finally:
        cursor.close()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            has_table = engine.dialect.has_table(conn, "alembic_version")
            if not has_table:
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DBAPIError as exc:
        raise _open_error(engine, exc) from None


def _open_error(engine: Engine, exc: DBAPIError) -> Exception:
    where = engine.url.render_as_string(hide_password=True)
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if isinstance(exc, OperationalError) and engine.dialect.name == "postgresql":
        return StoreUnavailable(f"cannot connect to the store at {where}: {detail}")
    if engine.dialect.name == "sqlite" and no_space_left(engine.url.database):
        # Opening a WAL store creates its -shm file: on a full disk that is an I/O error.
        return StoreUnavailable(f"cannot open the store at {where}: its disk is full ({detail}); free space and retry")
    return InvalidInput(f"cannot open the store at {where}: {detail}")


def ensure_schema(engine: Engine) -> None:
    """Bring the store to the head revision; refuse a store made by a newer datatrail."""
    revision = current_revision(engine)
    if revision == HEAD:
        return
    if revision is not None and revision not in REVISIONS:
        where = engine.url.render_as_string(hide_password=True)
        msg = (
            f"the store at {where} has schema revision {revision}, newer than this datatrail"
            f" understands (head {HEAD}); upgrade datatrail (pip install -U datatrail)"
        )
        raise StoreVersionError(msg)
    # Alembic is imported only when a migration is due: it costs start-up time.
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
        if engine.dialect.name == "postgresql":
            # Two processes opening a fresh database at once must not both migrate it.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7274001)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
