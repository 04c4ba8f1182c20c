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
import sys
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


_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix(h: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """splitmix64's finaliser: spreads any 64-bit input over all 64 bits (arrays wrap silently).

    In place on one new array (not ``h``): the same values as the textbook
    ``h ^= h >> 30; h *= M1; ...``, with fewer temporary arrays.
    """
    return _mix_in_place(h + _GOLDEN)


def _mix_in_place(out: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """:func:`mix` of ``out - GOLDEN``, overwriting ``out`` (an array of our own)."""
    shifted = out >> _S30
    out ^= shifted
    out *= _M1
    np.right_shift(out, _S27, out=shifted)
    out ^= shifted
    out *= _M2
    np.right_shift(out, _S31, out=shifted)
    out ^= shifted
    return out


def _string_hashes(arr: pa.Array) -> np.ndarray[Any, Any]:
    """A 64-bit hash per value of a string/binary array without nulls, vectorised.

    A polynomial hash over the bytes, sum((byte + 1) * P**position) modulo
    2**64, mixed with the length, then finalised by splitmix64. Short values
    (up to WORD_HASH_MAX_BYTES) are read as 8-byte words and summed two bytes at
    a time through a table; longer ones byte by byte (``np.add.reduceat``).
    Both give the same hash for the same bytes.
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
    lengths = np.diff(offsets)
    if end == start:
        return mix(lengths.astype(np.uint64))
    data = np.frombuffer(bufs[2], dtype=np.uint8, count=end - start, offset=start)
    rel = offsets[:-1] - start
    longest = int(lengths.max())
    if longest <= WORD_HASH_MAX_BYTES and sys.byteorder == "little":
        sums = _word_sums(data, rel, lengths, longest)
    else:
        sums = _byte_sums(data, rel, lengths)
    return mix(sums ^ mix(lengths.astype(np.uint64)))


WORD_HASH_MAX_BYTES = 32


def _byte_sums(data: np.ndarray[Any, Any], rel: np.ndarray[Any, Any], lengths: np.ndarray[Any, Any]) -> Any:
    """sum((byte + 1) * P**position) per value, byte by byte."""
    positions = np.arange(len(data), dtype=np.int64) - np.repeat(rel, lengths)
    powers = _powers(int(positions.max()) + 1)
    weighted = (data.astype(np.uint64) + np.uint64(1)) * powers[positions]
    nonempty = lengths > 0
    sums = np.zeros(len(rel), dtype=np.uint64)
    sums[nonempty] = np.add.reduceat(weighted, rel[nonempty])
    return sums


_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_PAIRS: np.ndarray[Any, Any] | None = None


def _word_sums(
    data: np.ndarray[Any, Any], rel: np.ndarray[Any, Any], lengths: np.ndarray[Any, Any], longest: int
) -> Any:
    """The same sums as :func:`_byte_sums`, for short values: 8-byte words, two bytes per table look-up.

    sum((b + 1) * P**j) = sum(b * P**j) + sum(P**j for j < length); the first
    part is zero for the zero bytes that pad each value to whole words.
    """
    global _PAIRS
    if _PAIRS is None:
        pair = np.arange(1 << 16, dtype=np.uint64)  # little-endian: low byte first
        _PAIRS = (pair & np.uint64(0xFF)) + (pair >> np.uint64(8)) * _powers(2)[1]
    n, size = len(rel), len(data)
    words = (longest + 7) // 8
    powers = _powers(8 * words + 1)
    prefix = np.zeros(8 * words + 1, dtype=np.uint64)
    prefix[1:] = np.cumsum(powers[: 8 * words], dtype=np.uint64)
    padded = np.zeros(size + 8, dtype=np.uint8)
    padded[:size] = data
    # Every byte offset as the start of an (unaligned) little-endian 8-byte word.
    at = np.ndarray((size + 1,), dtype="<u8", buffer=padded, strides=(1,))
    matrix = np.empty((words, n), dtype=np.uint64)
    for k in range(words):
        rest = np.clip(lengths - 8 * k, 0, 8)
        np.bitwise_and(at[np.minimum(rel + 8 * k, size)], _MASKS[rest], out=matrix[k])
    sums = prefix[lengths]
    halves = matrix.view(np.uint16).reshape(words, n, 4)
    for m in range((longest + 1) // 2):  # the byte pairs up to the longest value's end
        term = _PAIRS[halves[m // 4, :, m % 4].astype(np.intp)]
        term *= powers[2 * m]
        sums += term
    return sums


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
        bits = values.view(np.uint64)
        bits += _GOLDEN
        return _mix_in_place(bits)  # mix(bits), in the new array
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


def unique_sorted(values: np.ndarray[Any, Any], runs: bool = False) -> np.ndarray[Any, Any]:
    """The distinct values, sorted: a sort and a comparison, several times faster than np.unique on uint64.

    ``runs``: the values are a few sorted runs one after the other (a merge sort is then faster).
    """
    if len(values) == 0:
        return values
    ordered = np.sort(values, kind="stable" if runs else None)
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


class HyperLogLog:
    """A HyperLogLog sketch over 64-bit hashes (Flajolet et al. 2007, with linear counting for small sets)."""

    def __init__(self, precision: int = HLL_PRECISION) -> None:
        self.p = precision
        # Per register the smallest remainder (the hash's low 64 - p bits) seen: the register,
        # the largest rank, is the rank of the smallest remainder (fewer bits, more leading zeros).
        # 2**(64 - p), above every remainder, stands for "nothing yet" and has rank 0.
        self.smallest = np.full(1 << precision, 1 << (64 - precision), dtype=np.uint64)

    def add(self, hashes: np.ndarray[Any, Any]) -> None:
        if len(hashes) == 0:
            return
        bits = np.uint64(64 - self.p)
        idx = (hashes >> bits).astype(np.intp)
        np.minimum.at(self.smallest, idx, hashes & np.uint64((1 << (64 - self.p)) - 1))

    def merge(self, other: HyperLogLog) -> None:
        np.minimum(self.smallest, other.smallest, out=self.smallest)

    @property
    def registers(self) -> np.ndarray[Any, Any]:
        """The registers: rank = position of the first 1 bit in the remainder (0 where nothing was added)."""
        bits = 64 - self.p
        _, length = np.frexp(self.smallest.astype(np.float64))  # bit length (<= 2**50: exact); 0 for 0
        ranks: np.ndarray[Any, Any] = (bits + 1 - length).astype(np.uint8)
        return ranks

    def estimate(self) -> int:
        registers = self.registers
        m = float(len(registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.ldexp(1.0, -registers.astype(np.int64))))
        zeros = int(np.count_nonzero(registers == 0))
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

    def compact(self) -> None:
        """Settle pending hashes into the sorted distinct set (or the HyperLogLog past the limit)."""
        self._compact()

    def _compact(self) -> None:
        if self._pending:
            self._seen = unique_sorted(np.concatenate([self._seen, *self._pending]))
            self._pending, self._pending_size = [], 0
        if len(self._seen) > self.limit:
            self.hll = HyperLogLog()
            self.hll.add(self._seen)
            self._seen = np.zeros(0, dtype=np.uint64)

    def merge(self, other: DistinctCounter) -> None:
        """Add what ``other`` counted: the same state as if this counter had seen all its values."""
        if other.hll is not None:
            if self.hll is None:
                self.hll = HyperLogLog(other.hll.p)
                self.hll.add(np.concatenate([self._seen, *self._pending]))
                self._seen, self._pending, self._pending_size = np.zeros(0, dtype=np.uint64), [], 0
            self.hll.merge(other.hll)
            return
        for part in (other._seen, *other._pending):
            self.add(part)

    @property
    def approximate(self) -> bool:
        self._compact()
        return self.hll is not None

    def count(self) -> int:
        self._compact()
        return self.hll.estimate() if self.hll is not None else len(self._seen)


class Reservoir:
    """A uniform random sample of at most ``size`` numbers from a stream (bottom-k of random keys).

    Each value comes with its key (see :func:`row_keys`): a fixed pseudo-random
    number per row. The sample is the ``size`` values of smallest key, so it is
    the same however the stream is cut into batches or split over processes
    (:meth:`merge`). Candidates gather up to twice ``size`` before the
    smallest ``size`` are picked out, which makes adding a batch cheap.
    """

    def __init__(self, size: int = SAMPLE_SIZE) -> None:
        self.size = size
        self.seen = 0
        self._keys: list[np.ndarray[Any, Any]] = []
        self._values: list[np.ndarray[Any, Any]] = []
        self._count = 0
        # Every key kept is below this (the largest of the sample as last picked; None: not full).
        self._threshold: np.uint64 | None = None

    def add(self, values: np.ndarray[Any, Any], keys: np.ndarray[Any, Any]) -> None:
        self.seen += len(values)
        self._keep(values, keys)

    def merge(self, other: Reservoir) -> None:
        self.seen += other.seen
        self._keep(other.values, other.keys)

    @property
    def keys(self) -> np.ndarray[Any, Any]:
        self._pick()
        return self._keys[0] if self._keys else np.zeros(0, dtype=np.uint64)

    @property
    def values(self) -> np.ndarray[Any, Any]:
        self._pick()
        return self._values[0] if self._values else np.zeros(0, dtype=np.float64)

    def _keep(self, values: np.ndarray[Any, Any], keys: np.ndarray[Any, Any]) -> None:
        if self._threshold is not None:
            below = keys < self._threshold
            keys, values = keys[below], values[below]
        if len(keys) == 0:
            return
        self._keys.append(keys)
        self._values.append(values.astype(np.float64, copy=False))
        self._count += len(keys)
        if self._count > 2 * self.size:
            self._pick()

    def _pick(self) -> None:
        """Keep only the ``size`` smallest keys (all distinct: one per row) and their values."""
        if len(self._keys) <= 1 and self._count <= self.size:
            return
        keys, values = np.concatenate(self._keys), np.concatenate(self._values)
        if len(keys) > self.size:
            part = np.argpartition(keys, self.size - 1)[: self.size]
            keys, values = keys[part], values[part]
            self._threshold = keys[-1]  # argpartition puts the size-th smallest last
        self._keys, self._values, self._count = [keys], [values], len(keys)

    @property
    def exact(self) -> bool:
        return self.seen <= self.size


SAMPLE_SEED = np.uint64(20261129)


def row_keys(first: int, count: int) -> np.ndarray[Any, Any]:
    """The sample keys of rows ``first`` to ``first + count - 1`` (0-based row numbers of the table).

    A bijective mix of the row number: distinct rows get distinct keys, and a
    row's key does not depend on which batch or process reads it.
    """
    return mix(np.arange(first, first + count, dtype=np.uint64) ^ SAMPLE_SEED)


def combine_row_hashes(row: np.ndarray[Any, Any], column: np.ndarray[Any, Any], position: int) -> np.ndarray[Any, Any]:
    """Fold one column's per-row hashes into the running row hashes (order matters: position)."""
    salt = np.uint64(((position + 1) * 0x9E3779B97F4A7C15) % (1 << 64))
    folded = column + salt
    folded ^= row
    folded += _GOLDEN
    return _mix_in_place(folded)  # mix(row ^ (column + salt))


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
