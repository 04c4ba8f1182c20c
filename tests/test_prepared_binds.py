"""Prepared statements and the raw BEGIN store exactly what SQLAlchemy Core would (store/sql/prepared.py, engine.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from datatrail.store.sql.engine import run_raw
from datatrail.store.sql.prepared import Prepared

METADATA = sa.MetaData()
TIMES = sa.Table(
    "times",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("naive", sa.DateTime),
)
INSERT = Prepared(TIMES.insert().values(id=sa.bindparam("id"), at=sa.bindparam("at"), naive=sa.bindparam("naive")))

VALUES = [
    datetime(2026, 12, 7, 19, 3, 4, 5678, tzinfo=UTC),
    datetime(2026, 12, 7, 19, 3, 4),  # no microseconds: still six digits
    datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),  # the offset is dropped
    datetime(5, 2, 3, 4, 5, 6, 7),  # a year below 1000: four digits
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    date(2026, 3, 4),  # a date: SQLAlchemy's own processor
    None,
]


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'binds.db'}")
    METADATA.create_all(engine)
    return engine


def test_datetimes_bound_by_a_prepared_statement_are_stored_as_core_stores_them(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for i, value in enumerate(VALUES):
            INSERT.run(conn, id=2 * i, at=value, naive=value)
            conn.execute(TIMES.insert().values(id=2 * i + 1, at=value, naive=value))
        rows = conn.exec_driver_sql("SELECT id, at, naive FROM times ORDER BY id").all()
        read_back = conn.execute(sa.select(TIMES.c.at).order_by(TIMES.c.id)).scalars().all()
    assert len(rows) == 2 * len(VALUES)
    for prepared_row, core_row in zip(rows[::2], rows[1::2], strict=True):
        assert prepared_row[1:] == core_row[1:]
    assert rows[0][1] == "2026-12-07 19:03:04.005678"
    assert rows[6][1] == "0005-02-03 04:05:06.000007"
    assert read_back[::2] == read_back[1::2]


def test_a_value_core_refuses_is_refused_by_the_prepared_statement_too(engine: sa.Engine) -> None:
    with engine.begin() as conn, pytest.raises(TypeError, match="datetime"):
        INSERT.run(conn, id=1, at="2026-01-01", naive=None)


def test_a_raw_begin_on_a_locked_database_raises_sqlalchemy_s_error(engine: sa.Engine, tmp_path: Path) -> None:
    impatient = sa.create_engine(f"sqlite:///{tmp_path / 'binds.db'}", connect_args={"timeout": 0.05})
    with engine.connect() as holder, impatient.connect() as conn:
        run_raw(holder, "BEGIN IMMEDIATE")
        assert run_raw(conn, "PRAGMA user_version") == (0,)
        # Wrapped as SQLAlchemy wraps it, so the store's mapping to "store unavailable" applies.
        with pytest.raises(OperationalError, match="database is locked"):
            run_raw(conn, "BEGIN IMMEDIATE")
        run_raw(holder, "ROLLBACK")
        assert run_raw(conn, "BEGIN IMMEDIATE") is None
        run_raw(conn, "ROLLBACK")
