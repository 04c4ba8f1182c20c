"""Run commands: runs (what it prints: cli/reads.py; a run in full, for show run:<id>: cli/views.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from datatrail.cli import reads
from datatrail.cli.context import get_trail


def runs(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only runs of this job.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="At most this many, newest first.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")] = False,
) -> None:
    """List runs, newest first; `datatrail show run:<id>` shows one in full."""
    reads.runs(lambda: get_trail(ctx), job, limit, json_out)


def register(app: typer.Typer) -> None:
    app.command()(runs)
