"""Evaluating validation rules (:mod:`datatrail.checks`) against data, streamed batch by batch.

Imports pyarrow: import this module only when checks are due.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datatrail.checks import TYPE_FAMILIES, Rule, check_columns
from datatrail.core.errors import InvalidInput
from datatrail.profile_builder import ProfileBuilder, jsonable, to_arrow
from datatrail.scan import scan_path
from datatrail.sketches import unique_sorted, value_hashes

TABLE_RULES = ("row_count_between", "max_missing_fraction", "max_duplicate_fraction")


class Evaluator:
    """Accumulates what each rule needs from the batches of one table."""

    def __init__(self, rules: Sequence[Rule], profile: dict[str, Any] | None) -> None:
        self.rules = list(rules)
        self.profile = profile
        needs_profile = profile is None and any(r.rule in TABLE_RULES for r in rules)
        self.builder = ProfileBuilder() if needs_profile else None
        self.names: list[str] = []
        self.types: dict[str, pa.DataType] = {}
        self.counts = [0] * len(rules)  # failing values per column rule
        self.hashes: list[list[np.ndarray[Any, Any]]] = [[] for _ in rules]
        self.batches: list[pa.RecordBatch] = []
        self.keep = any(r.fn is not None for r in rules)
        self.seen = False

    def add(self, batch: pa.RecordBatch) -> None:
        if not self.seen:
            self.seen = True
            self.names = list(batch.schema.names)
            self.types = {f.name: f.type for f in batch.schema}
            check_columns(self.rules, self.names)
        if self.builder is not None:
            self.builder.add(batch)
        if self.keep:
            self.batches.append(batch)
        for i, r in enumerate(self.rules):
            if r.column is None or r.rule in ("column_exists", "type_is", "max_missing_fraction"):
                continue
            arr = batch.column(self.names.index(r.column))
            self.counts[i] += self._failing(r, arr, i)

    def _failing(self, r: Rule, arr: pa.Array, i: int) -> int:
        if r.rule == "not_null":
            return int(arr.null_count)
        values = arr.drop_null()
        try:
            if r.rule == "unique":
                hashes = value_hashes(values)
                if hashes is None:
                    msg = f"{r.where}: cannot compare values of type {arr.type} for uniqueness"
                    raise InvalidInput(msg)
                self.hashes[i].append(hashes)
                return 0
            if r.rule == "between":
                if not len(values):
                    return 0
                low, high = r.params.get("min"), r.params.get("max")
                below = pc.sum(pc.less(values, low)).as_py() or 0 if low is not None else 0
                above = pc.sum(pc.greater(values, high)).as_py() or 0 if high is not None else 0
                return int(below) + int(above)
            if r.rule == "in_set":
                allowed = pa.array(r.params["values"])
                allowed = allowed.cast(values.type) if allowed.type != values.type else allowed
                return len(values) - int(pc.sum(pc.is_in(values, value_set=allowed)).as_py() or 0)
            if r.rule == "matches":
                text = values if pa.types.is_string(values.type) else values.cast(pa.string())
                hits = pc.match_substring_regex(text, f"^(?:{r.params['pattern']})$")
                return len(values) - int(pc.sum(hits).as_py() or 0)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            msg = (
                f"{r.where}: cannot apply to column {r.column!r} of type {arr.type}: {' '.join(str(exc).split())[:200]}"
            )
            raise InvalidInput(msg) from None
        return 0

    def results(self) -> list[dict[str, Any]]:
        profile = self.profile
        if profile is None and self.builder is not None:
            profile = self.builder.result("table")
        table = pa.Table.from_batches(self.batches) if self.keep and self.batches else None
        out = []
        for i, r in enumerate(self.rules):
            success, observed, expected = self._judge(r, i, profile, table)
            out.append(
                {
                    "rule": r.rule,
                    "name": r.name,
                    "column": r.column,
                    "severity": r.severity,
                    "success": bool(success),
                    "observed": observed,
                    "expected": expected,
                    "message": None,
                }
            )
        return out

    def _judge(
        self, r: Rule, i: int, profile: dict[str, Any] | None, table: pa.Table | None
    ) -> tuple[bool, Any, str | None]:
        p = r.params
        if r.rule == "not_null":
            return self.counts[i] == 0, self.counts[i], "0 nulls"
        if r.rule == "unique":
            allh = np.concatenate(self.hashes[i]) if self.hashes[i] else np.zeros(0, dtype=np.uint64)
            dups = len(allh) - len(unique_sorted(allh))
            return dups == 0, dups, "0 duplicate values"
        if r.rule == "between":
            return self.counts[i] == 0, self.counts[i], f"0 values outside [{p.get('min')}, {p.get('max')}]"
        if r.rule == "in_set":
            return self.counts[i] == 0, self.counts[i], f"0 values outside {p['values']}"
        if r.rule == "matches":
            return self.counts[i] == 0, self.counts[i], f"0 values not matching {p['pattern']!r}"
        if r.rule == "column_exists":
            return r.column in self.names, r.column in self.names, "present"
        if r.rule == "type_is":
            actual = str(self.types[r.column]) if r.column in self.types else None
            want = str(p["type"]).lower()
            family = TYPE_FAMILIES.get(want)
            ok = actual is not None and (actual.startswith(family) if family else actual == want)
            return ok, actual, str(p["type"])
        if r.rule == "custom":
            return _call(r, table if table is not None else pa.table({n: [] for n in self.names}))
        assert profile is not None
        if r.rule == "row_count_between":
            rows = profile["row_count"]
            ok = (p.get("min") is None or rows >= p["min"]) and (p.get("max") is None or rows <= p["max"])
            return ok, rows, f"[{p.get('min')}, {p.get('max')}]"
        if r.rule == "max_missing_fraction":
            if r.column is not None:
                col = next(c for c in profile["columns"] if c["name"] == r.column)
                fraction = col.get("null_fraction") or 0.0
            else:
                fraction = profile.get("missing_fraction") or 0.0
            return fraction <= p["value"], fraction, f"<= {p['value']}"
        if r.rule == "max_duplicate_fraction":
            fraction = profile.get("duplicate_fraction")
            if fraction is None:
                msg = f"{r.where}: the rows hold values that cannot be compared (nested types)"
                raise InvalidInput(msg)
            return fraction <= p["value"], fraction, f"<= {p['value']}"
        msg = f"{r.where}: unknown rule"  # pragma: no cover - load_rules refuses it
        raise InvalidInput(msg)


def _call(r: Rule, table: pa.Table) -> tuple[bool, Any, str | None]:
    assert r.fn is not None
    try:
        answer = r.fn(table)
    except Exception as exc:
        msg = f"{r.where}: the check raised {type(exc).__name__}: {exc}"
        raise InvalidInput(msg) from None
    observed: Any = None
    if isinstance(answer, tuple) and len(answer) == 2:
        answer, observed = answer
    if not isinstance(answer, bool | np.bool_):
        msg = f"{r.where}: a check must return a bool or (bool, observed), not {type(answer).__name__}"
        raise InvalidInput(msg)
    if isinstance(observed, float) and not math.isfinite(observed):
        observed = None
    return bool(answer), _plain(observed), "true"


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return jsonable(value)


def evaluate_path(
    rules: Sequence[Rule], path: str | os.PathLike[str], fmt: str, profile: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Evaluate rules against a tabular file or directory; InvalidInput for a bad rule or unreadable data."""
    evaluator = scan_path(path, fmt, lambda: Evaluator(rules, profile))
    if evaluator is None:
        msg = f"cannot check {os.fspath(path)!r}: its files have different columns, so they are not one table"
        raise InvalidInput(msg)
    if not evaluator.seen:  # pragma: no cover - every reader yields at least one batch
        check_columns(rules, [])
    return evaluator.results()


def evaluate_table(rules: Sequence[Rule], data: Any) -> list[dict[str, Any]]:
    """Evaluate rules against a pyarrow Table or a pandas/polars DataFrame."""
    table = to_arrow(data)
    evaluator = Evaluator(rules, None)
    batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    for batch in batches:
        evaluator.add(batch)
    return evaluator.results()
