"""`datatrail add` of a directory of many small files (20,000 files of 4 KiB by default).

Contender: ``datatrail add TREE`` as a CLI subprocess into a fresh store (and
so a fresh stat cache), default settings; then the same command again on the
unchanged tree, which the stat cache answers without reading the files.
Baseline, measured in the same run: ``dvc add TREE`` with DVC's default
settings in a fresh repository (``dvc init --no-scm``), then ``dvc add TREE``
again, unchanged. Targets: first add >= 3x faster, unchanged re-add >= 4x.

Each tool gets its own copy of the tree (same content, same age), so that one
tool's rewriting files cannot change what the other sees. Both trees are read
once before timing (page cache warm for both) and are older than two seconds
(datatrail does not trust the stat of a file modified within two seconds of
hashing it). Times are the best of ``--repeats``; everything is removed
afterwards.

    python benchmarks/add_tree.py [--files N] [--file-kib K] [--repeats R] [--no-dvc]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best, datatrail_cmd, dvc_env, fmt_seconds, note, quick, report, run, scratch, tool, want_dvc, warm

PER_DIR = 1000
RACY_SECONDS = 2.0  # datatrail.hashing.RACY_SECONDS


def make_tree(root: Path, files: int, size: int) -> list[Path]:
    rng = random.Random(7)
    paths = []
    for i in range(files):
        p = root / f"part{i // PER_DIR:03d}" / f"file{i:06d}.bin"
        if i % PER_DIR == 0:
            p.parent.mkdir(parents=True)
        p.write_bytes(rng.randbytes(size))
        paths.append(p)
    return paths


def datatrail_adds(work: Path, tree: Path, i: int) -> tuple[float, float]:
    """(first add, unchanged re-add) into a fresh store; creating the store is not timed."""
    store = work / f"dt{i}"
    store.mkdir()
    run([*datatrail_cmd(), "init"], cwd=store)
    cmd = [*datatrail_cmd(), "add", str(tree), "--name", "tree"]
    t0 = time.perf_counter()
    first = run(cmd, cwd=store)
    t1 = time.perf_counter()
    again = run(cmd, cwd=store)
    t2 = time.perf_counter()
    if "(new)" not in first or "(unchanged)" not in again:
        raise SystemExit(f"unexpected datatrail output: {first!r} then {again!r}")
    shutil.rmtree(store)
    return t1 - t0, t2 - t1


def dvc_adds(work: Path, tree: Path, i: int) -> tuple[float, float]:
    """(first add, unchanged re-add) in a fresh DVC repository holding the tree (moved in and out, untimed)."""
    repo = work / f"dvc{i}"
    repo.mkdir()
    site = work / f"dvc-site{i}"
    env = dvc_env(site)
    dvc = tool("dvc")
    assert dvc is not None
    run([dvc, "init", "--no-scm", "-q"], cwd=repo, env=env)
    inside = repo / tree.name
    os.rename(tree, inside)
    try:
        t0 = time.perf_counter()
        run([dvc, "add", "-q", inside.name], cwd=repo, env=env)
        t1 = time.perf_counter()
        run([dvc, "add", "-q", inside.name], cwd=repo, env=env)
        t2 = time.perf_counter()
    finally:
        os.rename(inside, tree)
    shutil.rmtree(repo)
    shutil.rmtree(site, ignore_errors=True)
    return t1 - t0, t2 - t1


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=300 if q else 20_000)
    ap.add_argument("--file-kib", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1 if q else 3)
    ap.add_argument("--dvc-repeats", type=int, default=1 if q else 3)
    ap.add_argument("--no-dvc", action="store_true", help="skip the DVC comparison")
    args = ap.parse_args()
    use_dvc = want_dvc(not args.no_dvc)

    with scratch("add-tree-") as work:
        ours_tree, dvc_tree = work / "tree", work / "dvc-tree" / "tree"
        made = time.time()
        paths = make_tree(ours_tree, args.files, args.file_kib << 10)
        if use_dvc:
            paths += make_tree(dvc_tree, args.files, args.file_kib << 10)
        warm(paths)
        if not q and (wait := RACY_SECONDS + 0.5 - (time.time() - made)) > 0:
            time.sleep(wait)
        note(
            f"{args.files:,} files of {args.file_kib} KiB in {-(-args.files // PER_DIR)} folders;"
            " read once before timing (page cache warm for every contender)"
        )

        ours = [datatrail_adds(work, ours_tree, i) for i in range(args.repeats)]
        first, again = best([a for a, _ in ours]), best([b for _, b in ours])
        note(
            f"datatrail: first add {fmt_seconds(first)}, unchanged re-add {fmt_seconds(again)} (best of {args.repeats})"
        )
        if not use_dvc:
            # Without DVC the ratio is against datatrail's own first add: what the stat cache saves.
            report(
                f"re-add {args.files} files unchanged",
                fmt_seconds(again),
                "first add",
                fmt_seconds(first),
                first / again,
                1,
            )
            return
        theirs = [dvc_adds(work, dvc_tree, i) for i in range(args.dvc_repeats)]
        d_first, d_again = best([a for a, _ in theirs]), best([b for _, b in theirs])
        report(f"add {args.files} files", fmt_seconds(first), "dvc add", fmt_seconds(d_first), d_first / first, 3)
        report(
            f"re-add {args.files} files unchanged",
            fmt_seconds(again),
            "dvc add",
            fmt_seconds(d_again),
            d_again / again,
            4,
        )


if __name__ == "__main__":
    main()
