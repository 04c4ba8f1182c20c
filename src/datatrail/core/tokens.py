"""API tokens: a public id and a high-entropy secret, of which only a SHA-256 hash is stored.

A token as handed to the user is ``dtk_<id>_<secret>``: the id names the token in
``token list`` and ``token revoke``; the secret has 256 bits of entropy, so a
plain SHA-256 (no salt, no stretching) cannot be inverted or guessed. Lookups go
by hash and the stored hash is compared again with :func:`hmac.compare_digest`.

>>> token = new_token()
>>> parse_token(token.text) == (token.id, token.secret)
True
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from datatrail.core.errors import InvalidInput

PREFIX = "dtk_"
_ID = re.compile(r"^tok_[0-9a-f]{12}$")
_TOKEN = re.compile(r"^dtk_(tok_[0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class NewToken:
    """A freshly made token: print ``text`` once, store ``id`` and ``secret_hash``."""

    id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{PREFIX}{self.id}_{self.secret}"

    @property
    def secret_hash(self) -> str:
        return hash_secret(self.secret)

    def __repr__(self) -> str:  # never show the secret in logs or tracebacks
        return f"NewToken(id={self.id!r})"


def new_token() -> NewToken:
    return NewToken(f"tok_{secrets.token_hex(6)}", secrets.token_urlsafe(32))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None (a forged or mangled token)."""
    found = _TOKEN.match(text.strip()) if isinstance(text, str) else None
    return (found.group(1), found.group(2)) if found else None


def same_hash(stored: str, secret: str) -> bool:
    """Constant-time comparison of a stored hash with the hash of a presented secret."""
    return hmac.compare_digest(stored.encode(), hash_secret(secret).encode())


def check_token_id(token_id: str) -> str:
    if not _ID.match(token_id or ""):
        msg = f"invalid token id {token_id!r}: ids look like tok_1a2b3c4d5e6f (`datatrail token list` shows them)"
        raise InvalidInput(msg)
    return token_id


def parse_expiry(text: str | None, now: datetime) -> datetime | None:
    """``30d``, ``12h``, ``2w``, ``90m``, ``never`` (or None) → the expiry time."""
    if text is None or text.strip().lower() in ("", "never", "none"):
        return None
    found = _DURATION.match(text.strip().lower())
    if not found or int(found.group(1)) == 0:
        msg = f"invalid expiry {text!r}: give a duration such as 30d, 12h, 2w or 90m, or 'never'"
        raise InvalidInput(msg)
    return now + timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
