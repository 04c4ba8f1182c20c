"""Content storage against DVC 3: push, pull + checkout, unchanged checkout; and one big file against a plain copy.

Contenders, each a CLI subprocess with default settings, timed from process start to exit:

- **20,000 files of 4 KiB** (``--files``, ``--file-kib``), added once (untimed) by
  ``datatrail add TREE --store-content`` and by ``dvc add TREE`` (``dvc init --no-scm``).
  ``push``: ``datatrail push`` vs ``dvc push`` to an empty remote (target >= 10x).
  ``pull``: into an empty folder holding only the metadata (datatrail: ``.datatrail/config.toml``
  and ``trail.db``; DVC: ``.dvc/config`` and ``TREE.dvc``), ``datatrail pull`` vs ``dvc pull``
  (both download and write the workspace; target >= 5x). ``checkout``: of the unchanged
  workspace, ``datatrail checkout TREE@1`` vs ``dvc checkout`` (target >= 5x).
- **one file of 1 GiB** (``--big-mib``): ``datatrail push`` vs a plain copy of the same bytes to
  the remote (``cp`` for a folder, one ``s3fs`` upload for S3) from the same file, the cache's
  object that the push reads (not the workspace's copy: two files of one GiB need not read from
  the disk equally fast, cold), and ``datatrail pull`` (download
  into the cache and checkout, every byte verified) vs a plain copy back (``cp`` / one download):
  target >= 0.8x (the plain copy's time divided by datatrail's). Warm: every file read is in the page
  cache. ``--cold`` also times each side with the files it reads evicted first (read once, then
  ``fsync`` and ``posix_fadvise(POSIX_FADV_DONTNEED)`` per file, checked with ``mincore``; not
  ``drop_caches``: the machine is shared), as with a remote on another disk. Each round times both
  sides moments apart, the plain copy first in even rounds and datatrail first in odd ones; the
  result is the median of the rounds' ratios, and each timed step prints its CPU and the MiB it read
  from the disk. The same run prints SHA-256's time over the file and a push's fixed
  cost (``datatrail push`` with nothing to send): a verified pull from the page cache cannot beat
  (copy time) / (hash time), nor a push (copy time) / (copy time + fixed cost).

Each is measured on a local-folder remote and on an S3 remote served by moto on loopback
(``--no-s3`` skips it). Times are the best of ``--repeats`` (the big file: medians, above). Every
timed step, of either tool or of the plain copy, starts after an ``os.sync()``: the files the
untimed step before it wrote (an ``add``'s cache, a copy's 1 GiB) are written back before the
clock starts, not during the step.

    python benchmarks/content.py [--files N] [--file-kib K] [--big-mib M] [--repeats R] [--no-dvc]
                                 [--no-s3] [--no-folder] [--no-tree] [--cold] [--checkout-only] [--only pull]

``--checkout-only`` times only the checkout of the unchanged 20,000 files (both tools, local
folder; no push, pull or big file). ``--only pull`` times only the pull of the 20,000 files
(local folder unless ``--no-folder``): each tool adds and pushes once (untimed), then each of
``--repeats`` rounds pulls into a fresh empty folder with datatrail and then with DVC (nothing is
removed until the end); every round's pair and ratio is printed, and the median of the rounds'
ratios is the result.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, best, datatrail_cmd, dvc_env, fmt_seconds, note, quick, report, run, scratch, tool, want_dvc

PER_DIR = 1000


def make_tree(root: Path, files: int, size: int) -> None:
    rng = random.Random(7)
    for i in range(files):
        p = root / f"part{i // PER_DIR:03d}" / f"file{i:06d}.bin"
        if i % PER_DIR == 0:
            p.parent.mkdir(parents=True)
        p.write_bytes(rng.randbytes(size))


def settle() -> None:
    """Let the files this benchmark removed stop counting as just deleted, before a timed pull.

    ext4 without a journal (this machine's) does not reuse an inode deleted less than 5 s ago
    (300 s while its inode table block is unwritten: ``recently_deleted()`` in fs/ext4/ialloc.c), so
    each file created soon after tens of thousands were removed scans past all of them: a pull that
    follows the removal of the previous round's folders then pays for them in proportion to the
    files it creates (profiled: three quarters of its time in ``find_inode_bit``). Both tools get
    the same pause, after the removed inodes are written out."""
    os.sync()
    time.sleep(5.5)


def timed_run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Seconds from ``cmd``'s start to its exit, after the dirty pages of whatever ran before are written out.

    Every timed step of either tool follows an untimed one that wrote files (an ``add`` writes the
    cache, a copy 1 GiB): without the ``os.sync()`` the kernel would write those back during the
    timed step, and bill them to whichever tool came next."""
    os.sync()
    t0 = time.perf_counter()
    run(cmd, cwd=cwd, env=env)
    return time.perf_counter() - t0


class Remote:
    """Where both tools push: a fresh folder, or a fresh prefix of a bucket on the moto server."""

    def __init__(self, kind: str, work: Path, endpoint: str | None, bucket: str | None) -> None:
        self.kind, self.work, self.endpoint, self.bucket = kind, work, endpoint, bucket

    def url(self, label: str) -> str:
        tag = f"{label}-{uuid.uuid4().hex[:8]}"
        if self.kind == "folder":
            return str(self.work / "remotes" / tag)
        return f"s3://{self.bucket}/{tag}"

    def dvc_config(self, repo: Path, url: str, env: dict[str, str]) -> None:
        dvc = tool("dvc")
        assert dvc is not None
        run([dvc, "remote", "add", "-d", "r", url], cwd=repo, env=env)
        if self.kind == "s3":
            run([dvc, "remote", "modify", "r", "endpointurl", str(self.endpoint)], cwd=repo, env=env)


def datatrail_side(
    work: Path, tree: Path, remote: Remote, repeats: int, checkout_only: bool = False
) -> tuple[float, float, float]:
    """(push, pull into an empty clone, checkout unchanged): best of ``repeats`` (0 for what was skipped)."""
    dt = datatrail_cmd()
    pushes, pulls, checkouts = [], [], []
    for i in range(repeats):
        repo = work / f"dt{i}"
        repo.mkdir()
        run([*dt, "init"], cwd=repo)
        os.rename(tree, repo / "tree")
        try:
            run([*dt, "add", "tree", "--store-content"], cwd=repo)
            run([*dt, "remote", "add", "origin", remote.url("dt"), "--default"], cwd=repo)
            if not checkout_only:
                pushes.append(timed_run([*dt, "push"], repo))
            time.sleep(2.1)  # the workspace's stat becomes trustworthy (datatrail.hashing.RACY_SECONDS)
            checkouts.append(timed_run([*dt, "checkout", "tree@1"], repo))
            clone = work / f"dt-clone{i}"
            if checkout_only:
                continue
            (clone / ".datatrail").mkdir(parents=True)
            for name in ("config.toml", "trail.db"):
                shutil.copy(repo / ".datatrail" / name, clone / ".datatrail" / name)
            settle()
            pulls.append(timed_run([*dt, "pull"], clone))
            if not (clone / "tree" / "part000").is_dir():
                raise SystemExit("datatrail pull did not write the tree")
        finally:
            os.rename(repo / "tree", tree)
        shutil.rmtree(repo)
        shutil.rmtree(work / f"dt-clone{i}", ignore_errors=checkout_only)
    return best(pushes or [0.0]), best(pulls or [0.0]), best(checkouts)


def dvc_side(
    work: Path, tree: Path, remote: Remote, repeats: int, checkout_only: bool = False
) -> tuple[float, float, float]:
    dvc = tool("dvc")
    assert dvc is not None
    pushes, pulls, checkouts = [], [], []
    for i in range(repeats):
        repo = work / f"dvc{i}"
        repo.mkdir()
        env = dvc_env(work / f"dvc-site{i}")
        run([dvc, "init", "--no-scm", "-q"], cwd=repo, env=env)
        os.rename(tree, repo / "tree")
        try:
            run([dvc, "add", "-q", "tree"], cwd=repo, env=env)
            remote.dvc_config(repo, remote.url("dvc"), env)
            if not checkout_only:
                pushes.append(timed_run([dvc, "push", "-q"], repo, env))
            checkouts.append(timed_run([dvc, "checkout", "-q"], repo, env))
            clone = work / f"dvc-clone{i}"
            if checkout_only:
                continue
            clone.mkdir()
            run([dvc, "init", "--no-scm", "-q"], cwd=clone, env=env)
            shutil.copy(repo / ".dvc" / "config", clone / ".dvc" / "config")
            shutil.copy(repo / "tree.dvc", clone / "tree.dvc")
            settle()
            pulls.append(timed_run([dvc, "pull", "-q"], clone, env))
            if not (clone / "tree" / "part000").is_dir():
                raise SystemExit("dvc pull did not write the tree")
        finally:
            os.rename(repo / "tree", tree)
        shutil.rmtree(repo)
        shutil.rmtree(work / f"dvc-clone{i}", ignore_errors=checkout_only)
    return best(pushes or [0.0]), best(pulls or [0.0]), best(checkouts)


def pull_pairs(work: Path, tree: Path, remote: Remote, repeats: int) -> None:
    """``--only pull``: both tools pushed once, then per round a pull into an empty folder by each, in turn."""
    dt, dvc = datatrail_cmd(), tool("dvc")
    assert dvc is not None
    repo, drepo = work / "dt", work / "dvc"
    env = dvc_env(work / "dvc-site")
    for path in (repo, drepo):
        path.mkdir()
    run([*dt, "init"], cwd=repo)
    run([dvc, "init", "--no-scm", "-q"], cwd=drepo, env=env)
    shutil.copytree(tree, repo / "tree")
    os.rename(tree, drepo / "tree")
    try:
        run([*dt, "add", "tree", "--store-content"], cwd=repo)
        run([*dt, "remote", "add", "origin", remote.url("dt"), "--default"], cwd=repo)
        run([*dt, "push"], cwd=repo)
        run([dvc, "add", "-q", "tree"], cwd=drepo, env=env)
        remote.dvc_config(drepo, remote.url("dvc"), env)
        run([dvc, "push", "-q"], cwd=drepo, env=env)
    finally:
        os.rename(drepo / "tree", tree)
    ratios = []
    for i in range(repeats):
        clone = work / f"dt-clone{i}"
        (clone / ".datatrail").mkdir(parents=True)
        for name in ("config.toml", "trail.db"):
            shutil.copy(repo / ".datatrail" / name, clone / ".datatrail" / name)
        settle()
        ours = timed_run([*dt, "pull"], clone)
        if not (clone / "tree" / "part000").is_dir():
            raise SystemExit("datatrail pull did not write the tree")
        dclone = work / f"dvc-clone{i}"
        dclone.mkdir()
        run([dvc, "init", "--no-scm", "-q"], cwd=dclone, env=env)
        shutil.copy(drepo / ".dvc" / "config", dclone / ".dvc" / "config")
        shutil.copy(drepo / "tree.dvc", dclone / "tree.dvc")
        settle()
        theirs = timed_run([dvc, "pull", "-q"], dclone, env)
        if not (dclone / "tree" / "part000").is_dir():
            raise SystemExit("dvc pull did not write the tree")
        ratios.append(theirs / ours)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        note(f"round {i + 1}: datatrail pull {fmt_seconds(ours)}, dvc pull {fmt_seconds(theirs)}, "
             f"{theirs / ours:.2f}x (load {load})")  # fmt: skip
        # The clones stay until the end: removing 60,000 files here would slow the next round's creates
        # (see settle(); an inode table block a new file dirties keeps its deleted inodes unusable for 300 s).
    m = statistics.median(ratios)
    print(
        f"pull + checkout {len(list(tree.rglob('*.bin')))} files into an empty folder ({remote.kind}), "
        f"median of {repeats} rounds: {m:.2f}x (target >= 5x) {'ok' if m >= 5 else 'MISSED'}",
        flush=True,
    )


def evict(*paths: Path) -> None:
    """Take files out of the page cache (their dirty pages written out first): the next read comes from disk.

    ``posix_fadvise(POSIX_FADV_DONTNEED)`` on each file, after an ``fsync``; not
    ``/proc/sys/vm/drop_caches``, which would empty the page cache of everything else on a shared machine.
    Each file is checked afterwards (:func:`resident`): a page left behind would make that side's
    "cold" read partly warm, so it is evicted again, and a file that still keeps pages stops the run."""
    for p in paths:
        for _ in range(3):
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            if resident(p) == 0:
                break
        else:
            raise SystemExit(f"{p} stays in the page cache ({resident(p)} bytes) after POSIX_FADV_DONTNEED")


def resident(path: Path) -> int:
    """Bytes of ``path`` in the page cache (``mincore`` over a mapping of it, as ``fincore`` counts); -1 where
    that cannot be asked (no ``mincore``: not Linux)."""
    import ctypes
    import mmap

    size = path.stat().st_size
    if not size:
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mincore = libc.mincore
    except (OSError, AttributeError):
        return -1
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    page = mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return -1
        try:
            vec = (ctypes.c_ubyte * ((size + page - 1) // page))()
            if mincore(addr, size, vec) != 0:
                return -1
            return sum(1 for b in bytes(vec) if b & 1) * page
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def read_through(path: Path) -> None:
    """Read a file once through the page cache (a reused buffer: no fresh memory per block)."""
    buf = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def hash_seconds(path: Path) -> float:
    """hashlib's SHA-256 over a file in the page cache, read in 32 MiB blocks (the rate verification costs)."""
    import hashlib

    buf = bytearray(32 << 20)
    view = memoryview(buf)
    h = hashlib.sha256()
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return time.perf_counter() - t0


class Step:
    """One timed step of the big-file comparison: wall seconds, and for a subprocess its CPU (user + system)
    and what it read from the disk (``ru_inblock``): a warm step reads ~0 MiB, a cold one the file."""

    def __init__(self, wall: float, cpu: float, read_mib: float) -> None:
        self.wall, self.cpu, self.read_mib = wall, cpu, read_mib

    def __str__(self) -> str:
        if self.cpu < 0:
            return fmt_seconds(self.wall)
        return f"{fmt_seconds(self.wall)} (CPU {fmt_seconds(self.cpu)}, read {self.read_mib:.0f} MiB)"


def timed_step(fn: Callable[[], object]) -> Step:
    """Time ``fn`` after an ``os.sync()`` (as :func:`timed_run`), with the CPU and disk reads of the
    subprocesses it ran (none for an in-process S3 copy: CPU -1)."""
    os.sync()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return Step(wall, cpu if cpu > 0 else -1.0, (r1.ru_inblock - r0.ru_inblock) * 512 / (1 << 20))


def big_file(work: Path, size_mib: int, remote: Remote, repeats: int, cold: bool = False) -> None:
    """datatrail push / pull of one big file against a plain copy of the same bytes, in the same run.

    Each of ``repeats`` rounds times the four steps (plain copy up, push, plain copy back, pull) once,
    warm and (``cold``) cold; the plain copy goes first in even rounds, datatrail in odd ones, and the
    result is the median of the rounds' ratios (plain / datatrail), each round a pair taken moments apart.

    Warm: every file read is in the page cache (read just before). Cold: each file a step reads (the
    source; for a pull, the remote's copy) is first read once, untimed, then evicted from the page cache
    (:func:`evict`, checked with ``mincore``), as with a remote on another disk (on S3 only the upload's
    source: moto keeps objects in memory). The untimed read first gives every step the same state below
    this machine's page cache: on a virtual machine the host may keep a file read once in its own cache,
    so that the first cold read of a freshly written file is slower than the next ones (measured here:
    2.7-4.2 s against 1.0-2.0 s for 1 GiB); without it, whichever side read a file first paid for the
    other. Before each timing the dirty pages are written out."""
    dt = datatrail_cmd()
    repo = work / "big"
    repo.mkdir()
    run([*dt, "init"], cwd=repo)
    with open(repo / "big.bin", "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(size_mib):
            f.write(chunk[:-8] + i.to_bytes(8, "big"))
    run([*dt, "add", "big.bin", "--store-content"], cwd=repo)
    cached = next((repo / ".datatrail" / "objects" / "sha256").glob("*/*"))  # the object a push reads
    local = remote.kind == "folder"
    plain_up: Callable[[Path, str], None]
    plain_down: Callable[[str, Path], None]
    if local:

        def plain_up(src: Path, url: str) -> None:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", str(src), url], check=True)

        def plain_down(url: str, dest: Path) -> None:
            subprocess.run(["cp", url, str(dest)], check=True)

        baseline = "cp"
    else:
        import s3fs  # type: ignore[import-untyped]

        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": remote.endpoint})

        def plain_up(src: Path, url: str) -> None:
            fs.put_file(str(src), url)

        def plain_down(url: str, dest: Path) -> None:
            fs.get_file(url, str(dest))

        baseline = "s3fs upload"

    def prepare(read: list[Path], evicted: bool) -> None:
        os.sync()  # the previous step's dirty pages are not this one's to write
        for p in read:
            read_through(p)  # warm: in the page cache; cold: in whatever caches lie below it, as for the other side
        if evicted:
            evict(*read)

    modes = [False, True] if cold else [False]
    times: dict[tuple[str, bool], list[Step]] = {}
    starts: list[float] = []
    hashes: list[float] = []
    kept: list[str] = []  # the previous round's copies on a folder remote
    for i in range(repeats):
        for evicted in modes:
            # Each pair's copies land in memory the previous pair's copies just freed: kept, every copy
            # would take fresh memory, whose first use on this VM costs up to several times a reused page's
            # (a copy's CPU varied 3.5x between identical rounds: "Round eight: one big file, warm").
            for old in kept if local else ():
                shutil.rmtree(old, ignore_errors=True)
            target = remote.url(f"plain{i}{'c' if evicted else ''}") + "/big.bin"
            name = f"r{i}{'c' if evicted else ''}"
            url = remote.url(f"dt{i}")
            kept = [str(Path(target).parent), url]
            run([*dt, "remote", "add", name, url, "--default"], cwd=repo)
            pushed = Path(url) / "objects" / "sha256" / cached.parent.name / cached.name
            clone = work / "big-clone"

            def up_plain(evicted: bool = evicted, target: str = target) -> None:
                prepare([cached], evicted)
                times.setdefault(("plain up", evicted), []).append(timed_step(lambda: plain_up(cached, target)))

            def up_ours(evicted: bool = evicted) -> None:
                prepare([cached], evicted)
                times.setdefault(("push", evicted), []).append(timed_step(lambda: run([*dt, "push"], cwd=repo)))

            def down_plain(evicted: bool = evicted, target: str = target) -> None:
                prepare([Path(target)] if local else [], evicted)
                times.setdefault(("plain down", evicted), []).append(
                    timed_step(lambda: plain_down(target, work / "plain-copy.bin"))
                )
                (work / "plain-copy.bin").unlink()

            def down_ours(evicted: bool = evicted, pushed: Path = pushed, clone: Path = clone) -> None:
                (clone / ".datatrail").mkdir(parents=True)
                for fname in ("config.toml", "trail.db"):
                    shutil.copy(repo / ".datatrail" / fname, clone / ".datatrail" / fname)
                prepare([pushed] if local else [], evicted)
                times.setdefault(("pull", evicted), []).append(timed_step(lambda: run([*dt, "pull"], cwd=clone)))
                if (clone / "big.bin").stat().st_size != size_mib << 20:
                    raise SystemExit("datatrail pull did not write the file")
                shutil.rmtree(clone)

            ups, downs = [up_plain, up_ours], [down_plain, down_ours]
            if i % 2:  # datatrail first in odd rounds: neither side always comes after the other
                ups.reverse()
                downs.reverse()
            for step in (*ups, *downs):
                step()
            how = "cold" if evicted else "warm"
            note(
                f"round {i + 1}, {how}: {baseline} {times[('plain up', evicted)][-1]}, "
                f"push {times[('push', evicted)][-1]}; back {times[('plain down', evicted)][-1]}, "
                f"pull {times[('pull', evicted)][-1]} (load {os.getloadavg()[0]:.1f})"
            )
        prepare([repo / "big.bin"], False)
        hashes.append(hash_seconds(repo / "big.bin"))
        starts.append(timed_run([*dt, "push"], repo))  # the last remote has it all: nothing to send
    down_name = "cp back" if local else "s3fs download"

    def pairs(ours: str, plain: str, evicted: bool) -> tuple[float, float, float]:
        """(median of datatrail's times, of the plain copy's, of the rounds' ratios plain / datatrail)."""
        a, b = times[(ours, evicted)], times[(plain, evicted)]
        return (
            statistics.median(s.wall for s in a),
            statistics.median(s.wall for s in b),
            statistics.median(y.wall / x.wall for x, y in zip(a, b, strict=True)),
        )

    rounds = f", median of {repeats} rounds" if repeats > 1 else ""
    for evicted in modes:
        how = "cold" if evicted else "warm"
        up, p_up, r_up = pairs("push", "plain up", evicted)
        down, p_down, r_down = pairs("pull", "plain down", evicted)
        report(
            f"push of {size_mib} MiB ({remote.kind}, {how}{rounds})", fmt_seconds(up), baseline, fmt_seconds(p_up),
            r_up, 0.8,
        )  # fmt: skip
        report(
            f"pull + checkout of {size_mib} MiB ({remote.kind}, {how}{rounds})", fmt_seconds(down), down_name,
            fmt_seconds(p_down), r_down, 0.8,
        )  # fmt: skip
    h, fixed = statistics.median(hashes), statistics.median(starts)
    warm_down = statistics.median(s.wall for s in times[("plain down", False)])
    warm_up = statistics.median(s.wall for s in times[("plain up", False)])
    warm_push = statistics.median(s.wall for s in times[("push", False)])
    note(
        f"sha256 of {size_mib} MiB in the page cache: {fmt_seconds(h)} ({(size_mib << 20) / h / 1e9:.2f} GB/s); "
        f"a push's fixed cost (`datatrail push` with nothing to send): {fmt_seconds(fixed)}; "
        f"bound of a verified pull, warm: {down_name} / sha256 = {warm_down / h:.2f}x, "
        f"with the fixed cost: {warm_down / (h + fixed):.2f}x; "
        f"bound of a push, warm: {baseline} / ({baseline} + fixed cost) = {warm_up / (warm_up + fixed):.2f}x; "
        f"warm push - ({baseline} + fixed cost) = {fmt_seconds(warm_push - warm_up - fixed)} (medians)"
    )
    shutil.rmtree(repo)


def start_moto(work: Path) -> Any:
    sys.path.insert(0, str(REPO))
    from tests import s3server  # the suite's own moto launcher

    return s3server.start(work / "moto")


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200 if q else 20_000)
    ap.add_argument("--file-kib", type=int, default=4)
    ap.add_argument("--big-mib", type=int, default=4 if q else 1024)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-dvc", action="store_true", help="skip the DVC comparison")
    ap.add_argument("--no-s3", action="store_true", help="only the local-folder remote")
    ap.add_argument("--no-folder", action="store_true", help="only the S3 remote")
    ap.add_argument("--no-tree", action="store_true", help="only the big file")
    ap.add_argument("--cold", action="store_true", help="big file: also with the files read out of the page cache")
    ap.add_argument("--checkout-only", action="store_true", help="only the unchanged checkout (folder, no big file)")
    ap.add_argument("--only", choices=["pull"], help="only the pull of the small files, in rounds (see above)")
    args = ap.parse_args()
    if args.checkout_only:
        args.no_s3, args.no_folder, args.no_tree = True, False, False
    if args.only == "pull" and not args.no_folder:
        args.no_s3 = True
    use_dvc = want_dvc(not args.no_dvc)

    with scratch("content-") as work:
        kinds = [k for k, off in (("folder", args.no_folder), ("s3", args.no_s3)) if not off]
        moto: Any = None
        endpoint = bucket = None
        env_before = dict(os.environ)
        try:
            if "s3" in kinds:
                moto = start_moto(work)
                endpoint = moto.endpoint
                os.environ.update(
                    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                    AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint,
                )  # fmt: skip
                import boto3

                bucket = f"bench-{uuid.uuid4().hex[:8]}"
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            tree = work / "tree"
            make_tree(tree, args.files, args.file_kib << 10)
            if not q:
                time.sleep(2.5)  # older than datatrail.hashing.RACY_SECONDS: the stat cache may vouch for them
            note(f"{args.files:,} files of {args.file_kib} KiB; one file of {args.big_mib} MiB")
            for kind in kinds:
                remote = Remote(kind, work, endpoint, bucket)
                if args.no_tree:
                    big_file(work, args.big_mib, remote, args.repeats, args.cold)
                    continue
                if args.only == "pull":
                    if not use_dvc:
                        raise SystemExit("--only pull compares with DVC: install it, or drop --no-dvc")
                    pull_pairs(work, tree, remote, args.repeats)
                    continue
                if args.checkout_only:
                    checkout = datatrail_side(work, tree, remote, args.repeats, checkout_only=True)[2]
                    note(f"datatrail checkout unchanged {fmt_seconds(checkout)}")
                    if use_dvc:
                        d_checkout = dvc_side(work, tree, remote, args.repeats, checkout_only=True)[2]
                        report(
                            f"checkout of {args.files} unchanged files", fmt_seconds(checkout), "dvc checkout",
                            fmt_seconds(d_checkout), d_checkout / checkout, 5,
                        )  # fmt: skip
                    continue
                push, pull, checkout = datatrail_side(work, tree, remote, args.repeats)
                note(
                    f"datatrail ({kind}): push {fmt_seconds(push)}, pull {fmt_seconds(pull)}, "
                    f"checkout unchanged {fmt_seconds(checkout)}"
                )
                if use_dvc:
                    d_push, d_pull, d_checkout = dvc_side(work, tree, remote, args.repeats)
                    n = args.files
                    report(
                        f"push {n} files ({kind})",
                        fmt_seconds(push),
                        "dvc push",
                        fmt_seconds(d_push),
                        d_push / push,
                        10,
                    )
                    report(
                        f"pull + checkout {n} files into an empty folder ({kind})", fmt_seconds(pull), "dvc pull",
                        fmt_seconds(d_pull), d_pull / pull, 5,
                    )  # fmt: skip
                    if kind == "folder":
                        report(
                            f"checkout of {n} unchanged files", fmt_seconds(checkout), "dvc checkout",
                            fmt_seconds(d_checkout), d_checkout / checkout, 5,
                        )  # fmt: skip
                big_file(work, args.big_mib, remote, args.repeats, args.cold)
        finally:
            os.environ.clear()
            os.environ.update(env_before)
            if moto is not None:
                moto.stop()


if __name__ == "__main__":
    main()
