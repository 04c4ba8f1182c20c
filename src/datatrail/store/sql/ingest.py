"""Ingest into the SQL store: OpenLineage events to rows, each with its audit entry, in as few round trips as possible.

An event is parsed and hashed before the write lock (incoming.py), then stored
in a write transaction: its raw row, its changes (apply.py) and its audit entry
(:func:`store_event`). Threads of one process that ingest at the same time share
one transaction (group commit, :meth:`Ingest.ingest`), and a batch is one
transaction (:meth:`Ingest.ingest_many`); on PostgreSQL each transaction first
looks up what its events need in one round trip (prefetch.py). See
docs/architecture.md, "Few round trips per event".
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.exc import DBAPIError

from datatrail.core.changes import Event
from datatrail.core.errors import Conflict, DatatrailError, InvalidInput, NotFound, StoreUnavailable
from datatrail.core.model import Ref
from datatrail.core.results import IngestResult
from datatrail.core.touches import Check
from datatrail.store.sql.apply import apply_changes
from datatrail.store.sql.audit import AuditTables, with_origin
from datatrail.store.sql.database import Database
from datatrail.store.sql.handoff import Handoff, Sent, handoff_enabled, store_socket_name
from datatrail.store.sql.incoming import Incoming
from datatrail.store.sql.prefetch import send_prefetch
from datatrail.store.sql.prepared import compile_every
from datatrail.store.sql.queries import version_by_id
from datatrail.store.sql.statements import ABSENT, EVENT_BY_HASH, EVENT_INSERT, EVENT_INSERT_WITH_ID
from datatrail.store.sql.transaction import Tx


class _Pending:
    """One caller's event in a group commit, and what became of it."""

    __slots__ = ("action", "detail", "done", "error", "future", "item", "result", "stored")

    def __init__(self, item: Incoming, action: str, detail: bool, future: Future[IngestResult] | None = None) -> None:
        self.item, self.action, self.detail = item, action, detail
        self.done = False
        self.result: IngestResult | None = None
        self.error: BaseException | None = None
        # The caller waits on its Event (Ingest.ingest), or is told through its future (Ingest.submit).
        self.future = future
        self.stored = threading.Event() if future is None else None

    def finish(self, result: IngestResult | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True
        if self.stored is not None:
            self.stored.set()
        elif self.future is not None:
            if result is not None and error is None:
                self.future.set_result(result)
            else:
                self.future.set_exception(error or DatatrailError("the event was not stored; retry"))


def _write_error(exc: DBAPIError) -> DatatrailError:
    return DatatrailError(f"could not write to the store: {str(exc.orig).strip().splitlines()[0]}")


def store_event(tx: Tx, audit: AuditTables, item: Incoming, action: str, detail: bool) -> IngestResult:
    """One event inside the caller's write transaction: raw event, derived state, audit entry."""
    changes, digest = item.changes, item.digest
    run_id = changes.run.run_id if changes.run else None
    seen = tx.get(("event", digest))
    if seen is not None and seen is not ABSENT:  # the same event again (a client retry): nothing to do
        return IngestResult(int(seen), True, (), run_id)
    row = {
        "event_hash": digest,
        "event_type": changes.event_type,
        "event_time": changes.event_time,
        "run_id": run_id,
        "payload": item.payload,
        "received_at": datetime.now(UTC),
    }
    event_id = tx.take_id("events") if seen is ABSENT else None
    if event_id is not None:  # known new, with an id reserved by prefetch: written with the batch
        tx.defer(EVENT_INSERT_WITH_ID, "events", {"id": event_id, **row})
    else:
        inserted = tx.scalar(EVENT_INSERT, **row)
        if inserted is None:
            return IngestResult(int(tx.scalar(EVENT_BY_HASH, h=digest)), True, (), run_id)
        event_id = int(inserted)
    tx.put(("event", digest), event_id)
    written = apply_changes(tx, changes, event_id, item.check)
    targets = [w.ref for w in written] or ([f"run:{run_id}"] if run_id else [])
    # An event that names datasets but no version of them (classify, facets) targets the datasets.
    targets = targets or [str(Ref(d.namespace, d.name)) for d in changes.datasets]
    audit.append(
        tx,
        actor=changes.actor,
        action=action,
        target=", ".join(targets)[:2000] if targets else None,
        details=with_origin({"event": digest, "new": [w.ref for w in written if w.new]}, item.origin),
        event_id=event_id,
    )
    # Read inside the transaction, after every change of this event.
    versions = tuple((version_by_id(tx, w.id), w.new) for w in written) if detail else ()
    return IngestResult(event_id, False, versions, run_id)


class Ingest:
    """The store's :class:`~datatrail.store.base.Writes`: events in, each applied with its audit entry."""

    def __init__(self, db: Database, audit: AuditTables) -> None:
        self._db = db
        self._audit = audit
        self._queue: list[_Pending] = []  # events waiting for the next group commit (see ingest)
        self._queue_lock = threading.Lock()
        self._wake = threading.Condition(self._queue_lock)  # the writer waits here for events
        self._writer: threading.Thread | None = None
        self._closing = False
        self._storing = False  # a group is being stored (see submit)
        # Several processes of one store (the server's workers): one stores the events of all (handoff.py).
        name = store_socket_name(db.uri) if handoff_enabled() else None
        self._handoff = Handoff(name, self._accept, self._store_here) if name is not None else None

    def prepare(self) -> None:
        """Compile the write path's statements now (the store is opened and migrated with its Database)."""
        compile_every(self._db.engine.dialect)

    def ingest(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
        check: Check | None = None,
    ) -> IngestResult:
        """Store an event and apply it; without ``detail`` the result lists no versions (cheaper).

        Group commit: the caller parses and hashes its event and queues it. If no
        thread of this process is writing, it takes the write lock and stores the
        queue itself (a lone caller: no hand-over); otherwise it waits, and the
        store's writer thread (one per store and process, started on first use)
        takes the lock when it is free, stores every event queued by then in one
        transaction and hands each caller its own result: threads that ingest at
        the same time (the server's requests) share transactions without queueing
        on the lock one by one. A group that fails for any reason but the store
        being down is stored again one event per transaction, so an event only
        ever fails for its own reason. :meth:`close` stores what is queued first.
        With the hand-off between processes (handoff.py), a follower sends the
        event to the leader and waits for its answer.
        """
        handoff = self._handoff
        if handoff is not None and check is None and not handoff.leading:
            future = handoff.forward(Sent(event, actor, action, detail, origin))
            if future is not None:
                return future.result()
        pending = _Pending(Incoming.of(event, actor, origin, check), action, detail)
        with self._wake:
            self._queue.append(pending)
        if self._db.writers.acquire(blocking=False):  # nobody is writing: no hand-over, store it here
            try:
                self._take_and_store()
            finally:
                self._db.writers.release()
        else:
            with self._wake:
                if not self._closing:
                    self._start_writer()
                    self._wake.notify()
            if self._closing:  # closed: no writer any more, the caller stores what is queued itself
                self._write_queued()
        assert pending.stored is not None
        pending.stored.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def submit(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
        check: Check | None = None,
    ) -> Future[IngestResult] | None:
        """Parse and hash the event here, queue it for the writer thread and return at once.

        The future gets what :meth:`ingest` would return or raise (an event that does
        not parse raises here, before anything is queued). The caller never takes the
        write lock, so an event loop can call this (the server's ingest route): while
        events are being stored it saves the hop to a thread that would only wait for
        the writer. None, and nothing done, while nobody is storing: :meth:`ingest`
        in a thread then stores the event at once itself, with no hand-over.
        A follower of the hand-off between processes (handoff.py) sends the event
        to the leader unparsed and returns the future of its answer (which then
        carries the error of an event that does not parse).
        """
        handoff = self._handoff
        if handoff is not None and check is None and not handoff.leading:
            sent = Sent(event, actor, action, detail, origin)
            return handoff.forward(sent) or self._accept(sent)  # None: this process leads now
        if not self._storing and not self._queue and not self._closing:
            return None
        future: Future[IngestResult] = Future()
        self._queue_for_writer(_Pending(Incoming.of(event, actor, origin, check), action, detail, future))
        return future

    def _accept(self, sent: Sent) -> Future[IngestResult]:
        """An event of another process (or of this one, once it leads) queued for the writer thread."""
        future: Future[IngestResult] = Future()
        self._store_here(sent, future)
        return future

    def _store_here(self, sent: Sent, future: Future[IngestResult]) -> None:
        """Parse an event sent by a follower and queue it for the writer; its outcome goes to ``future``."""
        try:
            item = Incoming.of(sent.event, sent.actor, sent.origin)
        except Exception as exc:  # what ingest would have raised before queueing it
            future.set_exception(exc)
            return
        self._queue_for_writer(_Pending(item, sent.action, sent.detail, future))

    def _queue_for_writer(self, pending: _Pending) -> None:
        with self._wake:
            self._queue.append(pending)
            if not self._closing:
                self._start_writer()
                self._wake.notify()
        if self._closing:  # closed: no writer any more, the caller stores what is queued itself
            self._write_queued()

    def _start_writer(self) -> None:
        """Start the writer thread on first use, or again if it died (the caller holds ``_wake``)."""
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._write_loop, name="datatrail-writer", daemon=True)
            self._writer.start()

    def _write_loop(self) -> None:
        """The writer thread: a group commit of whatever is queued, until :meth:`close` and an empty queue."""
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue:
                    return
            self._write_queued()

    def _write_queued(self) -> None:
        # The queue is taken once the lock is held: events queued while another
        # transaction ran (of this process's or another's) join this one.
        with self._db.writers:
            self._take_and_store()

    def _take_and_store(self) -> None:
        with self._wake:
            group, self._queue = self._queue, []
            self._storing = True
        try:
            if group:
                self._ingest_group(group)
        finally:
            self._storing = False

    def close(self) -> None:
        """Store what is queued, then stop the writer thread."""
        if self._handoff is not None:  # no more events from other processes; ours unanswered are stored here
            self._handoff.stop_accepting()
        with self._wake:
            self._closing = True
            self._wake.notify_all()
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        if self._handoff is not None:
            self._handoff.close()

    def _ingest_group(self, group: list[_Pending]) -> None:
        try:
            if len(group) > 1:
                try:
                    with self._db.write(first=lambda tx: send_prefetch(tx, [p.item for p in group])) as tx:
                        results = [store_event(tx, self._audit, p.item, p.action, p.detail) for p in group]
                    for p, result in zip(group, results, strict=True):
                        p.finish(result)
                    return
                except StoreUnavailable as exc:
                    for p in group:
                        p.finish(error=exc)
                    return
                except Exception:  # rolled back: each event again, alone, for its own outcome
                    pass
            for p in group:
                try:
                    # The lookups go with the lock: little on loopback, a lot over a network.
                    with self._db.write(first=partial(send_prefetch, items=[p.item])) as tx:
                        result = store_event(tx, self._audit, p.item, p.action, p.detail)
                    # Only once committed: the caller's next read must find it, and a failed commit is its error.
                    p.finish(result)
                except DBAPIError as exc:
                    p.finish(error=_write_error(exc))
                except Exception as exc:  # handed to the caller, raised in its own thread
                    p.finish(error=exc)
        finally:
            for p in group:  # never leave a caller waiting, whatever happened
                if not p.done:
                    p.finish(error=DatatrailError("the event was not stored; retry"))
            if self._handoff is not None:  # the other processes' answers, one message each
                self._handoff.flush()

    def ingest_many(
        self,
        events: Sequence[Event],
        actor: str,
        action: str,
        *,
        origin: str | None = None,
        check: Check | None = None,
    ) -> list[IngestResult | DatatrailError]:
        """Store many events in one transaction (one commit: the server's batch endpoint).

        Each event gets its result, or the error that refused it (an invalid event is
        skipped, inside a savepoint, and the others are stored). A store failure
        rolls back the whole batch and raises: the client retries, and the repeats
        are no-ops.
        """
        out: list[IngestResult | DatatrailError] = []
        parsed: list[tuple[int, Incoming]] = []
        for i, raw in enumerate(events):
            try:  # parsed and hashed before taking the write lock
                parsed.append((i, Incoming.of(raw, actor, origin, check)))
                out.append(DatatrailError("not stored"))
            except DatatrailError as exc:
                out.append(exc)
        try:
            try:
                # Nearly every batch is valid: store it without a savepoint per event.
                with self._db.write(first=lambda tx: send_prefetch(tx, [item for _, item in parsed])) as tx:
                    for i, item in parsed:
                        out[i] = store_event(tx, self._audit, item, action, detail=False)
                return out
            except (InvalidInput, NotFound, Conflict):
                pass  # rolled back; again, with each event in its own savepoint
            with self._db.write(first=lambda tx: send_prefetch(tx, [item for _, item in parsed])) as tx:
                for i, item in parsed:
                    try:
                        with tx.savepoint():
                            out[i] = store_event(tx, self._audit, item, action, detail=False)
                    except (InvalidInput, NotFound, Conflict) as exc:
                        out[i] = exc
        except DBAPIError as exc:
            raise _write_error(exc) from exc
        return out
