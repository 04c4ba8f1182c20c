"""autolog with real pandas, polars, pyarrow and NumPy on real files."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.feather as pafeather
import pyarrow.parquet as pq
import pytest

import datatrail
from datatrail.capture import autolog as autolog_module
from datatrail.capture.autolog import _TARGETS, patched
from datatrail.core.model import RunState
from tests.conftest import write
from tests.test_cli import datatrail_command, run_process

MISSING = object()


def owners() -> list[tuple[Any, str]]:
    import importlib

    found = []
    for targets in _TARGETS.values():
        for target in targets:
            module, _, cls = target[0].partition(":")
            owner: Any = importlib.import_module(module)
            for _where, name, *_ in autolog_module._expand(owner, target):
                found.append((getattr(owner, cls) if cls else owner, name))
    return found


def snapshot() -> dict[tuple[int, str], Any]:
    return {(id(o), n): vars(o).get(n, MISSING) for o, n in owners()}


@pytest.fixture
def autolog() -> Iterator[None]:
    datatrail.autolog()
    try:
        yield
    finally:
        datatrail.autolog(disable=True)


def names(versions: tuple[datatrail.Version, ...]) -> list[str]:
    return sorted(v.name for v in versions)


def test_nothing_is_patched_before_autolog_and_disable_restores_exactly() -> None:
    assert patched() == []
    before = snapshot()
    for o, n in owners():
        assert not hasattr(getattr(o, n), "__datatrail_original__"), (o, n)
    datatrail.autolog()
    try:
        assert len(patched()) == len(owners())
        assert pd.read_csv.__datatrail_original__ is before[(id(pd), "read_csv")]  # type: ignore[attr-defined]
        assert "to_csv" in vars(pd.DataFrame)  # patched on the class itself…
        datatrail.autolog()  # a second call patches nothing twice
        assert len(patched()) == len(owners())
    finally:
        datatrail.autolog(disable=True)
    assert patched() == []
    after = snapshot()
    for key, original in before.items():
        assert after[key] is original, key
    assert "to_csv" not in vars(pd.DataFrame)  # …and inherited from NDFrame again afterwards


def test_importing_datatrail_patches_nothing(workdir: Path) -> None:
    code = (
        "import datatrail, datatrail.capture.autolog, pandas, numpy\n"
        "assert not hasattr(pandas.read_csv, '__datatrail_original__')\n"
        "assert not hasattr(numpy.save, '__datatrail_original__')\n"
        "assert 'to_csv' not in vars(pandas.DataFrame)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr


def test_pandas_reads_once_and_written_then_read_is_an_output(
    trail: datatrail.Trail, workdir: Path, autolog: None
) -> None:
    write(workdir / "raw.csv", "a,b\n1,x\n2,\n3,z\n")
    with trail.run("clean") as run:
        df = pd.read_csv("raw.csv")
        pd.read_csv(workdir / "raw.csv")  # the same file again, by another spelling
        df.dropna().to_parquet("clean.parquet")
        again = pd.read_parquet("clean.parquet")  # written by this run: not an input
        again.to_json("clean.json")
        again.to_csv(Path("clean.csv"), index=False)
        again.reset_index(drop=True).to_feather("clean.feather")
        pd.read_feather("clean.feather")
        pd.read_json("clean.json")
    got = trail.get_run(run.id)
    assert got.state is RunState.COMPLETE
    assert names(got.inputs) == ["raw.csv"]
    assert names(got.outputs) == ["clean.csv", "clean.feather", "clean.json", "clean.parquet"]
    assert got.outputs[0].digest is not None
    parquet = trail.get("clean.parquet")
    assert parquet.format == "parquet" and parquet.run_id == run.id
    assert "pandas" in got.code["environment"]["packages"]


def test_polars_reads_writes_and_collected_scans(trail: datatrail.Trail, workdir: Path, autolog: None) -> None:
    write(workdir / "a.csv", "x,y\n1,2\n3,4\n")
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(workdir / "b.parquet")  # outside a run: not recorded
    assert trail.runs() == []
    with trail.run("polars") as run:
        df = pl.read_csv("a.csv")
        lazy = pl.scan_parquet("b.parquet").filter(pl.col("x") > 1)
        assert names(trail.get_run(run.id).inputs) == ["a.csv"]  # a scan is not a read until collected
        scanned = lazy.collect()
        df.write_parquet("out.parquet")
        scanned.write_csv("out.csv")
        pl.read_parquet("out.parquet")
        df.lazy().sink_ipc("out.arrow")
    got = trail.get_run(run.id)
    assert names(got.inputs) == ["a.csv", "b.parquet"]
    assert names(got.outputs) == ["out.arrow", "out.csv", "out.parquet"]


PANDAS = pd.DataFrame({"species": ["Adelie", "Gentoo", "Adelie"], "mass": [3750.0, 5000.0, 3800.0]})
SERIES = PANDAS.groupby("species").size()  # a Series: `df.groupby(...).size().to_csv(...)`
POLARS = pl.from_pandas(PANDAS)
# Every file writer of pandas and polars, and how to call it: the patched ones must be exactly these.
WRITERS: dict[str, tuple[str, Any]] = {
    "pandas.DataFrame.to_csv": ("out.csv", lambda p: PANDAS.to_csv(p)),
    "pandas.DataFrame.to_excel": ("out.xlsx", lambda p: PANDAS.to_excel(p)),
    "pandas.DataFrame.to_feather": ("out.feather", lambda p: PANDAS.to_feather(p)),
    "pandas.DataFrame.to_hdf": ("out.h5", lambda p: PANDAS.to_hdf(p, key="penguins")),
    "pandas.DataFrame.to_html": ("out.html", lambda p: PANDAS.to_html(p)),
    "pandas.DataFrame.to_json": ("out.json", lambda p: PANDAS.to_json(p)),
    "pandas.DataFrame.to_latex": ("out.tex", lambda p: PANDAS.to_latex(p)),
    "pandas.DataFrame.to_markdown": ("out.md", lambda p: PANDAS.to_markdown(p)),
    "pandas.DataFrame.to_orc": ("out.orc", lambda p: PANDAS.to_orc(p)),
    "pandas.DataFrame.to_parquet": ("out.parquet", lambda p: PANDAS.to_parquet(p)),
    "pandas.DataFrame.to_pickle": ("out.pkl", lambda p: PANDAS.to_pickle(p)),
    "pandas.DataFrame.to_stata": ("out.dta", lambda p: PANDAS.to_stata(p)),
    "pandas.DataFrame.to_string": ("out.txt", lambda p: PANDAS.to_string(p)),
    "pandas.DataFrame.to_xml": ("out.xml", lambda p: PANDAS.to_xml(p, parser="etree")),
    "pandas.Series.to_csv": ("size.csv", lambda p: SERIES.to_csv(p)),
    "pandas.Series.to_excel": ("size.xlsx", lambda p: SERIES.to_excel(p)),
    "pandas.Series.to_hdf": ("size.h5", lambda p: SERIES.to_hdf(p, key="size")),
    "pandas.Series.to_json": ("size.json", lambda p: SERIES.to_json(p)),
    "pandas.Series.to_latex": ("size.tex", lambda p: SERIES.to_latex(p)),
    "pandas.Series.to_markdown": ("size.md", lambda p: SERIES.to_markdown(p)),
    "pandas.Series.to_pickle": ("size.pkl", lambda p: SERIES.to_pickle(p)),
    "pandas.Series.to_string": ("size.txt", lambda p: SERIES.to_string(p)),
    "polars.DataFrame.write_avro": ("out.avro", lambda p: POLARS.write_avro(p)),
    "polars.DataFrame.write_csv": ("out.csv", lambda p: POLARS.write_csv(p)),
    "polars.DataFrame.write_delta": ("delta", lambda p: POLARS.write_delta(p)),
    "polars.DataFrame.write_excel": ("out.xlsx", lambda p: POLARS.write_excel(p)),
    "polars.DataFrame.write_ipc": ("out.arrow", lambda p: POLARS.write_ipc(p)),
    "polars.DataFrame.write_ipc_stream": ("out.arrows", lambda p: POLARS.write_ipc_stream(p)),
    "polars.DataFrame.write_json": ("out.json", lambda p: POLARS.write_json(p)),
    "polars.DataFrame.write_ndjson": ("out.ndjson", lambda p: POLARS.write_ndjson(p)),
    "polars.DataFrame.write_parquet": ("out.parquet", lambda p: POLARS.write_parquet(p)),
    "polars.LazyFrame.sink_csv": ("lazy.csv", lambda p: POLARS.lazy().sink_csv(p)),
    "polars.LazyFrame.sink_delta": ("lazy-delta", lambda p: POLARS.lazy().sink_delta(p)),
    "polars.LazyFrame.sink_ipc": ("lazy.arrow", lambda p: POLARS.lazy().sink_ipc(p)),
    "polars.LazyFrame.sink_ndjson": ("lazy.ndjson", lambda p: POLARS.lazy().sink_ndjson(p)),
    "polars.LazyFrame.sink_parquet": ("lazy.parquet", lambda p: POLARS.lazy().sink_parquet(p)),
}


def patched_writers() -> set[str]:
    return {
        f"{owner.__module__.split('.')[0]}.{owner.__name__}.{name}"
        for owner, name in patched()
        if isinstance(owner, type) and name.startswith(("to_", "write_", "sink_"))
    }


def test_every_pandas_and_polars_file_writer_is_patched_and_documented(autolog: None) -> None:
    """Writers are found by their signature: one a new release adds (or drops) shows up here."""
    assert patched_writers() == set(WRITERS)
    docs = Path(__file__).resolve().parent.parent.joinpath("docs", "capture.md").read_text(encoding="utf-8")
    listed = set()
    for row in docs.splitlines():
        library = row.split("|")[1].strip() if row.startswith("| ") else ""
        if library in ("pandas", "polars"):
            for group in row.split("|")[3].split(";"):  # `DataFrame.to_csv`, `to_excel`, …
                names = re.findall(r"`([\w.]+)`", group)
                cls, _, first = names[0].partition(".")
                listed |= {f"{library}.{cls}.{name}" for name in (first, *names[1:])}
    assert listed == set(WRITERS)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_each_file_writer_records_an_output(writer: str, trail: datatrail.Trail, workdir: Path, autolog: None) -> None:
    target, write_to = WRITERS[writer]
    for spelling in (target, workdir / "as-path" / target):  # a str, and an os.PathLike
        Path(spelling).parent.mkdir(parents=True, exist_ok=True)
        with trail.run("write") as run:
            write_to(spelling)
        got = trail.get_run(run.id)
        assert [v.uri for v in got.outputs] == [Path(spelling).resolve().as_uri()], writer
        assert got.outputs[0].digest is not None


def test_pyarrow_parquet_csv_feather_and_dataset(trail: datatrail.Trail, workdir: Path, autolog: None) -> None:
    table = pa.table({"n": [1, 2, 3], "s": ["a", "b", "c"]})
    (workdir / "parts").mkdir()
    with trail.run("arrow") as run:
        pq.write_table(table, "t.parquet")
        pq.write_table(table, workdir / "parts" / "p1.parquet")
        pacsv.write_csv(table, "t.csv")
        pafeather.write_feather(table, "t.feather")
        assert pq.read_table("t.parquet").num_rows == 3  # written here: an output, not an input
    write(workdir / "ext.csv", "n\n5\n")
    with trail.run("arrow-read") as run2:
        pacsv.read_csv("ext.csv")
        pafeather.read_table("t.feather")
        assert pads.dataset("parts", format="parquet").to_table().num_rows == 3
    assert names(trail.get_run(run.id).outputs) == ["parts/p1.parquet", "t.csv", "t.feather", "t.parquet"]
    second = trail.get_run(run2.id)
    assert names(second.inputs) == ["ext.csv", "parts", "t.feather"]
    assert trail.get("parts").is_directory


def test_numpy_save_and_load(trail: datatrail.Trail, workdir: Path, autolog: None) -> None:
    arr = np.arange(6).reshape(2, 3)
    with trail.run("np") as run:
        np.save("arr", arr)  # NumPy writes arr.npy
        np.savez("many.npz", a=arr)
        np.savez_compressed("small", a=arr)
        np.savetxt("arr.txt", arr)
        assert (np.load("arr.npy") == arr).all()
    write(workdir / "in.txt", "1 2\n3 4\n")
    with trail.run("np-read") as run2:
        np.loadtxt("in.txt")
        np.genfromtxt("in.txt")
        np.load("many.npz")
    assert names(trail.get_run(run.id).outputs) == ["arr.npy", "arr.txt", "many.npz", "small.npz"]
    assert names(trail.get_run(run2.id).inputs) == ["in.txt", "many.npz"]


def test_a_file_outside_the_root_is_named_by_its_absolute_path(
    trail: datatrail.Trail, tmp_path: Path, autolog: None
) -> None:
    outside = write(tmp_path / "elsewhere" / "x.csv", "a\n1\n")
    with trail.run("outside") as run:
        pd.read_csv(outside)
    (v,) = trail.get_run(run.id).inputs
    assert v.name == outside.resolve().as_posix() and v.namespace == f"file://{trail.host}"


def test_buffers_are_not_recorded(trail: datatrail.Trail, autolog: None) -> None:
    import io

    with trail.run("buffers") as run:
        df = pd.read_csv(io.StringIO("a\n1\n"))
        df.to_csv(io.StringIO())
        # Remote URLs are recorded (tests/test_remote.py reads s3:// through pandas in a run).
        assert autolog_module._locator(0, "p", None)(("s3://bucket/x.csv",), {}) == ["s3://bucket/x.csv"]
    got = trail.get_run(run.id)
    assert got.inputs == () and got.outputs == ()


def test_nested_runs_record_into_the_innermost(trail: datatrail.Trail, workdir: Path, autolog: None) -> None:
    write(workdir / "raw.csv", "a\n1\n")
    with trail.run("outer") as outer:
        with trail.run("inner") as inner:
            pd.read_csv("raw.csv")
        pd.read_csv("raw.csv")  # a different run: counted again there
    assert names(trail.get_run(inner.id).inputs) == ["raw.csv"]
    assert names(trail.get_run(outer.id).inputs) == ["raw.csv"]


SCRIPT = """\
import sys
import pandas as pd
{setup}
df = pd.read_csv("raw.csv")
df.to_parquet("out.parquet")
if len(sys.argv) > 1:
    raise RuntimeError("boom")
