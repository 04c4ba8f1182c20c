"""Building a profile batch by batch: per-column statistics that merge exactly.

:class:`ProfileBuilder` takes record batches (from :mod:`datatrail.scan`, or a
table held in memory) and gives the profile; two builders over parts of one
table merge into the builder of the whole (``profile_parallel.py`` relies on
it). Memory stays at about one record batch plus the summaries of
:mod:`datatrail.sketches` and one 8-byte hash per distinct row (for the
duplicate count), never the whole table. :mod:`datatrail.profiling` holds the
entry points.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datatrail.core.errors import InvalidInput
from datatrail.sketches import (
    NULL_HASH,
    DistinctCounter,
    Reservoir,
    combine_row_hashes,
    row_keys,
    unique_sorted,
    value_hashes,
)

PROFILE_VERSION = 2  # 2: the quantile sample is keyed on row numbers (same hashes and counts as 1)
TOP_LIMIT = 1_000  # top values are kept for columns with at most this many distinct values
TOP_SHOWN = 10
HISTOGRAM_BINS = 10
QUANTILES = (("p5", 0.05), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p95", 0.95))
ROW_HASH_COMPACT = 4_000_000


def to_arrow(data: Any) -> pa.Table:
    """A pyarrow Table from a Table, RecordBatch, pandas or polars DataFrame."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    msg = f"cannot profile a {type(data).__name__}: give a pyarrow Table, a pandas or a polars DataFrame"
    raise InvalidInput(msg)


# ---------------------------------------------------------------- statistics


