"""The README is a promise: its two set-up commands exist, CI runs the test one, and the demo works."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set-up: two commands", 1)[1].split("##", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the set-up section has a bash block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_two_setup_commands() -> None:
    assert setup_commands() == ["scripts/demo", "scripts/test"]
    for command in setup_commands():
        script = ROOT / command
        assert script.is_file() and os.access(script, os.X_OK), f"{command} is an executable script"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci.split("\n", 3)[-1]


def test_demo_command_runs_the_ml_pipeline(tmp_path: Path) -> None:
    """scripts/demo runs `datatrail demo`: the pipeline from raw CSV to a drift alert, twice into one store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    folder = tmp_path / "demo"
    runs = [
        subprocess.run(
            [str(ROOT / "scripts" / "demo"), str(folder)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        for _ in range(2)
    ]
    for out in runs:
        assert out.returncode == 0, out.stderr
        assert re.search(r"^1\. ingest\s+raw/penguins\.csv@1: 344 rows", out.stdout, re.M)
        assert re.search(r"^6\. deploy\s+models/penguin-species@1 to production", out.stdout, re.M)
        assert re.search(r"^7\. monitor\s+batches/batch-1\.csv@1 .*: no drift$", out.stdout, re.M)
        assert re.search(r"^7\. monitor\s+batches/batch-2\.csv@1 .*: DRIFT ALERT: .*body_mass_g", out.stdout, re.M)
        # The lineage printed walks back from the predictions to the raw data.
        tree = out.stdout.split("== lineage of", 1)[1].split("==", 2)[1]
        assert tree.index("run predict") < tree.index("models/penguin-species@1") < tree.index("run train")
        assert (
            tree.index("features/train.csv@1") < tree.index("clean/penguins.csv@1") < tree.index("raw/penguins.csv@1")
        )
        assert "result: DRIFT in" in out.stdout
    # The second run recognised the same data and the same model: still version 1 of each.
    assert (folder / ".datatrail" / "trail.db").is_file()
    assert (folder / "lineage.html").read_text().startswith("<!")
