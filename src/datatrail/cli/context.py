"""What every command shares: the Trail of the invocation, opened on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from datatrail.cli.output import note
from datatrail.config import remote_notice

if TYPE_CHECKING:
    from datatrail.service import Trail


def get_trail(ctx: typer.Context) -> Trail:
    """The Trail for this invocation (opened once, closed when the command ends)."""
    # Imported here, not above: `datatrail --help` and `--version` load neither the service nor its store.
    from datatrail.service import connect

    root = ctx.find_root()
    obj = root.obj or {}
    if "trail" not in obj:
        trail = connect(obj.get("store"))
        notice = remote_notice(trail.location)
        if notice:
            note(notice)  # a cloned repository's config chose this server, not the user
        obj["trail"] = trail
        root.obj = obj
        root.call_on_close(trail.close)
    found: Trail = obj["trail"]
    return found
