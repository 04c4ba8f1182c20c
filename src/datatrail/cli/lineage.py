"""Lineage and verification commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import block, document, emit_json, error, line, note, progress
from datatrail.core.errors import InvalidInput
from datatrail.core.results import ColumnLineageResult, Direction
from datatrail.core.text import count
from datatrail.files import replace_file

if TYPE_CHECKING:
    from datatrail.lineage import Graph


FORMATS = ("tree", "json", "dot", "mermaid", "svg", "html")


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

    options: tuple[tuple[Direction, bool], ...] = (("upstream", upstream), ("downstream", downstream), ("both", both))
    chosen = [d for d, on in options if on]
    if len(chosen) > 1:
        msg = "choose one of --upstream, --downstream and --both"
        raise InvalidInput(msg)
    fmt = "json" if json_out else fmt
    if fmt not in FORMATS:
        msg = f"unknown format {fmt!r}: use tree, json, dot, mermaid, svg or html"
        raise InvalidInput(msg)
    if level not in ("version", "dataset"):
        msg = f"unknown level {level!r}: use --level version or --level dataset"
        raise InvalidInput(msg)
    if force and output is None:
        msg = "--force goes with -o FILE"
        raise InvalidInput(msg)
    if columns:
        _columns(ctx, ref, column, chosen[0] if chosen else "upstream", depth, fmt, output)
        return
    if column is not None:
        msg = f"a COLUMN ({column!r}) goes with --columns: datatrail lineage {ref} --columns {column}"
        raise InvalidInput(msg)
    from datatrail.viz.fold import at_level  # lineage pictures: loaded by this command only (start-up)

    graph = get_trail(ctx).lineage(ref, direction=chosen[0] if chosen else "upstream", depth=depth)
    if output is None and fmt == "tree":
        for row in at_level(graph, level).tree_lines():
            line(row)
        return
    text = _render(graph, fmt, level)
    if output is None:
        if fmt in ("dot", "mermaid"):
            block(text.removesuffix("\n"))
        else:
            document(text)
        return
    with replace_file(Path(output), force=force) as out:
        out.write(text)
    note(f"wrote {output} ({fmt}, {count(len(graph.nodes), 'node')})")


def _columns(
    ctx: typer.Context, ref: str, column: str | None, direction: Direction, depth: int, fmt: str, output: str | None
) -> None:
    """``--columns``: the column lineage of one version as a tree (or JSON)."""
    if direction == "both":
        msg = "--columns follows one direction: use --upstream (the default) or --downstream"
        raise InvalidInput(msg)
    if fmt not in ("tree", "json") or output is not None:
        msg = "--columns prints a tree or --json to stdout; drop --format/--output"
        raise InvalidInput(msg)
    result = get_trail(ctx).column_lineage(ref, column, direction=direction, depth=depth)
    if fmt == "json":
        emit_json(
            {
                "ref": ref,
                "column": column,
                "direction": direction,
                "nodes": result.nodes,
                "edges": [{"source": s, "target": t, "transformations": tr} for s, t, tr in result.edges],
            }
        )
        return
    for row in column_tree(result, direction, column):
        line(row)


def column_tree(result: ColumnLineageResult, direction: Direction, column: str | None = None) -> list[str]:
    """``output column`` then, indented, ``<- dataset.column (@version)  [TYPE SUBTYPE]`` for each column it
    derives from (and so on up, as deep as the result goes)."""
    after: dict[str, list[tuple[str, Any]]] = {}
    for source, target, transformations in result.edges:
        start, end = (target, source) if direction == "upstream" else (source, target)
        after.setdefault(start, []).append((end, transformations))
    roots = sorted(
        (n for n, d in result.nodes.items() if d.get("depth") == 0 and (column is None or d.get("column") == column)),
        key=lambda n: (result.nodes[n].get("column") == "*", str(result.nodes[n].get("column"))),
    )
    if not roots:
        return [f"no column lineage recorded{f' for column {column!r}' if column else ''}"]
    arrow = "<-" if direction == "upstream" else "->"
    rows: list[str] = []

    def label(node: str) -> str:
        d = result.nodes[node]
        where = d["name"] if d.get("namespace") == "default" else f"{d['namespace']}:{d['name']}"
        return f"{where}.{d['column']} (@{d['version']})"

    def walk(node: str, indent: str, seen: frozenset[str]) -> None:
        children = sorted(after.get(node, []), key=lambda c: label(c[0]))
        for i, (child, transformations) in enumerate(children):
            last = i == len(children) - 1
            how = ", ".join(
                " ".join(str(t.get(k)) for k in ("type", "subtype") if t.get(k))
                + (f": {t['description']}" if t.get("description") else "")
                for t in transformations or []
                if isinstance(t, dict)
            )
            rows.append(f"{indent}{'└── ' if last else '├── '}{arrow} {label(child)}" + (f"  [{how}]" if how else ""))
            if child not in seen:
                walk(child, indent + ("    " if last else "│   "), seen | {child})

    for root in roots:
        d = result.nodes[root]
        rows.append("* (the whole dataset: rows kept, joined, grouped)" if d["column"] == "*" else str(d["column"]))
        walk(root, "", frozenset({root}))
    return rows


def _render(graph: Graph, fmt: str, level: str) -> str:
    """The graph in one format, as text ending with a newline."""

    if fmt == "svg":
        from datatrail.viz.svg import render_svg  # only the chosen format's renderer (start-up)

        return render_svg(graph, level=level)
    if fmt == "html":
        from datatrail.viz.html import render_html  # only the chosen format's renderer (start-up)

        return render_html(graph, level=level)
    from datatrail.viz.fold import at_level  # lineage pictures: loaded by this command only (start-up)

    shown = at_level(graph, level)
    if fmt == "json":
        return json.dumps(shown.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "dot":
        return shown.to_dot()
    if fmt == "mermaid":
        return shown.to_mermaid()
    return shown.to_tree() + "\n"


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
