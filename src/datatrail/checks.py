"""Declarative validation rules, from YAML or Python, evaluated against a version's data.

A rules file::

    checks:
      - {rule: not_null, column: sex, severity: error}
      - {rule: between, column: body_mass_g, min: 2000, max: 7000}
      - {rule: in_set, column: species, values: [Adelie, Chinstrap, Gentoo]}
      - {rule: row_count_between, min: 300, max: 400}
      - {rule: max_duplicate_fraction, value: 0.01, severity: warn}

In Python the same dicts, or any callable taking a pyarrow Table and returning
a bool (or ``(bool, observed)``). Rules are checked when loaded (unknown rule,
misspelt key, missing parameter) and against the schema before anything is
evaluated (unknown column), so a bad rule stores nothing.

Column rules stream the data batch by batch; only a callable rule gets the
whole table (it asked for it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datatrail.core.errors import InvalidInput
from datatrail.files import read_regular

COMMON = {"rule", "column", "severity", "name", "description"}
# rule -> (required parameters, optional parameters), besides COMMON.
RULES: dict[str, tuple[set[str], set[str]]] = {
    "not_null": ({"column"}, set()),
    "unique": ({"column"}, set()),
    "between": ({"column"}, {"min", "max"}),
    "in_set": ({"column", "values"}, set()),
    "matches": ({"column", "pattern"}, set()),
    "row_count_between": (set(), {"min", "max"}),
    "max_missing_fraction": ({"value"}, set()),
    "max_duplicate_fraction": ({"value"}, set()),
    "column_exists": ({"column"}, set()),
    "type_is": ({"column", "type"}, set()),
    "custom": ({"fn"}, set()),
}
SEVERITIES = ("error", "warn")
TYPE_FAMILIES = {
    "integer": ("int", "uint"),
    "int": ("int", "uint"),
    "float": ("float", "double", "halffloat"),
    "numeric": ("int", "uint", "float", "double", "halffloat", "decimal"),
    "string": ("string", "large_string"),
    "str": ("string", "large_string"),
    "bool": ("bool",),
    "boolean": ("bool",),
    "timestamp": ("timestamp",),
    "date": ("date",),
}


@dataclass(frozen=True)
class Rule:
    """One validation rule; ``where`` names it in messages (``rules.yaml: check 3 (between)``)."""

    rule: str
    where: str
    column: str | None = None
    severity: str = "error"
    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fn: Callable[[Any], Any] | None = None

    @property
    def label(self) -> str:
        return self.name or (f"{self.rule}({self.column})" if self.column else self.rule)


RuleSource = str | os.PathLike[str] | Sequence[Any] | dict[str, Any]


def load_rules(source: RuleSource) -> list[Rule]:
    """Rules from a YAML file path, a ``{"checks": [...]}`` dict, or a list of dicts and callables."""
    origin = "rules"
    in_file = isinstance(source, str | os.PathLike)
    if isinstance(source, str | os.PathLike):
        origin = os.fspath(source)
        source = _read_yaml(Path(source))
    if isinstance(source, dict):
        if set(source) - {"checks"} or not isinstance(source.get("checks"), list):
            msg = f"{origin}: expected a mapping with one key, 'checks', holding a list of rules"
            raise InvalidInput(msg)
        source = source["checks"]
    if not isinstance(source, list | tuple):
        msg = f"{origin}: expected a list of rules"
        raise InvalidInput(msg)
    return [_rule(item, f"{origin}: check {i}", in_file=in_file) for i, item in enumerate(source, start=1)]


MAX_RULES_FILE = 4 * 1024 * 1024  # bytes: a rules file is a few dozen lines


def _read_yaml(path: Path) -> Any:
    import yaml  # PyYAML: only when a rules file is read

    from datatrail.bounded_yaml import load_bounded  # imports PyYAML: only when a rules file is read

    try:
        text = read_regular(path, limit=MAX_RULES_FILE).decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"cannot read rules file {os.fspath(path)!r}: {exc}"
        raise InvalidInput(msg) from None
    try:
        return load_bounded(text, name=os.fspath(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        msg = f"{os.fspath(path)}:{where} {problem}"
        raise InvalidInput(msg) from None


def _rule(item: Any, where: str, *, in_file: bool) -> Rule:
    if callable(item):
        name = getattr(item, "__name__", "custom")
        return Rule("custom", f"{where} ({name})", name=name, fn=item)
    if not isinstance(item, dict):
        msg = f"{where}: a rule is a mapping like {{rule: not_null, column: x}}, not {item!r}"
        raise InvalidInput(msg)
    kind = item.get("rule")
    if kind == "custom" and in_file:
        msg = (
            f"{where}: a custom rule is a Python callable, which a rules file cannot hold; "
            "pass it to trail.check in a list with the file's rules (see docs/quality.md)"
        )
        raise InvalidInput(msg)
    if kind not in RULES:
        # A file can name every rule but `custom`, whose `fn` is a Python callable.
        known = ", ".join(sorted(set(RULES) - {"custom"}))
        hint = "" if in_file else "; or a callable (or {rule: custom, fn: callable}) for a rule of your own"
        msg = f"{where}: unknown rule {kind!r}; use one of {known}{hint}"
        raise InvalidInput(msg)
    where = f"{where} ({kind})"
    required, optional = RULES[kind]
    allowed = COMMON | required | optional
    for key in item:
        if key not in allowed:
            msg = f"{where}: unknown key {key!r}; {kind} takes {', '.join(sorted(allowed - {'rule'}))}"
            raise InvalidInput(msg)
    for key in required:
        if item.get(key) is None:
            msg = f"{where}: {kind} needs {key!r}"
            raise InvalidInput(msg)
    if kind in ("between", "row_count_between") and item.get("min") is None and item.get("max") is None:
        msg = f"{where}: {kind} needs 'min', 'max' or both"
        raise InvalidInput(msg)
    severity = item.get("severity", "error")
    if severity not in SEVERITIES:
        msg = f"{where}: severity {severity!r} is not 'error' or 'warn'"
        raise InvalidInput(msg)
    for key in ("min", "max", "value"):
        if key in item and item[key] is not None and (isinstance(item[key], bool) or not _is_num(item[key])):
            msg = f"{where}: {key!r} must be a number, not {item[key]!r}"
            raise InvalidInput(msg)
    if kind == "in_set" and not isinstance(item["values"], list):
        msg = f"{where}: 'values' must be a list"
        raise InvalidInput(msg)
    if kind == "matches":
        try:
            re.compile(item["pattern"])
        except (re.error, TypeError) as exc:
            msg = f"{where}: pattern {item['pattern']!r} is not a regular expression: {exc}"
            raise InvalidInput(msg) from None
    if kind == "type_is" and str(item["type"]).lower() not in TYPE_FAMILIES and not isinstance(item["type"], str):
        msg = f"{where}: 'type' must be a type name such as integer, float, string or int64"
        raise InvalidInput(msg)
    if kind == "custom" and not callable(item["fn"]):
        msg = f"{where}: 'fn' must be a callable"
        raise InvalidInput(msg)
    column = item.get("column")
    if column is not None and not isinstance(column, str):
        msg = f"{where}: 'column' must be a column name"
        raise InvalidInput(msg)
    params = {k: v for k, v in item.items() if k not in COMMON and k != "fn"}
    name = item.get("name")
    return Rule(kind, where, column, severity, str(name) if name is not None else None, params, item.get("fn"))


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float)


def check_columns(rules: Sequence[Rule], columns: Sequence[str]) -> None:
    """InvalidInput naming the rule if one names a column the data does not have (column_exists aside)."""
    known = set(columns)
    for r in rules:
        if r.column is not None and r.rule != "column_exists" and r.column not in known:
            msg = f"{r.where}: no column {r.column!r} in the data; columns are {', '.join(columns)}"
            raise InvalidInput(msg)


@dataclass(frozen=True)
class CheckReport:
    """The results of one evaluation of rules against a version; ``passed`` unless an error-severity rule failed."""

    version: Any
    results: tuple[Any, ...]

    @property
    def passed(self) -> bool:
        return not any(not r.success and r.severity == "error" for r in self.results)

    @property
    def failed(self) -> list[Any]:
        return [r for r in self.results if not r.success]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.ref,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
        }
