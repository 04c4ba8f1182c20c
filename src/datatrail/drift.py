"""Distribution drift between two tabular versions, from their stored profiles or their data.

Per numeric column: the population stability index (PSI) over the reference's
10 histogram bins (open at both ends) and the two-sample Kolmogorov-Smirnov
statistic with its asymptotic p-value. Per categorical column: Pearson's
chi-square test of the two value distributions and the Jensen-Shannon distance
(base 2, between 0 and 1). Per column: the change of the missing-value fraction.
For the table: columns added, removed or retyped (schema drift).

From profiles (the default) the distributions are the stored histograms (or
quantiles) and top values, so no data is read; from data (``exact=True``) the
statistics are exact. Only numpy is needed; the tests check every statistic
against ``scipy.stats``.

>>> report = compare_profiles(reference_profile, current_profile)  # doctest: +SKIP
>>> report.drifted, [c["name"] for c in report.drifted_columns]     # doctest: +SKIP
(True, ['body_mass_g'])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from datatrail.core.errors import InvalidInput
from datatrail.core.records import DEFAULT_THRESHOLDS, DriftReport

EPSILON = 1e-4  # floor of a bin's proportion in PSI, so an empty bin does not give infinity
Array = np.ndarray[Any, Any]
NUMERIC_PREFIXES = ("int", "uint", "float", "double", "halffloat", "decimal")


# ---------------------------------------------------------------- statistics


def psi(expected: Iterable[float], actual: Iterable[float]) -> float:
    """Population stability index of two bin proportion vectors: sum (a - e) ln(a / e)."""
    e = _floor(np.asarray(list(expected), dtype=float))
    a = _floor(np.asarray(list(actual), dtype=float))
    return float(np.sum((a - e) * np.log(a / e)))


def _floor(p: Array) -> Array:
    total = p.sum()
    p = p / total if total > 0 else np.full_like(p, 1.0 / max(len(p), 1))
    return np.maximum(p, EPSILON)


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of the two-sample KS statistic (Kolmogorov's distribution)."""
    if n <= 0 or m <= 0:
        return 1.0
    z = math.sqrt(n * m / (n + m)) * statistic
    if z < 0.27:  # there the p-value is 1 to within 4e-7
        return 1.0
    total = sum(float((-1) ** (k - 1)) * math.exp(-2.0 * k * k * z * z) for k in range(1, 101))
    return min(1.0, max(0.0, 2.0 * total))


