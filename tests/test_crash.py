"""An interrupted ``datatrail add`` leaves either no version or a complete one.

A directory of 3,000 files is added by a real ``datatrail`` process that is
killed (SIGKILL) at random moments, or interrupted (SIGINT, as Ctrl-C does)
while hashing and inside the write transaction. After each, the store must pass
``check_integrity()`` and every version row must come with its event, its audit
entry and its whole manifest, and the next ``add`` must work.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import datatrail
from datatrail.store.sql import tables as t
from datatrail.store.sql.store import SqlStore

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc: Linux only")

N_FILES = 3000
KILLS = {"sqlite": 10, "postgres": 5}
INTERRUPTED = "error: interrupted; nothing half-written was kept\n"

# Runs the CLI with AuditTables.append first sending a signal to the
# process: that is the last step inside the ingest transaction, after the
# version and all its files were inserted and before the commit.
SIGNAL_IN_TRANSACTION = """\
import os, signal, sys
from datatrail.store.sql.audit import AuditTables
original = AuditTables.append
signum = getattr(signal, sys.argv[1])
def append(self, *args, **kwargs):
    os.kill(os.getpid(), signum)
    return original(self, *args, **kwargs)
AuditTables.append = append
from datatrail.cli.app import main
sys.argv = ["datatrail", *sys.argv[2:]]
main()
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "big"
    rng = random.Random(1)
    for i in range(N_FILES):
        d = root / f"part-{i % 30:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file-{i:05d}.bin").write_bytes(rng.randbytes(512))
    return root


@pytest.fixture
def store(workdir: Path, store_uri: str | None) -> Iterator[str]:
    """The URI of a fresh store whose config is in ``workdir``."""
    trail = datatrail.init(workdir, store_uri)
    uri = trail.location.uri
    trail.close()
    yield uri


_change_counter = iter(range(1_000_000))


def change_one_file(tree: Path) -> None:
    """Give the tree new content, so that a completed add makes a new version."""
    n = next(_change_counter)
    (tree / "part-00" / "file-00000.bin").write_bytes(f"change {n} {time.time_ns()}".encode())


def add_command(tree: Path) -> list[str]:
    return [sys.executable, "-m", "datatrail.cli.app", "add", str(tree), "--name", "big", "--no-cache"]


def spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATATRAIL_URI"}
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_store(uri: str, name: str = "big", n_files: int = N_FILES) -> list[int]:
    """Assert the store is sound and every version complete; return the version numbers."""
    store = SqlStore(uri)
    try:
        assert store.check_integrity() == []
        with store.engine.connect() as conn:
            events = {r.id: r.payload for r in conn.execute(select(t.events.c.id, t.events.c.payload))}
            audit = conn.execute(select(t.audit.c.event_id, t.audit.c.action, t.audit.c.details)).all()
            # Every event has its audit entry and every audit entry its event.
            # (Entries without an event record reads and refusals, not writes.)
            assert sorted(a.event_id for a in audit if a.event_id is not None) == sorted(events)
            versions = conn.execute(
                select(t.versions.c.id, t.versions.c.number, t.versions.c.digest, t.versions.c.size)
                .select_from(t.versions)
                .join(t.datasets, t.datasets.c.id == t.versions.c.dataset_id)
                .where(t.datasets.c.name == name)
                .order_by(t.versions.c.number)
            ).all()
            numbers = [v.number for v in versions]
            assert numbers == list(range(1, len(numbers) + 1)), numbers  # no gaps
            for v in versions:
                files = conn.execute(
                    select(t.version_files.c.path, t.version_files.c.size, t.version_files.c.sha256)
                    .where(t.version_files.c.version_id == v.id)
                    .order_by(t.version_files.c.path)
                ).all()
                assert len(files) == n_files, (v.number, len(files))
                manifest = "".join(f"{f.path}\t{f.size}\t{f.sha256}\n" for f in files)
                assert f"sha256:{hashlib.sha256(manifest.encode()).hexdigest()}" == v.digest
                assert sum(f.size for f in files) == v.size
                # Its event (the one carrying its digest) and that event's audit entry.
                carrying = [eid for eid, payload in events.items() if v.digest in payload]
                assert carrying, f"version {v.number} has no event"
                assert any(
                    a.event_id in carrying and a.action == "dataset.add" and f"{name}@{v.number}" in a.details["new"]
                    for a in audit
                ), f"version {v.number} has no audit entry"
            stored = conn.execute(select(func.count()).select_from(t.version_files)).scalar_one()
            assert stored == n_files * len(versions)  # no orphaned manifest rows
            return numbers
    finally:
        store.close()


