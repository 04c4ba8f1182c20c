"""@datatrail.step: every call a run, data arguments inputs, results outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import datatrail
from datatrail.core.model import RunState
from datatrail.frames import data_info
from tests.conftest import write


def test_paths_in_scalars_as_params_and_a_returned_path_out(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "raw.csv", "a\n1\n\n3\n")

    @datatrail.step(trail=trail)
    def clean(src: str, dst: str = "clean.csv", dropna: bool = True, limit: int = 10) -> str:
        pd.read_csv(src).dropna().to_csv(dst, index=False)
        return dst

    assert clean("raw.csv", limit=5) == "clean.csv"
    (run,) = trail.runs()
    assert run.job == "clean" and run.state is RunState.COMPLETE
    assert run.params == {"dst": "clean.csv", "dropna": True, "limit": 5}
    assert [v.name for v in run.inputs] == ["raw.csv"]
    assert [v.name for v in run.outputs] == ["clean.csv"]
    assert clean.__name__ == "clean"  # functools.wraps


def test_dataframes_tables_and_arrays_are_hashed_in_memory(trail: datatrail.Trail) -> None:
    @datatrail.step(trail=trail, name="features", outputs=["features/x", "features/y"])
    def build(df: pd.DataFrame, table: pa.Table, arr: np.ndarray, scale: float) -> tuple[pl.DataFrame, np.ndarray]:
        return pl.from_pandas(df) * scale, arr * scale

    df = pd.DataFrame({"a": [1, 2, 3]})
    build(df, pa.table({"b": [1.5]}), np.arange(3), 2.0)
    (run,) = trail.runs()
    assert run.params == {"scale": 2.0}
    assert sorted(v.name for v in run.inputs) == ["features/arr", "features/df", "features/table"]
    assert sorted(v.name for v in run.outputs) == ["features/x", "features/y"]
    assert {v.format for v in run.inputs} == {"arrow", "npy"}
    # The same data again is the same version: nothing new is created.
    build(df, pa.table({"b": [1.5]}), np.arange(3), 2.0)
    assert [v.number for v in trail.versions("features/x")] == [1]


def test_same_table_same_digest_across_libraries() -> None:
    pandas_df = pd.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]})
    polars_df = pl.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]})
    table = pa.table({"a": [1, 2, 3], "s": ["x", "y", "z"]})
    assert data_info(pandas_df).digest == data_info(table).digest
    assert data_info(pandas_df).digest != data_info(pandas_df.head(2)).digest
    assert data_info(polars_df).format == "arrow"
    assert data_info(np.zeros(3)).digest != data_info(np.zeros(4)).digest


def test_default_output_name_is_the_function(trail: datatrail.Trail) -> None:
    @datatrail.step(trail=trail)
    def summarize(n: int) -> pd.DataFrame:
        return pd.DataFrame({"n": [n]})

    summarize(3)
    assert [v.name for v in trail.runs()[0].outputs] == ["summarize"]


def test_an_exception_fails_the_run_and_propagates(trail: datatrail.Trail) -> None:
    @datatrail.step(trail=trail)
    def explode(x: int) -> None:
        raise ValueError("bad x")

    with pytest.raises(ValueError, match="bad x"):
        explode(1)
    (run,) = trail.runs()
    assert run.state is RunState.FAIL and "bad x" in (run.error or "")


def test_steps_inside_a_run_are_its_children_and_plain_decorator_works(trail: datatrail.Trail) -> None:
    @datatrail.step
    def inner(x: int) -> int:
        return x + 1

    with trail.run("pipeline", workflow="wf") as outer:
        assert inner(1) == 2
    child = next(r for r in trail.runs() if r.job == "inner")
    assert child.parent_run_id == outer.id and child.workflow == "wf"
    assert child.params == {"x": 1}


def test_wrong_number_of_output_names_fails(trail: datatrail.Trail) -> None:
    @datatrail.step(trail=trail, outputs=["a", "b"])
    def one() -> pd.DataFrame:
        return pd.DataFrame({"a": [1]})

    with pytest.raises(datatrail.InvalidInput, match="names 2 output"):
        one()
    assert trail.runs()[0].state is RunState.FAIL
