"""Users, tokens and grants in the SQL store: every change appends its audit entry in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select

from datatrail.core.accounts import TokenInfo, UserInfo
from datatrail.core.errors import Conflict, InvalidInput, NotFound
from datatrail.core.model import validate_name
from datatrail.core.roles import Grant, Principal, check_pattern, check_role
from datatrail.core.times import stored_time
from datatrail.core.tokens import NewToken, check_token_id, new_token, parse_token, same_hash
from datatrail.store.sql import tables as t
from datatrail.store.sql.audit import AuditTables, with_origin
from datatrail.store.sql.database import Database
from datatrail.store.sql.transaction import Executes


def _user_id(db: Executes, name: str) -> int:
    uid = db.execute(select(t.users.c.id).where(t.users.c.name == name)).scalar()
    if uid is None:
        msg = f"no user named {name!r}; `datatrail user list` lists them, `datatrail user add {name}` adds one"
        raise NotFound(msg)
    return int(uid)


def _grants_of(conn: Connection, user_id: int) -> tuple[Grant, ...]:
    g = t.grants.c
    rows = conn.execute(select(g.role, g.pattern).where(g.user_id == user_id).order_by(g.pattern, g.role))
    return tuple(Grant(r.role, r.pattern) for r in rows)


class UserTables:
    """The store's :class:`~datatrail.store.base.Accounts`: users and their API tokens."""

    def __init__(self, db: Database, audit: AuditTables) -> None:
        self._db = db
        self._audit = audit

    def has_users(self) -> bool:
        with self._db.read() as conn:
            return conn.execute(select(t.users.c.id).limit(1)).first() is not None

    def add_user(self, name: str, *, admin: bool, actor: str, origin: str | None = None) -> UserInfo:
        name = validate_name(name, "user name")
        now = datetime.now(UTC)
        with self._db.write() as tx:
            if tx.execute(select(t.users.c.id).where(t.users.c.name == name)).first() is not None:
                msg = f"user {name!r} exists already; `datatrail user list` shows it"
                raise Conflict(msg)
            tx.execute(t.users.insert().values(name=name, admin=admin, created_at=now, created_by=actor))
            self._audit.append(
                tx,
                actor=actor,
                action="user.add",
                target=f"user:{name}",
                details=with_origin({"admin": admin}, origin),
                event_id=None,
            )
        return UserInfo(name, admin, now, actor, ())

    def list_users(self) -> list[UserInfo]:
        u, g = t.users.c, t.grants.c
        with self._db.read() as conn:
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
        with self._db.write() as tx:
            uid = _user_id(tx, user)
            tx.execute(
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
            self._audit.append(
                tx,
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
        with self._db.read() as conn:
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
        with self._db.write() as tx:
            row = tx.execute(
                select(k.id, k.revoked_at, t.users.c.name)
                .join(t.users, t.users.c.id == k.user_id)
                .where(k.id == token_id)
            ).first()
            if row is None:
                msg = f"no token with id {token_id!r}; `datatrail token list` lists them"
                raise NotFound(msg)
            if row.revoked_at is None:
                tx.execute(t.tokens.update().where(k.id == token_id).values(revoked_at=now))
                self._audit.append(
                    tx,
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
        with self._db.read() as conn:
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
            grants = _grants_of(conn, row.id)
        return Principal(row.name, bool(row.admin), grants, token_id=token_id)


class GrantTables:
    """The store's :class:`~datatrail.store.base.Grants`: roles of users on namespace patterns."""

    def __init__(self, db: Database, audit: AuditTables) -> None:
        self._db = db
        self._audit = audit

    def add_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> bool:
        """Give ``role`` on ``pattern``; False if the user had it already (nothing written)."""
        role, pattern = check_role(role), check_pattern(pattern)
        g = t.grants.c
        with self._db.write() as tx:
            uid = _user_id(tx, user)
            key = (g.user_id == uid, g.role == role, g.pattern == pattern)
            if tx.execute(select(g.user_id).where(*key)).first() is not None:
                return False
            tx.execute(
                t.grants.insert().values(
                    user_id=uid, role=role, pattern=pattern, created_at=datetime.now(UTC), created_by=actor
                )
            )
            self._audit.append(
                tx,
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
        with self._db.write() as tx:
            uid = _user_id(tx, user)
            gone = tx.execute(delete(t.grants).where(g.user_id == uid, g.role == role, g.pattern == pattern))
            if not gone.rowcount:
                msg = f"user {user!r} has no {role} grant on {pattern!r}; `datatrail user list` shows the grants"
                raise NotFound(msg)
            self._audit.append(
                tx,
                actor=actor,
                action="grant.revoke",
                target=f"user:{user}",
                details=with_origin({"role": role, "pattern": pattern}, origin),
                event_id=None,
            )
