"""A real, throw-away PostgreSQL server for the test suite.

The harness runs ``initdb`` into a temporary folder and ``pg_ctl`` on a free
loopback port. ``scripts/ensure-postgres`` installs PostgreSQL when the machine
lacks it; this module fails loudly (never skips) when it still cannot be found.
PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` system user (created by the Debian package) or ``nobody``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_bindir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).resolve().parent)  # type: ignore[arg-type]
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    msg = "PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/ensure-postgres"
    raise RuntimeError(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    bindir: Path
    datadir: Path
    port: int
    user: str | None  # OS user the server runs as (None: the current one)
    base: Path
    durable: bool = False  # fsync on, as in production (benchmarks); tests run without it

    @property
    def uri(self) -> str:
        return f"postgresql://datatrail@127.0.0.1:{self.port}/postgres"

    def database_uri(self, name: str) -> str:
        return f"postgresql://datatrail@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=check,
            user=self.user,
            cwd=self.base,
        )

    @property
    def options(self) -> str:
        unsafe = "" if self.durable else " -c fsync=off -c full_page_writes=off"
        return f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1{unsafe}"

    def halt(self) -> None:
        """Stop the server, keeping its data; :meth:`resume` starts it again on the same port."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60", "stop")

    def resume(self) -> None:
        log = str(self.base / "log")
        self._run("pg_ctl", "-D", str(self.datadir), "-o", self.options, "-l", log, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def start(*, durable: bool = False) -> PgServer:
    """A fresh server; ``durable`` keeps PostgreSQL's fsync on (the tests turn it off for speed)."""
    bindir = find_bindir()
    base = Path(tempfile.mkdtemp(prefix="datatrail-pg-"))
    user = None
    if os.geteuid() == 0:
        for candidate in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(candidate)
            except KeyError:
                continue
            user = candidate
            os.chown(base, pw.pw_uid, pw.pw_gid)
            break
        else:
            msg = "running as root, and no 'postgres' or 'nobody' user to run PostgreSQL as"
            raise RuntimeError(msg)
    os.chmod(base, 0o700)
    server = PgServer(bindir, base / "data", free_port(), user, base, durable)
    server._run("initdb", "-D", str(server.datadir), "-U", "datatrail", "--auth=trust", "-E", "UTF8", "--no-sync")
    log = str(base / "log")
    server._run("pg_ctl", "-D", str(server.datadir), "-o", server.options, "-l", log, "-w", "-t", "60", "start")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return server
        time.sleep(0.1)
    server.stop()
    msg = f"PostgreSQL did not start on port {server.port}"
    raise RuntimeError(msg)
