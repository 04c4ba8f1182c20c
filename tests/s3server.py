"""A local S3-compatible server for the suite: moto in server mode, on a free loopback port.

``moto_server`` runs as a subprocess (its own interpreter, so moto's imports
and state stay out of the test process). It keeps every bucket in memory;
tests make their own bucket names, so one server serves a whole session.
With ``auth=True`` it checks credentials like AWS does (``INITIAL_NO_AUTH_ACTION_COUNT=0``),
so unknown keys are refused with 403: access denied, for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.pgserver import free_port

MOTO_SERVER = Path(sys.executable).with_name("moto_server")


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def point_env_at(self, monkeypatch: Any) -> None:
        """Dummy credentials and this server's endpoint in the environment, as a user's shell would have them."""
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ENDPOINT_URL", self.endpoint)
        monkeypatch.delenv("AWS_PROFILE", raising=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(folder: Path, *, auth: bool = False, timeout: float = 30.0) -> S3Server:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / f"moto-{port}.log"
    env = dict(os.environ)
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    server = S3Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"moto_server exited with {process.returncode}:\n{log.read_text()}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    msg = f"moto_server did not answer within {timeout} s:\n{log.read_text()}"
    raise RuntimeError(msg)
