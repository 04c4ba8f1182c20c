"""Datasets in object stores and remote filesystems (S3, GCS, Azure, HDFS, HTTP…), through fsspec.

This package is imported on every ``add`` to tell a URL from a path, so it
imports nothing heavy itself: fsspec and the drivers load only when a URL is
actually read (:mod:`datatrail.remote.fs`).

>>> is_url("s3://bucket/raw/2024.parquet"), is_url("data/raw.csv")
(True, False)
>>> redact("s3://AKIA:secret@bucket/key?X-Amz-Signature=abc&versionId=3")
's3://bucket/key?versionId=3'
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from datatrail.core.errors import InvalidInput

# A scheme of two characters or more: `C://…` is a Windows drive, not a URL.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+://")
# Query parameters that carry a secret (signed URLs, SAS tokens, API keys), lower case.
SECRET_PARAMS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "signature",
        "sig",
        "token",
        "access_token",
        "id_token",
        "api_key",
        "apikey",
        "key",
        "password",
        "secret",
        "client_secret",
        "sas",
        "credential",
        "awsaccesskeyid",
    }
)


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL (``s3://…``, ``file://…``) rather than a local path."""
    return isinstance(path, str) and _URL.match(path) is not None


def scheme(url: str) -> str:
    return url.split("://", 1)[0].lower()


def redact(url: str) -> str:
    """``url`` without embedded credentials (``user:password@``) and secret query parameters.

    Recorded URIs, messages and progress lines only ever show a redacted URL.
    Anything that is not a URL (a local path) comes back as it is.
    """
    if not is_url(url):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() not in SECRET_PARAMS]
        query = urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets_of(url: str) -> tuple[str, ...]:
    """The secret parts of a URL (its ``user:password``, secret parameter values), longest first.

    Messages of drivers may quote the URL they were given; :func:`scrub` removes these from them.
    """
    if not is_url(url):
        return ()
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    found = {userinfo, unquote(userinfo)} if userinfo else set()
    for piece in userinfo.split(":", 1) if userinfo else ():
        if len(piece) >= 4:  # a short user name is not worth garbling every message for
            found.update({piece, unquote(piece)})
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k.lower() in SECRET_PARAMS and v:
            found.update({v, quote(v, safe="")})
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def default_name(url: str, host: str) -> tuple[str, str]:
    """(namespace, name) of a URL when no name is given, as OpenLineage names datasets.

    ``s3://bucket/raw/a.parquet`` is ``raw/a.parquet`` in namespace ``s3://bucket``;
    ``file:///data/a.csv`` is ``/data/a.csv`` in ``file://HOST``.
    """
    parts = urlsplit(redact(url))
    if parts.scheme.lower() == "file":
        namespace, name = f"file://{host}", parts.path
    else:
        namespace, name = f"{parts.scheme.lower()}://{parts.netloc}", parts.path.strip("/")
    name = name.rstrip("/") if name != "/" else name
    if not name:
        msg = f"{redact(url)!r} names a whole bucket or host; give the dataset a name with --name"
        raise InvalidInput(msg)
    if ":" in name or "@" in name:
        msg = f"the path of {redact(url)!r} holds ':' or '@', which dataset names cannot; give a name with --name"
        raise InvalidInput(msg)
    return namespace, name


__all__ = ["SECRET_PARAMS", "default_name", "is_url", "redact", "scheme", "scrub", "secrets_of"]
