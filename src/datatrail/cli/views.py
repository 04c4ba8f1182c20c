"""How the reads print a run, a profile and check results: shared by `show` and the commands that list them.

Plain functions over plain values, without typer, so that the reads' fast path
(cli/fast.py) prints through the same code as the typer commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datatrail.cli.output import line, table, when
from datatrail.core.text import count, quantity, value

if TYPE_CHECKING:
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
    for key, shown in fields:
        if shown is not None:
            line(f"{key + ':':<10} {shown}")
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


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def print_profile(profile: dict[str, Any]) -> None:
    """The table-level figures, then one row per column."""
    line("")
    rows = profile.get("row_count")
    line(f"{'rows:':<12} {quantity(rows)}   columns: {len(profile.get('columns', []))}")
    if profile.get("duplicate_rows") is not None:
        share = _percent(profile["duplicate_fraction"])
        line(f"{'duplicates:':<12} {count(profile['duplicate_rows'], 'row')} ({share})")
    if profile.get("missing_cells") is not None:
        line(f"{'missing:':<12} {count(profile['missing_cells'], 'cell')} ({_percent(profile['missing_fraction'])})")
    line("")
    body = []
    for c in profile.get("columns", []):
        quantiles = c.get("quantiles") or {}
        distinct = quantity(c.get("distinct_count"))
        if c.get("distinct_approximate"):
            distinct = "~" + distinct
        body.append(
            [
                c["name"] + (f" [{','.join(c['classified'])}]" if c.get("classified") else ""),
                c.get("type"),
                quantity(c.get("null_count")),
                _percent(c.get("null_fraction")) if c.get("null_fraction") is not None else "-",
                distinct,
                value(c.get("min"), 16),
                value(quantiles.get("p50")),
                value(c.get("max"), 16),
                value(c.get("mean")),
                value(c.get("std")),
            ]
        )
    table(["column", "type", "nulls", "null %", "distinct", "min", "median", "max", "mean", "std"], body)
    tops = [c for c in profile.get("columns", []) if c.get("top_values") and c.get("kind", "") != "numeric"]
    for c in tops:
        if isinstance(c.get("min"), str) or isinstance(c["top_values"][0].get("value"), bool):
            values = ", ".join(f"{value(t['value'], 20)} ({quantity(t['count'])})" for t in c["top_values"][:5])
            line(f"top {c['name']}: {values}")


def print_checks(checks: Sequence[Any], latest_only: bool = False) -> None:
    """A table of check results; ``latest_only`` keeps the most recent evaluation."""
    if latest_only and checks:
        last = max(c.checked_at for c in checks)
        earlier = len(checks)
        checks = [c for c in checks if c.checked_at == last]
        if earlier > len(checks):
            line("")
            line(f"checks (the latest of {count(earlier, 'result')}; --json lists all):")
    line("")
    table(
        ["rule", "column", "severity", "result", "observed", "expected", "checked", "by"],
        [
            [
                c.name or c.rule,
                c.column,
                c.severity,
                "pass" if c.success else "FAIL",
                value(c.observed),
                c.expected,
                when(c.checked_at),
                c.checked_by,
            ]
            for c in checks
        ],
    )
