"""Refusing to serve an open store to the network by accident."""

from __future__ import annotations

import ipaddress

from datatrail.core.errors import InvalidInput
from datatrail.store import open_store


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost`` and the like: reachable from this machine only."""
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, uri: str, *, insecure: bool, api_keys: bool) -> None:
    """InvalidInput when ``host`` is not loopback, the store has no users and no API keys, and not ``insecure``."""
    if insecure or api_keys or is_loopback(host):
        return
    store = open_store(uri, create=True)
    try:
        accounts = store.accounts
        if accounts is not None and accounts.has_users():
            return
    finally:
        store.close()
    msg = (
        f"refusing to listen on {host} with a store that has no users: anyone could read and write it; "
        "add one (`datatrail user add NAME --admin`, `datatrail token create --user NAME`) or pass --insecure"
    )
    raise InvalidInput(msg)
