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


def test_demo_command_runs_the_quickstart(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    out = subprocess.run(
        [str(ROOT / "scripts" / "demo"), str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert re.search(r"added raw/penguins@1 sha256:[0-9a-f]{12}", out.stdout)
    # The lineage printed by `datatrail lineage` walks back from features to raw.
    tree = out.stdout.split("$ datatrail lineage", 1)[1]
    assert tree.index("features/penguins@1") < tree.index("run features") < tree.index("clean/penguins@1")
    assert tree.index("run clean") < tree.index("raw/penguins@1")
    assert re.search(r"^ok\s+raw/penguins@1", out.stdout, re.M)
    assert (tmp_path / "demo" / ".datatrail" / "trail.db").is_file()
