"""The UI home page's listings read a few rows (revision 0013): the datasets changed last and the latest
versions failing their checks equal what a reading of every dataset's latest version gave, on SQLite and
PostgreSQL, for a reader of everything and for one who may not see some namespaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event

import datatrail
from datatrail.catalog import Overview
from datatrail.core.errors import InvalidInput
from datatrail.core.roles import Grant, Principal
from tests.conftest import write

WIDE = "checks:\n  - {rule: between, column: x, min: 0, max: 1000}\n"
NARROW = "checks:\n  - {rule: between, column: x, min: 0, max: 10}\n  - {rule: not_null, column: x}\n"


def old_overview(trail: datatrail.Trail, limit: int) -> Overview:
    """Catalog.overview as it was: the latest version of every dataset, sifted."""
    latest = trail.latest_versions()
    failing = []
    for item in (x for x in latest if x.checks_failed):
        results = trail.check_results(item.version)
        last = max(r.checked_at for r in results)
        failing.append((item.version, tuple(r for r in results if r.checked_at == last and not r.success)))
    reports = trail.catalog.drift_reports(limit=1000)
    alerts = tuple(r for r in reversed(reports) if r.drifted)[:limit]
    return Overview(tuple(x.version for x in latest[:limit]), tuple(failing[:limit]), alerts)


def fill(trail: datatrail.Trail, workdir: Path) -> None:
    """Datasets of three namespaces, added in turns (the newest in team-b): checks passing, failing, failing
    on an older version only, and failing then passing; drift reports inside team-a and across namespaces."""
    wide, narrow = write(workdir / "wide.yaml", WIDE), write(workdir / "narrow.yaml", NARROW)
    for i in range(6):
        for ns in ("default", "team-a", "team-b"):
            p = write(workdir / f"{ns}-{i}.csv", "x\n" + "\n".join(str(i * 7 + k) for k in range(40)) + "\n")
            v = trail.add(p, name=f"d{i}", namespace=ns)
            trail.check(v, narrow if i % 2 else wide)
    for ns in ("default", "team-a"):
        trail.check(f"{ns}:d1", wide)  # failed, then passed: the latest evaluation counts
        p = write(workdir / f"{ns}-2.csv", "x\n1\n2\n")
        trail.add(p, name="d2", namespace=ns)  # d2@1 passed; d2@2 unchecked
    low = write(workdir / "low.csv", "x\n" + "\n".join(str(k) for k in range(200)) + "\n")
    high = write(workdir / "high.csv", "x\n" + "\n".join(str(k + 500) for k in range(200)) + "\n")
    ref = trail.add(low, name="ref")
    trail.monitor(trail.add(high, name="cur", namespace="team-a"), reference=ref)
    trail.monitor(trail.add(low, name="cur2", namespace="team-a"), reference="team-a:cur")
    for i in range(3):  # the newest datasets, all in team-b: hidden from the reader
        trail.check(trail.add(write(workdir / f"b{i}.csv", "x\n99\n"), name=f"new{i}", namespace="team-b"), narrow)


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 10, 1000])
def test_overview_equals_every_latest_version_sifted(trail: datatrail.Trail, workdir: Path, limit: int) -> None:
    fill(trail, workdir)
    reader = trail.scoped(Principal("reader", grants=(Grant("viewer", "team-a"),)), "test")
    for who in (trail, reader):
        assert who.overview(limit) == old_overview(who, limit)
        latest = who.latest_versions()
        assert who.latest_versions(limit) == latest[:limit]
        assert who.latest_versions(limit, failing=True) == [x for x in latest if x.checks_failed][:limit]
        assert who.latest_versions(failing=True) == [x for x in latest if x.checks_failed]
    shown = reader.overview(limit)
    assert {v.namespace for v in shown.recent} <= {"team-a"} and shown.recent
    assert {v.namespace for v, _ in shown.failing} <= {"team-a"}
    assert len(reader.overview(limit).drift_alerts) == min(limit, 1)  # the one inside team-a
    assert [v.ref for v in trail.overview(3).recent] == ["team-b:new2@1", "team-b:new1@1", "team-b:new0@1"]


def test_home_page_reads_at_the_end_of_its_indexes(trail: datatrail.Trail, workdir: Path) -> None:
    """The statements of the newest and the newest failing latest versions, as the store runs them, are
    planned over ix_versions_created and ix_check_results_failed (PostgreSQL told to avoid a tiny table's scan
    and sort)."""
    narrow = write(workdir / "narrow.yaml", NARROW)
    for i in range(3):
        trail.check(trail.add(write(workdir / f"{i}.csv", f"x\n{i * 50}\n"), name=f"d{i}"), narrow)
    seen: list[tuple[Connection, str, Any]] = []

    def note(conn: Connection, _: Any, statement: str, parameters: Any, *__: Any) -> None:
        if "LIMIT" in statement and "newer" in statement:
            seen.append((conn, statement, parameters))

    event.listen(Engine, "before_cursor_execute", note)
    try:
        assert [x.version.name for x in trail.latest_versions(2)] == ["d2", "d1"]
        assert [x.version.name for x in trail.latest_versions(2, failing=True)] == ["d2", "d1"]
    finally:
        event.remove(Engine, "before_cursor_execute", note)
    assert len(seen) == 2
    plans = []
    for conn, statement, parameters in seen:
        with conn.engine.connect() as c:
            if c.dialect.name == "postgresql":
                c.exec_driver_sql("SET enable_seqscan = off")  # tiny tables without statistics: can it use them?
                c.exec_driver_sql("SET enable_sort = off")
                plan = c.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
            else:
                plan = c.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        plans.append(" ".join(str(row[-1]) for row in plan))
    assert "ix_versions_created" in plans[0], plans[0]
    assert "ix_check_results_failed" in plans[1], plans[1]


def test_a_limit_out_of_bounds_is_refused(sqlite_trail: datatrail.Trail) -> None:
    """One line saying what to use, before any read (a huge limit used to overflow in the database)."""
    for bad in (0, -1, 10**27, True, 2.5):
        with pytest.raises(InvalidInput, match=r"invalid limit .*: use a whole number from 1 to 1,000,000,000"):
            sqlite_trail.catalog.latest_versions(bad)  # type: ignore[arg-type]
    assert sqlite_trail.catalog.latest_versions(1) == []
