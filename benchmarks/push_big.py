"""A warm `datatrail push` of one big file to a folder remote against `cp` of the same bytes (issue 18), A/B.

The question of "The big file, round nine" (docs/benchmarks.md): `benchmarks/content.py` times the same
pair among its other steps; this times only it, with the push of another checkout (``--before DIR``, its
``src``) in the same rounds. Each round runs every contender once, in an order rotated from round to
round, each into a fresh folder removed right after it is timed (so each copy lands in memory just
freed, not in memory the previous copies still hold: on this VM the second costs up to several times
the first). Before each, the dirty pages are written out and the cache's object is read through the
page cache (warm). Printed: each contender's median wall time and CPU (user+sys, ``os.wait4``: robust
to load), and the median of the rounds' ratios `cp` / push (target >= 0.8x).

    .venv/bin/python benchmarks/push_big.py [--mib 1024] [--rounds 8] [--before /tmp/base/src]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, fmt_seconds, note, report, scratch

SRC = REPO / "src"
PUSH = "import sys\nsys.argv = ['datatrail', 'push']\nfrom datatrail.cli import script\nscript()\n"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and user+sys CPU seconds of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"{argv} failed with status {status}")
    return wall, usage.ru_utime + usage.ru_stime


def read_through(path: Path) -> None:
    buf = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--before", help="a `src` folder to compare with (e.g. `git archive` of main)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "DATATRAIL_URI")}
    cli = [sys.executable, "-m", "datatrail"]
    with scratch("push-big") as work:
        repo = work / "repo"
        repo.mkdir()
        subprocess.run([*cli, "init"], cwd=repo, env=env, check=True, capture_output=True)
        with open(repo / "big.bin", "wb") as f:
            block = os.urandom(1 << 20)
            for i in range(args.mib):
                f.write(block[:-8] + i.to_bytes(8, "big"))
        subprocess.run([*cli, "add", "big.bin", "--store-content"], cwd=repo, env=env, check=True, capture_output=True)
        (repo / "big.bin").unlink()
        cached = next((repo / ".datatrail" / "objects" / "sha256").glob("*/*"))
        remote = work / "remote"
        subprocess.run([*cli, "remote", "add", "r", str(remote), "--default"], cwd=repo, env=env, check=True)
        contenders: dict[str, tuple[list[str], dict[str, str]]] = {
            "cp": (["cp", str(cached), str(remote / "big.bin")], env),
            "push (this checkout)": ([sys.executable, "-c", PUSH], {**env, "PYTHONPATH": str(SRC)}),
        }
        if args.before:
            contenders["push (--before)"] = ([sys.executable, "-c", PUSH], {**env, "PYTHONPATH": args.before})
        names = list(contenders)
        for argv, run_env in list(contenders.values())[1:]:  # untimed: each checkout's modules compiled once
            remote.mkdir()
            timed(argv, repo, run_env)
            shutil.rmtree(remote)
        walls: dict[str, list[float]] = {n: [] for n in names}
        cpus: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                argv, run_env = contenders[name]
                remote.mkdir()
                os.sync()
                read_through(cached)
                wall, cpu = timed(argv, repo, run_env)
                walls[name].append(wall)
                cpus[name].append(cpu)
                shutil.rmtree(remote)
            note(
                f"round {r + 1} (load {os.getloadavg()[0]:.1f}): "
                + ", ".join(f"{n} {fmt_seconds(walls[n][-1])} (CPU {fmt_seconds(cpus[n][-1])})" for n in names)
            )
    for name in names:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        note(f"{name}: median {fmt_seconds(wall)}, CPU {fmt_seconds(cpu)} over {args.rounds} rounds")
    for name in names[1:]:
        ratio = statistics.median(c / p for c, p in zip(walls["cp"], walls[name], strict=True))
        cp_wall, ours = statistics.median(walls["cp"]), statistics.median(walls[name])
        report(f"warm {name} of {args.mib} MiB", fmt_seconds(ours), "cp", fmt_seconds(cp_wall), ratio, 0.8)


if __name__ == "__main__":
    main()
