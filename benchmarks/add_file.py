"""`datatrail add` of one large binary file (1 GiB by default).

Contender: ``datatrail add FILE --no-cache`` as a CLI subprocess into a fresh
store, timed from process start to exit (start-up, hashing, the database write).
Baselines, measured in the same run on the same file:

- plain ``hashlib.sha256`` over the file read in 1 MiB chunks, in this process
  (no interpreter start-up): target >= 0.9x its throughput;
- ``dvc add FILE`` with DVC's default settings in a fresh DVC repository
  (``dvc init --no-scm``): target >= 5x faster.

The file is read once before any timing so that every contender finds it in
the page cache (warm cache for all, and warmed again before each DVC run,
whose copy into its cache evicts pages). datatrail's modules are compiled
first, as in an installed wheel. Times are the best of ``--repeats``.
All files are removed afterwards.

    python benchmarks/add_file.py [--size-mib N] [--repeats R] [--no-dvc]
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    best,
    datatrail_cmd,
    dvc_env,
    fmt_seconds,
    note,
    quick,
    report,
    run,
    scratch,
    tool,
    want_dvc,
    warm,
)

import datatrail
from datatrail.hashing import hash_path

CHUNK = 1 << 20


def make_file(path: Path, size: int) -> None:
    rng = random.Random(1)
    block = 16 << 20
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(block, left)
            f.write(rng.randbytes(n))
            left -= n


def hashlib_sha256(path: Path) -> str:
    """The baseline: read in 1 MiB chunks, update one SHA-256."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def compile_package() -> None:
    """Compile datatrail's modules, as pip does when it installs the wheel. An editable checkout has no
    bytecode until something writes it, and with PYTHONDONTWRITEBYTECODE=1 (set on the shared machine)
    each timed CLI process would compile every module it imports, before the first byte is hashed too."""
    compileall.compile_dir(Path(datatrail.__file__).parent, quiet=1)


# The CPU time (user + system, every thread) of each timed `datatrail add`, in order: less
# sensitive than the wall time to the other processes of a shared machine.
ADD_CPU: list[float] = []


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def datatrail_add(work: Path, target: Path, i: int, expect: str) -> float:
    """One timed `datatrail add` into a fresh store (its creation is not timed); its CPU time goes to ADD_CPU."""
    store = work / f"dt{i}"
    store.mkdir()
    run([*datatrail_cmd(), "init"], cwd=store)
    cpu = children_cpu()
    t0 = time.perf_counter()
    out = run([*datatrail_cmd(), "add", str(target), "--name", "big", "--no-cache"], cwd=store)
    elapsed = time.perf_counter() - t0
    ADD_CPU.append(children_cpu() - cpu)
    if f"sha256:{expect[:12]}" not in out:
        raise SystemExit(f"datatrail printed {out!r}, expected digest sha256:{expect[:12]}")
    shutil.rmtree(store)
    return elapsed


def dvc_add(work: Path, source: Path, i: int) -> float:
    """One timed `dvc add` in a fresh repository holding the file or folder (moved in and back out, untimed)."""
    repo = work / f"dvc{i}"
    repo.mkdir()
    env = dvc_env(work / f"dvc-site{i}")
    dvc = tool("dvc")
    assert dvc is not None
    run([dvc, "init", "--no-scm", "-q"], cwd=repo, env=env)
    inside = repo / source.name
    os.rename(source, inside)
    try:
        warm([inside] if inside.is_file() else sorted(p for p in inside.rglob("*") if p.is_file()))
        t0 = time.perf_counter()
        run([dvc, "add", "-q", inside.name], cwd=repo, env=env)
        elapsed = time.perf_counter() - t0
    finally:
        os.rename(inside, source)
    shutil.rmtree(repo)
    shutil.rmtree(work / f"dvc-site{i}", ignore_errors=True)
    return elapsed


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=8 if q else 1024)
    ap.add_argument("--repeats", type=int, default=1 if q else 3)
    ap.add_argument("--dvc-repeats", type=int, default=1 if q else 2)
    ap.add_argument("--no-dvc", action="store_true", help="skip the DVC comparison")
    args = ap.parse_args()
    size = args.size_mib << 20
    label = f"{args.size_mib // 1024}GiB" if args.size_mib % 1024 == 0 else f"{args.size_mib}MiB"

    compile_package()
    with scratch("add-file-") as work:
        target = work / "big.bin"
        make_file(target, size)
        warm([target])
        note(f"{label} of random bytes; read once before timing so that every contender finds it in the page cache")

        base_times, base_cpu, expect = [], [], ""
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            expect = hashlib_sha256(target)
            base_times.append(time.perf_counter() - t0)
            base_cpu.append(time.process_time() - c0)
        base = best(base_times)

        # How the CLI's time splits: hashing in-process, and the fixed cost of a CLI `add`.
        t0 = time.perf_counter()
        assert hash_path(target).digest.hex == expect
        in_process = time.perf_counter() - t0
        tiny = work / "tiny.bin"
        tiny.write_bytes(b"x")
        fixed = min(datatrail_add(work, tiny, 100 + i, hashlib.sha256(b"x").hexdigest()) for i in range(args.repeats))
        fixed_cpu = min(ADD_CPU)
        ADD_CPU.clear()

        ours = best([datatrail_add(work, target, i, expect) for i in range(args.repeats)])
        note(f"best of {args.repeats}; datatrail as a CLI subprocess with a fresh store and --no-cache")
        note(
            f"split: datatrail.hashing in-process {size / in_process / 1e9:.2f} GB/s ({fmt_seconds(in_process)}),"
            f" CLI fixed cost (`add` of a 1-byte file) {fmt_seconds(fixed)}"
        )
        note(
            f"CPU time (user + system, least of {args.repeats}): datatrail add {min(ADD_CPU):.2f} s;"
            f" the `add` of a 1-byte file {fixed_cpu:.2f} s; hashlib in process {min(base_cpu):.2f} s"
        )
        report(
            f"add {label} file",
            f"{size / ours / 1e9:.2f} GB/s",
            "hashlib",
            f"{size / base / 1e9:.2f} GB/s",
            base / ours,
            0.9,
        )

        if want_dvc(not args.no_dvc):
            theirs = best([dvc_add(work, target, i) for i in range(args.dvc_repeats)])
            report(f"add {label} file vs dvc", fmt_seconds(ours), "dvc add", fmt_seconds(theirs), theirs / ours, 5)


if __name__ == "__main__":
    main()
