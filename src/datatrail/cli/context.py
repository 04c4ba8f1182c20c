"""What every command shares: the Trail of the invocation, opened on first use, and how an error ends it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from datatrail.cli.output import error, note
from datatrail.core.errors import DatatrailError

if TYPE_CHECKING:
    import typer

    from datatrail.service import Trail


def open_trail(store: str | None) -> Trail:
    """The Trail of ``--store`` (or ``$DATATRAIL_URI``, or the nearest .datatrail/), with its notice printed."""
    from datatrail.config import remote_notice  # start-up: `--help` and `--version` need no config
    from datatrail.service import connect  # start-up: `--help` and `--version` load no service or store

    trail = connect(store)
    notice = remote_notice(trail.location)
    if notice:
        note(notice)  # a cloned repository's config chose this server, not the user
    return trail


def get_trail(ctx: typer.Context) -> Trail:
    """The Trail for this invocation (opened once, closed when the command ends)."""
    root = ctx.find_root()
    obj = root.obj or {}
    if "trail" not in obj:
        trail = open_trail(obj.get("store"))
        obj["trail"] = trail
        root.obj = obj
        root.call_on_close(trail.close)
    found: Trail = obj["trail"]
    return found


def failure(exc: BaseException) -> int:
    """End a command that raised ``exc``: its one line on stderr, and the exit status.

    A :class:`DatatrailError` says what was wrong itself; anything else is unexpected, and is
    raised again when ``$DATATRAIL_DEBUG`` is set, for its traceback.
    """
    if isinstance(exc, DatatrailError):
        error(exc.message)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        error("interrupted; nothing half-written was kept")
        return 130
    if os.environ.get("DATATRAIL_DEBUG"):
        raise exc
    error(f"unexpected {type(exc).__name__}: {exc} (set DATATRAIL_DEBUG=1 for a traceback)")
    return 70
