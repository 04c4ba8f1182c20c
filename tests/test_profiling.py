"""Profiles: every format, statistics against pandas/polars, streaming bounds, events, storage, CLI."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import datatrail
from datatrail import profiling, scan
from datatrail.core.errors import InvalidInput
from datatrail.events import parse_event
from datatrail.profiling import profile_path, profile_table
from datatrail.sketches import EXACT_DISTINCT_LIMIT, SAMPLE_SIZE
from tests.conftest import write
from tests.test_cli import assert_one_line_error, cli, ok, ok_json
from tests.test_events import validate_event


def penguins(n: int = 400, seed: int = 1) -> pd.DataFrame:
    """A small table with nulls, repeats, text and numbers (and some duplicate rows)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "species": rng.choice(["Adelie", "Chinstrap", "Gentoo"], n),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen", None], n),
            "bill_mm": np.round(rng.normal(44, 5, n), 1),
            "mass_g": rng.integers(2700, 6300, n).astype("float64"),
            "year": rng.integers(2007, 2010, n),
        }
    )
    df.loc[rng.random(n) < 0.1, "mass_g"] = np.nan
    return pd.concat([df, df.iloc[:20]], ignore_index=True)


def store_state(trail: datatrail.Trail) -> Any:
    """What any store (SQLite, PostgreSQL, HTTP) shows of its contents: datasets, versions, audit."""
    return (
        [(d.namespace, d.name, d.version_count) for d in trail.datasets()],
        [e.hash for e in trail._store.audit_log(100_000)],
    )


