"""Cold start of the CLI's reads on the embedded store, against `datatrail --help` and `python -c pass`.

Each command runs as a new process (the store's pages in the OS cache, nothing
in the process), ``--repeats`` times; the median is taken. The store holds a
few datasets, a directory version and a run that read one and wrote another,
so that ``show run:…`` and ``lineage`` have something to walk. Every read also
appends its audit entry, as it does for a user.

Target (issue 22): ``ls``, ``show``, ``versions``, ``runs`` and ``lineage`` answer in
< 0.15 s cold, when ``datatrail --help`` takes 0.14 s: a command at least 0.93x as
fast as ``--help`` (the ratio printed is --help's time over the command's). The
absolute figure and ``python -c pass`` (the interpreter alone) are printed beside it.

With ``--before DIR`` (the source of an earlier commit, as ``git archive REV | tar -x -C DIR``
leaves it), each command also runs from that tree (``PYTHONPATH=DIR/src python -m datatrail``,
against this tree the same way) on the same store, and the speed-up is printed.

With ``--instructions`` (valgrind installed) each command also runs once under
``valgrind --tool=callgrind`` and the instructions it executed are printed, in
millions, beside ``python -c pass`` (and the earlier tree with ``--before``):
a count that does not move with the machine's load, unlike the times.

    python benchmarks/cli_reads.py [--repeats 5] [--before DIR] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import datatrail_cmd, fmt_seconds, median, note, quick, report, scratch

import datatrail

TARGET_S = 0.15
HELP_S = 0.14  # --help's time when the target was set


def _cold(cmd: list[str], cwd: Path, repeats: int, src: Path | None = None) -> float:
    # Compiled files are written (as installed software has them; _common drops PYTHONDONTWRITEBYTECODE):
    # with the variable set, every timed run would compile each module changed since it was last compiled.
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)  # compiled files exist: not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return median(times)


def _instructions(cmd: list[str], cwd: Path, src: Path | None = None) -> float:
    """Millions of instructions the command executes (valgrind's callgrind, which counts every one)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)  # compiled files exist: not counted
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"valgrind printed no count: {proc.stderr[-500:]}")
    return int(found.group(1)) / 1e6


def _store(folder: Path) -> str:
    """A store with datasets, versions, a directory and a run; the id of the run."""
    (folder / "raw.csv").write_text("a,b\n1,2\n3,4\n")
    (folder / "images").mkdir()
    for i in range(30):
        (folder / "images" / f"{i:03}.bin").write_bytes(os.urandom(64))
    trail = datatrail.init(folder)
    try:
        trail.add(folder / "raw.csv", name="raw", tags=["candidate"])
        (folder / "raw.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
        trail.add(folder / "raw.csv", name="raw")
        trail.add(folder / "images", name="images")
        with trail.run("clean", params={"k": 1}) as run:
            run.input("raw")
            (folder / "clean.csv").write_text("a,b\n1,2\n")
            run.output(folder / "clean.csv", name="clean")
            run.log_metric("rows", 1)
        return trail.runs()[0].id
    finally:
        trail.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3 if quick() else 5)
    ap.add_argument("--before", type=Path, help="the source tree of an earlier commit, to compare with")
    ap.add_argument("--instructions", action="store_true", help="also count each command's instructions (valgrind)")
    args = ap.parse_args()
    dt = datatrail_cmd()
    with scratch("cli-reads-") as folder:
        run_id = _store(folder)
        python = _cold([sys.executable, "-c", "pass"], folder, args.repeats)
        helped = _cold([*dt, "--help"], folder, args.repeats)
        note(f"python -c pass {fmt_seconds(python)}, datatrail --help {fmt_seconds(helped)} (median of {args.repeats})")
        here = Path(__file__).resolve().parent.parent / "src"
        if args.instructions and shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
        if args.instructions:
            helping = [sys.executable, "-m", "datatrail", "--help"]
            counted = f"python -c pass {_instructions([sys.executable, '-c', 'pass'], folder):.0f} M instructions"
            counted += f", --help {_instructions(helping, folder, here):.0f} M"
            if args.before is not None:
                counted += f", before {_instructions(helping, folder, args.before / 'src'):.0f} M"
            note(counted)
        commands = [
            ["ls"],
            ["show", "raw"],
            ["show", "images"],
            ["show", f"run:{run_id[:8]}"],
            ["versions", "raw"],
            ["runs"],
            ["lineage", "clean", "--both"],
        ]
        for argv in commands:
            took = _cold([*dt, *argv], folder, args.repeats)
            report(
                f"cold `datatrail {' '.join(argv)}`".replace(f"run:{run_id[:8]}", "RUN"),
                fmt_seconds(took),
                "--help",
                fmt_seconds(helped),
                helped / took,
                HELP_S / TARGET_S,
            )
            note(f"absolute {fmt_seconds(took)} (target < {fmt_seconds(TARGET_S)} on an idle machine)")
            if args.instructions:
                module = [sys.executable, "-m", "datatrail", *argv]
                counted = f"{_instructions(module, folder, here):.0f} M instructions"
                if args.before is not None:
                    counted += f", before {_instructions(module, folder, args.before / 'src'):.0f} M"
                note(counted)
            if args.before is not None:
                module = [sys.executable, "-m", "datatrail", *argv]
                now = _cold(module, folder, args.repeats, here)
                then = _cold(module, folder, args.repeats, args.before / "src")
                report(
                    f"  `{' '.join(argv)}` against the earlier tree".replace(f"run:{run_id[:8]}", "RUN"),
                    fmt_seconds(now),
                    "before",
                    fmt_seconds(then),
                    then / now,
                    1.0,
                )


if __name__ == "__main__":
    main()
