"""Lineage and verification commands."""

from __future__ import annotations

from typing import Annotated

import typer

from datatrail.cli import reads
from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, error, line, progress
from datatrail.core.errors import InvalidInput
from datatrail.core.text import count


def lineage(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="The version to start from: NAME (latest), NAME@3, NAME@ALIAS…")
    ],
    column: Annotated[
        str | None,
        typer.Argument(metavar="COLUMN", help="With --columns: only this column of REF.", show_default=False),
    ] = None,
    upstream: Annotated[bool, typer.Option("--upstream", help="Where it came from (the default).")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="What was made from it.")] = False,
    both: Annotated[bool, typer.Option("--both", help="Both directions.")] = False,
    depth: Annotated[
        int, typer.Option("--depth", "-d", min=0, max=1000, help="Steps (run + its datasets) to follow.")
    ] = 10,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="tree, json, dot (Graphviz), mermaid, svg (a picture) or html (one interactive offline page).",
        ),
    ] = "tree",
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
    level: Annotated[
        str,
        typer.Option("--level", metavar="LEVEL", help="version (versions and runs) or dataset (datasets and jobs)."),
    ] = "version",
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With -o: replace FILE even if it is a symlink (the link, not its target).")
    ] = False,
    columns: Annotated[
        bool,
        typer.Option(
            "--columns",
            help="Column-level lineage (every column, or the COLUMN given after REF): each column and the input "
            "columns it derives from, with how (IDENTITY, TRANSFORMATION, AGGREGATION; FILTER, JOIN… for the "
            "whole dataset, shown as '*'). Tree or --json.",
        ),
    ] = False,
) -> None:
    """Print the lineage of a version: the runs and versions it came from or fed.

    Examples: datatrail lineage clean/penguins --upstream --depth 5;
    datatrail lineage raw/penguins --downstream -f svg -o lineage.svg;
    datatrail lineage model -f html -o lineage.html (open it in a browser: pan, zoom, click a node);
    datatrail lineage model --level dataset -f mermaid;
    datatrail lineage sales_by_country --columns total (which input columns make `total`, and how);
    datatrail lineage sales_by_country --columns --json
    """
    reads.lineage(
        lambda: get_trail(ctx),
        ref,
        column,
        upstream=upstream,
        downstream=downstream,
        both=both,
        depth=depth,
        fmt=fmt,
        output=output,
        level=level,
        json_out=json_out,
        force=force,
        columns=columns,
    )


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
            error(f"{count(len(report.problems), 'problem')} found")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(lineage)
    app.command()(verify)
