"""Slowing down token guessing: too many bad tokens from one client, and it waits.

An in-process limiter: each server process counts on its own (with ``--workers 4``
a client gets up to four times the allowance before every process refuses it).

>>> limiter = BadTokenLimiter(allowed=2, window=60.0)
>>> limiter.failed("10.0.0.9", now=0.0); limiter.failed("10.0.0.9", now=1.0)
>>> limiter.retry_after("10.0.0.9", now=2.0)
58
>>> limiter.retry_after("10.0.0.9", now=61.0)
0
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class BadTokenLimiter:
    """At most ``allowed`` bad tokens per client within ``window`` seconds; then wait until the oldest expires."""

    def __init__(self, allowed: int = 10, window: float = 60.0, max_clients: int = 100_000) -> None:
        self.allowed = allowed
        self.window = window
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
        return times

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds the client must wait before presenting a token again (0: go ahead)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.allowed:
                return 0
            return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) >= self.max_clients and client not in self._failures:
                # Bounded memory: forget the client whose latest failure is oldest.
                oldest = min(self._failures, key=lambda c: self._failures[c][-1])
                del self._failures[oldest]
            self._failures.setdefault(client, deque()).append(now)