def _kind(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_temporal(t):
        return "temporal"
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    return "other"


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it: no NaN or infinity, dates as ISO 8601 text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


class ColumnStats:
    """The running statistics of one column."""

    def __init__(self, field: pa.Field) -> None:
        self.name = field.name
        self.type = field.type
        self.nullable = field.nullable
        self.kind = _kind(field.type)
        self.rows = self.nulls = self.nan = 0
        self.distinct: DistinctCounter | None = DistinctCounter()
        self.top: dict[Any, int] | None = {} if self.kind != "other" else None
        self.min: Any = None
        self.max: Any = None
        self.n = 0
        # (count, mean, sum of squared deviations) per batch, folded in order by result():
        # merged profiles of row ranges then give the same floating-point figures.
        self.moments: list[tuple[int, float, float]] = []
        self.sample = Reservoir() if self.kind == "numeric" else None
        self.len_min: int | None = None
        self.len_max: int | None = None
        self.len_sum = 0
        # Text is hashed through a per-batch dictionary (each distinct value once) while
        # that pays: for a column of mostly repeated values it hashes a few bytes, not all.
        self.dictionary = self.kind == "string"

    def add(self, arr: pa.Array, keys: np.ndarray[Any, Any] | None = None) -> np.ndarray[Any, Any] | None:
        """Update with one batch's values; return a hash per row (nulls included) for duplicate rows.

        ``keys`` are the batch's sample keys (:func:`datatrail.sketches.row_keys`),
        needed for numeric columns.
        """
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        self.rows += len(arr)
        self.nulls += arr.null_count
        valid = pc.is_valid(arr).to_numpy(zero_copy_only=False) if arr.null_count else None
        by_dictionary = self.distinct is not None and self.dictionary and len(arr) > arr.null_count
        # The values without nulls, for every use below (the dictionary path needs none).
        present = arr.drop_null() if arr.null_count and not by_dictionary else arr
        hashes = None
        encoded = None
        if by_dictionary:
            encoded = pc.dictionary_encode(arr)
            hashes = self._add_encoded(encoded)
            self.dictionary = len(encoded.dictionary) * 4 < len(arr)
        elif self.distinct is not None:
            hashes = value_hashes(present)
        if hashes is None:
            self.distinct = None
        else:
            assert self.distinct is not None
            self.distinct.add(hashes)
        if encoded is not None:
            pass  # top values, min/max and lengths came from the dictionary
        elif self.top is not None:
            counts = pc.value_counts(present)
            top = self.top
            if len(counts) <= TOP_LIMIT:
                values, numbers = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
                for value, count in zip(values, numbers, strict=True):
                    top[value] = top.get(value, 0) + count
            # Past TOP_LIMIT distinct values the column is not low-cardinality: stop counting.
            self.top = top if len(counts) <= TOP_LIMIT and len(top) <= TOP_LIMIT else None
        nan = 0
        if self.kind in ("numeric", "boolean"):
            nan = self._moments(present, keys, valid)
        if encoded is None and self.kind in ("numeric", "string", "temporal", "boolean") and len(arr) > arr.null_count:
            self._min_max(present, nan)
        if encoded is None and self.kind == "string":
            lengths = pc.utf8_length(present)
            mm = pc.min_max(lengths).as_py()
            if mm["min"] is not None:
                self.len_min = mm["min"] if self.len_min is None else min(self.len_min, mm["min"])
                self.len_max = mm["max"] if self.len_max is None else max(self.len_max, mm["max"])
                self.len_sum += pc.sum(lengths).as_py() or 0
        if hashes is None:
            return None
        if valid is None:
            return hashes
        out = np.full(len(arr), NULL_HASH, dtype=np.uint64)
        out[valid] = hashes
        return out

    def _add_encoded(self, encoded: pa.DictionaryArray) -> np.ndarray[Any, Any] | None:
        """Top values, min/max and lengths of a text batch from its dictionary; the value hashes.

        Each distinct value is looked at once, weighted by its count: the same
        figures as from the values one by one.
        """
        dictionary = encoded.dictionary
        indices = encoded.indices.drop_null().to_numpy(zero_copy_only=False)
        counts = np.bincount(indices, minlength=len(dictionary))
        if self.top is not None:
            top = self.top
            if len(dictionary) <= TOP_LIMIT:
                for value, count in zip(dictionary.to_pylist(), counts.tolist(), strict=True):
                    top[value] = top.get(value, 0) + count
            self.top = top if len(dictionary) <= TOP_LIMIT and len(top) <= TOP_LIMIT else None
        self._min_max(dictionary, 0)
        lengths = pc.utf8_length(dictionary).to_numpy(zero_copy_only=False).astype(np.int64)
        low, high = int(lengths.min()), int(lengths.max())
        self.len_min = low if self.len_min is None else min(self.len_min, low)
        self.len_max = high if self.len_max is None else max(self.len_max, high)
        self.len_sum += int(np.dot(counts, lengths))
        dictionary_hashes = value_hashes(dictionary)
        return None if dictionary_hashes is None else dictionary_hashes[indices]

    def _min_max(self, arr: pa.Array, nan: int) -> None:
        if nan and pa.types.is_floating(arr.type):
            arr = pc.filter(arr, pc.invert(pc.is_nan(arr)))
        mm = pc.min_max(arr).as_py()
        if mm["min"] is None:
            return
        self.min = mm["min"] if self.min is None else min(self.min, mm["min"])
        self.max = mm["max"] if self.max is None else max(self.max, mm["max"])

    def _moments(self, present: pa.Array, keys: np.ndarray[Any, Any] | None, valid: np.ndarray[Any, Any] | None) -> int:
        """Count, mean and squared deviations of the finite values (``present``: the batch without nulls).

        Also feeds the sample; returns the NaN count.
        """
        values = present.cast(pa.float64()).to_numpy(zero_copy_only=False)
        finite = np.isfinite(values)
        nan = 0
        all_finite = bool(finite.all())
        if not all_finite:
            nan = int(np.count_nonzero(np.isnan(values)))
            self.nan += nan
            values = values[finite]
        n = len(values)
        if n == 0:
            return nan
        mean = float(values.mean())
        self.moments.append((n, mean, float(np.square(values - mean).sum())))
        self.n += n
        if self.sample is not None:
            if keys is None:
                msg = "numeric columns need the batch's sample keys"
                raise ValueError(msg)
            if valid is not None:
                keys = keys[valid]
            self.sample.add(values, keys if all_finite else keys[finite])
        return nan

    def _fold_moments(self) -> tuple[int, float, float]:
        """Chan et al.'s pairwise update over the batches in order: stable where a sum of squares is not."""
        count, mean, m2 = 0, 0.0, 0.0
        for n, batch_mean, batch_m2 in self.moments:
            total = count + n
            delta = batch_mean - mean
            mean += delta * n / total
            m2 += batch_m2 + delta * delta * count * n / total
            count = total
        return count, mean, m2

    def merge(self, other: ColumnStats) -> None:
        """Add the statistics of the rows that follow (``other``): the same as one pass over all rows."""
        self.rows += other.rows
        self.nulls += other.nulls
        self.nan += other.nan
        if self.distinct is None or other.distinct is None:
            self.distinct = None
        else:
            self.distinct.merge(other.distinct)
        if self.top is None or other.top is None:
            self.top = None
        else:
            top = self.top
            for value, count in other.top.items():
                top[value] = top.get(value, 0) + count
            self.top = top if len(top) <= TOP_LIMIT else None
        if other.min is not None:  # on a tie min() keeps the first, as one pass does
            self.min = other.min if self.min is None else min(self.min, other.min)
            self.max = other.max if self.max is None else max(self.max, other.max)
        self.moments.extend(other.moments)
        self.n += other.n
        if self.sample is not None and other.sample is not None:
            self.sample.merge(other.sample)
        if other.len_min is not None and other.len_max is not None:
            self.len_min = other.len_min if self.len_min is None else min(self.len_min, other.len_min)
            self.len_max = other.len_max if self.len_max is None else max(self.len_max, other.len_max)
        self.len_sum += other.len_sum

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": str(self.type),
            "nullable": self.nullable,
            "null_count": self.nulls,
            "null_fraction": self.nulls / self.rows if self.rows else 0.0,
            "distinct_count": self.distinct.count() if self.distinct is not None else None,
            "distinct_approximate": self.distinct.approximate if self.distinct is not None else False,
            "min": jsonable(self.min),
            "max": jsonable(self.max),
        }
        if self.kind in ("numeric", "boolean"):
            n, mean, m2 = self._fold_moments()
            out["mean"] = jsonable(mean) if n else None
            out["std"] = jsonable(math.sqrt(m2 / (n - 1))) if n > 1 else None
        if self.kind == "numeric":
            out["nan_count"] = self.nan
            out.update(self._sample_stats())
        if self.kind == "string":
            count = self.rows - self.nulls
            out["length"] = {
                "min": self.len_min,
                "max": self.len_max,
                "mean": self.len_sum / count if count else None,
            }
        if self.top is not None:
            ranked = sorted(self.top.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_SHOWN]
            out["top_values"] = [{"value": jsonable(v), "count": c} for v, c in ranked]
        return out

    def _sample_stats(self) -> dict[str, Any]:
        assert self.sample is not None
        values = self.sample.values
        if len(values) == 0:
            return {"quantiles": None, "histogram": None}
        qs = np.quantile(values, [q for _, q in QUANTILES])
        lo, hi = float(self.min), float(self.max)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # infinities are counted in min/max, not binned
            lo, hi = float(values.min()), float(values.max())
        edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1) if hi > lo else np.array([lo, hi])
        counts, _ = np.histogram(values, bins=edges)
        if not self.sample.exact:
            counts = np.round(counts * (self.n / len(values))).astype(np.int64)
        return {
            "quantiles": {name: jsonable(float(v)) for (name, _), v in zip(QUANTILES, qs, strict=True)},
            "quantiles_exact": self.sample.exact,
            "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        }


class ProfileBuilder:
    """Accumulates record batches into a profile."""

    def __init__(self, first_row: int = 0) -> None:
        self.first_row = first_row  # the row number of the first row this builder sees (sample keys)
        self.columns: list[ColumnStats] = []
        self.names: list[str] = []
        self.rows = 0
        self._row_hashes: list[np.ndarray[Any, Any]] = []
        self._pending = 0
        self._runs = True  # whether every array of _row_hashes is sorted and deduplicated
        self._hashable = True

    def start(self, schema: pa.Schema) -> None:
        if not self.columns:
            self.columns = [ColumnStats(f) for f in schema]
            self.names = list(schema.names)

    def add(self, batch: pa.RecordBatch) -> None:
        self.start(batch.schema)
        keys = None
        if any(c.sample is not None for c in self.columns):
            keys = row_keys(self.first_row + self.rows, batch.num_rows)
        self.rows += batch.num_rows
        row = np.zeros(batch.num_rows, dtype=np.uint64)
        for i, (col, arr) in enumerate(zip(self.columns, batch.columns, strict=True)):
            hashes = col.add(arr, keys)
            if hashes is None:
                self._hashable = False
            elif self._hashable:
                row = combine_row_hashes(row, hashes, i)
        if self._hashable and batch.num_rows:
            self._runs = False
            self._row_hashes.append(row)
            self._pending += len(row)
            if self._pending > ROW_HASH_COMPACT:
                self.compact()

    def compact(self) -> None:
        """Sort and deduplicate the row hashes, settle the distinct counters (before sending it elsewhere)."""
        if self._row_hashes and not (len(self._row_hashes) == 1 and self._runs):
            self._row_hashes = [unique_sorted(np.concatenate(self._row_hashes))]
        self._runs = True
        self._pending = len(self._row_hashes[0]) if self._row_hashes else 0
        for c in self.columns:
            if c.distinct is not None:
                c.distinct.compact()

    def merge(self, other: ProfileBuilder) -> None:
        """Add the profile of the rows that follow this builder's (another part of the same table)."""
        if not self.columns:
            self.columns, self.names = other.columns, other.names
        elif other.columns:
            for mine, theirs in zip(self.columns, other.columns, strict=True):
                mine.merge(theirs)
        self.rows += other.rows
        self._hashable = self._hashable and other._hashable
        self._runs = self._runs and other._runs
        if self._hashable:
            # Kept apart (each part is deduplicated already); result() counts them in one sort.
            self._row_hashes.extend(other._row_hashes)
            self._pending += other._pending
        else:
            self._row_hashes, self._pending = [], 0

    def result(self, fmt: str) -> dict[str, Any]:
        columns = [c.result() for c in self.columns]
        duplicates: int | None = None
        if self._hashable:
            # Merged parts are sorted runs, which a merge sort joins faster than quicksort sorts them.
            runs = len(self._row_hashes) > 1 and self._runs
            distinct_rows = len(unique_sorted(np.concatenate(self._row_hashes), runs)) if self._row_hashes else 0
            duplicates = self.rows - distinct_rows
        cells = self.rows * len(columns)
        missing = sum(c["null_count"] for c in columns)
        return {
            "profile_version": PROFILE_VERSION,
            "format": fmt,
            "row_count": self.rows,
            "column_count": len(columns),
            "duplicate_rows": duplicates,
            "duplicate_fraction": (duplicates / self.rows if self.rows else 0.0) if duplicates is not None else None,
            "missing_cells": missing,
            "missing_fraction": missing / cells if cells else 0.0,
            "columns": columns,
        }


def schema_fields(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns of a profile as OpenLineage schema facet fields."""
    return [
        {"name": c["name"], "type": c["type"], "ordinal_position": i}
        for i, c in enumerate(profile.get("columns", []), start=1)
    ]


def iter_columns(profile: dict[str, Any] | None) -> Iterable[dict[str, Any]]:
    columns: list[dict[str, Any]] = (profile or {}).get("columns", [])
    return columns