"""


def test_implicit_run_covers_the_script(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "raw.csv", "a\n1\n2\n")
    setup = "import datatrail\ndatatrail.autolog(implicit_run=True)"
    write(workdir / "prepare.py", SCRIPT.format(setup=setup))
    p = run_process([sys.executable, "prepare.py"], workdir)
    assert p.returncode == 0, p.stderr
    (run,) = trail.runs()
    assert run.job == "prepare" and run.state is RunState.COMPLETE
    assert names(run.inputs) == ["raw.csv"] and names(run.outputs) == ["out.parquet"]
    p = run_process([sys.executable, "prepare.py", "fail"], workdir)
    assert p.returncode == 1 and "boom" in p.stderr
    failed = trail.runs()[0]
    assert failed.state is RunState.FAIL and "boom" in (failed.error or "")


def test_a_python_command_under_datatrail_run_is_captured_without_changes(
    trail: datatrail.Trail, workdir: Path
) -> None:
    write(workdir / "raw.csv", "a\n1\n2\n")
    write(workdir / "job.py", SCRIPT.format(setup=""))
    p = run_process([*datatrail_command(), "run", "--name", "wrapped", "--", sys.executable, "job.py"], workdir)
    assert p.returncode == 0, p.stderr
    (run,) = trail.runs()
    assert run.job == "wrapped" and run.state is RunState.COMPLETE
    assert names(run.inputs) == ["raw.csv"] and names(run.outputs) == ["out.parquet"]
    assert run.command == f"{sys.executable} job.py"
    p = run_process(
        [*datatrail_command(), "run", "--name", "plain", "--no-autolog", "--", sys.executable, "job.py"], workdir
    )
    assert p.returncode == 0, p.stderr
    plain = trail.runs(job="plain")[0]
    assert plain.inputs == () and plain.outputs == ()


def test_the_autolog_benchmark_runs(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "autolog.py"
    env = {"DATATRAIL_BENCH_QUICK": "1", "DATATRAIL_BENCH_TMP": str(tmp_path)}
    p = run_process([sys.executable, str(script), "--size-mb", "1"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    assert "files hashed per run: 2 " in p.stdout
    assert "autolog pandas read+write" in p.stdout and "-> " in p.stdout


def test_a_library_imported_after_autolog_is_patched_when_imported(workdir: Path) -> None:
    code = (
        "import sys, datatrail\n"
        "datatrail.autolog()\n"
        "assert 'pandas' not in sys.modules and 'polars' not in sys.modules  # autolog imports nothing\n"
        "import pandas as pd\n"
        "from pandas import read_csv\n"
        "assert hasattr(pd.read_csv, '__datatrail_original__') and read_csv is pd.read_csv\n"
        "assert hasattr(pd.DataFrame.to_parquet, '__datatrail_original__')\n"
        "import pyarrow.parquet as pq\n"
        "assert hasattr(pq.write_table, '__datatrail_original__')\n"
        "original = pd.read_csv.__datatrail_original__\n"
        "datatrail.autolog(disable=True)\n"
        "assert pd.read_csv is original\n"
        "import polars\n"
        "assert not hasattr(polars.read_csv, '__datatrail_original__')  # off: later imports stay untouched\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
