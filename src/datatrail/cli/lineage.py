"""Lineage and verification commands."""

from __future__ import annotations

from typing import Annotated

import typer

from datatrail.cli.output import emit_json, error, line, progress


def lineage(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="The version to start from: NAME (latest), NAME@3, NAME@ALIAS…")
    ],
    upstream: Annotated[bool, typer.Option("--upstream", help="Where it came from (the default).")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="What was made from it.")] = False,
    both: Annotated[bool, typer.Option("--both", help="Both directions.")] = False,
    depth: Annotated[
        int, typer.Option("--depth", "-d", min=0, max=1000, help="Steps (run + its datasets) to follow.")
    ] = 10,
    fmt: Annotated[str, typer.Option("--format", "-f", help="tree, json, dot or mermaid.")] = "tree",
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Print the lineage of a version: the runs and versions it came from or fed.

    Example: datatrail lineage clean/penguins --upstream --depth 5
    """
    from datatrail.cli.app import get_trail
    from datatrail.errors import InvalidInput

    chosen = [d for d, on in (("upstream", upstream), ("downstream", downstream), ("both", both)) if on]
    if len(chosen) > 1:
        msg = "choose one of --upstream, --downstream and --both"
        raise InvalidInput(msg)
    fmt = "json" if json_out else fmt
    if fmt not in ("tree", "json", "dot", "mermaid"):
        msg = f"unknown format {fmt!r}: use tree, json, dot or mermaid"
        raise InvalidInput(msg)
    graph = get_trail(ctx).lineage(ref, direction=chosen[0] if chosen else "upstream", depth=depth)
    if fmt == "json":
        emit_json(graph.to_json())
    elif fmt == "dot":
        typer.echo(graph.to_dot(), nl=False)
    elif fmt == "mermaid":
        typer.echo(graph.to_mermaid(), nl=False)
    else:
        line(graph.to_tree())


def verify(
    ctx: typer.Context,
    refs: Annotated[
        list[str] | None,
        typer.Argument(metavar="REF", help="Versions to check (default: the latest of every dataset)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Check the latest version of every dataset.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Read every byte, ignoring the stat cache.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")] = False,
) -> None:
    """Re-hash the data behind versions and list every missing or changed file.

    Exits with status 1 when anything is missing or changed.
    """
    from datatrail.cli.app import get_trail
    from datatrail.errors import InvalidInput

    if all_ and refs:
        msg = "give either refs or --all, not both"
        raise InvalidInput(msg)
    trail = get_trail(ctx)
    with progress("verifying") as advance:
        report = trail.verify(refs or (), use_cache=not no_cache, progress=advance)
    if json_out:
        emit_json(report.to_dict())
    else:
        for v, why in report.skipped:
            line(f"skipped  {v.ref}: {why}")
        bad = {p.ref for p in report.problems}
        for v in report.checked:
            if v.ref not in bad:
                line(f"ok       {v.ref} {v.digest.short if v.digest else ''}")
        for p in report.problems:
            detail = f" (expected {p.expected[:19]}, found {p.actual[:19]})" if p.expected and p.actual else ""
            line(f"{p.kind:<8} {p.ref}: {p.path}{detail}")
    if not report.ok:
        if not json_out:
            error(f"{len(report.problems)} problem(s) found")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(lineage)
    app.command()(verify)
