"""Fixtures shared by the suite: working trees, stores (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import datatrail
from tests import conformance, httpserver, pgserver

_db_counter = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's store, user or cache."""
    for var in ("DATATRAIL_URI", "DATATRAIL_USER", "DATATRAIL_DEBUG", "DATATRAIL_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))  # tokens.toml


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PgServer]:
    server = pgserver.start()
    try:
        with psycopg.connect(server.uri, autocommit=True) as conn:
            conn.execute("CREATE DATABASE dt_template")
        # Migrate the template once; every test database is a copy of it.
        from datatrail.store.sql.store import SqlStore

        SqlStore(server.database_uri("dt_template")).close()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_uri(pg_server: pgserver.PgServer) -> str:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"t{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE dt_template")
    return pg_server.database_uri(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no revision applied yet), SQLite and PostgreSQL: for tests of an upgrade."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trail.db'}"
    from tests.migrate import empty_postgres  # alembic: only for these tests

    return empty_postgres(request.getfixturevalue("pg_server"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working tree, made the current directory."""
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


# The store contract runs over HTTP too; other modules' `trail` tests run on the local stores
# (tests/test_http_store.py covers the CLI and the Python API over HTTP).
HTTP_MODULES = {
    "test_store_contract",
    "test_smoke_store",
    "test_http_store",
    "test_facet_mapping",
    "test_ml_store",
    "test_producer_semantics",
    "test_paging",
    "test_marquez_graph",
}


def pytest_configure(config: pytest.Config) -> None:
    conformance.check_required()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [
        item
        for item in items
        if getattr(item, "callspec", None) is not None
        and item.callspec.params.get("store_uri") == "http"  # type: ignore[attr-defined]
        and (
            item.module.__name__.rsplit(".", 1)[-1] not in HTTP_MODULES  # type: ignore[attr-defined]
            or item.get_closest_marker("sql_store") is not None
        )
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = set(dropped)
        items[:] = [item for item in items if item not in gone]


@pytest.fixture(scope="session")
def http_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.ServerPool]:
    pool = httpserver.ServerPool(tmp_path_factory.mktemp("servers"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("http", marks=pytest.mark.http),
    ]
)
def store_uri(request: pytest.FixtureRequest, workdir: Path) -> str | None:
    """None for the embedded SQLite store of ``workdir``, a PostgreSQL URI, or a real server's URL."""
    if request.param == "sqlite":
        return None
    if request.param == "http":
        server = request.getfixturevalue("http_servers").take()
        request.addfinalizer(server.stop)
        return server.uri
    return str(request.getfixturevalue("pg_uri"))


@pytest.fixture
def trail(workdir: Path, store_uri: str | None) -> Iterator[datatrail.Trail]:
    """A Trail on a fresh store (SQLite file or PostgreSQL database) rooted at ``workdir``."""
    t = datatrail.init(workdir, store_uri)
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def sqlite_trail(workdir: Path) -> Iterator[datatrail.Trail]:
    """A Trail on the embedded SQLite store of ``workdir`` alone, for tests of what no store changes
    (the content cache, remotes, checkout), which ``trail`` would repeat on PostgreSQL and over HTTP."""
    t = datatrail.init(workdir)
    try:
        yield t
    finally:
        t.close()


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path
