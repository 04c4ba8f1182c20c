"""Quality commands: diff and check; and the profile and check tables `show` prints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, line, table, when
from datatrail.core.text import change, count, quantity, value

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]


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


def _short(stat: str, number: Any) -> str:
    """A column statistic in a diff: a count (``null_count``…) grouped, a value from the data as it is."""
    if stat.endswith("_count") and isinstance(number, int) and not isinstance(number, bool):
        return quantity(number)
    return value(number, 16)


def print_diff(d: dict[str, Any]) -> None:
    a, b = d["a"], d["b"]
    line(f"a: {a['ref']} {a['digest'][:19]}")
    line(f"b: {b['ref']} {b['digest'][:19]}")
    if d["same_content"]:
        line("same content")
        return
    size = d["size"]
    if size.get("change") is not None:
        line(f"size: {quantity(size['a'])} -> {count(size['b'], 'byte')} ({change(size['change'])})")
    if d.get("format"):
        line(f"format: {d['format']['a']} -> {d['format']['b']}")
    if not d["profiled"] and d["files"] is None:
        line("no profiles to compare (not tabular, or added with --no-profile)")
    for key, label in (("row_count", "rows"), ("duplicate_rows", "duplicate rows"), ("missing_cells", "missing cells")):
        stat = d["table"].get(key)
        if stat and stat.get("change"):
            line(f"{label}: {quantity(stat['a'])} -> {quantity(stat['b'])} ({change(stat['change'])})")
    schema = d.get("schema") or {}
    for c in schema.get("added", []):
        line(f"+ column {c['name']} ({c['type']})")
    for c in schema.get("removed", []):
        line(f"- column {c['name']} ({c['type']})")
    for c in schema.get("retyped", []):
        line(f"~ column {c['name']}: {c['a']} -> {c['b']}")
    rows = []
    for col in d["columns"]:
        for stat, moved in col["changes"].items():
            delta = moved.get("change")
            rows.append([col["name"], stat, _short(stat, moved["a"]), _short(stat, moved["b"]), _short(stat, delta)])
    if rows:
        line("")
        table(["column", "statistic", "a", "b", "change"], rows)
    for col in d["columns"]:
        top = col.get("top_values")
        if top:
            parts = [f"+{value(t['value'], 16)} ({quantity(t['count'])})" for t in top["added"]]
            parts += [f"-{value(t['value'], 16)} ({quantity(t['count'])})" for t in top["removed"]]
            parts += [f"{value(t['value'], 16)} {quantity(t['a'])} -> {quantity(t['b'])}" for t in top["changed"]]
            line(f"{col['name']} top values: {', '.join(parts)}")
        histogram = col.get("histogram")
        if histogram and histogram.get("distance") is not None:
            line(f"{col['name']} histogram moved: distance {histogram['distance']:.3f} (0 same shape, 1 disjoint)")
    files = d.get("files")
    if files is not None:
        line("")
        for key, mark in (("added", "+"), ("removed", "-"), ("changed", "~")):
            for path in files[key]:
                line(f"{mark} {path}")
        counts = ", ".join(f"{quantity(len(files[k]))} {k}" for k in ("added", "removed", "changed"))
        line(f"files: {counts}, {quantity(files['unchanged'])} unchanged")


def diff(
    ctx: typer.Context,
    ref_a: Annotated[str, typer.Argument(metavar="REF_A", help="The version to compare from, e.g. raw@1.")],
    ref_b: Annotated[str, typer.Argument(metavar="REF_B", help="The version to compare to, e.g. raw@latest.")],
    json_out: JsonOpt = False,
) -> None:
    """Compare two versions: schema, row count, column statistics and (directories) files.

    Example: datatrail diff raw/penguins@1 raw/penguins@latest
    """

    result = get_trail(ctx).diff(ref_a, ref_b)
    if json_out:
        emit_json(result)
    else:
        print_diff(result)


def check(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The version to check, e.g. raw/penguins@latest.")],
    rules: Annotated[Path, typer.Option("--rules", "-r", help="YAML file of rules (a 'checks:' list).")],
    json_out: JsonOpt = False,
) -> None:
    """Evaluate validation rules against a version's data and record the results.

    Prints one line per rule; exits 1 when a rule of severity error fails (warn never fails).

    Example: datatrail check raw/penguins --rules checks.yaml
    """

    report = get_trail(ctx).check(ref, rules)
    if json_out:
        emit_json(report.to_dict())
    else:
        line(f"{report.version.ref}: {count(len(report.results), 'check')}, {len(report.failed)} failed")
        print_checks(report.results)
    if not report.passed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    for command in (diff, check):
        app.command()(command)


__all__ = ["Path", "diff", "print_checks", "print_profile", "register"]
