"""What a store accepts as a content location: a remote's name and a URL without credentials (no SQLAlchemy here:
the embedded store's quick path checks with it too)."""

from __future__ import annotations

import re

from datatrail.core.errors import InvalidInput

MAX_URL = 2048
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # as datatrail.content.settings names remotes


def check_location(remote: str, url: str) -> None:
    """InvalidInput unless ``remote`` is a remote's name and ``url`` a URL or folder without credentials."""
    from datatrail.remote import redact, secrets_of  # urllib only; kept off the store's start-up path

    if not isinstance(remote, str) or not _NAME.fullmatch(remote):
        msg = f"invalid remote name {str(remote)[:64]!r}: use letters, digits, '-', '_' and '.' (at most 64)"
        raise InvalidInput(msg)
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isprintable():
        msg = f"invalid remote URL: give a folder or a URL such as s3://bucket/datatrail (at most {MAX_URL} characters)"
        raise InvalidInput(msg)
    if secrets_of(url) or redact(url) != url:
        msg = "the remote URL holds credentials; they never go into the store: give the URL without them"
        raise InvalidInput(msg)


__all__ = ["MAX_URL", "check_location"]
