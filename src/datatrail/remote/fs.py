"""Opening a URL's fsspec filesystem, and turning its errors into datatrail's.

Credentials come from each store's usual environment and configuration
(AWS profiles and ``AWS_*`` variables, ``GOOGLE_APPLICATION_CREDENTIALS``,
``AZURE_STORAGE_*``…); a ``user:password@`` in an S3 URL is used as the key
pair but never recorded or shown (see :func:`datatrail.remote.redact`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from datatrail.core.errors import DatatrailError, InvalidInput, NotFound, StoreUnavailable
from datatrail.remote import redact, scheme, scrub, secrets_of

ENV_TIMEOUT = "DATATRAIL_REMOTE_TIMEOUT"
DEFAULT_TIMEOUT = 60.0

# Which extra installs the driver of a scheme.
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
    "http": "http",
    "https": "http",
}
DRIVERS = {"s3": "s3fs", "gcs": "gcsfs", "azure": "adlfs", "http": "aiohttp"}
# Exceptions (by class name, so no driver is imported to name them) that mean the store did not answer in time.
_UNAVAILABLE = frozenset(
    {
        "TimeoutError",
        "FSTimeoutError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ServerTimeoutError",
        "ClientConnectorError",
        "ClientOSError",
        "ServerDisconnectedError",
        "ConnectionError",
        "ConnectionRefusedError",
    }
)


@dataclass(frozen=True)
class Remote:
    """A URL resolved to its filesystem and the filesystem's path of it."""

    fs: Any  # an fsspec AbstractFileSystem
    path: str  # may hold the URL's credentials (an https:// path is the URL): never shown
    url: str  # redacted: safe to record and show
    protocol: str
    secrets: tuple[str, ...] = ()  # what to scrub from drivers' messages

    def child_url(self, rel: str) -> str:
        return f"{self.url.rstrip('/')}/{rel}"


def timeout() -> float:
    raw = os.environ.get(ENV_TIMEOUT)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        msg = f"invalid {ENV_TIMEOUT}={raw!r}: give the seconds to wait for a remote store, e.g. 30"
        raise InvalidInput(msg)
    return value


def _options(protocol: str, url: str) -> tuple[str, dict[str, Any]]:
    """The URL to hand fsspec and the storage options for it."""
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        parts = urlsplit(url)
        user, at, host = parts.netloc.rpartition("@")
        if at:  # s3fs does not read credentials from the URL: pass them as options
            key, _, secret = user.partition(":")
            options.update(key=unquote(key), secret=unquote(secret))
        # A query (a signature copied from an https:// link) would become part of the key.
        url = urlunsplit((parts.scheme, host, parts.path, "", ""))
        t = timeout()
        # s3fs retries a timed-out request itself (5 times, with back-off); botocore retrying too would multiply it.
        options["config_kwargs"] = {"connect_timeout": t, "read_timeout": t, "retries": {"total_max_attempts": 1}}
    return url, options


def open_url(url: str) -> Remote:
    """The filesystem behind ``url``; a one-line error for an unknown scheme or a missing driver."""
    shown = redact(url)
    secrets = secrets_of(url)
    protocol = scheme(url)
    try:
        import fsspec  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - fsspec is a dependency
        msg = "reading URLs needs fsspec: pip install fsspec"
        raise InvalidInput(msg) from None
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        msg = (
            f"unknown URL scheme {protocol + '://'!r} in {shown!r}; use s3://, gs://, az://, abfs://, hdfs://, "
            "http(s)://, file:// or another fsspec scheme, or give a local path"
        )
        raise InvalidInput(msg) from None
    except ImportError:
        raise _missing_driver(protocol, shown) from None
    target, options = _options(protocol, url)
    with translate(shown, secrets):
        try:
            fs, path = fsspec.core.url_to_fs(target, **options)
        except ImportError:
            raise _missing_driver(protocol, shown) from None
    return Remote(fs, path, shown, protocol, secrets)


def _missing_driver(protocol: str, shown: str) -> InvalidInput:
    extra = EXTRAS.get(protocol)
    if extra is not None:
        msg = f"{protocol}:// URLs need {DRIVERS[extra]}, which is not installed: pip install 'datatrail[{extra}]'"
    else:
        msg = f"the driver for {protocol}:// URLs ({shown!r}) is not installed; see fsspec's list of implementations"
    return InvalidInput(msg)


def _no_answer(shown: str, exc: BaseException) -> StoreUnavailable:
    msg = (
        f"the store behind {shown!r} did not answer ({type(exc).__name__}); "
        f"check the network or the endpoint and retry (each request waits {ENV_TIMEOUT}={timeout():g} s)"
    )
    return StoreUnavailable(msg)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(text[0].split())[:300] if text else type(exc).__name__


def _unavailable(exc: BaseException) -> BaseException | None:
    """The timeout or connection error behind ``exc``, if one is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in _UNAVAILABLE for cls in type(current).__mro__):
            return current
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def translate(shown: str, secrets: tuple[str, ...] = ()) -> Iterator[None]:
    """Turn a filesystem's errors into datatrail's one-line ones, naming the (redacted) URL.

    ``secrets`` (see :func:`datatrail.remote.secrets_of`) are scrubbed from any message.
    """
    try:
        yield
    except DatatrailError as exc:
        if secrets and scrub(exc.message, secrets) != exc.message:
            raise type(exc)(scrub(exc.message, secrets)) from None
        raise
    except FileNotFoundError as exc:
        if (cause := _unavailable(exc)) is not None:  # fsspec's HTTP filesystem says "not found" for no answer
            raise _no_answer(shown, cause) from None
        msg = f"not found: {shown!r}; check the bucket, the path and the credentials' region"
        raise NotFound(msg) from None
    except PermissionError:
        msg = (
            f"access denied to {shown!r}; check the credentials the store's client uses "
            "(AWS_PROFILE or AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*)"
        )
        raise InvalidInput(msg) from None
    except ImportError as exc:
        msg = f"cannot read {shown!r}: a driver is missing ({scrub(_one_line(exc), secrets)})"
        raise InvalidInput(msg) from None
    except Exception as exc:
        if (cause := _unavailable(exc)) is not None:
            raise _no_answer(shown, cause) from None
        if isinstance(exc, OSError | ValueError):
            msg = f"cannot read {shown!r}: {scrub(_one_line(exc), secrets)}"
            raise InvalidInput(msg) from None
        raise


__all__ = ["Remote", "open_url", "timeout", "translate"]
