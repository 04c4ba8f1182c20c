"""Looking up, in one round trip, what a transaction's events would each ask for one by one (PostgreSQL).

Which events are stored already (and ids for the others, so their rows can be
written later in one go), their runs, the version current for each input at
its event's time, and whether the store has dataset links: five queries, sent
with the write lock (database.py) in one round trip. Only worth it where a
statement is a network round trip; the answers go into the transaction's memory
(transaction.py), which each event then reads and keeps up to date with its own
writes (apply.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, any_, bindparam, func, select, text
from sqlalchemy.dialects import postgresql as pg_dialect

from datatrail.store.sql import tables as t
from datatrail.store.sql.incoming import Incoming
from datatrail.store.sql.prepared import Prepared
from datatrail.store.sql.statements import ABSENT, ANY_LINK, EVENTS, RUNS, VERSIONS, RunRow
from datatrail.store.sql.transaction import Tx

# Lists travel as arrays.
_EVENTS_STORED = Prepared(
    select(t.events.c.event_hash, t.events.c.id).where(
        t.events.c.event_hash == any_(bindparam("hashes", type_=pg_dialect.ARRAY(String)))
    ),
    reads=EVENTS,
)
_EVENT_IDS = Prepared(
    select(func.nextval(func.pg_get_serial_sequence("events", "id"))).select_from(
        func.generate_series(1, bindparam("n", type_=Integer))
    ),
    reads=frozenset(),
)
_RUNS = Prepared(
    select(t.runs.c.run_id, *(t.runs.c[k] for k in RunRow._fields)).where(
        t.runs.c.run_id == any_(bindparam("ids", type_=pg_dialect.ARRAY(String)))
    ),
    reads=RUNS,
)
# For each (dataset, time) pair, the version current then: what VERSION_AT asks once per pair.
_VERSIONS_AT = Prepared(
    text(
        "SELECT p.i, v.id, v.number"
        " FROM unnest(CAST(:ds AS bigint[]), CAST(:ws AS timestamptz[])) WITH ORDINALITY AS p(d, w, i)"
        " LEFT JOIN LATERAL (SELECT id, number FROM versions WHERE dataset_id = p.d AND created_at <= p.w"
        " ORDER BY number DESC LIMIT 1) v ON true"
    )
    .bindparams(
        bindparam("ds", type_=pg_dialect.ARRAY(BigInteger)),
        bindparam("ws", type_=pg_dialect.ARRAY(DateTime(timezone=True))),
    )
    .columns(i=BigInteger, id=BigInteger, number=Integer),
    reads=VERSIONS,
)


def prefetch(tx: Tx, items: Sequence[Incoming]) -> None:
    """Put into the transaction's memory what ``items`` will look up (nothing to do but on PostgreSQL)."""
    with tx.pipelined():
        read = send_prefetch(tx, items)
    if read is not None:
        read()


def send_prefetch(tx: Tx, items: Sequence[Incoming]) -> Callable[[], None] | None:
    """Send the lookups of :func:`prefetch` (in the caller's pipeline); the function returned reads their
    answers into the transaction's memory. None: nothing to look up (or not PostgreSQL).

    :meth:`~.database.Database.write` sends them in its first round trip, with the write lock."""
    if tx.dialect != "postgresql" or not items:
        return None
    digests = sorted({item.digest for item in items})
    batch = [item.changes for item in items]
    run_ids = sorted({c.run.run_id for c in batch if c.run is not None})
    pairs: set[tuple[int, datetime]] = set()
    for c in batch:
        for ds in c.datasets:
            if ds.role != "input" or ds.version is not None:
                continue
            ns = tx.get(("ns", ds.namespace))
            known = tx.get(("ds", ns.id, ds.name)) if ns is not None else None
            if known is not None:  # a dataset not seen yet has no version to find
                pairs.add((int(known.id), c.event_time))
    ordered = sorted(pairs)
    stored_q = tx.send(_EVENTS_STORED, hashes=digests)
    # An id for every event: those of repeats are left unused, as a conflicting INSERT leaves them.
    ids_q = tx.send(_EVENT_IDS, n=len(digests))
    runs_q = tx.send(_RUNS, ids=run_ids) if run_ids else None
    versions_q = tx.send(_VERSIONS_AT, ds=[d for d, _ in ordered], ws=[w for _, w in ordered]) if ordered else None
    links_q = tx.send(ANY_LINK) if tx.get(("links?",)) is None else None  # what apply.py asks each transaction

    def read() -> None:
        stored = {row.event_hash: row.id for row in stored_q.all()}
        for digest in digests:
            tx.put(("event", digest), stored.get(digest, ABSENT))
        tx.put(("ids", "events"), tuple(sorted(int(row[0]) for row in ids_q.all())))
        if runs_q is not None:
            found = {row.run_id: row for row in runs_q.all()}
            for run_id in run_ids:
                row = found.get(run_id)
                tx.put(("run", run_id), RunRow(*row[1:]) if row is not None else ABSENT)
        if versions_q is not None:
            for (d, w), row in zip(ordered, sorted(versions_q.all(), key=lambda r: r.i), strict=True):
                tx.put(("vat", d, w), (row.id, row.number or 0))
        if links_q is not None:
            tx.put(("links?",), bool(links_q.all()))

    return read
