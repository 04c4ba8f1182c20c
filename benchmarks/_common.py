"""Helpers shared by the benchmarks: timing, the ratio line, scratch space, tools.

Every benchmark prints one line per comparison, in the form

    <what>: datatrail <figure>, <baseline> <figure> -> <ratio>x (target >= <n>x) [ok|MISSED]

with both figures measured in the same run, so that the ratio means something
on any machine. Nothing here asserts on time: a missed target is printed, not
raised.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Every contender starts as installed software does, from compiled files: with this set, a
# module changed since it was last compiled is compiled again by each timed process (for
# datatrail's CLI that was 30-100 ms a command), which would measure the environment.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
BENCH_DIR = REPO / ".bench"
BIN = Path(sys.executable).parent


def quick() -> bool:
    """True for a smoke run (``DATATRAIL_BENCH_QUICK=1`` or ``benchmarks/run --quick``)."""
    return os.environ.get("DATATRAIL_BENCH_QUICK", "") not in ("", "0")


def want_dvc(flag: bool) -> bool:
    """Whether to compare with DVC: not when asked not to, and only if it is installed."""
    if not flag or os.environ.get("DATATRAIL_BENCH_NO_DVC", "") not in ("", "0"):
        return False
    if tool("dvc") is None:
        print("note: dvc is not installed in this environment; skipping the DVC comparison", flush=True)
        return False
    return True


def tool(name: str) -> str | None:
    """A console script of this environment (the venv running the benchmark), else from PATH."""
    here = BIN / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def dvc_env(site: Path) -> dict[str, str]:
    """DVC with its defaults, but no telemetry, and no state left outside the scratch folder."""
    return {
        "DVC_NO_ANALYTICS": "1",
        "DVC_STUDIO_OFFLINE": "1",
        "DVC_SITE_CACHE_DIR": str(site),
        "DVC_GLOBAL_CONFIG_DIR": str(site / "global"),
        "DVC_SYSTEM_CONFIG_DIR": str(site / "system"),
    }


def datatrail_cmd() -> list[str]:
    exe = tool("datatrail")
    return [exe] if exe else [sys.executable, "-m", "datatrail.cli.app"]


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder under .bench/tmp (same disk as the project), removed afterwards."""
    base = Path(os.environ.get("DATATRAIL_BENCH_TMP", BENCH_DIR / "tmp"))
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; raise with its output if it fails."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(list(cmd), cwd=cwd, env=full_env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(fn: Callable[[], object], repeats: int, before: Callable[[], object] | None = None) -> list[float]:
    """Wall-clock seconds of ``fn`` over ``repeats`` runs, with untimed ``before`` each time."""
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        times.append(timed(fn))
    return times


def best(times: Sequence[float]) -> float:
    return min(times)


def median(times: Sequence[float]) -> float:
    return statistics.median(times)


def warm(paths: Sequence[Path]) -> None:
    """Read files once so that both contenders find them in the page cache."""
    buf = bytearray(1 << 20)
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def fmt_seconds(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def report(what: str, ours: str, baseline_name: str, theirs: str, ratio: float, target: float, unit: str = "x") -> bool:
    """Print the ratio line; True if the target is met."""
    ok = ratio >= target
    print(
        f"{what}: datatrail {ours}, {baseline_name} {theirs} -> {ratio:.2f}{unit}"
        f" (target >= {target:g}{unit}) {verdict(ok)}",
        flush=True,
    )
    return ok


def verdict(ok: bool) -> str:
    """[ok] or [MISSED]; a quick run's sizes are too small for its figures to mean anything."""
    if quick():
        return "[quick run: not a measurement]"
    return "[ok]" if ok else "[MISSED]"


def note(text: str) -> None:
    print(f"  {text}", flush=True)