def chi_square(counts_a: Iterable[float], counts_b: Iterable[float]) -> tuple[float, int, float]:
    """Pearson's chi-square test of a 2 x k table: (statistic, degrees of freedom, p-value)."""
    table = np.vstack([np.asarray(list(counts_a), dtype=float), np.asarray(list(counts_b), dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or (rows == 0).any():
        return 0.0, 0, 1.0
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return stat, dof, _gamma_q(dof / 2.0, stat / 2.0)


def js_distance(p: Iterable[float], q: Iterable[float]) -> float:
    """Jensen-Shannon distance (the square root of the divergence, base 2) of two distributions."""
    a = np.asarray(list(p), dtype=float)
    b = np.asarray(list(q), dtype=float)
    if a.sum() <= 0 or b.sum() <= 0:
        return 0.0
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2

    def kl(x: Array) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return math.sqrt(max(0.0, (kl(a) + kl(b)) / 2))


def _gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x) (series or continued fraction)."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


# ---------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Numeric:
    """A numeric column's distribution: its CDF, where the CDF bends, and its value range."""

    count: int
    cdf: Callable[[Array], Array]
    points: Array
    low: float
    high: float
    exact: bool

    @classmethod
    def from_values(cls, values: Array) -> Numeric:
        v = np.sort(values[~np.isnan(values)])
        n = len(v)

        def cdf(x: Array) -> Array:
            return np.searchsorted(v, x, side="right") / n if n else np.zeros_like(x, dtype=float)

        low, high = (float(v[0]), float(v[-1])) if n else (0.0, 0.0)
        return cls(n, cdf, np.unique(v), low, high, True)

    @classmethod
    def from_profile(cls, column: Mapping[str, Any], rows: int) -> Numeric | None:
        low, high = column.get("min"), column.get("max")
        if not isinstance(low, int | float) or not isinstance(high, int | float):
            return None
        count = rows - int(column.get("null_count") or 0) - int(column.get("nan_count") or 0)
        hist = column.get("histogram")
        quantiles = column.get("quantiles")
        if isinstance(hist, dict) and hist.get("counts"):
            xs = np.asarray(hist["edges"], dtype=float)
            ps = np.concatenate([[0.0], np.cumsum(np.asarray(hist["counts"], dtype=float))])
            ps = ps / ps[-1] if ps[-1] > 0 else ps
        elif isinstance(quantiles, dict) and quantiles:
            keys = sorted(quantiles, key=lambda k: float(k.lstrip("p")))
            xs = np.asarray([low, *(quantiles[k] for k in keys), high], dtype=float)
            ps = np.asarray([0.0, *(float(k.lstrip("p")) / 100 for k in keys), 1.0])
        else:
            return None
        if xs[-1] <= xs[0]:  # one value: a step at it
            xs, ps = np.asarray([xs[0], xs[0]]), np.asarray([0.0, 1.0])

        def cdf(x: Array) -> Array:
            out = np.interp(x, xs, ps, left=0.0, right=1.0)
            if xs[-1] == xs[0]:
                out = np.where(x >= xs[0], 1.0, 0.0)
            return np.asarray(out, dtype=float)

        return cls(max(count, 0), cdf, np.unique(xs), float(low), float(high), False)

    def bins(self) -> Array:
        """The 9 inner edges of 10 equal-width bins over the value range (the profile's histogram bins)."""
        return np.linspace(self.low, self.high, 11)[1:-1]

    def proportions(self, inner_edges: Array) -> Array:
        cuts = self.cdf(inner_edges)
        return np.diff(np.concatenate([[0.0], cuts, [1.0]]))


def ks_statistic(a: Numeric, b: Numeric) -> float:
    """The largest distance between the two CDFs (exact for data, interpolated for profiles)."""
    points = np.union1d(a.points, b.points)
    if not len(points):
        return 0.0
    if a.exact and b.exact:  # step functions: the largest gap is at a data point
        grid = points
    else:  # between the edges of interpolated CDFs too
        grid = np.concatenate([points, (points[:-1] + points[1:]) / 2])
    return float(np.max(np.abs(a.cdf(grid) - b.cdf(grid))))


@dataclass(frozen=True)
class Categorical:
    """A categorical column's value counts; ``other`` counts values beyond the stored top values."""

    counts: dict[str, float]
    other: float = 0.0

    @classmethod
    def from_profile(cls, column: Mapping[str, Any], rows: int) -> Categorical | None:
        top = column.get("top_values")
        if not isinstance(top, list) or not top:
            return None
        counts = {_key(t["value"]): float(t["count"]) for t in top}
        non_null = rows - int(column.get("null_count") or 0)
        return cls(counts, max(0.0, non_null - sum(counts.values())))


def _key(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def categorical_stats(a: Categorical, b: Categorical) -> dict[str, Any]:
    keys = sorted(set(a.counts) | set(b.counts))
    ca = [a.counts.get(k, 0.0) for k in keys]
    cb = [b.counts.get(k, 0.0) for k in keys]
    if a.other or b.other:
        ca.append(a.other)
        cb.append(b.other)
    stat, dof, p = chi_square(ca, cb)
    return {"chi2": stat, "dof": dof, "chi2_pvalue": p, "js": js_distance(ca, cb)}


# ---------------------------------------------------------------- the report


def thresholds(given: Mapping[str, float] | None = None) -> dict[str, float]:
    """The default thresholds updated with ``given`` (keys psi, ks, js, missing)."""
    out = dict(DEFAULT_THRESHOLDS)
    for key, value in (given or {}).items():
        if key not in out:
            msg = f"unknown drift threshold {key!r}: use {', '.join(DEFAULT_THRESHOLDS)}"
            raise InvalidInput(msg)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            msg = f"drift threshold {key}={value!r} must be a number >= 0"
            raise InvalidInput(msg)
        out[key] = float(value)
    return out


def is_numeric(type_name: str | None) -> bool:
    return bool(type_name) and str(type_name).startswith(NUMERIC_PREFIXES)


def _columns(profile: Mapping[str, Any] | None, what: str) -> dict[str, dict[str, Any]]:
    if not profile or not isinstance(profile.get("columns"), list):
        msg = f"{what} has no profile (it is not tabular data, or was added with --no-profile); drift needs one"
        raise InvalidInput(msg)
    return {c["name"]: c for c in profile["columns"]}


def compare_profiles(
    reference: Mapping[str, Any] | None,
    current: Mapping[str, Any] | None,
    *,
    names: tuple[str, str] = ("reference", "current"),
    limits: Mapping[str, float] | None = None,
    data: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> DriftReport:
    """Compare two profiles (profiling.py's); ``data`` holds each side's column values for exact statistics."""
    limit = thresholds(limits)
    ref_cols, cur_cols = _columns(reference, names[0]), _columns(current, names[1])
    assert reference is not None and current is not None
    ref_rows, cur_rows = int(reference.get("row_count") or 0), int(current.get("row_count") or 0)
    added = [{"name": n, "type": c.get("type")} for n, c in cur_cols.items() if n not in ref_cols]
    removed = [{"name": n, "type": c.get("type")} for n, c in ref_cols.items() if n not in cur_cols]
    changed = [
        {"name": n, "reference": c.get("type"), "current": cur_cols[n].get("type")}
        for n, c in ref_cols.items()
        if n in cur_cols and c.get("type") != cur_cols[n].get("type")
    ]
    schema = {"added": added, "removed": removed, "changed": changed, "drifted": bool(added or removed or changed)}
    columns = []
    for name, ref_col in ref_cols.items():
        cur_col = cur_cols.get(name)
        if cur_col is None:
            continue
        values = (data[0].get(name), data[1].get(name)) if data is not None else None
        columns.append(_compare_column(name, ref_col, cur_col, ref_rows, cur_rows, limit, values))
    return DriftReport(
        reference=names[0],
        current=names[1],
        method="data" if data is not None else "profile",
        thresholds=limit,
        rows={"reference": ref_rows, "current": cur_rows},
        schema=schema,
        columns=columns,
    )


def _compare_column(
    name: str,
    ref: Mapping[str, Any],
    cur: Mapping[str, Any],
    ref_rows: int,
    cur_rows: int,
    limit: Mapping[str, float],
    values: tuple[Any, Any] | None,
) -> dict[str, Any]:
    ref_missing = _fraction(ref.get("null_count"), ref_rows)
    cur_missing = _fraction(cur.get("null_count"), cur_rows)
    out: dict[str, Any] = {
        "name": name,
        "type": cur.get("type"),
        "kind": "other",
        "missing": {"reference": ref_missing, "current": cur_missing, "change": cur_missing - ref_missing},
    }
    reasons: list[str] = []
    if abs(cur_missing - ref_missing) >= limit["missing"]:
        reasons.append(f"missing {ref_missing:.1%} -> {cur_missing:.1%}")
    same_kind = is_numeric(ref.get("type")) == is_numeric(cur.get("type"))
    if same_kind and is_numeric(cur.get("type")):
        a = _numeric(ref, ref_rows, values[0] if values else None)
        b = _numeric(cur, cur_rows, values[1] if values else None)
        if a is not None and b is not None and a.count and b.count:
            edges = a.bins()
            out["kind"] = "numeric"
            out["psi"] = psi(a.proportions(edges), b.proportions(edges))
            out["ks"] = ks_statistic(a, b)
            out["ks_pvalue"] = ks_pvalue(out["ks"], a.count, b.count)
            out["mean"] = {"reference": ref.get("mean"), "current": cur.get("mean")}
            if out["psi"] >= limit["psi"]:
                reasons.append(f"psi {out['psi']:.3f} >= {limit['psi']:g}")
            if out["ks"] >= limit["ks"]:
                reasons.append(f"ks {out['ks']:.3f} >= {limit['ks']:g}")
    elif same_kind:
        a_cat = _categorical(ref, ref_rows, values[0] if values else None)
        b_cat = _categorical(cur, cur_rows, values[1] if values else None)
        if a_cat is not None and b_cat is not None:
            out["kind"] = "categorical"
            out.update(categorical_stats(a_cat, b_cat))
            if out["js"] >= limit["js"]:
                reasons.append(f"js {out['js']:.3f} >= {limit['js']:g}")
    out["score"] = _score(out)
    out["drifted"] = bool(reasons)
    out["reasons"] = reasons
    return out


def _score(column: Mapping[str, Any]) -> float | None:
    """One number per column for the history table: PSI for numeric columns, JS distance for categorical ones."""
    value = column.get("psi") if column["kind"] == "numeric" else column.get("js")
    return float(value) if value is not None else None


def _fraction(count: Any, rows: int) -> float:
    return float(count or 0) / rows if rows else 0.0


def _numeric(column: Mapping[str, Any], rows: int, values: Any) -> Numeric | None:
    if values is not None:
        return Numeric.from_values(np.asarray(values, dtype=float))
    return Numeric.from_profile(column, rows)


def _categorical(column: Mapping[str, Any], rows: int, values: Any) -> Categorical | None:
    if isinstance(values, dict):
        return Categorical({_key(k): float(v) for k, v in values.items()})
    if values is not None:
        counts: dict[str, float] = {}
        for v in values:
            if v is not None:
                counts[_key(v)] = counts.get(_key(v), 0.0) + 1
        return Categorical(counts)
    return Categorical.from_profile(column, rows)


def read_columns(path: Any, fmt: str) -> dict[str, Any]:
    """Every column of a tabular file or directory: numbers as a float array (NaN for nulls), others as counts."""
    import pyarrow as pa

    from datatrail.scan import scan_path  # pyarrow: only when the data itself is compared

    class Collect:
        def __init__(self) -> None:
            self.chunks: dict[str, list[Any]] = {}

        def add(self, batch: pa.RecordBatch) -> None:
            for name, arr in zip(batch.schema.names, batch.columns, strict=True):
                self.chunks.setdefault(name, []).append(arr)

    found = scan_path(path, fmt, Collect)
    if found is None:
        msg = f"cannot read {path!s} as one table: its files have different columns"
        raise InvalidInput(msg)
    out: dict[str, Any] = {}
    for name, chunks in found.chunks.items():
        column = pa.chunked_array(chunks)
        if is_numeric(str(column.type)):
            out[name] = column.cast(pa.float64()).to_numpy()
        else:
            counts = column.drop_null().value_counts()
            out[name] = {
                value: float(count)
                for value, count in zip(
                    counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
                )
            }
    return out


__all__ = [
    "DEFAULT_THRESHOLDS",
    "Categorical",
    "DriftReport",
    "Numeric",
    "chi_square",
    "compare_profiles",
    "js_distance",
    "ks_pvalue",
    "ks_statistic",
    "psi",
    "read_columns",
    "thresholds",
]
