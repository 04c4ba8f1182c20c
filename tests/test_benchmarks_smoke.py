"""The benchmark scripts still run: tiny sizes, no DVC, and no timing assertions.

Each script must print its ratio line (`... -> 1.23x (target >= 3x) [...]`);
what the figures say is for benchmarks/run and docs/benchmarks.md, not for tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
DATATRAIL = Path(sys.executable).with_name("datatrail")  # list_pages.py's baseline: this code, for a smoke run
RATIO_LINE = re.compile(r"^[^:\n]+: datatrail \S+( \S+)?, .+ -> \d+\.\d\dx \(target >= [\d.]+x\) \[.+\]$", re.MULTILINE)


@pytest.mark.parametrize(
    ("script", "args", "lines"),
    [
        ("add_file.py", ["--size-mib", "2"], 1),
        ("add_tree.py", ["--files", "40"], 1),
        ("lineage_query.py", ["--versions", "300", "--window", "20", "--depth", "6"], 1),
        ("profile.py", ["--rows", "20000"], 1),
        ("ui_lineage.py", ["--repeats", "1"], 1),
        ("layout.py", ["--versions", "40"], 1),
        ("remote_add.py", [], 2),
        ("drift.py", ["--rows", "5000"], 1),
        ("autolog.py", [], 1),
        ("ingest.py", ["--events", "80", "--no-postgres", "--workers", "1"], 2),
        ("lineage_endpoint.py", ["--versions", "300", "--requests", "10"], 1),
        ("lineage_response.py", ["--runs", "120", "--datasets", "20", "--requests", "2", "--big-versions", "300"], 4),
        ("audited_reads.py", ["--reads", "40"], 2),
        ("admission.py", ["--events", "60"], 2),
        ("cli_reads.py", ["--repeats", "1"], 7),
        ("add_big_tree.py", ["--files", "3", "--size-mib", "2"], 1),
        ("soak.py", ["--minutes", "0.1", "--sample", "1"], 2),
        ("pg_scale.py", ["--events", "300", "--repeats", "1"], 8),
        ("list_pages.py", ["--datasets", "300", "--repeats", "1", "--base", str(DATATRAIL)], 6),
        (
            "namespace_pages.py",
            ["--datasets", "300", "--jobs", "20", "--events", "300", "--repeats", "1", "--base", str(DATATRAIL)],
            6,
        ),
        ("content.py", ["--no-s3", "--files", "30", "--big-mib", "2"], 2),
        pytest.param("spark_autolog.py", [], 1, marks=pytest.mark.spark),
    ],
)
def test_benchmark_script_prints_its_ratio(tmp_path: Path, script: str, args: list[str], lines: int) -> None:
    if script in ("lineage_query.py", "lineage_endpoint.py"):
        args = [*args, "--db", str(tmp_path / "lineage.db")]
    if script == "lineage_response.py":
        args = [*args, "--db", str(tmp_path / "stores")]  # a folder: two stores are built there
    env = {
        **os.environ,
        "DATATRAIL_BENCH_QUICK": "1",
        "DATATRAIL_BENCH_NO_DVC": "1",
        "DATATRAIL_BENCH_TMP": str(tmp_path / "scratch"),
    }
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300 if script == "spark_autolog.py" else 120,  # Spark's JVM starts in tens of seconds on a busy machine
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(RATIO_LINE.findall(proc.stdout)) >= lines, proc.stdout
    assert "[quick run: not a measurement]" in proc.stdout
    # Scratch files are cleaned up after each run.
    scratch = tmp_path / "scratch"
    assert not scratch.exists() or not any(scratch.iterdir())
