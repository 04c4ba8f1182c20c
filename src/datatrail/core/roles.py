"""Principals, roles and grants, and the one authorization decision.

Roles are ordered: a ``viewer`` reads, an ``editor`` also writes, an ``owner``
also grants (within the namespaces its pattern covers). ``admin`` is global and
may do everything. A grant gives a role on every namespace matching an
fnmatch-style pattern (``team-x``, ``team-*``, ``s3://lake/*``, ``*``).

>>> alice = Principal("alice", grants=(Grant("editor", "team-*"),))
>>> authorize(alice, "write", "team-x"), authorize(alice, "grant", "team-x"), authorize(alice, "read", "ops")
(True, False, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

from datatrail.core.errors import InvalidInput

Action = Literal["read", "write", "grant"]
ROLES = ("viewer", "editor", "owner")
_RANK = {role: i for i, role in enumerate(ROLES, 1)}
_NEEDS: dict[str, int] = {"read": 1, "write": 2, "grant": 3}


def check_role(role: str) -> str:
    """``role`` if it is one of viewer, editor, owner; InvalidInput otherwise."""
    if role not in _RANK:
        msg = f"unknown role {role!r}: use viewer, editor or owner (admin is given with `user add --admin`)"
        raise InvalidInput(msg)
    return role


def check_pattern(pattern: str) -> str:
    """A namespace pattern: non-empty, one line, at most 1,024 characters."""
    if (
        not isinstance(pattern, str)
        or not pattern.strip()
        or len(pattern) > 1024
        or any(c in pattern for c in "\r\n\0")
    ):
        msg = f"invalid namespace pattern {pattern!r}: give a namespace or a glob such as 'team-*' or '*'"
        raise InvalidInput(msg)
    return pattern.strip()


@dataclass(frozen=True)
class Grant:
    """A role on the namespaces matching ``pattern``."""

    role: str
    pattern: str

    def covers(self, namespace: str) -> bool:
        return fnmatchcase(namespace, self.pattern)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user with grants, an admin, or an unrestricted local/open actor.

    ``unrestricted`` is for the embedded store (whoever can open the file can
    read it) and for a server that has no users yet; it is never derived from a
    request header.
    """

    name: str
    admin: bool = False
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    unrestricted: bool = False
    token_id: str | None = None

    @property
    def everything(self) -> bool:
        return self.admin or self.unrestricted

    def role_on(self, namespace: str) -> str | None:
        """The highest role any grant gives on ``namespace`` (None: no access)."""
        best = 0
        for grant in self.grants:
            if grant.covers(namespace):
                best = max(best, _RANK.get(grant.role, 0))
        return ROLES[best - 1] if best else None


def authorize(principal: Principal | None, action: Action, namespace: str) -> bool:
    """Whether ``principal`` may ``action`` (read, write, grant) in ``namespace``: a pure decision.

    >>> authorize(Principal("root", admin=True), "grant", "anything")
    True
    >>> authorize(None, "read", "default")
    False
    """
    if principal is None:
        return False
    if principal.everything:
        return True
    need = _NEEDS[action]
    return any(grant.covers(namespace) and _RANK.get(grant.role, 0) >= need for grant in principal.grants)


def may_grant(principal: Principal | None, pattern: str) -> bool:
    """Whether ``principal`` may give or take a role on ``pattern``: admins anywhere, owners inside theirs.

    An owner of ``team-*`` may grant ``team-x`` or ``team-*`` but not ``*``: the
    pattern must lie inside one of the owner's own patterns (checked as text:
    equal, or the owner's pattern ends in ``*`` and prefixes it).
    """
    if principal is None:
        return False
    if principal.everything:
        return True
    for grant in principal.grants:
        if grant.role != "owner":
            continue
        if grant.pattern == pattern:
            return True
        own = grant.pattern
        if own.endswith("*") and not any(c in own[:-1] for c in "*?[") and pattern.startswith(own[:-1]):
            return True
    return False
