"""Profiling a Parquet file in several processes gives exactly the one-process profile (issue 3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datatrail import sketches
from datatrail.core.errors import InvalidInput
from datatrail.profile_parallel import WORKERS_ENV, plan, profile_parquet
from datatrail.profiling import profile_path
from datatrail.scan import BATCH_ROWS
from datatrail.sketches import EXACT_DISTINCT_LIMIT, SAMPLE_SIZE, DistinctCounter, Reservoir, row_keys

ROWS = 420_000


def table_with_everything(rows: int = ROWS) -> pa.Table:
    """Nulls, NaN, infinities, signed zeros, high and low cardinality, duplicates across the whole file."""
    rng = np.random.default_rng(20261129)
    fresh = rows - rows // 20
    floats = rng.normal(100, 15, fresh)
    floats[rng.integers(0, fresh, 50)] = np.nan
    floats[rng.integers(0, fresh, 5)] = np.inf
    floats[rng.integers(0, fresh, 5)] = -0.0
    species = np.array(["Adelie", "Chinstrap", "Gentoo", "a much longer species name, past 32 bytes"])
    table = pa.table(
        {
            "id": pa.array(np.arange(fresh), mask=rng.random(fresh) < 0.01),
            "x": pa.array(floats, mask=rng.random(fresh) < 0.1),
            "small": pa.array(rng.integers(-5, 5, fresh).astype(np.int32)),
            # Each row range sees fewer than EXACT_DISTINCT_LIMIT values, the file more.
            "third": pa.array(np.arange(fresh) // 3),
            "key": pa.array([f"k{i}-é" for i in rng.integers(0, 10**9, fresh)]),
            "species": pa.array(species[rng.integers(0, 4, fresh)]).dictionary_encode(),
            "city": pa.array([f"city{i}" for i in rng.integers(0, 900, fresh)], mask=rng.random(fresh) < 0.2),
            "flag": pa.array(rng.random(fresh) < 0.3, mask=rng.random(fresh) < 0.05),
            "when": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 2000, fresh)]),
        }
    )
    # 5 % of the rows repeat rows from anywhere in the file, so duplicates span the row ranges.
    return pa.concat_tables([table, table.take(rng.integers(0, fresh, rows - fresh))])


def one_process(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    with monkeypatch.context() as m:
        m.setenv(WORKERS_ENV, "1")
        p = profile_path(path, "parquet")
    assert p is not None
    return p


def test_two_processes_give_the_one_process_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = table_with_everything()
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=15_000)
    ranges = plan(path, 2, 0)
    assert ranges is not None and len(ranges) >= 3  # several ranges, each of whole runs of row groups

    merged = profile_parquet(path, "parquet", processes=2, min_cells=0)
    assert merged is not None
    parallel = merged.result("parquet")
    single = one_process(path, monkeypatch)
    assert parallel == single

    # And the shared profile is right, not just the same.
    assert single["row_count"] == ROWS
    # Python's NaN is not equal to itself: compare floats by their text (a profile counts NaN as one value).
    cells = [[repr(v) if isinstance(v, float) else v for v in table[c].to_pylist()] for c in table.column_names]
    expected_duplicates = ROWS - len(set(zip(*cells, strict=True)))
    assert single["duplicate_rows"] == expected_duplicates > 0
    columns = {c["name"]: c for c in single["columns"]}
    assert columns["key"]["distinct_approximate"] is True
    assert columns["third"]["distinct_approximate"] is True
    assert columns["small"]["distinct_count"] == 10 and columns["small"]["distinct_approximate"] is False
    assert {t["value"] for t in columns["species"]["top_values"]} == {
        "Adelie",
        "Chinstrap",
        "Gentoo",
        "a much longer species name, past 32 bytes",
    }
    x = table["x"].to_numpy(zero_copy_only=False)
    finite = x[np.isfinite(x)]
    assert columns["x"]["nan_count"] == int(np.isnan(x).sum()) - table["x"].null_count
    assert columns["x"]["mean"] == pytest.approx(finite.mean())
    assert columns["x"]["quantiles_exact"] is False and len(finite) > SAMPLE_SIZE
    assert columns["x"]["max"] is None  # infinity is not JSON; it still counts as the maximum
    assert columns["id"]["null_count"] == table["id"].null_count


def test_the_environment_forces_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(table_with_everything(200_000), path, row_group_size=50_000)
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert profile_parquet(path, "parquet", min_cells=0) is None
    monkeypatch.setenv(WORKERS_ENV, "two")
    with pytest.raises(InvalidInput, match=f"{WORKERS_ENV}='two' is not a number"):
        profile_path(path, "parquet")
    # Small files stay in one process whatever the cores.
    assert plan(path, 2, 10**9) is None


@pytest.mark.parametrize("group", [0, -1], ids=["read-by-a-worker", "read-by-this-process"])
def test_an_unreadable_row_group_is_the_one_line_error_of_one_process(
    group: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(table_with_everything(300_000), path, row_group_size=BATCH_ROWS, compression="none")
    metadata = pq.read_metadata(path)
    # Overwrite the pages of one row group's "key" column: the footer stays readable.
    # Workers take ranges from the start, this process from the end.
    chunk = metadata.row_group(group % metadata.num_row_groups).column(4)
    data = bytearray(path.read_bytes())
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))

    with pytest.raises(InvalidInput) as single:
        one_process(path, monkeypatch)
    with pytest.raises(InvalidInput) as parallel:
        profile_parquet(path, "parquet", processes=2, min_cells=0)
    assert str(parallel.value) == str(single.value)
    assert str(single.value).startswith(f"cannot profile {str(path)!r} as parquet: ")
    assert "\n" not in str(single.value)


def test_word_and_byte_string_hashes_agree() -> None:
    rng = np.random.default_rng(3)
    values = ["", "a", "Adelie", "x" * 8, "y" * 9, "z" * 32, "héllo", "日本語"]
    values += ["".join(chr(c) for c in rng.integers(32, 400, rng.integers(0, 17))) for _ in range(3000)]
    arr = pa.array(values)
    assert max(len(v.encode()) for v in values) <= sketches.WORD_HASH_MAX_BYTES
    words = sketches.value_hashes(arr)
    # The same values hashed byte by byte (the path of values longer than WORD_HASH_MAX_BYTES).
    with_long = sketches.value_hashes(pa.array([*values, "w" * 100]))
    assert words is not None and with_long is not None
    assert np.array_equal(words, with_long[:-1])
    assert len(set(words.tolist())) == len(set(values))
    # Hashes are stored in no profile, but distinct counts past the exact limit depend on them:
    # these are the values of profile version 1.
    assert sketches.value_hashes(pa.array(["Adelie", "", "city123"])).tolist() == [
        0x11D2C6797A967B87,
        0xA706DD2F4D197E6F,
        0x7A7A90E05DF423BB,
    ]


def test_sketches_merge_to_the_one_pass_state() -> None:
    rng = np.random.default_rng(5)
    hashes = sketches.mix(rng.integers(0, 3 * EXACT_DISTINCT_LIMIT, 4 * EXACT_DISTINCT_LIMIT).astype(np.uint64))
    whole, left, right = DistinctCounter(), DistinctCounter(), DistinctCounter()
    whole.add(hashes)
    left.add(hashes[:1000])  # stays exact, merged into one that went approximate
    right.add(hashes[1000:])
    left.merge(right)
    assert left.approximate and whole.approximate
    assert left.hll is not None and whole.hll is not None
    assert np.array_equal(left.hll.registers, whole.hll.registers)

    values = rng.normal(size=3 * SAMPLE_SIZE)
    one, first, second = Reservoir(), Reservoir(), Reservoir()
    one.add(values, row_keys(0, len(values)))
    cut = 123_457
    first.add(values[:cut], row_keys(0, cut))
    second.add(values[cut:], row_keys(cut, len(values) - cut))
    first.merge(second)
    assert first.seen == one.seen == len(values)
    assert sorted(first.values.tolist()) == sorted(one.values.tolist())


def test_a_worker_that_cannot_run_leaves_its_ranges_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(table_with_everything(300_000), path, row_group_size=40_000)
    single = one_process(path, monkeypatch)
    # A worker interpreter that exits at once (as if killed): its first task fails to reach it.
    monkeypatch.setattr("sys.executable", "/bin/false")
    merged = profile_parquet(path, "parquet", processes=2, min_cells=0)
    assert merged is not None
    assert merged.result("parquet") == single
