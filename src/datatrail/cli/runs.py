"""Run commands: runs (and the run view used by show run:<id>)."""

from __future__ import annotations

from typing import Annotated

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, line, table, when
from datatrail.core.model import Run
from datatrail.core.results import JobSummary


def print_run(run: Run, job: JobSummary | None = None) -> None:
    fields = [
        ("run", run.id),
        ("job", run.job if run.namespace == "default" else f"{run.namespace}:{run.job}"),
        ("state", run.state.value),
        ("started", when(run.started_at)),
        ("ended", when(run.ended_at) if run.ended_at else None),
        ("user", run.user),
        ("host", run.host),
        ("command", run.command),
        ("cwd", run.cwd),
        ("workflow", run.workflow),
        ("parent", f"run:{run.parent_run_id}" if run.parent_run_id else None),
        ("error", run.error),
        ("about", job.description if job else None),
    ]
    if run.code.get("commit"):
        dirty = " (dirty)" if run.code.get("dirty") else ""
        fields.append(("git", f"{run.code.get('commit', '')[:12]} on {run.code.get('branch')}{dirty}"))
    env = run.code.get("environment")
    if isinstance(env, dict):
        fields.append(("python", env.get("python")))
        fields.append(("os", env.get("os")))
    for key, value in fields:
        if value is not None:
            line(f"{key + ':':<10} {value}")
    for title, mapping in (("params", run.params), ("metrics", run.metrics)):
        if mapping:
            line(f"{title}:")
            for k, val in sorted(mapping.items()):
                line(f"  {k} = {val}")
    for title, items in (("inputs", run.inputs), ("outputs", run.outputs)):
        if items:
            line(f"{title}:")
            for v in items:
                line(f"  {v.ref} {v.digest.short if v.digest else v.key}")
    if job is not None and job.sql:
        line("sql:")
        for text in job.sql.strip().splitlines():
            line(f"  {text}")
    if run.planned_outputs:
        line("planned outputs (named, no version produced):")
        for namespace, name in run.planned_outputs:
            line(f"  {name if namespace == 'default' else f'{namespace}:{name}'}")
    if run.children:
        line("child runs:")
        for child in run.children:
            line(f"  run:{child}")


def runs(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only runs of this job.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="At most this many, newest first.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")] = False,
) -> None:
    """List runs, newest first; `datatrail show run:<id>` shows one in full."""

    trail = get_trail(ctx)
    items = trail.runs(job, limit)
    if json_out:
        emit_json([r.to_dict() for r in items])
        return
    if not items:
        line("no runs yet; record one with `with trail.run(...)` in Python")
        return
    # The shortest prefix naming only that run: ids sharing their first characters (UUIDv7) show more of them.
    labels = trail.catalog.run_labels([r.id for r in items])
    table(
        ["run", "job", "state", "started", "user", "inputs", "outputs"],
        [
            [labels[r.id], r.job, r.state.value, when(r.started_at), r.user, len(r.inputs), len(r.outputs)]
            for r in items
        ],
    )


def register(app: typer.Typer) -> None:
    app.command()(runs)
