"""An openlineage-python transport that sends events to datatrail in batches.

openlineage-python's ``HttpTransport`` sends one event per request. A datatrail
server stores batches several times faster (one transaction, about one round
trip per event on PostgreSQL; docs/benchmarks.md, "ingest"), so producers that
emit many events (a backfill, a busy Airflow) can use this transport instead:
events are buffered and sent to ``POST /api/v1/lineage/batch`` when
``batch_size`` are waiting or ``flush_interval`` seconds have passed, whichever
comes first, and when the client closes or the interpreter exits.

In ``openlineage.yml`` (or ``OPENLINEAGE__TRANSPORT__…`` variables)::

    transport:
      type: datatrail.interop.ol_transport.DatatrailTransport
      url: https://datatrail.example.com
      api_key: dtk_…
      batch_size: 100
      flush_interval: 1.0

or in code::

    client = OpenLineageClient(transport=DatatrailTransport(DatatrailConfig(url=..., api_key=...)))

Ingest is idempotent, so a batch that meets a network error or a 5xx is sent
again (``retries`` times, with backoff); events the server refuses (4xx, or
listed as failed in a batch's answer) are logged, never retried. Events still
buffered when the process is killed are lost, as with any client-side buffer:
keep ``flush_interval`` short where that matters.
"""

from __future__ import annotations

import atexit
import gzip
import json
import logging
import threading
import time
from typing import Any

import attr
import httpx
from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Config, Transport

log = logging.getLogger(__name__)


@attr.define
class DatatrailConfig(Config):
    url: str
    endpoint: str = "api/v1/lineage/batch"
    api_key: str | None = None
    batch_size: int = 100
    flush_interval: float = 1.0
    timeout: float = 30.0
    retries: int = 5
    compression: bool = True

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> DatatrailConfig:
        if "url" not in params:
            msg = "the datatrail transport needs `url`, the server's address (https://datatrail.example.com)"
            raise RuntimeError(msg)
        known = {f.name for f in attr.fields(cls)}
        unknown = sorted(set(params) - known - {"type"})
        if unknown:
            msg = f"unknown datatrail transport settings {unknown}; known: {sorted(known)}"
            raise RuntimeError(msg)
        config = cls(**{k: v for k, v in params.items() if k in known})
        if config.batch_size < 1 or config.batch_size > 1000:
            msg = f"batch_size must be 1 to 1000 (the server's limit), not {config.batch_size}"
            raise RuntimeError(msg)
        config.batch_size, config.flush_interval = int(config.batch_size), float(config.flush_interval)
        config.timeout, config.retries = float(config.timeout), int(config.retries)
        return config


class DatatrailTransport(Transport):
    kind = "datatrail"
    config_class = DatatrailConfig

    def __init__(self, config: DatatrailConfig) -> None:
        self.config = config
        self._url = config.url.rstrip("/") + "/" + config.endpoint.lstrip("/")
        headers = {"Content-Type": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        if config.compression:
            headers["Content-Encoding"] = "gzip"
        self._http = httpx.Client(timeout=config.timeout, headers=headers)
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards the buffer
        self._sending = threading.Lock()  # one batch in flight: events keep their order
        self._wake = threading.Event()
        self._closed = False
        self.sent = 0  # events the server answered for (stored, repeated or refused)
        self._thread = threading.Thread(target=self._run, name="datatrail-ol-transport", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def emit(self, event: Any) -> None:
        if self._closed:
            msg = "this datatrail transport is closed"
            raise RuntimeError(msg)
        body = Serde.to_dict(event)
        with self._lock:
            self._buffer.append(body)
            full = len(self._buffer) >= self.config.batch_size
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Send everything buffered now (blocking)."""
        self._flush(full_only=False)

    def _flush(self, *, full_only: bool) -> None:
        while True:
            with self._sending:
                with self._lock:
                    if full_only and len(self._buffer) < self.config.batch_size:
                        return
                    batch = self._buffer[: self.config.batch_size]
                    del self._buffer[: len(batch)]
                if not batch:
                    return
                self._send(batch)

    def close(self, timeout: float = -1) -> bool:
        if self._closed:
            return True
        self._closed = True
        self._wake.set()
        self._thread.join(None if timeout < 0 else timeout)
        self.flush()
        self._http.close()
        atexit.unregister(self.close)
        with self._lock:
            return not self._buffer

    def _run(self) -> None:
        while not self._closed:
            full = self._wake.wait(self.config.flush_interval)
            self._wake.clear()
            try:
                # Woken by a full batch: full batches only; the interval over: everything.
                self._flush(full_only=full and not self._closed)
            except Exception:  # a background thread must not die: the next flush tries again
                log.exception("datatrail transport: sending a batch failed")

    def _send(self, batch: list[dict[str, Any]]) -> None:
        data = json.dumps(batch).encode()
        if self.config.compression:
            data = gzip.compress(data)
        delay = 0.5
        for attempt in range(self.config.retries + 1):
            try:
                response = self._http.post(self._url, content=data)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500:
                    self._answered(batch, response)
                    return
                problem = f"HTTP {response.status_code}"
            if attempt < self.config.retries:
                log.warning("datatrail transport: %s; sending %d events again in %.1fs", problem, len(batch), delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        log.error("datatrail transport: %d events not delivered after %d attempts", len(batch), self.config.retries + 1)

    def _answered(self, batch: list[dict[str, Any]], response: httpx.Response) -> None:
        self.sent += len(batch)
        if response.status_code >= 400:
            log.error("datatrail transport: the server refused %d events: %s", len(batch), response.text[:500])
            return
        for failed in response.json().get("failed", []):
            log.error("datatrail transport: event %s refused: %s", failed.get("index"), failed.get("detail"))
