"""Store maintenance commands: `backup create`, `backup restore` and `fsck`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, error, human_size, line
from datatrail.config import locate
from datatrail.core.errors import InvalidInput
from datatrail.core.text import count


def _store_uri(ctx: typer.Context) -> str:

    root = ctx.find_root()
    return locate((root.obj or {}).get("store")).uri


def backup(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(metavar="ACTION", help="create (copy the store to PATH) or restore.")],
    path: Annotated[Path, typer.Argument(metavar="PATH", help="The backup file to write, or to restore from.")],
    force: Annotated[bool, typer.Option("--force", help="create: replace PATH if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")] = False,
) -> None:
    """Copy an embedded (SQLite) store while it is in use, or bring a copy back.

    `create` takes one consistent snapshot with SQLite's backup API while other
    processes keep writing, checks it and writes it to PATH. `restore` checks the
    backup (SQLite's integrity check, its schema revision, the audit chain) and
    only then replaces the store with it, in one transaction; everything written
    since the backup is lost. A PostgreSQL store is backed up with pg_dump.

    Examples: datatrail backup create /backups/trail-2026-11-29.db;
    datatrail backup restore /backups/trail-2026-11-29.db
    """
    # Imported here: the store's modules load only for the command that needs them (start-up).
    from datatrail.backup import create_backup, restore_backup

    if action == "create":
        info = create_backup(_store_uri(ctx), path, force=force)
        text = f"backed up to {info.path} ({human_size(info.size)}, schema revision {info.revision})"
    elif action == "restore":
        if force:
            msg = "--force only applies to `backup create`"
            raise InvalidInput(msg)
        info = restore_backup(_store_uri(ctx), path)
        text = f"restored {path} into {info.path} (schema revision {info.revision})"
    else:
        msg = f"unknown action {action!r}: use `datatrail backup create PATH` or `datatrail backup restore PATH`"
        raise InvalidInput(msg)
    if json_out:
        emit_json({"action": action, **info.to_dict()})
    else:
        line(text)


def fsck(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")] = False,
) -> None:
    """Check the store itself: the file, the audit hash chain and the links between records.

    Checks SQLite's integrity, that the audit chain recomputes, that every event
    has its audit entry and every version the audit entry that created it, that
    version numbers have no gaps, that manifests are whole and that no lineage
    edge points at nothing. Exits with status 6 when anything is wrong.
    (`datatrail verify` checks the data files instead.)

    Example: datatrail fsck
    """

    problems = get_trail(ctx).check_store()
    if json_out:
        emit_json({"ok": not problems, "problems": problems})
    else:
        for problem in problems:
            line(f"problem  {problem}")
        if not problems:
            line("ok: the store is sound")
    if problems:
        if not json_out:
            found = count(len(problems), "problem")
            error(f"{found} found in the store; restore a backup (`datatrail backup restore`)")
        raise typer.Exit(6)


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(fsck)
