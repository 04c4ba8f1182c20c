"""Access control and the tamper-evident audit log: principals, tokens, grants, chain verification.

The modules here are pure (no SQL, no HTTP): the SQL store keeps users, tokens
and grants (``store/sql/security.py``), the service layer decides with
:func:`~datatrail.core.roles.authorize` and wraps the store in a
:class:`~datatrail.security.guard.GuardedStore` for each server request.
"""

from __future__ import annotations

from datatrail.core.roles import ROLES, Grant, Principal, authorize

__all__ = ["ROLES", "Grant", "Principal", "authorize"]