def wait_for_hashing(proc: subprocess.Popen[str]) -> bool:
    """Wait until the hashing threads run (more than one task in /proc); False if it exited first."""
    tasks = Path(f"/proc/{proc.pid}/task")
    while proc.poll() is None:
        try:
            if len(os.listdir(tasks)) > 1:
                return True
        except FileNotFoundError:
            return False
        time.sleep(0.0005)
    return False


def complete_add(tree: Path, cwd: Path, expected: int) -> tuple[float, float]:
    """Add the tree to completion; (seconds from start to hashing, seconds from hashing to exit)."""
    change_one_file(tree)
    started = time.monotonic()
    proc = spawn(add_command(tree), cwd)
    hashing = wait_for_hashing(proc)
    seen = time.monotonic()
    out, err = proc.communicate(timeout=60)
    ended = time.monotonic()
    assert proc.returncode == 0, err
    assert out.startswith(f"big@{expected} sha256:") and out.endswith(" (new)\n"), out
    return (seen - started, ended - seen) if hashing else (ended - started, 0.0)


def test_sigkill_at_random_moments(tree: Path, store: str, workdir: Path, store_uri: str | None) -> None:
    startup, work = complete_add(tree, workdir, 1)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    outcomes = []
    for i in range(KILLS["sqlite" if store_uri is None else "postgres"]):
        before = check_store(store)
        change_one_file(tree)
        proc = spawn(add_command(tree), workdir)
        if i % 3 == 0:
            # Any moment of the process's life...
            time.sleep(rng.uniform(0, 1.1) * (startup + work))
        else:
            # ...but mostly while it hashes and writes, where it matters.
            wait_for_hashing(proc)
            time.sleep(rng.uniform(0, 1.2) * work)
        proc.kill()
        proc.communicate(timeout=60)
        after = check_store(store)
        # Either nothing was written or exactly one whole version was.
        assert after in (before, [*before, len(before) + 1]), (seed, before, after)
        outcomes.append("killed" if after == before else "committed")
    # Killed inside the transaction, after the version's rows were written.
    before = check_store(store)
    change_one_file(tree)
    p = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_TRANSACTION, "SIGKILL", *add_command(tree)[3:]],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)
    assert check_store(store) == before
    # The store is still writable, and numbering continues without a gap.
    complete_add(tree, workdir, len(before) + 1)
    assert check_store(store) == list(range(1, len(before) + 2)), (seed, outcomes)


def test_sigint_while_hashing_and_inside_the_transaction(tree: Path, store: str, workdir: Path) -> None:
    complete_add(tree, workdir, 1)
    # Ctrl-C inside the write transaction: rolled back, exit 130, one line.
    change_one_file(tree)
    p = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_TRANSACTION, "SIGINT", *add_command(tree)[3:]],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (p.returncode, p.stdout, p.stderr) == (130, "", INTERRUPTED)
    assert check_store(store) == [1]

    # Ctrl-C while the hashing threads run (seen in /proc as more than one task).
    for _attempt in range(5):
        before = check_store(store)
        change_one_file(tree)
        proc = spawn(add_command(tree), workdir)
        hashing = wait_for_hashing(proc)
        if hashing:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        if hashing:
            assert (proc.returncode, err) == (130, INTERRUPTED)
            after = check_store(store)
            if after != before:  # only if this test was descheduled long enough for the add to commit
                assert after == [*before, len(before) + 1]
            else:
                assert out == ""
            break
        assert proc.returncode == 0, err  # it finished before we saw the threads; try again
    else:
        pytest.fail("never caught the add while hashing")


