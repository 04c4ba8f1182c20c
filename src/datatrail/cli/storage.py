"""Content commands: checkout, remote, push, fetch, pull, gc."""

from __future__ import annotations

from typing import Annotated

import typer

from datatrail.cli import transfer
from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, human_size, line, progress
from datatrail.cli.transfer import print_sync
from datatrail.core.errors import InvalidInput

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]
RemoteOpt = Annotated[
    str | None, typer.Option("--remote", "-r", help="The remote to use (default: the default remote).")
]
RefsArg = Annotated[list[str] | None, typer.Argument(metavar="REF", help="Versions (default: see above).")]


def checkout(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version: name@3, name@latest, name@ALIAS…")],
    path: Annotated[
        str | None, typer.Argument(metavar="PATH", help="Where to write it (default: where it was added).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite local changes (and remove files the version lacks).")
    ] = False,
    remote: RemoteOpt = None,
    copy: Annotated[
        bool, typer.Option("--copy", help="Copy files of 1 MiB or more too, instead of hard-linking them read-only.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Restore the exact bytes of a version (a file or a directory).

    Bytes come from the cache (.datatrail/objects/), or transparently from the
    default remote. Every byte is hashed as it is written and compared with the
    version's manifest; each file is written to a temporary file and renamed
    into place, so a failure leaves it as it was. Files of 1 MiB or more are
    hard-linked from the cache and read-only (edit a copy, or check out with
    --copy); smaller files are copied, or reflinked where the filesystem can
    clone (Btrfs, XFS). Local changes are refused unless --force. Prints what
    changed.

    Example: datatrail checkout raw/penguins@2

    Example: datatrail checkout images@latest /tmp/images --json
    """
    trail = get_trail(ctx)
    with progress(f"checking out {ref}") as advance:
        report = trail.storage.checkout(ref, path, force=force, remote=remote, progress=advance, link=not copy)
    if json_out:
        emit_json(report.to_dict())
        return
    for change in report.changes:
        if change.action != "unchanged":
            line(f"{change.action:<9} {change.path or report.path.name}")
    line(f"{report.version.ref} -> {report.path}: {report.summary()}")


def remote(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(metavar="ACTION", help="add, list, remove, default or locate.")],
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="The remote's name (e.g. origin); locate: a version REF.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Argument(metavar="URL", help="add: a folder, s3://…, gs://…, az://…, ssh://…, https:// (read-only)."),
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="add: make it the default remote.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="add: replace a remote of the same name.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Name the places version bytes are pushed to and pulled from.

    A remote is a folder or any fsspec URL; its name and URL go to
    .datatrail/config.toml, never credentials (a URL holding them is refused:
    they come from the store's usual environment, AWS_PROFILE, …).

    Example: datatrail remote add origin s3://bucket/datatrail --default

    `remote locate REF` asks the store which remotes a push recorded as
    holding every byte of a version (name and URL, never credentials): a
    client without that remote in its config pulls from there directly,
    with its own credentials (see docs/storage.md).

    Example: datatrail remote list

    Example: datatrail remote locate raw/penguins@2 --json
    """
    trail = get_trail(ctx)
    storage = trail.storage
    if action == "add":
        if name is None or url is None:
            msg = "give a name and a URL: datatrail remote add NAME URL [--default]"
            raise InvalidInput(msg)
        added = storage.add_remote(name, url, default=default, replace=replace)
        if json_out:
            emit_json(added.to_dict())
        else:
            line(f"remote {added.name} -> {added.url}{' (default)' if added.default else ''}")
        return
    if default or replace or url is not None:
        msg = f"--default, --replace and URL go with `remote add`, not `remote {action}`"
        raise InvalidInput(msg)
    if action == "locate":
        if name is None:
            msg = "give a version: datatrail remote locate REF"
            raise InvalidInput(msg)
        version, found = storage.locate(name)
        if json_out:
            emit_json({"ref": version.ref, "locations": [loc.to_dict() for loc in found]})
            return
        if not found:
            line(f"no remote is known to hold {version.ref}: push it with `datatrail push {version.ref}`")
        for loc in found:
            by = f" by {loc.recorded_by}" if loc.recorded_by else ""
            line(f"{loc.remote}  {loc.url}  (pushed {loc.recorded_at:%Y-%m-%d %H:%M}{by})")
        return
    if action == "list":
        remotes = storage.remotes()
        if json_out:
            emit_json([r.to_dict() for r in remotes])
        elif not remotes:
            line("no remotes; add one with `datatrail remote add NAME URL --default`")
        for r in remotes if not json_out else []:
            line(f"{'*' if r.default else ' '} {r.name}  {r.url}")
        return
    if action in ("remove", "default"):
        if name is None:
            msg = f"give the remote's name: datatrail remote {action} NAME"
            raise InvalidInput(msg)
        if action == "remove":
            storage.remove_remote(name)
        else:
            storage.set_default_remote(name)
        if json_out:
            emit_json({"action": action, "name": name})
        else:
            line(f"remote {name} {'removed' if action == 'remove' else 'is the default'}")
        return
    msg = f"unknown action {action!r}: use add, list, remove, default or locate"
    raise InvalidInput(msg)


def push(ctx: typer.Context, refs: RefsArg = None, remote: RemoteOpt = None, json_out: JsonOpt = False) -> None:
    """Upload the bytes of versions (default: every version in the cache) that the remote lacks.

    Only missing objects travel. Small files go in pack files of about 4 MiB
    with an index (100,000 small files: a few hundred requests), big ones
    alone. An interrupted push leaves nothing the remote would trust half
    written; running it again resumes.

    Example: datatrail push

    Example: datatrail push raw/penguins@latest --remote backup
    """
    transfer.push(lambda: get_trail(ctx), refs, remote, json_out)


def fetch(ctx: typer.Context, refs: RefsArg = None, remote: RemoteOpt = None, json_out: JsonOpt = False) -> None:
    """Download into the cache the bytes of versions (default: the latest of every dataset).

    The workspace is not touched; `datatrail checkout` (or `pull`) writes it.
    Every object is verified against its SHA-256 before it enters the cache.

    Example: datatrail fetch raw/penguins@3
    """
    trail = get_trail(ctx)
    with progress("fetching") as advance:
        report = trail.storage.fetch(refs or (), remote=remote, progress=advance)
    print_sync("fetched", report, json_out)


def pull(
    ctx: typer.Context,
    refs: RefsArg = None,
    remote: RemoteOpt = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite local changes.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Fetch versions (default: the latest of every dataset) and check each out where it was added.

    Example: datatrail pull

    Example: datatrail pull raw/penguins@2 --force
    """
    trail = get_trail(ctx)
    with progress("pulling") as advance:
        report = trail.storage.pull(refs or (), remote=remote, force=force, progress=advance)
    print_sync("pulled", report, json_out)


def gc(
    ctx: typer.Context,
    keep_latest: Annotated[
        int | None, typer.Option("--keep-latest", min=0, help="Keep the N newest versions of each dataset.")
    ] = None,
    keep_aliases: Annotated[
        bool, typer.Option("--keep-aliases", help="Also keep every version an alias names.")
    ] = False,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", metavar="AGE", help="Only versions older than AGE (90d, 12h, 2w) may go."),
    ] = None,
    remote_gc: Annotated[bool, typer.Option("--remote", help="Also remove unreachable objects on the remote.")] = False,
    remote_name: Annotated[
        str | None, typer.Option("--remote-name", help="The remote for --remote (default: the default remote).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be freed; remove nothing.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove cached bytes no version kept by the policy needs, and print what is freed.

    Without --keep-latest every version is kept and only objects no version
    names go. With it, each dataset keeps its N newest versions, deployed
    versions, those an alias names (--keep-aliases) and those younger than
    --older-than. An add running at the same time never loses an object.
    With --remote, remote objects and whole packs nothing reaches go too.
    Temporary files a killed add, pull or checkout left in the cache go
    once nobody has written to them for a day (a younger one may be in use).

    Example: datatrail gc --keep-latest 3 --keep-aliases --older-than 90d --dry-run
    """
    if remote_name is not None and not remote_gc:
        msg = "--remote-name goes with --remote"
        raise InvalidInput(msg)
    trail = get_trail(ctx)
    report = trail.storage.gc(
        keep_latest=keep_latest,
        keep_aliases=keep_aliases,
        older_than=older_than,
        remote=remote_gc,
        remote_name=remote_name,
        dry_run=dry_run,
    )
    if json_out:
        emit_json(report.to_dict())
        return
    verb = "would free" if dry_run else "freed"
    line(f"kept {report.kept_versions} versions; {verb} {report.objects} objects ({human_size(report.bytes)})")
    if report.temp_files:
        what = "file" if report.temp_files == 1 else "files"
        line(
            f"{'would remove' if dry_run else 'removed'} {report.temp_files} temporary {what} "
            f"({human_size(report.temp_bytes)}) that interrupted adds, pulls or checkouts left in the cache"
        )
    if remote_gc:
        line(
            f"remote: {verb} {report.remote_objects} objects in {report.remote_packs} packs and loose files "
            f"({human_size(report.remote_bytes)})"
        )
        if report.forgotten_locations:
            line(f"the store no longer names this remote for {report.forgotten_locations} versions (`remote locate`)")
    for note in report.notes:
        line(note)


def register(app: typer.Typer) -> None:
    for command in (checkout, remote, push, fetch, pull, gc):
        app.command()(command)
