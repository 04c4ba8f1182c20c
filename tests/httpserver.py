"""Real ``datatrail serve`` processes for the suite, each over its own temporary SQLite store.

A server takes about 0.8 s to start, so :class:`ServerPool` keeps one spare
starting in the background: a test takes the spare (a fresh store) and the
next one starts while the test runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.pgserver import free_port

DATATRAIL = Path(sys.executable).with_name("datatrail")


@dataclass
class Server:
    uri: str
    store: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"datatrail serve exited with {self.process.returncode}:\n{self.log.read_text()}"
                raise RuntimeError(msg)
            try:
                with urllib.request.urlopen(f"{self.uri}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.02)
        msg = f"datatrail serve did not answer within {timeout} s:\n{self.log.read_text()}"
        raise RuntimeError(msg)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(folder: Path, *extra: str, env: dict[str, str] | None = None, store: str | None = None) -> Server:
    """``datatrail serve`` on a free loopback port over ``store`` (default: a new SQLite file in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    store = store or f"sqlite:///{folder / 'trail.db'}"
    port = free_port()
    log = folder / "server.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    clean["DATATRAIL_LOG_LEVEL"] = "warning"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(DATATRAIL), "--store", store, "serve", "--port", str(port), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**clean, **(env or {})},
            cwd=folder,
        )
    return Server(f"http://127.0.0.1:{port}", store, process, log)


@contextmanager
def running(folder: Path, env: dict[str, str] | None = None, store: str | None = None) -> Iterator[Server]:
    """A ready server over ``store`` (default: a fresh store in ``folder``), stopped on exit."""
    srv = start(folder, env=env, store=store)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


class ServerPool:
    """Fresh servers on demand, one always starting ahead."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.spare: Server | None = None
        self.started: list[Server] = []

    def _start(self) -> Server:
        self.count += 1
        server = start(self.folder / f"s{self.count}")
        self.started.append(server)
        return server

    def take(self) -> Server:
        server = self.spare or self._start()
        self.spare = self._start()
        server.wait_ready()
        return server

    def close(self) -> None:
        for server in self.started:
            server.stop()
