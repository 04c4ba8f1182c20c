"""Users and tokens as a store reports them: what may be shown, never a secret or its hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from datatrail.core.roles import Grant


@dataclass(frozen=True)
class UserInfo:
    name: str
    admin: bool
    created_at: datetime | None
    created_by: str | None
    grants: tuple[Grant, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "admin": self.admin,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
            "grants": [{"role": g.role, "pattern": g.pattern} for g in self.grants],
        }


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token: never its secret, never its hash."""

    id: str
    user: str
    label: str | None
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        def iso(v: datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "status": self.status(now or datetime.now(UTC)),
        }
