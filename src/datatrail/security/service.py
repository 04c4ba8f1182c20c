"""The security operations of :class:`~datatrail.service.Trail` (mixed in): principals, tokens,
grants, classifications, the audit log and its verification, and per-request scoping.

The embedded store acts as the configured or operating-system user with no
restriction (whoever can open the file can read it) and records reads in the
audit log like the server does. A server builds one scoped Trail per request
(:meth:`SecurityOps.scoped`) whose store is a :class:`~datatrail.security.guard.GuardedStore`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from datatrail.core.chain import ChainReport, Checkpoint, verify_chain
from datatrail.core.errors import Forbidden, InvalidInput
from datatrail.core.model import Ref, Version
from datatrail.core.privacy import ALL_COLUMNS, check_label
from datatrail.core.results import AuditEntry
from datatrail.core.roles import Principal, may_grant
from datatrail.core.tokens import parse_expiry
from datatrail.events import PRODUCER, now
from datatrail.security.guard import Access, GuardedStore

if TYPE_CHECKING:
    from datatrail.core.accounts import TokenInfo, UserInfo
    from datatrail.store.base import Store

TAGS_FACET = "https://openlineage.io/spec/facets/1-0-0/TagsDatasetFacet.json#/$defs/TagsDatasetFacet"
ADMIN_HERE = (
    "`{what}` changes the store's users, tokens and grants directly: run it where the store is "
    "(datatrail --store sqlite:///… or postgresql://… {what} …), not through a server"
)


def parse_since(text: str | datetime | None) -> datetime | None:
    """``2026-11-01``, an ISO 8601 time, or a duration back from now (``7d``, ``12h``)."""
    if text is None or isinstance(text, datetime):
        return text.astimezone(UTC) if isinstance(text, datetime) and text.tzinfo else text
    value = text.strip()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            ahead = parse_expiry(value, datetime.now(UTC))
        except InvalidInput:
            ahead = None
        if ahead is None:
            msg = f"invalid time {text!r}: give an ISO 8601 date or time (2026-11-01T09:00) or a duration (7d, 12h)"
            raise InvalidInput(msg) from None
        return datetime.now(UTC) - (ahead - datetime.now(UTC))
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


class SecurityOps:
    """Mixed into Trail: see the module docstring."""

    if TYPE_CHECKING:
        store: Store
        user: str

        def _lookup(self, ref: str | Ref | Version) -> Version: ...

    access: Access
    _audit_reads: bool

    # ------------------------------------------------------------ principal and scoping

    def _init_access(self) -> None:
        self.access = Access(Principal(self.user, unrestricted=True), "local", self._record, seen=None)
        self._audit_reads = True

    def _record(self, **entry: Any) -> None:
        record = getattr(self.store, "record_access", None)
        if record is not None:  # a remote store's server records its own reads
            record(**entry)

    def _note(self, action: str, target: str | None) -> None:
        """Record a read on the embedded store (a scoped server Trail records in its GuardedStore)."""
        if self._audit_reads:
            self.access.note(action, target)

    @property
    def principal(self) -> Principal:
        return self.access.principal

    def scoped(self, principal: Principal, origin: str) -> Any:
        """A Trail for one request: the same store seen through ``principal``'s grants, reads audited once."""
        trail = copy.copy(self)
        record = getattr(self.store, "record_access", None)
        trail.access = Access(principal, origin, record)
        trail.store = cast(Any, GuardedStore(self.store, trail.access))
        trail.user = principal.name
        trail._audit_reads = False
        return trail

    def _sql(self, what: str) -> Any:
        """The store's security tables (SQL stores; a server's store takes grants too)."""
        store = getattr(self.store, "inner", self.store)
        needed = "add_grant" if what in ("grant", "revoke") else "add_user"
        if getattr(store, needed, None) is None:
            raise InvalidInput(ADMIN_HERE.format(what=what))
        return store

    def _admin(self, what: str) -> None:
        if not self.principal.everything:
            msg = f"{self.principal.name} may not {what}: it needs an admin"
            self.access.note(what.replace(" ", "."), None, "denied")
            raise Forbidden(msg)

    # ------------------------------------------------------------ users, tokens, grants

    def add_user(self, name: str, *, admin: bool = False) -> UserInfo:
        """Add a user (``admin`` may do everything); give it a token with :meth:`create_token`.

        >>> trail.add_user("ada", admin=True)  # doctest: +SKIP
        """
        store = self._sql("user add")
        self._admin("add users")
        info: UserInfo = store.add_user(name, admin=admin, actor=self.user, origin=self.access.origin)
        return info

    def users(self) -> list[UserInfo]:
        store = self._sql("user list")
        self._admin("list users")
        found: list[UserInfo] = store.list_users()
        return found

    def create_token(
        self, user: str, *, expires: str | None = "90d", label: str | None = None
    ) -> tuple[TokenInfo, str]:
        """A new API token for ``user``: (its info, the secret text to hand over once; only a hash is kept).

        >>> info, secret = trail.create_token("ada", expires="30d", label="laptop")  # doctest: +SKIP
        """
        store = self._sql("token create")
        self._admin("create tokens")
        expires_at = parse_expiry(expires, datetime.now(UTC))
        info, token = store.create_token(
            user, label=label, expires_at=expires_at, actor=self.user, origin=self.access.origin
        )
        return info, token.text

    def tokens(self) -> list[TokenInfo]:
        store = self._sql("token list")
        self._admin("list tokens")
        found: list[TokenInfo] = store.list_tokens()
        return found

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token: the next request that presents it is refused."""
        store = self._sql("token revoke")
        self._admin("revoke tokens")
        info: TokenInfo = store.revoke_token(token_id, actor=self.user, origin=self.access.origin)
        return info

    def grant(self, user: str, role: str, pattern: str) -> bool:
        """Give ``user`` a role (viewer, editor, owner) on the namespaces matching ``pattern``.

        Admins grant anywhere; an owner grants inside its own namespaces. False if it was there already.

        >>> trail.grant("bob", "editor", "team-*")  # doctest: +SKIP
        """
        store = self._sql("grant")
        self._may_grant(pattern)
        added: bool = store.add_grant(user, role, pattern, actor=self.user, origin=self.access.origin)
        return added

    def revoke(self, user: str, role: str, pattern: str) -> None:
        """Take a grant back (exactly as given: same role, same pattern)."""
        store = self._sql("revoke")
        self._may_grant(pattern)
        store.remove_grant(user, role, pattern, actor=self.user, origin=self.access.origin)

    def _may_grant(self, pattern: str) -> None:
        if not may_grant(self.principal, pattern):
            self.access.note("grant", f"namespace:{pattern}", "denied")
            msg = (
                f"{self.principal.name} may not grant on {pattern!r}: it needs an admin or an owner of those namespaces"
            )
            raise Forbidden(msg)

    # ------------------------------------------------------------ classifications

    def classify(self, ref: str | Ref | Version, column: str, label: str = "pii") -> None:
        """Classify a column of a dataset (``*``: every column); profiles of it and of what is derived from
        it downstream keep only counts from now on.

        >>> trail.classify("raw/customers", "email", "pii")  # doctest: +SKIP
        """
        label = check_label(label)
        version: Version = self._lookup(ref)
        if not isinstance(column, str) or not column.strip() or len(column) > 1024:
            msg = f"invalid column {column!r}: give a column name, or * for the whole dataset"
            raise InvalidInput(msg)
        if column != ALL_COLUMNS:
            profile = self.store.profile(version)
            names = [c.get("name") for c in (profile or {}).get("columns") or ()]
            if names and column not in names:
                msg = f"{version.ref} has no column {column!r}; its columns: {', '.join(map(str, names))}"
                raise InvalidInput(msg)
        tag = {"key": "classification", "value": label, "source": "datatrail", "field": column}
        if column == ALL_COLUMNS:
            tag.pop("field")
        event = {
            "eventTime": now().isoformat(),
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {
                "namespace": version.namespace,
                "name": version.name,
                "facets": {"tags": {"_producer": PRODUCER, "_schemaURL": TAGS_FACET, "tags": [tag]}},
            },
        }
        self.store.ingest(event, self.user, "dataset.classify")

    def classifications(self, ref: str | Ref | Version) -> dict[str, list[str]]:
        """Column → labels of a version: set on its dataset or inherited from upstream (SQL stores)."""
        version: Version = self._lookup(ref)
        store = getattr(self.store, "inner", self.store)
        read = getattr(store, "classifications", None)
        if read is None:
            return {
                c["name"]: c["classified"]
                for c in (self.store.profile(version) or {}).get("columns") or ()
                if c.get("classified")
            }
        return {k: sorted(v) for k, v in sorted(read(version.id).items())}

    # ------------------------------------------------------------ the audit log

    def audit_entries(
        self,
        *,
        dataset: str | Ref | None = None,
        user: str | None = None,
        action: str | None = None,
        since: str | datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, newest first, of a dataset (any version), a user, an action (``token.*``), since a time.

        >>> [e.action for e in trail.audit_entries(dataset="raw/penguins", limit=5)]  # doctest: +SKIP
        ['dataset.read', 'dataset.add']
        """
        ref = Ref.parse(dataset) if isinstance(dataset, str) else dataset
        if ref is not None and ref.selector is not None:
            ref = Ref(ref.namespace, ref.name, None)
        when = parse_since(since)
        if not isinstance(limit, int) or limit < 1:
            msg = f"invalid limit {limit!r}: give a whole number above 0"
            raise InvalidInput(msg)
        query = getattr(self.store, "audit_entries", None)
        if query is not None and self.principal.everything:
            found: list[AuditEntry] = query(dataset=ref, user=user, action=action, since=when, limit=limit)
            return found
        from datatrail.store.sql.security import targets_dataset  # pure helpers, no SQL run

        out = []
        for e in self.store.audit_log(10_000):
            if ref is not None and not targets_dataset(e.target, ref.namespace, ref.name):
                continue
            if user is not None and e.actor != user:
                continue
            if action is not None and not (
                e.action.startswith(action[:-1]) if action.endswith("*") else e.action == action
            ):
                continue
            if when is not None and e.time < when:
                continue
            out.append(e)
            if len(out) >= limit:
                break
        return out

    def access_log(self, ref: str | Ref | Version, limit: int = 100) -> list[AuditEntry]:
        """Who accessed a dataset (read it, wrote it, was refused), and when: newest first."""
        version: Version = self._lookup(ref)
        return self.audit_entries(dataset=Ref(version.namespace, version.name, None), limit=limit)

    def _audit_rows(self) -> Iterator[dict[str, Any]]:
        rows = getattr(self.store, "audit_rows", None)
        if rows is not None and self.principal.everything:
            yield from rows()
            return
        from datatrail.store.wire import audit_to_wire

        for e in reversed(self.store.audit_log(10_000)):
            yield audit_to_wire(e)

    def verify_audit(self, checkpoint: str | Checkpoint | None = None) -> ChainReport:
        """Recompute the audit hash chain; the report names the first entry changed, deleted, inserted
        or reordered, and with a ``checkpoint`` (``SEQ:HASH``) a truncated or rebuilt chain.

        >>> report = trail.verify_audit("120:9f86d081…")  # doctest: +SKIP
        >>> report.ok, [p.message for p in report.problems]  # doctest: +SKIP
        """
        point = Checkpoint.parse(checkpoint) if isinstance(checkpoint, str) else checkpoint
        self._admin("verify the audit log")
        rows = list(self._audit_rows()) if getattr(self.store, "audit_rows", None) is None else self._audit_rows()
        start = None
        if isinstance(rows, list) and rows and int(rows[0]["seq"]) > 1:
            # Through a server only the newest entries come back: verify that window from its first link.
            start = Checkpoint(int(rows[0]["seq"]) - 1, rows[0]["prev_hash"])
        return verify_chain(rows, point, start)

    def audit_checkpoint(self) -> Checkpoint | None:
        """The head of the audit chain (``SEQ:HASH``) to keep outside the database; None when empty."""
        self._admin("read the audit checkpoint")
        head = getattr(self.store, "audit_head", None)
        if head is not None:
            found: Checkpoint | None = head()
            return found
        entries = self.store.audit_log(1)
        return Checkpoint(entries[0].seq, entries[0].hash) if entries else None