def record_events(trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event the trail sends to its store, from now on."""
    sent: list[dict[str, Any]] = []
    original = trail._store.ingest

    def ingest(event: dict[str, Any], actor: str, action: str) -> Any:
        sent.append(json.loads(json.dumps(event)))
        return original(event, actor, action)

    monkeypatch.setattr(trail._store, "ingest", ingest)
    return sent


def column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in profile["columns"] if c["name"] == name)


def write_formats(df: pd.DataFrame, folder: Path) -> dict[str, tuple[Path, str]]:
    """The same table in every format datatrail profiles."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    out: dict[str, tuple[Path, str]] = {}
    df.to_csv(folder / "t.csv", index=False)
    out["csv"] = (folder / "t.csv", "csv")
    df.to_csv(folder / "t.tsv", index=False, sep="\t")
    out["tsv"] = (folder / "t.tsv", "tsv")
    (folder / "t.csv.gz").write_bytes(gzip.compress((folder / "t.csv").read_bytes()))
    out["csv+gzip"] = (folder / "t.csv.gz", "csv+gzip")
    with pa.CompressedOutputStream(str(folder / "t.csv.zst"), "zstd") as f:
        f.write((folder / "t.csv").read_bytes())
    out["csv+zstd"] = (folder / "t.csv.zst", "csv+zstd")
    pq.write_table(table, folder / "t.parquet", row_group_size=97)
    out["parquet"] = (folder / "t.parquet", "parquet")
    df.to_json(folder / "t.jsonl", orient="records", lines=True)
    out["jsonl"] = (folder / "t.jsonl", "jsonl")
    feather.write_feather(table, folder / "t.feather")
    out["feather"] = (folder / "t.feather", "feather")
    with pa.OSFile(str(folder / "t.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=50)
    out["arrow"] = (folder / "t.arrow", "arrow")
    parts = folder / "parts"
    parts.mkdir()
    for i, start in enumerate(range(0, len(df), 150)):
        pq.write_table(table.slice(start, 150), parts / f"part-{i}.parquet")
    (parts / "_SUCCESS").write_text("")
    out["parquet-dir"] = (parts, "parquet-dir")
    csvs = folder / "csvs"
    csvs.mkdir()
    for i, start in enumerate(range(0, len(df), 150)):
        df.iloc[start : start + 150].to_csv(csvs / f"part-{i}.csv", index=False)
    out["csv-dir"] = (csvs, "csv-dir")
    return out


# ---------------------------------------------------------------- statistics


def test_every_format_gives_the_same_profile_and_it_matches_pandas(tmp_path: Path) -> None:
    df = penguins()
    files = write_formats(df, tmp_path)
    expected_dups = int(df.duplicated().sum())
    for label, (path, fmt) in files.items():
        p = profile_path(path, fmt)
        assert p["row_count"] == len(df), label
        assert [c["name"] for c in p["columns"]] == list(df.columns), label
        assert p["duplicate_rows"] == expected_dups, label
        assert p["duplicate_fraction"] == pytest.approx(expected_dups / len(df))
        assert p["missing_cells"] == int(df.isna().sum().sum()), label
        assert p["missing_fraction"] == pytest.approx(df.isna().sum().sum() / df.size)
        for name in df.columns:
            c = column(p, name)
            assert c["null_count"] == int(df[name].isna().sum()), (label, name)
            assert c["null_fraction"] == pytest.approx(df[name].isna().mean())
            assert c["distinct_count"] == df[name].nunique(), (label, name)
            assert c["distinct_approximate"] is False
        mass = column(p, "mass_g")
        assert mass["min"] == df.mass_g.min() and mass["max"] == df.mass_g.max()
        assert mass["mean"] == pytest.approx(df.mass_g.mean())
        assert mass["std"] == pytest.approx(df.mass_g.std())
        expected_q = df.mass_g.dropna().quantile([0.05, 0.25, 0.5, 0.75, 0.95]).tolist()
        assert list(mass["quantiles"].values()) == pytest.approx(expected_q)
        assert mass["quantiles_exact"] is True
        assert sum(mass["histogram"]["counts"]) == df.mass_g.notna().sum()
        species = column(p, "species")
        top = df.species.value_counts()
        assert species["top_values"][0] == {"value": top.index[0], "count": int(top.iloc[0])}
        lengths = df.species.str.len()
        assert species["length"] == {"min": lengths.min(), "max": lengths.max(), "mean": pytest.approx(lengths.mean())}
        assert species["min"] == df.species.min() and species["max"] == df.species.max()


def test_in_memory_pandas_polars_and_arrow_agree(tmp_path: Path) -> None:
    df = penguins(300, seed=4)
    from_pandas = profile_table(df)
    from_polars = profile_table(pl.from_pandas(df))
    from_arrow = profile_table(pa.Table.from_pandas(df, preserve_index=False))
    for p in (from_pandas, from_polars, from_arrow):
        assert p["row_count"] == len(df)
        assert p["duplicate_rows"] == int(df.duplicated().sum())
        assert column(p, "bill_mm")["mean"] == pytest.approx(df.bill_mm.mean())
        assert column(p, "island")["null_count"] == int(df.island.isna().sum())
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "x.parquet")
    on_disk = profile_path(tmp_path / "x.parquet", "parquet")
    assert column(on_disk, "mass_g") == column(from_pandas, "mass_g")
    with pytest.raises(InvalidInput, match="pyarrow Table, a pandas or a polars"):
        profile_table([1, 2, 3])


def test_many_distinct_values_become_an_approximate_count(tmp_path: Path) -> None:
    n = EXACT_DISTINCT_LIMIT * 3
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "id": pa.array(np.arange(n)),
            "key": pa.array([f"k{i}" for i in range(n)]),
            "x": pa.array(rng.normal(0, 1, n)),
            "few": pa.array(rng.integers(0, 5, n)),
        }
    )
    pq.write_table(table, tmp_path / "big.parquet")
    p = profile_path(tmp_path / "big.parquet", "parquet")
    for name in ("id", "key", "x"):
        c = column(p, name)
        assert c["distinct_approximate"] is True
        assert abs(c["distinct_count"] - n) / n < 0.03, (name, c["distinct_count"])
    few = column(p, "few")
    assert few["distinct_count"] == 5 and few["distinct_approximate"] is False
    x = column(p, "x")
    assert x["quantiles_exact"] is False and n > SAMPLE_SIZE
    true = np.quantile(table["x"].to_numpy(), [0.05, 0.25, 0.5, 0.75, 0.95])
    # The documented bound: each quantile's rank within 0.5 percentage points.
    ranks = np.searchsorted(np.sort(table["x"].to_numpy()), list(x["quantiles"].values())) / n
    assert np.all(np.abs(ranks - [0.05, 0.25, 0.5, 0.75, 0.95]) < 0.005), (ranks, true)
    assert sum(x["histogram"]["counts"]) == pytest.approx(n, rel=0.01)
    assert p["duplicate_rows"] == 0


