"""Users, tokens, grants, classifications and audit queries in the SQL store (issue 6).

:class:`SecurityStore` is mixed into :class:`~datatrail.store.sql.store.SqlStore`.
Every change to users, tokens or grants appends its audit entry in the same
transaction. Reads of the audit log for `audit log`, `audit verify` and
"who accessed this dataset" are here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from datatrail.core.accounts import TokenInfo, UserInfo
from datatrail.core.chain import Checkpoint
from datatrail.core.errors import Conflict, InvalidInput, NotFound
from datatrail.core.model import Ref, Version, validate_name
from datatrail.core.privacy import ALL_COLUMNS
from datatrail.core.results import AuditEntry
from datatrail.core.roles import Grant, Principal, check_pattern, check_role
from datatrail.core.times import stored_time
from datatrail.core.tokens import NewToken, check_token_id, new_token, parse_token, same_hash
from datatrail.store.sql import tables as t
from datatrail.store.wire import audit_to_wire

MAX_PROPAGATION = 50  # upstream steps followed to find inherited classifications


def audit_entry(r: Any) -> AuditEntry:
    """The entry of a row of the ``audit`` table."""
    return AuditEntry(
        r.seq, stored_time(r.time), r.actor, r.action, r.target, r.outcome, r.details or {}, r.prev_hash, r.hash
    )


def with_origin(details: dict[str, Any], origin: str | None = None) -> dict[str, Any]:
    """``details`` with the request's origin (the client's IP, or \"local\") when one is known."""
    return {**details, "origin": origin} if origin else details


