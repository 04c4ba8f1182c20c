"""The SQL store's search: datasets and jobs whose name or namespace matches Marquez's pattern, one page at a time.

The database matches, counts, sorts and pages, so a search's memory follows its page, not its matches
(issue 22, item 6). Matching is exactly :func:`~datatrail.core.patterns.matches` (Unicode case folding):

- a name of printable ASCII matches by LIKE (SQLite) or ILIKE (PostgreSQL, the pg_trgm index of revision
  0008) against the case-folded pattern: for such names, SQL's case-insensitive match *is* case folding;
- a name with a character outside printable ASCII (few; a partial index on PostgreSQL) is checked here,
  and the ids that match go to the query (with their case-folded names, the sort key SQL cannot compute);
- every row of a namespace that matches (namespaces are few: each is checked here).

Sorted as the route always sorted: by case-folded name, namespace, type (code point order, ``COLLATE "C"``
on PostgreSQL), then the name as the listing ordered it; or newest first, ties in that order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    union_all,
)

from datatrail.core.patterns import matches
from datatrail.core.results import SearchHit
from datatrail.core.times import iso, stored_time
from datatrail.store.sql import tables as t

# Names with a character outside printable ASCII: as a PostgreSQL regular expression and as a SQLite GLOB.
WIDE: ColumnClause[str] = literal_column("'[^ -~]'")
SQLITE_WIDE: ColumnClause[str] = literal_column("'*[^ -~]*'")
FOLDED_IN_SQL = 500
"""The most matching names outside printable ASCII a query carries (ids and case-folded names); beyond it
the matches' (type, id, names, time) are sorted here instead, as the route did before (still no objects)."""


def search_page(
    conn: Connection,
    dialect: str,
    q: str,
    *,
    kind: str | None,
    namespace: str | None,
    sort: str,
    before: date | None,
    after: date | None,
    limit: int,
    offset: int,
    visible: Callable[[str], bool] | None,
) -> tuple[list[SearchHit], int]:
    """One page of the datasets and jobs ``q`` matches, and how many match (see the module docstring)."""
    n = t.namespaces.c
    spaces = {
        r.id: r.name
        for r in conn.execute(select(n.id, n.name))
        if (namespace is None or r.name == namespace) and (visible is None or visible(r.name))
    }
    if not spaces or (after is not None and after >= date.max):
        return [], 0
    by_namespace = {i for i, name in spaces.items() if matches(q, name)}
    fold = q.casefold()
    tables = [(k, table) for k, table in (("DATASET", t.datasets), ("JOB", t.jobs)) if kind in (None, k.lower())]
    scopes: list[tuple[str, Any, list[ColumnElement[bool]]]] = []
    wide_hits: list[tuple[str, Any, dict[int, str]]] = []
    for type_, table in tables:
        c = table.c
        scope: list[ColumnElement[bool]] = []
        if namespace is not None or visible is not None:
            scope.append(c.namespace_id.in_(list(spaces)))
        if table is t.datasets:
            scope.append(c.deleted_at.is_(None))
        if before is not None:
            scope.append(c.created_at < _midnight(before))
        if after is not None:
            scope.append(c.created_at >= _midnight(after) + timedelta(days=1))
        wide = conn.execute(select(c.id, c.name, c.namespace_id).where(_wide(dialect, c.name), *scope)).all()
        found = {r.id: r.name.casefold() for r in wide if r.namespace_id in by_namespace or matches(q, r.name)}
        scopes.append((type_, table, scope))
        wide_hits.append((type_, table, found))
    if sum(len(found) for _, _, found in wide_hits) > FOLDED_IN_SQL:
        return _sorted_here(conn, dialect, q, scopes, by_namespace, sort, limit, offset)
    parts = []
    for (type_, table, scope), (_, _, found) in zip(scopes, wide_hits, strict=True):
        c = table.c
        wanted = [_ascii_like(dialect, c.name, fold)]
        if by_namespace:
            wanted.append(c.namespace_id.in_(sorted(by_namespace)))
        if found:
            wanted.append(c.id.in_(sorted(found)))
        key = case(found, value=c.id, else_=func.lower(c.name)) if found else func.lower(c.name)
        parts.append(_part(type_, table, key).where(or_(*wanted), *scope))
    if not parts:
        return [], 0
    u = union_all(*parts).subquery()
    total = int(conn.execute(select(func.count()).select_from(u)).scalar_one())
    by_name = [_c(dialect, u.c.fold), _c(dialect, u.c.namespace), u.c.type, u.c.name]
    order = [u.c.created_at.desc(), *by_name] if sort == "updated_at" else by_name
    rows = conn.execute(select(u).order_by(*order).limit(limit).offset(offset)).all() if total > offset else []
    return [SearchHit(r.type, r.namespace, r.name, stored_time(r.created_at)) for r in rows], total


def _part(type_: str, table: Any, key: ColumnElement[Any]) -> Select[Any]:
    """One table's hits: type, namespace, name, time and the sort key."""
    c, n = table.c, t.namespaces.c
    return select(
        literal(type_).label("type"),
        n.name.label("namespace"),
        c.name,
        c.created_at,
        key.label("fold"),
    ).join(t.namespaces, n.id == c.namespace_id)


def _sorted_here(
    conn: Connection,
    dialect: str,
    q: str,
    scopes: list[tuple[str, Any, list[ColumnElement[bool]]]],
    by_namespace: set[int],
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[SearchHit], int]:
    """Many names outside printable ASCII match: their (type, namespace, name, time), sorted here."""
    fold = q.casefold()
    rows: list[Any] = []
    for type_, table, scope in scopes:
        c = table.c
        wanted = [_ascii_like(dialect, c.name, fold), _wide(dialect, c.name)]
        if by_namespace:
            wanted.append(c.namespace_id.in_(sorted(by_namespace)))
        part = _part(type_, table, c.name).where(or_(*wanted), *scope)
        # The listing's order (namespace, then name, as the database orders text): ties keep it below.
        found = conn.execute(part.order_by(t.namespaces.c.name, c.name)).all()
        rows += [r for r in found if matches(q, r.name) or matches(q, r.namespace)]
    rows.sort(key=lambda r: (r.name.casefold(), r.namespace, r.type))
    if sort == "updated_at":
        rows.sort(key=lambda r: iso(stored_time(r.created_at)) or "", reverse=True)
    page = rows[offset : offset + limit]
    return [SearchHit(r.type, r.namespace, r.name, stored_time(r.created_at)) for r in page], len(rows)


def _ascii_like(dialect: str, name: Any, fold: str) -> ColumnElement[bool]:
    """Names of printable ASCII that the case-folded pattern matches (none when it is not ASCII itself:
    every character of a folded printable-ASCII name is ASCII, so it would have to be a wildcard)."""
    if not fold.isascii():
        return false()
    like = "%" + fold.replace("\\", "\\\\") + "%"
    if dialect == "postgresql":
        return and_(name.ilike(like), not_(_wide(dialect, name)))
    return and_(name.like(like, escape="\\"), not_(_wide(dialect, name)))


def _wide(dialect: str, name: Any) -> ColumnElement[bool]:
    found: ColumnElement[bool] = (
        name.op("~", is_comparison=True)(WIDE)
        if dialect == "postgresql"
        else name.op("GLOB", is_comparison=True)(SQLITE_WIDE)
    )
    return found


def _c(dialect: str, column: Any) -> Any:
    """Text compared by code point, as Python compares it (SQLite's default; PostgreSQL's "C" collation)."""
    return column.collate("C") if dialect == "postgresql" else column


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)