def test_csv_column_that_turns_to_text_late_is_read_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "CSV_BLOCK_BYTES", 64)
    lines = ["n,code"] + [f"{i},{i}" for i in range(200)] + ["200,A7"]
    write(tmp_path / "late.csv", "\n".join(lines) + "\n")
    p = profile_path(tmp_path / "late.csv", "csv")
    assert p["row_count"] == 201
    assert column(p, "n")["type"] == "int64"
    assert column(p, "code")["type"] == "string"
    assert column(p, "code")["distinct_count"] == 201


def test_nan_infinity_empty_and_all_null_columns_are_json_safe(tmp_path: Path) -> None:
    table = pa.table(
        {
            "f": pa.array([1.0, float("nan"), float("inf"), None]),
            "empty_text": pa.array(["", "", None, "x"]),
            "nothing": pa.array([None, None, None, None], type=pa.int64()),
            "when": pa.array([1704067200, None, 1709251200, None], type=pa.timestamp("s")),
            "flag": pa.array([True, False, True, None]),
            "tags": pa.array([[1], [2], None, [1]]),
        }
    )
    p = profile_table(table)
    text = json.dumps(p, allow_nan=False)  # no NaN or Infinity anywhere
    assert column(p, "f")["nan_count"] == 1
    assert column(p, "empty_text")["distinct_count"] == 2
    assert column(p, "empty_text")["length"]["min"] == 0
    assert column(p, "nothing")["null_fraction"] == 1.0 and column(p, "nothing")["min"] is None
    assert column(p, "when")["min"].startswith("2024-01-01")
    assert column(p, "flag")["mean"] == pytest.approx(2 / 3)
    assert column(p, "tags")["distinct_count"] is None  # nested values are not hashed
    assert p["duplicate_rows"] is None
    assert "NaN" not in text
    empty = profile_table(pa.table({"a": pa.array([], type=pa.int64())}))
    assert empty["row_count"] == 0 and column(empty, "a")["mean"] is None


def test_profiling_streams_batches_and_never_holds_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1_000_000
    table = pa.table({"a": pa.array(np.arange(n)), "b": pa.array(np.arange(n) % 1000)})
    pq.write_table(table, tmp_path / "m.parquet", row_group_size=100_000)
    largest = 0
    original = profiling.ProfileBuilder.add

    def spy(self: profiling.ProfileBuilder, batch: pa.RecordBatch) -> None:
        nonlocal largest
        largest = max(largest, batch.num_rows)
        original(self, batch)

    monkeypatch.setattr(profiling.ProfileBuilder, "add", spy)
    p = profile_path(tmp_path / "m.parquet", "parquet")
    assert p["row_count"] == n
    assert largest <= scan.BATCH_ROWS < n


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("ragged.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n", ("ragged.csv", "line 3", "2 fields", "header has 3")),
        ("long.tsv", "a\tb\n1\t2\n3\t4\t5\n", ("long.tsv", "line 3", "3 fields")),
        ("broken.parquet", "PAR1 this is not parquet", ("broken.parquet", "parquet")),
        ("broken.jsonl", '{"a": 1}\n{"a": \n', ("broken.jsonl", "jsonl")),
    ],
)
def test_malformed_files_are_one_line_errors_and_nothing_is_stored(
    trail: datatrail.Trail, workdir: Path, name: str, content: str, fragments: tuple[str, ...]
) -> None:
    write(workdir / name, content)
    before = store_state(trail)
    with pytest.raises(InvalidInput) as info:
        trail.add(workdir / name)
    assert "\n" not in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    assert store_state(trail) == before
    assert_one_line_error(cli("add", name), *fragments)
    assert store_state(trail) == before


