"""Slowing down token guessing without locking out the clients whose tokens are valid.

Guessing means trying many *different* tokens, so the limiter counts distinct bad
tokens (by a keyed fingerprint, never the token), per client address and for the
whole process: a misconfigured client that repeats one bad token counts once, and
does not limit its neighbours behind the same proxy. A client with too many, or a
server with too many overall, is *limited*: its bad tokens are answered 429, and a
token that could be guessed is not compared at all (``server/access.py``). Each
server process counts on its own.

>>> limiter = BadTokenLimiter(allowed=2, window=60.0, allowed_overall=100)
>>> limiter.failed("10.0.0.9", "f1", now=0.0), limiter.failed("10.0.0.9", "f1", now=1.0)
(True, False)
>>> limiter.retry_after("10.0.0.9", now=2.0)
0
>>> limiter.failed("10.0.0.9", "f2", now=2.0)
True
>>> limiter.retry_after("10.0.0.9", now=3.0), limiter.retry_after("10.0.0.7", now=3.0)
(58, 0)
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict

_KEY = secrets.token_bytes(32)  # fingerprints mean nothing outside this process


def fingerprint(token: str) -> str:
    """A short keyed digest of a presented token: tells repeats apart without keeping the token."""
    return hmac.new(_KEY, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


class _Window:
    """Distinct fingerprints seen within ``window`` seconds, at most ``size`` (the oldest make room)."""

    def __init__(self, size: int, window: float) -> None:
        self.size = size
        self.window = window
        self.seen: OrderedDict[str, float] = OrderedDict()  # fingerprint -> last seen, oldest first

    def expire(self, now: float) -> None:
        while self.seen and next(iter(self.seen.values())) <= now - self.window:
            self.seen.popitem(last=False)

    def add(self, key: str, now: float) -> bool:
        """Record ``key``; True when it was not already in the window."""
        self.expire(now)
        new = key not in self.seen
        self.seen[key] = now
        self.seen.move_to_end(key)
        while len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return new

    def wait(self, now: float) -> int:
        """Seconds until the window holds fewer than ``size`` keys again (0: not full)."""
        self.expire(now)
        if len(self.seen) < self.size:
            return 0
        return max(1, math.ceil(next(iter(self.seen.values())) + self.window - now))


class BadTokenLimiter:
    """At most ``allowed`` distinct bad tokens per client, and ``allowed_overall`` in all, within ``window`` s."""

    def __init__(
        self,
        allowed: int = 10,
        window: float = 60.0,
        allowed_overall: int = 100,
        max_clients: int = 100_000,
    ) -> None:
        self.allowed = allowed
        self.window = window
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Window] = OrderedDict()  # the latest to fail last
        self._overall = _Window(allowed_overall, window)
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds until ``client`` is no longer limited (0: it is not), for its own tokens or everyone's."""
        now = time.monotonic() if now is None else now
        with self._lock:
            own = self._clients.get(client)
            wait = own.wait(now) if own is not None else 0
            if own is not None and not own.seen:
                del self._clients[client]
            return max(wait, self._overall.wait(now))

    def failed(self, client: str, token_fingerprint: str, now: float | None = None) -> bool:
        """Count a bad token; True when this client had not sent it within the window (worth an audit entry)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            own = self._clients.get(client)
            if own is None:
                if len(self._clients) >= self.max_clients:
                    self._clients.popitem(last=False)  # bounded memory: forget the stalest client
                own = self._clients[client] = _Window(self.allowed, self.window)
            self._clients.move_to_end(client)
            self._overall.add(token_fingerprint, now)
            return own.add(token_fingerprint, now)
