"""The security operations of a :class:`~datatrail.service.Trail` (``trail.security``): users, tokens,
grants, classifications, the audit log and its verification.

The embedded store acts as the configured or operating-system user with no
restriction (whoever can open the file can read it) and records reads in the
audit log like the server does. A server builds one Trail per request
(:meth:`~datatrail.service.Trail.scoped`) whose store is a
:class:`~datatrail.security.guard.GuardedStore`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from datatrail.catalog import Catalog
from datatrail.core.accounts import TokenInfo, UserInfo
from datatrail.core.chain import ChainReport, Checkpoint, verify_chain
from datatrail.core.errors import InvalidInput
from datatrail.core.model import Ref, Version
from datatrail.core.privacy import ALL_COLUMNS, check_label
from datatrail.core.results import AuditEntry
from datatrail.core.roles import Principal
from datatrail.core.times import parse_time
from datatrail.core.tokens import parse_expiry
from datatrail.events import PRODUCER, now
from datatrail.security.access import Access
from datatrail.store.base import Accounts, Store

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
        return parse_time(value)
    except InvalidInput:
        try:
            ahead = parse_expiry(value, datetime.now(UTC))
        except InvalidInput:
            ahead = None
        if ahead is None:
            msg = f"invalid time {text!r}: give an ISO 8601 date or time (2026-11-01T09:00) or a duration (7d, 12h)"
            raise InvalidInput(msg) from None
        return datetime.now(UTC) - (ahead - datetime.now(UTC))


class SecurityOps:
    """Users, tokens, grants, classifications and the audit log (``trail.security``).

    Who may do what is decided by the store it is given: the embedded store acts
    for whoever can open it; a server request's store is a
    :class:`~datatrail.security.guard.GuardedStore` that refuses what the
    request's principal may not do.
    """

    def __init__(self, store: Store, access: Access, catalog: Catalog) -> None:
        self._store = store
        self._access = access
        self._catalog = catalog

    @property
    def principal(self) -> Principal:
        return self._access.principal

    @property
    def _actor(self) -> str:
        return self._access.principal.name

    @property
    def _origin(self) -> str:
        return self._access.origin

    def _accounts(self, what: str) -> Accounts:
        """The store's users and tokens; InvalidInput through a server, where they cannot be managed."""
        accounts = self._store.accounts
        if accounts is None:
            raise InvalidInput(ADMIN_HERE.format(what=what))
        return accounts

    def has_users(self) -> bool:
        """Whether the store has any user (then a server needs a token on every request)."""
        accounts = self._store.accounts
        return accounts is not None and accounts.has_users()

    def authenticate(self, token: str) -> Principal | None:
        """The principal a token belongs to; None for an unknown, expired or revoked one (or no accounts)."""
        accounts = self._store.accounts
        return accounts.authenticate(token) if accounts is not None else None

    def principal_named(self, name: str) -> Principal | None:
        accounts = self._store.accounts
        return accounts.principal_named(name) if accounts is not None else None

    def record_refusal(self, action: str, target: str, origin: str) -> None:
        """Audit a refused attempt by an unknown caller (a bad token): no secret, only what was asked."""
        self._store.record_access(actor="anonymous", action=action, target=target, outcome="denied", origin=origin)

    # ------------------------------------------------------------ users, tokens, grants

    def add_user(self, name: str, *, admin: bool = False) -> UserInfo:
        """Add a user (``admin`` may do everything); give it a token with :meth:`create_token`.

        >>> trail.add_user("ada", admin=True)  # doctest: +SKIP
        """
        return self._accounts("user add").add_user(name, admin=admin, actor=self._actor, origin=self._origin)

    def users(self) -> list[UserInfo]:
        return self._accounts("user list").list_users()

    def create_token(
        self, user: str, *, expires: str | None = "90d", label: str | None = None
    ) -> tuple[TokenInfo, str]:
        """A new API token for ``user``: (its info, the secret text to hand over once; only a hash is kept).

        >>> info, secret = trail.create_token("ada", expires="30d", label="laptop")  # doctest: +SKIP
        """
        accounts = self._accounts("token create")
        expires_at = parse_expiry(expires, datetime.now(UTC))
        info, token = accounts.create_token(
            user, label=label, expires_at=expires_at, actor=self._actor, origin=self._origin
        )
        return info, token.text

    def tokens(self) -> list[TokenInfo]:
        return self._accounts("token list").list_tokens()

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token: the next request that presents it is refused."""
        return self._accounts("token revoke").revoke_token(token_id, actor=self._actor, origin=self._origin)

    def grant(self, user: str, role: str, pattern: str) -> bool:
        """Give ``user`` a role (viewer, editor, owner) on the namespaces matching ``pattern``.

        Admins grant anywhere; an owner grants inside its own namespaces. False if it was there already.

        >>> trail.grant("bob", "editor", "team-*")  # doctest: +SKIP
        """
        return self._store.add_grant(user, role, pattern, actor=self._actor, origin=self._origin)

    def revoke(self, user: str, role: str, pattern: str) -> None:
        """Take a grant back (exactly as given: same role, same pattern)."""
        self._store.remove_grant(user, role, pattern, actor=self._actor, origin=self._origin)

    # ------------------------------------------------------------ classifications

    def classify(self, ref: str | Ref | Version, column: str, label: str = "pii") -> None:
        """Classify a column of a dataset (``*``: every column); profiles of it and of what is derived from
        it downstream keep only counts from now on.

        >>> trail.classify("raw/customers", "email", "pii")  # doctest: +SKIP
        """
        label = check_label(label)
        version = self._catalog.lookup(ref)
        if not isinstance(column, str) or not column.strip() or len(column) > 1024:
            msg = f"invalid column {column!r}: give a column name, or * for the whole dataset"
            raise InvalidInput(msg)
        if column != ALL_COLUMNS:
            profile = self._store.profile(version)
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
        self._store.ingest(event, self._actor, "dataset.classify")

    def classifications(self, ref: str | Ref | Version) -> dict[str, list[str]]:
        """Column → labels of a version: set on its dataset or inherited from upstream (SQL stores)."""
        return self._catalog.classifications(ref)

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
        return self._store.audit_entries(dataset=ref, user=user, action=action, since=when, limit=limit)

    def access_log(self, ref: str | Ref | Version, limit: int = 100) -> list[AuditEntry]:
        """Who accessed a dataset (read it, wrote it, was refused), and when: newest first."""
        version = self._catalog.lookup(ref)
        return self.audit_entries(dataset=Ref(version.namespace, version.name, None), limit=limit)

    def verify_audit(self, checkpoint: str | Checkpoint | None = None) -> ChainReport:
        """Recompute the audit hash chain; the report names the first entry changed, deleted, inserted
        or reordered, and with a ``checkpoint`` (``SEQ:HASH``) a truncated or rebuilt chain.

        >>> report = trail.verify_audit("120:9f86d081…")  # doctest: +SKIP
        >>> report.ok, [p.message for p in report.problems]  # doctest: +SKIP
        """
        point = Checkpoint.parse(checkpoint) if isinstance(checkpoint, str) else checkpoint
        # Through a server only the newest entries come back: the window is verified from its first link.
        start, rows = self._store.audit_rows()
        return verify_chain(rows, point, start)

    def audit_checkpoint(self) -> Checkpoint | None:
        """The head of the audit chain (``SEQ:HASH``) to keep outside the database; None when empty."""
        return self._store.audit_head()