def test_gzip_csv_ragged_line_is_found_through_the_compression(tmp_path: Path) -> None:
    (tmp_path / "r.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n5\n"))
    with pytest.raises(InvalidInput, match=r"r\.csv\.gz.*line 4 has 1 fields"):
        profile_path(tmp_path / "r.csv.gz", "csv+gzip")


def test_a_filesystem_passed_in_is_read_instead_of_the_disk(tmp_path: Path) -> None:
    from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

    # The paths below exist only inside the filesystem (rooted at tmp_path/root), never relative to the cwd.
    root = tmp_path / "root"
    write(root / "only-in-fs" / "a.csv", "x,y\n1,a\n2,b\n")
    write(root / "only-in-fs" / "b.csv", "x,y\nthree,c\n")  # x is text here: the directory is read again as text
    fs = SubTreeFileSystem(str(root), LocalFileSystem())
    through_fs = profile_path("only-in-fs", "csv-dir", filesystem=fs)
    assert through_fs is not None and through_fs["row_count"] == 3
    assert through_fs == profile_path(root / "only-in-fs", "csv-dir")
    # The error path (finding the ragged line) reads through the same filesystem.
    write(root / "only-in-fs.csv", "a,b\n1,2\n3\n")
    with pytest.raises(InvalidInput, match=r"only-in-fs\.csv.*line 3 has 1 fields"):
        profile_path("only-in-fs.csv", "csv", filesystem=fs)
    # Profiling another file meanwhile (no filesystem) still reads the disk: nothing is left set.
    assert profile_path(root / "only-in-fs" / "a.csv", "csv")["row_count"] == 2  # type: ignore[index]


# ---------------------------------------------------------------- events and storage


def test_profile_facets_validate_against_the_openlineage_schemas(tmp_path: Path) -> None:
    from datatrail.core.changes import VersionInfo
    from datatrail.core.model import Digest, RunState
    from datatrail.events import build_dataset_event, build_run_event

    df = penguins()
    files = write_formats(df, tmp_path)
    prof = profile_path(*files["parquet"])
    info = VersionInfo(
        key="sha256:" + "a" * 64, digest=Digest.sha256("a" * 64), size=10, format="parquet", profile=prof
    )
    event = build_dataset_event("default", "p", info)
    assert validate_event(event) >= 3  # version, schema, dataQualityMetrics
    facets = event["dataset"]["facets"]
    assert [f["name"] for f in facets["schema"]["fields"]] == list(df.columns)
    metrics = facets["dataQualityMetrics"]
    assert metrics["rowCount"] == len(df)
    assert metrics["columnMetrics"]["mass_g"]["nullCount"] == int(df.mass_g.isna().sum())
    assert metrics["columnMetrics"]["mass_g"]["quantiles"]["0.5"] == pytest.approx(df.mass_g.median())
    run_event = build_run_event(
        RunState.RUNNING, "3f1c2a9e-0b7d-4d4e-9a51-6c2f8e7b1a10", "default", "job", outputs=[("default", "p", info)]
    )
    validate_event(run_event)
    parsed = parse_event(json.loads(json.dumps(event)), "me").datasets[0].version
    assert parsed is not None and parsed.profile == json.loads(json.dumps(prof))


