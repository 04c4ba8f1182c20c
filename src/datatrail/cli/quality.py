"""Quality commands: diff and check; and the profile and check tables `show` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, line, table
from datatrail.cli.views import print_checks, print_profile
from datatrail.core.text import change, count, quantity, value

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]


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
