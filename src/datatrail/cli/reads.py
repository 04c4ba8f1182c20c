"""What the read commands do: `ls`, `show`, `versions`, `runs` and `lineage`, without typer.

The typer commands (cli/data.py, cli/runs.py, cli/lineage.py) declare the
options and the help, and call these; so does the reads' fast path
(cli/fast.py), which answers the plain forms of these commands without
building typer at all. Each takes ``trail``, a function that opens the store on
first call, so that a bad option is refused before any store is looked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrail.cli.output import block, document, emit_json, human_size, line, note, table, when
from datatrail.core.errors import InvalidInput
from datatrail.core.model import Ref
from datatrail.core.text import count

if TYPE_CHECKING:
    from datatrail.core.results import ColumnLineageResult, Direction
    from datatrail.lineage import Graph
    from datatrail.service import Trail

Opener = Callable[[], "Trail"]
FORMATS = ("tree", "json", "dot", "mermaid", "svg", "html")


def ls(trail: Opener, namespace: str | None, json_out: bool) -> None:
    """``datatrail ls``: datasets with their latest version."""
    opened = trail()
    datasets = opened.datasets(namespace)
    latest = {(d.namespace, d.name): opened.get(Ref(d.namespace, d.name)) for d in datasets if d.latest}
    if json_out:
        # The latest version's fields win: `created_at`/`created_by` describe the
        # version whose digest and size are shown, like every other read command.
        emit_json(
            [
                {**d.to_dict(), **(latest[(d.namespace, d.name)].to_dict() if (d.namespace, d.name) in latest else {})}
                for d in datasets
            ]
        )
        return
    if not datasets:
        line("no datasets yet; add one with `datatrail add PATH`")
        return
    rows = []
    for d in datasets:
        v = latest.get((d.namespace, d.name))
        rows.append(
            [
                d.name if d.namespace == "default" else f"{d.namespace}:{d.name}",
                d.kind,
                d.latest,
                v.digest.short if v and v.digest else None,
                human_size(v.size) if v else None,
                when(v.created_at) if v else None,
                v.created_by if v else None,
            ]
        )
    table(["dataset", "kind", "latest", "digest", "size", "created", "by"], rows)


def show(trail: Opener, ref: str, files: bool, access: bool, json_out: bool) -> None:
    """``datatrail show``: a version (or a run, with run:<id>) in full."""
    opened = trail()
    if ref.startswith("run:"):
        run = opened.get_run(ref)
        job = next((j for j in opened.jobs(run.namespace) if j.name == run.job), None)
        if json_out:
            emit_json({**run.to_dict(), "job_description": job and job.description, "job_sql": job and job.sql})
        else:
            from datatrail.cli.views import print_run  # start-up: only `show run:…` prints a run

            print_run(run, job)
        return
    v = opened.get(ref)
    manifest = opened.manifest(v) if v.is_directory else []
    stats = opened.profile(v)
    checks = opened.check_results(v)
    # What the producer said (schema facet, documentation) shows too when datatrail did not profile the data.
    reported = opened.describe(v)
    doc = ((reported.get("facets") or {}).get("documentation") or {}).get("value") or {}
    description = doc.get("description") if isinstance(doc, dict) else None
    schema = reported.get("schema") if isinstance(reported.get("schema"), list) else None
    if json_out:
        data = v.to_dict()
        data["description"] = description
        data["schema"] = schema
        if v.is_directory:
            data["files"] = [{"path": f.path, "size": f.size, "digest": str(f.digest)} for f in manifest]
        data["profile"] = stats
        data["checks"] = [c.to_dict() for c in checks]
        if v.kind == "model":
            data["model_card"] = opened.model_card(v).to_dict()
        if access:
            from datatrail.cli.security import entry_dict  # start-up: other commands skip this module

            data["access"] = [entry_dict(e) for e in opened.access_log(v)]
        emit_json(data)
        return
    fields = [
        ("version", v.ref),
        ("kind", v.kind),
        ("digest", str(v.digest) if v.digest else v.key),
        ("size", f"{human_size(v.size)} ({count(v.size, 'byte')})" if v.size is not None else None),
        ("format", v.format),
        ("files", v.file_count),
        ("uri", v.uri),
        ("aliases", ", ".join(v.aliases) or None),
        ("created", when(v.created_at)),
        ("created by", v.created_by),
        ("host", v.host),
        ("message", v.message),
        ("run", f"run:{v.run_id}" if v.run_id else None),
        ("description", description),
    ]
    for key, shown in fields:
        if shown is not None:
            line(f"{key + ':':<12} {shown}")
    if v.kind == "model":
        from datatrail.cli.ml import print_model_card  # start-up: other commands skip this module

        print_model_card(opened.model_card(v))
    if stats is not None:
        from datatrail.cli.views import print_profile  # start-up: only a profiled version prints one

        print_profile(stats)
    elif schema:
        line("")
        line("schema (as the producer reported it):")
        table(
            ["column", "type", "description"],
            [[f.get("name"), f.get("type"), f.get("description")] for f in schema if isinstance(f, dict)],
        )
    if checks:
        from datatrail.cli.views import print_checks  # start-up: only a checked version prints checks

        print_checks(checks, latest_only=True)
    if manifest:
        listed = manifest if files else manifest[:20]
        line("")
        table(["path", "size", "digest"], [[f.path, human_size(f.size), f.digest.short] for f in listed])
        if len(listed) < len(manifest):
            line(f"… and {count(len(manifest) - len(listed), 'more file')} (--files lists all)")
    if access:
        from datatrail.cli.security import print_access  # start-up: other commands skip this module

        print_access(opened.access_log(v))


def versions(trail: Opener, name: str, json_out: bool) -> None:
    """``datatrail versions``: every version of a dataset, oldest first."""
    items = trail().versions(name)
    if json_out:
        emit_json([v.to_dict() for v in items])
        return
    table(
        ["version", "digest", "size", "created", "by", "aliases", "message"],
        [
            [
                v.number,
                v.digest.short if v.digest else v.key,
                human_size(v.size),
                when(v.created_at),
                v.created_by,
                ", ".join(v.aliases) or None,
                v.message,
            ]
            for v in items
        ],
    )


def runs(trail: Opener, job: str | None, limit: int, json_out: bool) -> None:
    """``datatrail runs``: runs, newest first."""
    opened = trail()
    items = opened.runs(job, limit)
    if json_out:
        emit_json([r.to_dict() for r in items])
        return
    if not items:
        line("no runs yet; record one with `with trail.run(...)` in Python")
        return
    # The shortest prefix naming only that run: ids sharing their first characters (UUIDv7) show more of them.
    labels = opened.catalog.run_labels([r.id for r in items])
    table(
        ["run", "job", "state", "started", "user", "inputs", "outputs"],
        [
            [labels[r.id], r.job, r.state.value, when(r.started_at), r.user, len(r.inputs), len(r.outputs)]
            for r in items
        ],
    )


def lineage(
    trail: Opener,
    ref: str,
    column: str | None,
    *,
    upstream: bool,
    downstream: bool,
    both: bool,
    depth: int,
    fmt: str,
    output: str | None,
    level: str,
    json_out: bool,
    force: bool,
    columns: bool,
) -> None:
    """``datatrail lineage``: the runs and versions a version came from or fed."""
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
        _columns(trail, ref, column, chosen[0] if chosen else "upstream", depth, fmt, output)
        return
    if column is not None:
        msg = f"a COLUMN ({column!r}) goes with --columns: datatrail lineage {ref} --columns {column}"
        raise InvalidInput(msg)
    from datatrail.viz.fold import at_level  # lineage pictures: loaded by this command only (start-up)

    graph = trail().lineage(ref, direction=chosen[0] if chosen else "upstream", depth=depth)
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
    from datatrail.files import replace_file  # start-up: only a picture written to a file needs it

    with replace_file(Path(output), force=force) as out:
        out.write(text)
    note(f"wrote {output} ({fmt}, {count(len(graph.nodes), 'node')})")


def _columns(
    trail: Opener, ref: str, column: str | None, direction: Direction, depth: int, fmt: str, output: str | None
) -> None:
    """``--columns``: the column lineage of one version as a tree (or JSON)."""
    if direction == "both":
        msg = "--columns follows one direction: use --upstream (the default) or --downstream"
        raise InvalidInput(msg)
    if fmt not in ("tree", "json") or output is not None:
        msg = "--columns prints a tree or --json to stdout; drop --format/--output"
        raise InvalidInput(msg)
    result = trail().column_lineage(ref, column, direction=direction, depth=depth)
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
