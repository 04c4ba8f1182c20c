"""Streaming summaries for profiling: value hashes, distinct counts, a uniform sample.

Everything here works on one record batch at a time with numpy, so a profile
holds one batch plus these summaries, never the whole table.

Why not a library: the sketches we need are small (HyperLogLog is ~30 lines
over numpy) and the well-kept libraries (``datasketches``, ``datasketch``)
hash values one Python object at a time, which is 50-100x slower than hashing
a whole Arrow column with numpy as done here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Distinct counts are exact up to this many distinct values per column, then a
# HyperLogLog estimate (flagged approximate) with a relative error of ~0.8%.
EXACT_DISTINCT_LIMIT = 100_000
HLL_PRECISION = 14  # 2**14 registers: standard error 1.04 / sqrt(16384) = 0.81%
# Quantiles and histograms come from a uniform sample of this many values per
# column: exact up to this many rows; beyond it, by the Dvoretzky-Kiefer-Wolfowitz
# inequality, every quantile's rank is within 0.5 percentage points of the truth
# with probability 1 - 2*exp(-2 * 100000 * 0.005**2) > 98.6%.
SAMPLE_SIZE = 100_000

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
NULL_HASH = np.uint64(0x5BD1E9955BD1E995)


def mix(h: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """splitmix64's finaliser: spreads any 64-bit input over all 64 bits (arrays wrap silently)."""
    h = h + _GOLDEN
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    out: np.ndarray[Any, Any] = h ^ (h >> np.uint64(31))
    return out


def _string_hashes(arr: pa.Array) -> np.ndarray[Any, Any]:
    """A 64-bit hash per value of a string/binary array without nulls, vectorised.

    A polynomial hash over the bytes (computed for all rows at once with
    ``np.add.reduceat``) mixed with the length, then finalised by splitmix64.
    """
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_binary(t):
        width: Any = np.int32
    elif pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        width = np.int64
    else:
        arr, width = arr.cast(pa.large_binary()), np.int64
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    bufs = arr.buffers()
    itemsize = np.dtype(width).itemsize
    offsets = np.frombuffer(bufs[1], dtype=width, count=n + 1, offset=arr.offset * itemsize).astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets).astype(np.uint64)
    if end == start:
        return mix(lengths)
    data = np.frombuffer(bufs[2], dtype=np.uint8, count=end - start, offset=start)
    rel = offsets[:-1] - start
    positions = np.arange(end - start, dtype=np.int64) - np.repeat(rel, lengths.astype(np.int64))
    powers = _powers(int(positions.max()) + 1)
    weighted = (data.astype(np.uint64) + np.uint64(1)) * powers[positions]
    nonempty = lengths > 0
    sums = np.zeros(n, dtype=np.uint64)
    sums[nonempty] = np.add.reduceat(weighted, rel[nonempty])
    return mix(sums ^ mix(lengths))


_POWERS = np.ones(1, dtype=np.uint64)


def _powers(n: int) -> np.ndarray[Any, Any]:
    global _POWERS
    if len(_POWERS) < n:
        size = max(n, 2 * len(_POWERS))
        out = np.empty(size, dtype=np.uint64)
        out[0] = 1
        # Powers of the FNV prime modulo 2**64 (uint64 products wrap).
        out[1:] = np.cumprod(np.full(size - 1, 0x100000001B3, dtype=np.uint64), dtype=np.uint64)
        _POWERS = out
    return _POWERS


def value_hashes(arr: pa.Array) -> np.ndarray[Any, Any] | None:
    """A uint64 hash per non-null value of ``arr`` (nulls dropped), or None for unhashable types.

    Equal values hash equal within a type; integers and floats keep their exact bits.
    """
    t = arr.type
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(t):
        dict_hashes = value_hashes(arr.dictionary)
        if dict_hashes is None:
            return None
        idx = arr.indices.drop_null().to_numpy(zero_copy_only=False)
        return dict_hashes[idx]  # type: ignore[no-any-return]
    arr = arr.drop_null()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _string_hashes(arr)
    if pa.types.is_floating(t):
        values = arr.cast(pa.float64()).to_numpy(zero_copy_only=False) + 0.0  # -0.0 and 0.0 are equal
        return mix(values.view(np.uint64))
    if pa.types.is_boolean(t):
        return mix(arr.cast(pa.uint8()).to_numpy(zero_copy_only=False).astype(np.uint64))
    if pa.types.is_integer(t) or pa.types.is_temporal(t):
        if pa.types.is_temporal(t):
            width = t.bit_width
            arr = arr.view(pa.int32() if width == 32 else pa.int64()) if width in (32, 64) else arr.cast(pa.string())
            if pa.types.is_string(arr.type):
                return _string_hashes(arr)
        return mix(arr.to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64))
    if pa.types.is_decimal(t) or pa.types.is_fixed_size_binary(t):
        return _string_hashes(arr.cast(pa.string()) if pa.types.is_decimal(t) else arr.cast(pa.binary()))
    return None