def test_schema_and_metrics_from_another_producer_are_kept(trail: datatrail.Trail) -> None:
    event = {
        "eventTime": "2026-01-01T00:00:00Z",
        "producer": "https://example.com/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {
            "namespace": "s3://lake",
            "name": "orders",
            "facets": {
                "version": {"_producer": "https://x", "_schemaURL": "https://x#v", "datasetVersion": "v7"},
                "schema": {
                    "_producer": "https://x",
                    "_schemaURL": "https://x#s",
                    "fields": [{"name": "id", "type": "BIGINT"}],
                },
                "dataQualityMetrics": {
                    "_producer": "https://x",
                    "_schemaURL": "https://x#m",
                    "rowCount": 12,
                    "columnMetrics": {"id": {"nullCount": 0, "distinctCount": 12, "min": 1, "max": 12}},
                },
            },
        },
    }
    trail._store.ingest(event, "spark", "lineage.ingest")
    prof = trail.profile("s3://lake:orders@latest")
    assert prof is not None and prof["row_count"] == 12 and prof["partial"] is True
    assert prof["columns"] == [
        {"name": "id", "type": "BIGINT", "null_count": 0, "distinct_count": 12, "min": 1, "max": 12}
    ]


def test_add_stores_the_profile_and_replaying_events_rebuilds_it(
    trail: datatrail.Trail, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_events(trail, monkeypatch)
    df = penguins()
    df.to_csv(workdir / "p.csv", index=False)
    v = trail.add("p.csv", name="raw/penguins")
    prof = trail.profile(v)
    assert prof is not None and prof["row_count"] == len(df)
    assert column(prof, "mass_g")["null_count"] == int(df.mass_g.isna().sum())
    # The profile travelled in the event: a fresh store fed the same events holds it too.
    from datatrail.store.sql.store import SqlStore

    replay = SqlStore(f"sqlite:///{workdir / 'replay.db'}", create=True)
    try:
        for event in sent:
            replay.ingest(event, "replayer", "replay")
        rebuilt = replay.resolve(datatrail.Ref.parse("raw/penguins@1"))
        assert replay.profile(rebuilt) == prof
    finally:
        replay.close()


def test_non_tabular_files_and_no_profile_have_no_profile(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "model.bin", b"\x00\x01binary")
    write(workdir / "notes.txt", "hello")
    penguins().to_csv(workdir / "p.csv", index=False)
    assert trail.profile(trail.add("model.bin")) is None
    assert trail.profile(trail.add("notes.txt")) is None
    v = trail.add("p.csv", profile=False)
    assert trail.profile(v) is None
    assert v.format == "csv"


def test_run_outputs_are_profiled(trail: datatrail.Trail, workdir: Path) -> None:
    df = penguins()
    df.to_csv(workdir / "raw.csv", index=False)
    with trail.run("clean") as run:
        run.input(trail.add("raw.csv"))
        df.dropna().to_parquet(workdir / "clean.parquet", index=False)
        out = run.output("clean.parquet", name="clean/penguins")
        unprofiled = run.output("raw.csv", name="raw/copy", profile=False)
    assert trail.profile(unprofiled) is None
    prof = trail.profile(out)
    assert prof is not None and prof["row_count"] == len(df.dropna())
    assert prof["missing_cells"] == 0


def test_directory_versions_are_profiled_as_one_table(trail: datatrail.Trail, workdir: Path) -> None:
    df = penguins()
    files = write_formats(df, workdir / "data")
    v = trail.add(files["parquet-dir"][0], name="parts")
    assert v.format == "parquet-dir"
    prof = trail.profile(v)
    assert prof is not None and prof["row_count"] == len(df)


# ---------------------------------------------------------------- CLI


def test_show_prints_the_profile_table_and_json(trail: datatrail.Trail, workdir: Path) -> None:
    df = penguins()
    df.to_csv(workdir / "p.csv", index=False)
    ok("add", "p.csv", "--name", "raw/penguins")
    text = ok("show", "raw/penguins")
    assert f"rows:        {len(df)}" in text
    assert "duplicates:" in text and "missing:" in text
    header = next(line for line in text.splitlines() if line.startswith("column"))
    assert header.split() == ["column", "type", "nulls", "null", "%", "distinct", "min", "median", "max", "mean", "std"]
    assert any(line.startswith("mass_g ") for line in text.splitlines())
    data = ok_json("show", "raw/penguins")
    prof = data["profile"]
    assert prof["row_count"] == len(df) and prof["duplicate_rows"] == int(df.duplicated().sum())
    mass = column(prof, "mass_g")
    assert {"name", "type", "null_count", "distinct_count", "min", "max", "mean", "std", "quantiles"} <= mass.keys()
    assert math.isclose(mass["mean"], df.mass_g.mean())


def test_add_no_profile_flag(trail: datatrail.Trail, workdir: Path) -> None:
    penguins().to_csv(workdir / "p.csv", index=False)
    ok("add", "p.csv", "--no-profile")
    assert ok_json("show", "p.csv")["profile"] is None
    assert "rows:" not in ok("show", "p.csv")


def test_unchanged_add_imports_neither_pyarrow_nor_sqlalchemy(workdir: Path) -> None:
    penguins().to_csv(workdir / "p.csv", index=False)
    datatrail.init(workdir).close()
    ok("add", "p.csv")
    code = (
        "import sys\n"
        "from datatrail.cli import main\n"
        "sys.argv = ['datatrail', 'add', 'p.csv']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pyarrow', 'sqlalchemy', 'numpy') if m in sys.modules), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    p = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, env=env, check=False)
    assert "(unchanged)" in p.stdout, p.stderr
    assert p.stderr.strip().splitlines()[-1] == "[]", p.stderr


def test_profile_csv_written_by_pyarrow(tmp_path: Path) -> None:
    table = pa.table({"a": [1, 2, None], "b": ["x", None, "z"]})
    pcsv.write_csv(table, tmp_path / "w.csv")
    p = profile_path(tmp_path / "w.csv", "csv")
    assert column(p, "a")["null_count"] == 1 and column(p, "b")["null_count"] == 1


# ---------------------------------------------------------------- the migration


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0002_upgrades_a_0001_store_with_its_data(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from datatrail.store.sql.engine import make_engine
    from datatrail.store.sql.store import SqlStore

    uri = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else str(request.getfixturevalue("pg_uri"))
    SqlStore(uri, create=True).close()
    engine = make_engine(uri)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(profiling.__file__).parent / "store" / "sql" / "migrations"))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        with engine.connect() as conn:
            assert "check_results" not in inspect(conn).get_table_names()
            assert "profile" not in {c["name"] for c in inspect(conn).get_columns("versions")}
    finally:
        engine.dispose()
    # Rows written at 0001 survive the upgrade, and versions are written after it.
    old_event = {
        "eventTime": "2026-01-01T00:00:00Z",
        "producer": "https://example.com/x",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {
            "namespace": "default",
            "name": "old",
            "facets": {"version": {"_producer": "https://x", "_schemaURL": "https://x#v", "datasetVersion": "v1"}},
        },
    }
    engine = make_engine(uri)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO namespaces (name, created_at) VALUES ('default', CURRENT_TIMESTAMP)")
            conn.exec_driver_sql(
                "INSERT INTO datasets (namespace_id, name, kind, created_at)"
                " SELECT id, 'kept', 'dataset', CURRENT_TIMESTAMP FROM namespaces"
            )
    finally:
        engine.dispose()
    store = SqlStore(uri)
    try:
        assert [d.name for d in store.list_datasets()] == ["kept"]
        store.ingest(old_event, "me", "test")
        v = store.resolve(datatrail.Ref.parse("old@1"))
        assert store.profile(v) is None and store.check_results(v) == []
    finally:
        store.close()
