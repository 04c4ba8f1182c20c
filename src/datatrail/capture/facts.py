"""Facts about who runs what, where: user, host, command line, git state."""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from datatrail.config import ENV_USER


def current_user(configured: str | None = None) -> str:
    """``$DATATRAIL_USER``, else the configured user, else the operating-system user."""
    env = os.environ.get(ENV_USER)
    if env:
        return env
    if configured:
        return configured
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def hostname() -> str:
    return socket.gethostname()


def command_line() -> str:
    return shlex.join([os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit, branch, dirty flag and remote of the git work tree at ``cwd``; {} outside one."""
    where = cwd or Path.cwd()
    commit = _git(["rev-parse", "HEAD"], where)
    if not commit:
        return {}
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    state: dict[str, Any] = {
        "type": "git",
        "commit": commit,
        "branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], where),
        "dirty": bool(status),
    }
    remote = _git(["config", "--get", "remote.origin.url"], where)
    if remote:
        state["url"] = strip_credentials(remote)
    return state


def strip_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part, so no secret is ever recorded."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
    return f"{scheme}://{netloc}{slash}{path}"
