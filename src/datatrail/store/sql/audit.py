"""The audit log in the SQL store: appending entries to the hash chain, and reading them back.

Every write appends its entry in its own transaction (:meth:`AuditTables.append`),
chained to the previous one by :mod:`datatrail.core.chain`'s hash. Reads of the
log serve `audit log`, `audit verify` and "who accessed this dataset".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from datatrail.core.chain import GENESIS, Checkpoint, entry_content, entry_hash
from datatrail.core.model import Ref
from datatrail.core.results import AuditEntry
from datatrail.store.sql import tables as t
from datatrail.store.sql.database import AUDIT_HEAD, Database
from datatrail.store.sql.fsck import integrity_problems
from datatrail.store.sql.queries import audit_entry
from datatrail.store.sql.statements import AUDIT_INSERT, AUDIT_LAST
from datatrail.store.sql.transaction import Tx
from datatrail.store.wire import audit_to_wire


def with_origin(details: dict[str, Any], origin: str | None = None) -> dict[str, Any]:
    """``details`` with the request's origin (the client's IP, or \"local\") when one is known."""
    return {**details, "origin": origin} if origin else details


def targets_dataset(target: str | None, namespace: str, name: str) -> bool:
    """Whether an audit target (``ref, ref…``) names the dataset or one of its versions."""
    for item in (target or "").split(", "):
        try:
            ref = Ref.parse(item.strip())
        except Exception:
            continue
        if ref.namespace == namespace and ref.name == name:
            return True
    return False


class AuditTables:
    """The store's :class:`~datatrail.store.base.AuditLog`, and the one way entries are appended."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(
        self,
        tx: Tx,
        *,
        actor: str,
        action: str,
        target: str | None,
        details: dict[str, Any],
        event_id: int | None,
        outcome: str = "allowed",
    ) -> None:
        """Chain an entry to the head, written with the transaction's other deferred writes."""
        # The write lock is held: the head read once stays the head for the whole transaction.
        last = tx.get(AUDIT_HEAD) or tx.first(AUDIT_LAST)
        seq, prev = (int(last.seq) + 1, last.hash) if last else (1, GENESIS)
        when = datetime.now(UTC)
        digest = entry_hash(prev, entry_content(seq, when.isoformat(), actor, action, target, outcome, details))
        tx.defer(
            AUDIT_INSERT,
            "audit",
            dict(
                seq=seq,
                time=when,
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                details=details,
                event_id=event_id,
                prev_hash=prev,
                hash=digest,
            ),
        )
        tx.put(AUDIT_HEAD, Checkpoint(seq, digest))

    def record_access(
        self,
        *,
        actor: str,
        action: str,
        target: str | None,
        outcome: str = "allowed",
        origin: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one audit entry for a read or a denied attempt (one INSERT in a serialised write)."""
        with self._db.write() as tx:
            self.append(
                tx,
                actor=actor,
                action=action,
                target=target[:2000] if target else None,
                details=with_origin(details or {}, origin),
                event_id=None,
                outcome=outcome,
            )

    def record_accesses(self, *, actor: str, action: str, targets: Sequence[str], origin: str | None = None) -> None:
        """An entry for each read target, as :meth:`record_access` appends it, all in one serialised write."""
        if not targets:
            return
        with self._db.write() as tx:
            for target in targets:
                self.append(
                    tx,
                    actor=actor,
                    action=action,
                    target=target[:2000],
                    details=with_origin({}, origin),
                    event_id=None,
                )

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        a = t.audit.c
        with self._db.read() as conn:
            rows = conn.execute(select(t.audit).order_by(a.seq.desc()).limit(limit)).all()
        return [audit_entry(r) for r in rows]

    def audit_entries(
        self,
        *,
        dataset: Ref | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, newest first, filtered by dataset (any version), actor, action (or prefix ``x.*``), time."""
        a = t.audit.c
        q = select(t.audit).order_by(a.seq.desc())
        if user is not None:
            q = q.where(a.actor == user)
        if action is not None:
            q = q.where(a.action.like(action[:-1] + "%") if action.endswith("*") else a.action == action)
        if since is not None:
            q = q.where(a.time >= since)
        if dataset is not None:
            q = q.where(a.target.contains(dataset.name, autoescape=True))
        found: list[AuditEntry] = []
        below: int | None = None
        with self._db.read() as conn:
            while len(found) < limit:  # pages by sequence number (no server-side cursor left open)
                page = conn.execute((q if below is None else q.where(a.seq < below)).limit(max(limit, 500))).all()
                for r in page:
                    entry = audit_entry(r)
                    if dataset is None or targets_dataset(entry.target, dataset.namespace, dataset.name):
                        found.append(entry)
                        if len(found) >= limit:
                            break
                if len(page) < max(limit, 500):
                    break
                below = int(page[-1].seq)
        return found

    def audit_rows(self) -> tuple[Checkpoint | None, Iterator[dict[str, Any]]]:
        """Every audit row in sequence order, as :func:`~datatrail.core.chain.verify_chain` reads them."""
        return None, self._rows()

    def _rows(self) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            with self._db.read() as conn:
                page = conn.execute(
                    select(t.audit).where(t.audit.c.seq > after).order_by(t.audit.c.seq).limit(1000)
                ).all()
            for r in page:
                yield audit_to_wire(audit_entry(r))
            if len(page) < 1000:
                return
            after = int(page[-1].seq)

    def audit_head(self) -> Checkpoint | None:
        a = t.audit.c
        with self._db.read() as conn:
            row = conn.execute(select(a.seq, a.hash).order_by(a.seq.desc()).limit(1)).first()
        return Checkpoint(int(row.seq), row.hash) if row else None

    def check_integrity(self) -> list[str]:
        """Problems found in the audit chain, the file and the event/version/run links; empty when sound."""
        with self._db.read() as conn:
            return list(integrity_problems(conn, self._db.dialect))