class SecurityStore:
    """Access-control tables and audit reads; mixed into SqlStore (which provides ``_write``/``_read``)."""

    # Provided by SqlStore.
    _write: Any
    _read: Any
    _append_audit: Any

    # ------------------------------------------------------------ users

    def has_users(self) -> bool:
        with self._read() as conn:
            return conn.execute(select(t.users.c.id).limit(1)).first() is not None

    def _user_id(self, conn: Connection, name: str) -> int:
        uid = conn.execute(select(t.users.c.id).where(t.users.c.name == name)).scalar()
        if uid is None:
            msg = f"no user named {name!r}; `datatrail user list` lists them, `datatrail user add {name}` adds one"
            raise NotFound(msg)
        return int(uid)

    def add_user(self, name: str, *, admin: bool, actor: str, origin: str | None = None) -> UserInfo:
        name = validate_name(name, "user name")
        now = datetime.now(UTC)
        with self._write() as conn:
            if conn.execute(select(t.users.c.id).where(t.users.c.name == name)).first() is not None:
                msg = f"user {name!r} exists already; `datatrail user list` shows it"
                raise Conflict(msg)
            conn.execute(t.users.insert().values(name=name, admin=admin, created_at=now, created_by=actor))
            self._append_audit(
                conn,
                actor=actor,
                action="user.add",
                target=f"user:{name}",
                details=with_origin({"admin": admin}, origin),
                event_id=None,
            )
        return UserInfo(name, admin, now, actor, ())

    def list_users(self) -> list[UserInfo]:
        u, g = t.users.c, t.grants.c
        with self._read() as conn:
            grants: dict[int, list[Grant]] = {}
            for r in conn.execute(select(g.user_id, g.role, g.pattern).order_by(g.pattern, g.role)):
                grants.setdefault(r.user_id, []).append(Grant(r.role, r.pattern))
            return [
                UserInfo(r.name, bool(r.admin), stored_time(r.created_at), r.created_by, tuple(grants.get(r.id, ())))
                for r in conn.execute(select(t.users).order_by(u.name))
            ]

    def principal_named(self, name: str) -> Principal | None:
        """The principal of a user (with grants), or None if there is no such user."""
        for user in self.list_users():
            if user.name == name:
                return Principal(user.name, user.admin, user.grants)
        return None

    # ------------------------------------------------------------ tokens

    def create_token(
        self,
        user: str,
        *,
        label: str | None,
        expires_at: datetime | None,
        actor: str,
        origin: str | None = None,
    ) -> tuple[TokenInfo, NewToken]:
        """A new token for ``user``: the info to show and the secret to print once (only its hash is kept)."""
        if label is not None and (len(label) > 200 or any(c in label for c in "\r\n\0")):
            msg = "a token label is one line of at most 200 characters"
            raise InvalidInput(msg)
        token = new_token()
        now = datetime.now(UTC)
        with self._write() as conn:
            uid = self._user_id(conn, user)
            conn.execute(
                t.tokens.insert().values(
                    id=token.id,
                    user_id=uid,
                    label=label,
                    secret_hash=token.secret_hash,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            details = {"token": token.id, "label": label, "expires_at": expires_at.isoformat() if expires_at else None}
            self._append_audit(
                conn,
                actor=actor,
                action="token.create",
                target=f"user:{user}",
                details=with_origin(details, origin),
                event_id=None,
            )
        return TokenInfo(token.id, user, label, now, expires_at, None), token

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        k, u = t.tokens.c, t.users.c
        q = (
            select(k.id, u.name, k.label, k.created_at, k.expires_at, k.revoked_at)
            .join(t.users, u.id == k.user_id)
            .order_by(k.created_at, k.id)
        )
        if user is not None:
            q = q.where(u.name == user)
        with self._read() as conn:
            return [
                TokenInfo(
                    r.id,
                    r.name,
                    r.label,
                    stored_time(r.created_at),
                    stored_time(r.expires_at),
                    stored_time(r.revoked_at),
                )
                for r in conn.execute(q)
            ]

    def revoke_token(self, token_id: str, *, actor: str, origin: str | None = None) -> TokenInfo:
        check_token_id(token_id)
        k = t.tokens.c
        now = datetime.now(UTC)
        with self._write() as conn:
            row = conn.execute(
                select(k.id, k.revoked_at, t.users.c.name)
                .join(t.users, t.users.c.id == k.user_id)
                .where(k.id == token_id)
            ).first()
            if row is None:
                msg = f"no token with id {token_id!r}; `datatrail token list` lists them"
                raise NotFound(msg)
            if row.revoked_at is None:
                conn.execute(t.tokens.update().where(k.id == token_id).values(revoked_at=now))
                self._append_audit(
                    conn,
                    actor=actor,
                    action="token.revoke",
                    target=f"user:{row.name}",
                    details=with_origin({"token": token_id}, origin),
                    event_id=None,
                )
        return next(tok for tok in self.list_tokens() if tok.id == token_id)

    def authenticate(self, text: str, now: datetime | None = None) -> Principal | None:
        """The principal a presented token belongs to; None when forged, unknown, expired or revoked.

        Nothing is cached: a revoked token fails on the very next request.
        """
        parsed = parse_token(text)
        if parsed is None:
            return None
        token_id, secret = parsed
        now = now or datetime.now(UTC)
        k, u = t.tokens.c, t.users.c
        with self._read() as conn:
            row = conn.execute(
                select(k.secret_hash, k.expires_at, k.revoked_at, u.id, u.name, u.admin)
                .join(t.users, u.id == k.user_id)
                .where(k.id == token_id)
            ).first()
            # Compared in constant time even when the id is unknown, so timing tells nothing.
            stored = row.secret_hash if row is not None else "0" * 64
            if not same_hash(stored, secret) or row is None:
                return None
            if row.revoked_at is not None:
                return None
            expires = stored_time(row.expires_at)
            if expires is not None and expires <= now:
                return None
            g = t.grants.c
            grants = tuple(
                Grant(r.role, r.pattern)
                for r in conn.execute(select(g.role, g.pattern).where(g.user_id == row.id).order_by(g.pattern, g.role))
            )
        return Principal(row.name, bool(row.admin), grants, token_id=token_id)

    # ------------------------------------------------------------ grants

    def add_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> bool:
        """Give ``role`` on ``pattern``; False if the user had it already (nothing written)."""
        role, pattern = check_role(role), check_pattern(pattern)
        g = t.grants.c
        with self._write() as conn:
            uid = self._user_id(conn, user)
            key = (g.user_id == uid, g.role == role, g.pattern == pattern)
            if conn.execute(select(g.user_id).where(*key)).first() is not None:
                return False
            conn.execute(
                t.grants.insert().values(
                    user_id=uid, role=role, pattern=pattern, created_at=datetime.now(UTC), created_by=actor
                )
            )
            self._append_audit(
                conn,
                actor=actor,
                action="grant.add",
                target=f"user:{user}",
                details=with_origin({"role": role, "pattern": pattern}, origin),
                event_id=None,
            )
        return True

    def remove_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> None:
        role, pattern = check_role(role), check_pattern(pattern)
        g = t.grants.c
        with self._write() as conn:
            uid = self._user_id(conn, user)
            gone = conn.execute(delete(t.grants).where(g.user_id == uid, g.role == role, g.pattern == pattern))
            if not gone.rowcount:
                msg = f"user {user!r} has no {role} grant on {pattern!r}; `datatrail user list` shows the grants"
                raise NotFound(msg)
            self._append_audit(
                conn,
                actor=actor,
                action="grant.revoke",
                target=f"user:{user}",
                details=with_origin({"role": role, "pattern": pattern}, origin),
                event_id=None,
            )

    # ------------------------------------------------------------ audit

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
        with self._write() as conn:
            self._append_audit(
                conn,
                actor=actor,
                action=action,
                target=target[:2000] if target else None,
                details=with_origin(details or {}, origin),
                event_id=None,
                outcome=outcome,
            )

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
        with self._read() as conn:
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
        return None, self._audit_rows()

    def _audit_rows(self) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            with self._read() as conn:
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
        with self._read() as conn:
            row = conn.execute(select(a.seq, a.hash).order_by(a.seq.desc()).limit(1)).first()
        return Checkpoint(int(row.seq), row.hash) if row else None

    # ------------------------------------------------------------ classifications

    def classifications(self, version: Version) -> dict[str, list[str]]:
        """Column → sorted labels of a version: its dataset's own, and those inherited from upstream."""
        if version.id is None:
            return {}
        with self._read() as conn:
            found = effective_classifications(conn, version.id)
        return {column: sorted(labels) for column, labels in sorted(found.items())}


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


def _columns(profile: Any, schema: Any) -> set[str] | None:
    value = json.loads(profile) if isinstance(profile, str) else profile
    if isinstance(value, dict) and isinstance(value.get("columns"), list):
        return {str(c.get("name")) for c in value["columns"] if isinstance(c, dict)}
    fields = json.loads(schema) if isinstance(schema, str) else schema
    if isinstance(fields, list) and fields:
        return {str(f.get("name")) for f in fields if isinstance(f, dict)}
    return None


def effective_classifications(conn: Connection, version_id: int) -> dict[str, set[str]]:
    """Direct classifications of the version's dataset, plus those flowing down from its producing run's
    inputs: along column lineage where the run reported it, else by column name (or ``*`` for every
    column when the name is not among the version's columns, or they are unknown)."""
    if conn.execute(select(t.classifications.c.dataset_id).limit(1)).first() is None:
        return {}  # nothing is classified anywhere
    memo: dict[int, dict[str, set[str]]] = {}
    return _effective(conn, version_id, memo, 0)


def _effective(conn: Connection, vid: int, memo: dict[int, dict[str, set[str]]], depth: int) -> dict[str, set[str]]:
    if vid in memo:
        return memo[vid]
    memo[vid] = {}  # a cycle (which lineage should not have) ends here
    v, c, io = t.versions.c, t.classifications.c, t.run_io.c
    row = conn.execute(select(v.dataset_id, v.run_pk, v.profile, v.schema).where(v.id == vid)).first()
    if row is None:
        return {}
    out: dict[str, set[str]] = {}
    for r in conn.execute(select(c.column_name, c.label).where(c.dataset_id == row.dataset_id)):
        out.setdefault(r.column_name, set()).add(r.label)
    if row.run_pk is not None and depth < MAX_PROPAGATION:
        inputs = [
            r.version_id
            for r in conn.execute(select(io.version_id).where(io.run_pk == row.run_pk, io.direction == t.INPUT))
            if r.version_id != vid
        ]
        columns = _columns(row.profile, row.schema)
        ce = t.column_edges.c
        for iv in inputs:
            upstream = _effective(conn, iv, memo, depth + 1)
            if not upstream:
                continue
            edges = conn.execute(
                select(ce.output_column, ce.input_column).where(ce.output_version_id == vid, ce.input_version_id == iv)
            ).all()
            if edges:
                everything = upstream.get(ALL_COLUMNS, set())
                for e in edges:
                    labels = upstream.get(e.input_column, set()) | everything
                    if labels and e.output_column != ALL_COLUMNS:
                        out.setdefault(e.output_column, set()).update(labels)
                continue
            for column, labels in upstream.items():
                same = column if columns is not None and (column in columns or column == ALL_COLUMNS) else ALL_COLUMNS
                out.setdefault(same, set()).update(labels)
    memo[vid] = out
    return out
