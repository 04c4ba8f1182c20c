"""Dataset commands: init, add, ls, show, versions, tag."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datatrail.cli import prefetch, reads
from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, line, note, progress
from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.text import count
from datatrail.remote import redact

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]


def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="PATH", help="Folder to create .datatrail/ in.")] = Path(),
) -> None:
    """Create .datatrail/ (config and the embedded SQLite store) in a folder.

    Every other command finds it by walking up from the working directory, like git.
    Pass --store postgresql://… to keep the metadata in PostgreSQL instead.
    """
    from datatrail.service import init as init_store  # the service and its store: not on --help (start-up)

    if not path.is_dir():
        if path.exists():
            msg = f"{str(path)!r} is not a folder; give the folder to create .datatrail/ in"
            raise InvalidInput(msg)
        msg = f"no such folder {str(path)!r}; create it first"
        raise NotFound(msg)
    trail = init_store(path, ctx.find_root().obj.get("store"))
    try:
        line(f"initialized datatrail store in {trail.location.config_dir} ({trail.location.uri})")
    finally:
        trail.close()


def add(
    ctx: typer.Context,
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH|URL", help="File or directory, or a URL (s3://bucket/key, gs://…, any fsspec URL)."
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Dataset name (default: the path relative to the store's root).")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace of the dataset (default: default).")
    ] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Why this version exists.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Alias to point at the version (repeatable).")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Read every byte, ignoring the stat cache.")] = False,
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Skip the schema and statistics of tabular data.")
    ] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Parallel connections for a URL (default 8).")
    ] = None,
    use_store_checksum: Annotated[
        bool,
        typer.Option("--use-store-checksum", help="For s3:// URLs: take S3's SHA-256 checksums instead of reading."),
    ] = False,
    checks: Annotated[
        Path | None,
        typer.Option(
            "--checks", metavar="RULES", help="YAML rules to evaluate and store with the version (exit 1 on an error)."
        ),
    ] = None,
    # Two flags rather than --store-content/--no-store-content: typer's help gives a flag pair's second
    # name a column of its own, which squeezes every option name of the command into "--use-store-check…".
    store_content: Annotated[
        bool,
        typer.Option(
            "--store-content",
            help="Keep the bytes of new files in .datatrail/objects/ (copied, or reflinked where the filesystem "
            "can clone) so `datatrail checkout` can restore them (default: [content] store of the config).",
        ),
    ] = False,
    no_store_content: Annotated[
        bool, typer.Option("--no-store-content", help="Do not keep the bytes, whatever the config says.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Register a file or directory as a version of a dataset.

    Prints NAME@N sha256:<12 hex> (new|unchanged). Adding unchanged content creates nothing;
    changed content becomes the next version number.

    Example: datatrail add data/raw.csv --name raw/penguins --tag candidate

    A URL is streamed and hashed where it lives (credentials from the store's usual
    environment); unchanged objects are not read again.

    Example: datatrail add s3://bucket/raw/2024/ --jobs 16

    With --checks the rules are evaluated against the data and stored with the
    version; the command exits 1 when a rule of severity error fails.

    Example: datatrail add data/clean.parquet --name clean/penguins --checks checks.yaml

    With --store-content the bytes are kept too (deduplicated by SHA-256), so any
    version can be restored with `datatrail checkout` and shared with `datatrail push`.

    Example: datatrail add data/ --name raw/images --store-content
    """
    if store_content and no_store_content:
        msg = "--store-content and --no-store-content contradict each other; give one"
        raise InvalidInput(msg)
    keep = True if store_content else False if no_store_content else None
    ahead = prefetch.take(path)  # started by datatrail.cli.main for a big file
    trail = get_trail(ctx)

    with progress(f"hashing {redact(path)}") as advance:
        result = trail.storage.add(
            path,
            store_content=keep,
            name=name,
            namespace=namespace,
            message=message,
            tags=tag or (),
            use_cache=not no_cache,
            progress=advance,
            hint=ahead,
            profile=not no_profile,
            jobs=jobs,
            use_store_checksum=use_store_checksum,
            checks=checks,
        )
    v = result.version
    report = result.checks
    if json_out:
        out = {**v.to_dict(), "status": result.status}
        if report is not None:
            out["checks"] = report.to_dict()
        emit_json(out)
    else:
        line(f"{v.ref} {v.digest.short if v.digest else '-'} ({result.status})")
        if result.note:
            note(result.note)
        if report is not None:
            from datatrail.cli.views import print_checks  # start-up: other commands skip this module

            line(f"{count(len(report.results), 'check')}, {len(report.failed)} failed")
            print_checks(report.results)
    if report is not None and not report.passed:
        raise typer.Exit(1)


def ls(
    ctx: typer.Context,
    namespace: Annotated[str | None, typer.Option("--namespace", help="Only this namespace.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List datasets with their latest version."""
    reads.ls(lambda: get_trail(ctx), namespace, json_out)


def show(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(metavar="REF", help="NAME, NAME@3, NAME@latest, NAME@ALIAS, NAME@sha256:PREFIX or run:<id>."),
    ],
    files: Annotated[bool, typer.Option("--files", help="List every file of a directory version.")] = False,
    access: Annotated[
        bool, typer.Option("--access", help="Also list who accessed the dataset (read, wrote, was refused), and when.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show a version (or a run, with run:<id>) in full; classified columns are marked [pii]."""
    reads.show(lambda: get_trail(ctx), ref, files, access, json_out)


def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset name, optionally namespace:name.")],
    json_out: JsonOpt = False,
) -> None:
    """List every version of a dataset, oldest first."""
    reads.versions(lambda: get_trail(ctx), name, json_out)


def tag(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version to tag, e.g. raw/penguins@3.")],
    alias: Annotated[
        str, typer.Argument(metavar="ALIAS", help="Alias such as production or candidate; moves if it exists.")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Point an alias at a version (name@ALIAS then resolves to it)."""

    v = get_trail(ctx).tag(ref, alias)
    if json_out:
        emit_json(v.to_dict())
    else:
        line(f"{v.name}@{alias} -> {v.ref} {v.digest.short if v.digest else ''}".rstrip())


def register(app: typer.Typer) -> None:
    for command in (init, add, ls, show, versions, tag):
        app.command()(command)