# ---------------------------------------------------------------- repeated kills, with the stat cache on

SMALL_FILES = 400
REPEATS = {"sqlite": 20, "postgres": 8}


def stat_cache_lies(tree: Path, cache_db: Path) -> tuple[int, list[str]]:
    """How many files the stat cache vouches for as they are now, and those it maps to other content."""
    if not cache_db.exists():
        return 0, []
    import sqlite3

    conn = sqlite3.connect(f"file:{cache_db}?mode=ro", uri=True)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'stat'").fetchone():
            return 0, []  # killed before its table was made
        rows = {(dev, ino): (size, mtime, sha) for dev, ino, size, mtime, sha in conn.execute("SELECT * FROM stat")}
    finally:
        conn.close()
    lies = []
    vouched = 0
    for path in tree.rglob("*.bin"):
        st = path.stat()
        entry = rows.get(((st.st_dev + 2**63) % 2**64 - 2**63, (st.st_ino + 2**63) % 2**64 - 2**63))
        if entry is None or entry[:2] != (st.st_size, st.st_mtime_ns):
            continue  # the cache does not vouch for the file as it is now
        vouched += 1
        if entry[2] != hashlib.sha256(path.read_bytes()).hexdigest():
            lies.append(str(path))
    return vouched, lies


@pytest.mark.slow
def test_sigkill_repeated_with_random_delays_and_files_changing(
    store: str, workdir: Path, store_uri: str | None
) -> None:
    """Many kills at random moments of `add` (stat cache on) while files change under it.

    After each: the store passes its integrity check, every version is whole
    with its event and audit entry, every add that printed its version (an
    acknowledged write) is in the store, and no stat-cache entry vouches for
    content other than what the file now holds.
    """
    tree = workdir / "small"
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    old = 1_600_000_000_000_000_000  # old mtimes: files hashed now may be cached
    for i in range(SMALL_FILES):
        p = tree / f"d{i % 8}" / f"f{i:04d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(256))
        os.utime(p, ns=(old, old + i))
    cmd = [sys.executable, "-m", "datatrail.cli.app", "add", str(tree), "--name", "small"]
    acknowledged: dict[int, str] = {}
    files = sorted(tree.rglob("*.bin"))
    for i in range(REPEATS["sqlite" if store_uri is None else "postgres"]):
        # New content for one file, with an old (cacheable) mtime never used before.
        changed = rng.choice(files)
        changed.write_bytes(rng.randbytes(256))
        os.utime(changed, ns=(old, old + 10_000 + 2 * i))
        proc = spawn(cmd, workdir)
        time.sleep(rng.uniform(0.0, 1.5))
        # Meanwhile another file changes in place, same size, to another old mtime.
        other = rng.choice(files)
        other.write_bytes(rng.randbytes(256))
        os.utime(other, ns=(old, old + 10_001 + 2 * i))
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        if proc.returncode == 0 and out:
            number = int(out.split()[0].rsplit("@", 1)[1])
            acknowledged[number] = out.split()[1]
        numbers = check_store(store, "small", SMALL_FILES)
        for number in acknowledged:
            assert number in numbers, (seed, number)  # acknowledged, so it must be there
        assert stat_cache_lies(tree, workdir / ".datatrail" / "statcache.db")[1] == [], seed
    # Whatever happened, the next add completes and `verify --no-cache` agrees with it.
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    verify = [sys.executable, "-m", "datatrail.cli.app", "verify", "small", "--no-cache"]
    v = subprocess.run(verify, cwd=workdir, capture_output=True, text=True, timeout=120, check=False)
    assert v.returncode == 0, (v.stdout, v.stderr)
    check_store(store, "small", SMALL_FILES)
    vouched, lies = stat_cache_lies(tree, workdir / ".datatrail" / "statcache.db")
    assert lies == [] and vouched == SMALL_FILES  # the check above looked at real entries
