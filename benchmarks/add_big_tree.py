"""`datatrail add` of a folder of large files (16 x 256 MiB by default): hashing on every core.

SHA-256 of one file is sequential, but files are independent: a tree of large
files can be hashed on every core at once, so its limit is cores x one core's
SHA-256 rate (or the disk's). Contender: ``datatrail add TREE --no-cache`` as
a CLI subprocess into a fresh store, timed from process start to exit.
Baselines, in the same run on the same files:

- one core's rate: plain ``hashlib.sha256`` over each file in turn, read in
  1 MiB chunks with ``readinto``, in this process: target >= 1.7x its rate on
  a 2-core machine (the ratio printed is datatrail's rate over it);
- ``dvc add TREE`` with DVC's defaults in a fresh repository: target >= 5x faster.

Every file is read once before timing so that all contenders find it in the
page cache (and again before each DVC run). Times are the best of ``--repeats``.

    python benchmarks/add_big_tree.py [--files 16] [--size-mib 256] [--repeats 2] [--no-dvc]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best, fmt_seconds, note, quick, report, scratch, want_dvc, warm
from add_file import ADD_CPU, compile_package, datatrail_add, dvc_add, hashlib_sha256, make_file

from datatrail.hashing import hash_path


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=4 if q else 16)
    ap.add_argument("--size-mib", type=int, default=4 if q else 256)
    ap.add_argument("--repeats", type=int, default=1 if q else 2)
    ap.add_argument("--no-dvc", action="store_true", help="skip the DVC comparison")
    args = ap.parse_args()
    size = args.size_mib << 20
    total = size * args.files
    label = f"{args.files} x {args.size_mib} MiB"
    compile_package()
    with scratch("add-big-tree-") as work:
        tree = work / "tree"
        tree.mkdir()
        files = [tree / f"part-{i:03}.bin" for i in range(args.files)]
        for i, f in enumerate(files):
            make_file(f, size)
            with open(f, "r+b") as out:
                out.write(i.to_bytes(8, "big"))  # each file its own content
        warm(files)
        cores = os.cpu_count() or 1
        note(f"{label} of random bytes, {cores} CPUs; read once before timing (page cache for every contender)")

        base_times, base_cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            for f in files:
                hashlib_sha256(f)
            base_times.append(time.perf_counter() - t0)
            base_cpu.append(time.process_time() - c0)
        base = best(base_times)

        t0 = time.perf_counter()
        expect = hash_path(tree).digest.hex
        in_process = time.perf_counter() - t0

        ours = best([datatrail_add(work, tree, i, expect) for i in range(args.repeats)])
        note(f"best of {args.repeats}; datatrail as a CLI subprocess with a fresh store and --no-cache")
        note(f"split: datatrail.hashing in-process {total / in_process / 1e9:.2f} GB/s ({fmt_seconds(in_process)})")
        # The CPU time of the whole command over the cores: its wall time on idle cores if every
        # core were busy from start to exit (no start-up, no last file alone), so a bound.
        cpu = min(ADD_CPU)
        note(
            f"CPU time (user + system, least of {args.repeats}): datatrail add {cpu:.2f} s, one core's hashlib"
            f" {min(base_cpu):.2f} s; on {cores} idle cores at best {cpu / cores:.2f} s,"
            f" {min(base_cpu) / (cpu / cores):.2f}x one core's hashlib"
        )
        report(
            f"add {label} tree",
            f"{total / ours / 1e9:.2f} GB/s",
            "one core's hashlib",
            f"{total / base / 1e9:.2f} GB/s",
            base / ours,
            1.7,
        )
        if want_dvc(not args.no_dvc):
            theirs = best([dvc_add(work, tree, i) for i in range(max(1, args.repeats - 1))])
            report(f"add {label} tree vs dvc", fmt_seconds(ours), "dvc add", fmt_seconds(theirs), theirs / ours, 5)


if __name__ == "__main__":
    main()