def unique_sorted(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The distinct values, sorted: a sort and a comparison, several times faster than np.unique on uint64."""
    if len(values) == 0:
        return values
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


class HyperLogLog:
    """A HyperLogLog sketch over 64-bit hashes (Flajolet et al. 2007, with linear counting for small sets)."""

    def __init__(self, precision: int = HLL_PRECISION) -> None:
        self.p = precision
        self.registers = np.zeros(1 << precision, dtype=np.uint8)

    def add(self, hashes: np.ndarray[Any, Any]) -> None:
        if len(hashes) == 0:
            return
        bits = 64 - self.p
        idx = (hashes >> np.uint64(bits)).astype(np.intp)
        rest = (hashes & np.uint64((1 << bits) - 1)).astype(np.float64)  # < 2**53: exact in a float
        _, exponent = np.frexp(rest)  # the bit length of rest; 0 for rest == 0
        rank = (bits + 1 - exponent).astype(np.uint8)
        np.maximum.at(self.registers, idx, rank)

    def estimate(self) -> int:
        m = float(len(self.registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return round(m * math.log(m / zeros))
        return round(raw)


class DistinctCounter:
    """Exact distinct count of hashed values up to ``limit``, then a HyperLogLog estimate."""

    def __init__(self, limit: int = EXACT_DISTINCT_LIMIT) -> None:
        self.limit = limit
        self._seen = np.zeros(0, dtype=np.uint64)
        self._pending: list[np.ndarray[Any, Any]] = []
        self._pending_size = 0
        self.hll: HyperLogLog | None = None

    def add(self, hashes: np.ndarray[Any, Any]) -> None:
        if self.hll is not None:
            self.hll.add(hashes)
            return
        self._pending.append(hashes)
        self._pending_size += len(hashes)
        if self._pending_size > 2 * self.limit:
            self._compact()

    def _compact(self) -> None:
        if self._pending:
            self._seen = unique_sorted(np.concatenate([self._seen, *self._pending]))
            self._pending, self._pending_size = [], 0
        if len(self._seen) > self.limit:
            self.hll = HyperLogLog()
            self.hll.add(self._seen)
            self._seen = np.zeros(0, dtype=np.uint64)

    @property
    def approximate(self) -> bool:
        self._compact()
        return self.hll is not None

    def count(self) -> int:
        self._compact()
        return self.hll.estimate() if self.hll is not None else len(self._seen)


class Reservoir:
    """A uniform random sample of at most ``size`` numbers from a stream (bottom-k of random keys)."""

    def __init__(self, size: int = SAMPLE_SIZE, seed: int = 20261129) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.values = np.zeros(0, dtype=np.float64)
        self.keys = np.zeros(0, dtype=np.float64)
        self.seen = 0

    def add(self, values: np.ndarray[Any, Any]) -> None:
        n = len(values)
        if n == 0:
            return
        self.seen += n
        keys = self.rng.random(n)
        if len(self.keys) >= self.size:
            threshold = self.keys.max()
            keep = keys < threshold
            keys, values = keys[keep], values[keep]
            if len(keys) == 0:
                return
        all_keys = np.concatenate([self.keys, keys])
        all_values = np.concatenate([self.values, values.astype(np.float64, copy=False)])
        if len(all_keys) > self.size:
            part = np.argpartition(all_keys, self.size - 1)[: self.size]
            all_keys, all_values = all_keys[part], all_values[part]
        self.keys, self.values = all_keys, all_values

    @property
    def exact(self) -> bool:
        return self.seen <= self.size


def combine_row_hashes(row: np.ndarray[Any, Any], column: np.ndarray[Any, Any], position: int) -> np.ndarray[Any, Any]:
    """Fold one column's per-row hashes into the running row hashes (order matters: position)."""
    salt = np.uint64(((position + 1) * 0x9E3779B97F4A7C15) % (1 << 64))
    return mix(row ^ (column + salt))


def column_row_hashes(arr: pa.Array) -> np.ndarray[Any, Any] | None:
    """A hash per row of ``arr``, nulls included (as a fixed value), for duplicate-row detection."""
    hashes = value_hashes(arr)
    if hashes is None:
        return None
    if arr.null_count == 0:
        return hashes
    out = np.full(len(arr), NULL_HASH, dtype=np.uint64)
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    out[valid] = hashes
    return out
