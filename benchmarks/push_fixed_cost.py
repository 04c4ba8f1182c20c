"""The fixed cost of `datatrail push` (issue 18): a push with nothing to send, in CPU, against `python -c`.

A warm push of one big file to a folder remote costs `cp`'s copy plus this
(docs/benchmarks.md, "Round eight: push's fixed cost"). A store with one
pushed version and a folder remote is pushed again, N times, each run the
executable's way (``datatrail.cli.script``), with the user+sys CPU of each
process (os.wait4) and its wall time, beside ``python -c pass`` and ``python -c "import sqlite3"``
in the same rounds. ``--before DIR`` adds the same push with DIR (another
checkout's ``src``) first on the path: a before/after in one run.

    .venv/bin/python benchmarks/push_fixed_cost.py --runs 30 [--before /tmp/base/src]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PUSH = "import sys\nsys.argv = ['datatrail', 'push']\nfrom datatrail.cli import script\nscript()\n"


def cpu_ms(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """The user+sys CPU of one process and its wall time (which includes waiting for the disk), in ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    if status:
        raise SystemExit(f"{argv} failed with status {status}")
    return (usage.ru_utime + usage.ru_stime) * 1000, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--before", help="a `src` folder to compare with (e.g. `git archive` of main)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(scratch) / "store"
        store.mkdir()
        (store / "f.bin").write_bytes(os.urandom(4 << 20))
        cli = [sys.executable, "-m", "datatrail"]
        remote = ["remote", "add", "r", f"{scratch}/r", "--default"]
        for step in (["init"], ["add", "f.bin", "--store-content"], remote):
            subprocess.run([*cli, *step], cwd=store, env=env, check=True, capture_output=True)
        subprocess.run([*cli, "push"], cwd=store, env=env, check=True, capture_output=True)
        contenders = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "python -c 'import sqlite3'": ([sys.executable, "-c", "import sqlite3"], env),
            "push (this checkout)": ([sys.executable, "-c", PUSH], {**env, "PYTHONPATH": str(SRC)}),
        }
        if args.before:
            contenders["push (--before)"] = ([sys.executable, "-c", PUSH], {**env, "PYTHONPATH": args.before})
        times: dict[str, list[float]] = {name: [] for name in contenders}
        walls: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.runs):  # in rounds: each contender sees the same load
            for name, (argv, run_env) in contenders.items():
                cpu, wall = cpu_ms(argv, store, run_env)
                times[name].append(cpu)
                walls[name].append(wall)
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, ms in median.items():
        print(f"{name}: median CPU {ms:.1f} ms, wall {statistics.median(walls[name]):.1f} ms over {args.runs} runs")
    base = median["python -c 'import sqlite3'"]
    now = median["push (this checkout)"]
    print(f"push's fixed cost over `import sqlite3`: {now - base:.1f} ms")
    if args.before:
        then = median["push (--before)"]
        saved = f"saved {then - now:.1f} ms ({now / then:.2f}x)"
        print(f"push: this checkout {now:.1f} ms, --before {then:.1f} ms -> {saved}")


if __name__ == "__main__":
    main()
