"""The README is a promise: its two set-up commands exist, CI runs the test one, and the demo works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


FENCE = re.compile(r"```(console|python)\n(.*?)```", re.S)
RUN_ID = re.compile(r"(\[[A-Z]+\]) [0-9a-f]{8}\b")  # a run's id is new every time: `run clean [COMPLETE] 6ffe0120`
MARK = "@@ readme step"


def quickstart_steps() -> list[tuple[str, list[str], str | None]]:
    """The Quickstart in order: (shell command, output lines shown under it, Python source to write first)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[str, list[str], str | None]] = []
    prose_from = 0
    for fence in FENCE.finditer(section):
        kind, body = fence.groups()
        prose, prose_from = section[prose_from : fence.start()], fence.end()
        if kind == "python":
            # The prose before it says how it runs: "Then a step in Python (`python clean.py`, in the same folder)".
            named = re.search(r"`(python [\w./-]+\.py)`", prose)
            assert named is not None, "the prose before the Python block names the command that runs it"
            steps.append((named.group(1), [], body))
            continue
        for row in body.splitlines():
            if row.startswith("$ "):
                steps.append((row[2:], [], None))
            elif row.strip():
                assert steps, f"an output line before any command: {row!r}"
                steps[-1][1].append(row)
    return steps


def test_quickstart_section_is_a_walk_through() -> None:
    commands = [command.split("#", 1)[0].split() for command, _, _ in quickstart_steps()]
    order = [" ".join(words[:2]) for words in commands]
    assert order[0] == "source .venv/bin/activate" and order[1] == 'cd "$(mktemp'
    assert order.index("datatrail demo") < order.index("datatrail init") < order.index("datatrail add")
    # The Python step writes clean/penguins before anything asks for its lineage.
    assert order.index("python clean.py") < order.index("datatrail lineage") < order.index("datatrail verify")


def test_quickstart_runs_top_to_bottom_in_an_empty_folder(tmp_path: Path) -> None:
    """The Quickstart's commands run literally, in order, in one shell, from the checkout into a new folder."""
    assert (ROOT / ".venv" / "bin" / "activate").is_file(), "the Quickstart starts where scripts/demo made .venv"
    steps = quickstart_steps()
    script = ["set -u"]
    for i, (command, _, source) in enumerate(steps):
        if source is not None:
            script += [f"cat > {command.split()[-1]} <<'README_PYTHON_EOF'", source.rstrip("\n"), "README_PYTHON_EOF"]
        script += [
            f"echo '{MARK} {i}'",
            command,
            f'status=$?; if [ $status -ne 0 ]; then echo "step {i} exited $status" >&2; exit 1; fi',
        ]
    script.append(f"echo '{MARK} end'; pwd")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATATRAIL_", "VIRTUAL_ENV"))}
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,  # the README starts in the checkout, where scripts/demo made .venv
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, f"{out.stderr}\n{out.stdout}"
    parts = out.stdout.split(f"{MARK} ")
    outputs = {p.split("\n", 1)[0]: p.split("\n", 1)[1] if "\n" in p else "" for p in parts[1:]}
    folder = Path(outputs["end"].strip())
    assert folder.parent == tmp_path, "the walk-through ran in the folder `mktemp -d` made"
    assert (folder / "data" / "clean.csv").is_file() and (folder / ".datatrail" / "trail.db").is_file()
    for i, (command, shown, _) in enumerate(steps):
        got = [RUN_ID.sub(r"\1 <run>", row) for row in outputs[str(i)].splitlines()]
        want = [RUN_ID.sub(r"\1 <run>", row) for row in shown]
        # Every line the README shows under a command is printed by it, in that order.
        found = iter(got)
        missing = [row for row in want if not any(row == g for g in found)]
        assert not missing, f"`{command}` printed {got}, not the README's {missing}"
    adds = [str(i) for i, (command, _, _) in enumerate(steps) if command.startswith("datatrail add data/raw.csv")]
    assert len(adds) == 2 and "(new)" in outputs[adds[0]] and "(unchanged)" in outputs[adds[1]]


def test_the_quickstart_example_runs_as_its_docstring_says(tmp_path: Path) -> None:
    """examples/quickstart.py: run as its docstring says, it records two runs and verifies what they wrote."""
    example = ROOT / "examples" / "quickstart.py"
    doc = example.read_text().split('"""', 2)[1]
    assert "``python examples/quickstart.py [FOLDER]``" in doc
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    folder = tmp_path / "quick"
    out = subprocess.run(
        [sys.executable, "examples/quickstart.py", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    verified = out.stdout.split("$ datatrail verify", 1)[1].split()
    assert verified.count("ok") == 3 and "features/penguins@1" in verified
    assert (folder / ".datatrail" / "trail.db").is_file()
