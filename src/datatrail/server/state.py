"""What every request shares: the store (opened on first use), the API keys and the limits."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import Request

from datatrail.config import Location
from datatrail.security.limiter import BadTokenLimiter
from datatrail.service import Trail
from datatrail.store import Store, open_store

API = "/api/v1"
SERVER_USER = "datatrail-server"
INGEST_THREADS = 16


class ServerState:
    """What every request shares: the Trail (opened on first use) and the limits."""

    def __init__(
        self,
        store: Store | str,
        *,
        api_keys: Mapping[str, str] | None,
        max_body: int,
        max_batch: int,
    ) -> None:
        self._store = store
        self._trail: Trail | None = None
        self._lock = threading.Lock()
        self.api_keys = dict(api_keys or {})
        self.max_body = max_body
        self.max_batch = max_batch
        self.limiter = BadTokenLimiter()  # bad tokens per client address (server/access.py)
        self.users_exist = False  # once true, for good: users are never removed (server/access.py)
        self.open_until = 0.0  # time.monotonic() until which "no user yet" is trusted
        self._ingest_threads: ThreadPoolExecutor | None = None

    @property
    def trail(self) -> Trail:
        """The Trail; a store that cannot be reached raises StoreUnavailable (503) and is retried next time."""
        if self._trail is None:
            with self._lock:
                if self._trail is None:
                    store = self._store if not isinstance(self._store, str) else open_store(self._store, create=True)
                    trail = Trail(store, Location(store.uri, Path.cwd(), None), SERVER_USER)
                    # Built here, under the lock: every request's Trail shares this workspace, and
                    # cached_property has no lock of its own from Python 3.12.
                    _ = trail.workspace
                    self._trail = trail
        return self._trail

    @property
    def opened(self) -> bool:
        """Whether the store is open (the first use opens it, which may block)."""
        return self._trail is not None

    @property
    def ingest_threads(self) -> ThreadPoolExecutor:
        """The threads the ingest routes hand their store calls to (server/fastpath.py): an executor
        is a lighter hop than anyio's thread pool, and shutting it down waits for what it holds."""
        if self._ingest_threads is None:
            with self._lock:
                if self._ingest_threads is None:
                    self._ingest_threads = ThreadPoolExecutor(INGEST_THREADS, thread_name_prefix="datatrail-ingest")
        return self._ingest_threads

    def close(self) -> None:
        threads, self._ingest_threads = self._ingest_threads, None
        if threads is not None:
            threads.shutdown(wait=True)  # the events already accepted are stored first
        if self._trail is not None:
            self._trail.close()


def state(request: Request) -> ServerState:
    server: Any = request.app.state.server
    assert isinstance(server, ServerState)
    return server
