"""Hashing a big file ahead of the CLI's start-up gives exactly the normal result."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import datatrail
from datatrail.cli import prefetch
from datatrail.hashing import LayeredCache, hash_path, stat_key
from datatrail.statcache import SqliteStatCache
from datatrail.store.sql import prepared
from tests.conftest import write


def big_file(path: Path) -> str:
    with path.open("wb") as f:
        f.write(os.urandom(1 << 20))
        f.truncate(prefetch.MIN_SIZE + 12345)
    old = 1_600_000_000
    os.utime(path, (old, old))  # old enough for the stat cache to vouch for it
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("argv", "started"),
    [
        (["add", "BIG"], True),
        (["--store", "sqlite:///x.db", "add", "--name", "n", "-t", "prod", "--no-cache", "BIG"], True),
        (["add", "SMALL"], False),
        (["ls", "BIG"], False),
        (["add"], False),
        (["add", "missing.bin"], False),
        (["--store"], False),
    ],
)
def test_only_plain_adds_of_big_files_are_prefetched(tmp_path: Path, argv: list[str], started: bool) -> None:
    big = tmp_path / "big.bin"
    digest = big_file(big)
    (tmp_path / "small.bin").write_bytes(b"x")
    args = [a.replace("BIG", str(big)).replace("SMALL", str(tmp_path / "small.bin")) for a in argv]
    prefetch.start_from_argv(args)
    ahead = prefetch.take(big)
    assert (ahead is not None) is started
    if ahead is not None:
        assert ahead.lookup([stat_key(big.stat())]) == {stat_key(big.stat()): digest}
        assert prefetch.take(big) is None  # handed out once


def test_prefetched_digest_is_written_through_to_the_stat_cache(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    digest = big_file(big)
    prefetch.start_from_argv(["add", str(big)])
    ahead = prefetch.take(big)
    assert ahead is not None
    cache = SqliteStatCache(tmp_path / "stat.db")
    result = hash_path(big, cache=LayeredCache(ahead, cache))
    assert result.digest.hex == digest and result.bytes_read == 0
    assert cache.lookup([stat_key(big.stat())]) == {stat_key(big.stat()): digest}
    cache.close()


def test_a_file_changed_after_prefetch_is_hashed_again(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big_file(big)
    prefetch.start_from_argv(["add", str(big)])
    ahead = prefetch.take(big)
    assert ahead is not None
    with big.open("r+b") as f:
        f.write(b"changed")
    os.utime(big, (1_600_000_100, 1_600_000_100))
    result = hash_path(big, cache=LayeredCache(ahead, None))
    assert result.digest.hex == hashlib.sha256(big.read_bytes()).hexdigest()
    assert result.bytes_read == big.stat().st_size


def test_cli_add_of_a_big_file(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    digest = big_file(big)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    cli = [sys.executable, "-m", "datatrail"]
    subprocess.run([*cli, "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    out = subprocess.run([*cli, "add", "big.bin"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout == f"big.bin@1 sha256:{digest[:12]} (new)\n"
    out = subprocess.run([*cli, "add", "big.bin"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout == f"big.bin@1 sha256:{digest[:12]} (unchanged)\n"


def sparse_file(path: Path, size: int) -> str:
    """A file of ``size`` zero bytes that takes no disk space (the hashing children map its holes)."""
    with path.open("wb") as f:
        f.truncate(size)
    return hashlib.sha256(bytes(size)).hexdigest()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="hashing children: where a process can fork")
def test_a_hashing_child_that_dies_leaves_its_file_to_the_normal_path(tmp_path: Path) -> None:
    """A child killed mid-file (as by the SIGBUS of a file truncated under its memory map; SIGKILL here,
    which no handler of the test runner reports) writes no digest; the parent, once every child has
    exited, hashes that file itself."""
    big = tmp_path / "big.bin"
    digest = sparse_file(big, 8 * prefetch.MIN_SIZE)  # 512 MiB: far more than a child hashes in a millisecond
    prefetch.start_from_argv(["add", str(big)])
    ahead = prefetch.take(big)
    assert ahead is not None and ahead._forked
    for pid in ahead._pids:
        os.kill(pid, signal.SIGKILL)
    assert ahead.lookup([stat_key(big.stat())]) == {}
    result = hash_path(big, cache=LayeredCache(ahead, None))
    assert (result.digest.hex, result.bytes_read) == (digest, big.stat().st_size)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="hashing children: where a process can fork")
@pytest.mark.parametrize("after", [0.0, 0.02], ids=["at-once", "mid-file"])
def test_a_file_truncated_while_a_child_maps_it_is_hashed_again(tmp_path: Path, after: float) -> None:
    """Truncated while its child hashes it: whether the child then maps no more (it reads the size
    before each window) or dies of the bus error of a page gone (most often, 20 ms in), the parent takes
    no digest for it and the add gives the digest of what the file now holds."""
    big = tmp_path / "big.bin"
    sparse_file(big, 8 * prefetch.MIN_SIZE)
    prefetch.start_from_argv(["add", str(big)])
    ahead = prefetch.take(big)
    assert ahead is not None and ahead._forked
    time.sleep(after)
    with big.open("r+b") as f:
        f.truncate(5 << 20)
        f.write(b"what is left")
    result = hash_path(big, cache=LayeredCache(ahead, None))
    assert (result.digest.hex, result.bytes_read) == (hashlib.sha256(big.read_bytes()).hexdigest(), 5 << 20)
    assert ahead.lookup([stat_key(big.stat())]) == {}


def test_a_folder_of_big_files_is_hashed_ahead_file_by_file(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    digests = {tree / "a.bin": big_file(tree / "a.bin"), tree / "sub" / "b.bin": big_file(tree / "sub" / "b.bin")}
    (tree / "small.txt").write_text("small files are left to the normal path")
    prefetch.start_from_argv(["add", "--no-cache", str(tree)])
    ahead = prefetch.take(tree)
    assert ahead is not None
    small = stat_key((tree / "small.txt").stat())
    keys = {stat_key(p.stat()): d for p, d in digests.items()}
    assert ahead.lookup([*keys, small]) == keys
    # The folder's digest is the one the normal path gives, without reading a big file again.
    result = hash_path(tree, cache=LayeredCache(ahead, None))
    assert result.digest == hash_path(tree).digest
    assert result.bytes_read == (tree / "small.txt").stat().st_size


def test_a_folder_of_many_files_is_left_to_the_normal_path(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    big_file(tree / "a.bin")
    for i in range(prefetch.MAX_ENTRIES):
        (tree / f"{i}.txt").write_text(str(i))
    prefetch.start_from_argv(["add", str(tree)])
    assert prefetch.take(tree) is None


def test_cli_add_of_a_folder_of_big_files(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    big_file(tree / "a.bin")
    big_file(tree / "b.bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    cli = [sys.executable, "-m", "datatrail"]
    subprocess.run([*cli, "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    out = subprocess.run([*cli, "add", "tree"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout == f"tree@1 {hash_path(tree).digest.short} (new)\n"
    out = subprocess.run([*cli, "add", "tree"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout == f"tree@1 {hash_path(tree).digest.short} (unchanged)\n"


# ---------------------------------------------------------------- the store, warmed up while a big file hashes

INTERRUPTED = "error: interrupted; nothing half-written was kept\n"


def _cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}


def _state(folder: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """Every version and every audit entry (sequence, hash) of the store in ``folder``."""
    with datatrail.connect(f"sqlite:///{folder / '.datatrail' / 'trail.db'}") as trail:
        store = trail.recorder.store  # the store's own reads: the Trail's would add audit entries
        versions = [str(v.ref) for d in store.list_datasets() for v in store.list_versions(d.namespace, d.name)]
        return versions, [(e.seq, e.hash) for e in store.audit_log(10_000)]


def test_store_prepared_for_a_write_changes_nothing(trail: datatrail.Trail, workdir: Path) -> None:
    """`add` of a big file readies the store (driver, schema check, the write's statements compiled)
    while the file hashes: nothing is written by it, and every prepared statement of a SQL store is compiled."""
    write(workdir / "a.csv", "a\n1\n")
    trail.add(workdir / "a.csv", name="a")
    store = trail.recorder.store  # the store's own reads: the Trail's would add audit entries
    before = ([str(v.ref) for v in store.list_versions("default", "a")], store.audit_log(100))
    store.prepare()
    assert ([str(v.ref) for v in store.list_versions("default", "a")], store.audit_log(100)) == before
    if trail.location.uri.startswith(("sqlite:", "postgresql:")):
        dialect = "sqlite" if trail.location.uri.startswith("sqlite:") else "postgresql"
        assert [p.statement for p in prepared._EVERY if dialect not in p._compiled] == []
    write(workdir / "a.csv", "a\n2\n")
    assert trail.add(workdir / "a.csv", name="a").number == 2


def test_an_error_while_the_store_warms_up_is_the_plain_add_s(tmp_path: Path) -> None:
    """Opening the full store fails (a bad $DATATRAIL_SQLITE_SYNC) while a big file hashes: the same
    one line and exit status as for a small file, which opens it after hashing, and nothing written."""
    big_file(tmp_path / "big.bin")
    (tmp_path / "small.bin").write_bytes(b"x")
    cli = [sys.executable, "-m", "datatrail"]
    subprocess.run([*cli, "init"], cwd=tmp_path, env=_cli_env(), check=True, capture_output=True)
    before = _state(tmp_path)
    env = {**_cli_env(), "DATATRAIL_SQLITE_SYNC": "sometimes"}
    runs = [
        subprocess.run([*cli, "add", name], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        for name in ("big.bin", "small.bin")
    ]
    assert [(p.returncode, p.stdout, p.stderr) for p in runs] == [
        (2, "", "error: invalid DATATRAIL_SQLITE_SYNC='SOMETIMES': use NORMAL (the default), FULL or EXTRA\n")
    ] * 2
    assert _state(tmp_path) == before


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (the big file while it is hashed)."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fds):
        try:
            if os.readlink(fds / fd) == str(path):
                return True
        except FileNotFoundError:
            continue
    return False


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (the CLI's hashing children)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (neither gone nor a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _hashing(pid: int, path: Path) -> bool:
    """Whether ``path`` is open in process ``pid`` or in one of its children (where the CLI hashes it)."""
    for proc in [pid, *_children(pid)]:
        try:
            if _has_open(proc, path):
                return True
        except FileNotFoundError:  # a child that has just exited
            continue
    return False


def _opened_for_writing(pid: int, database: Path) -> bool:
    """Whether process ``pid`` has ``database`` open read-write: the full store is open (cli add's warm-up)."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fds):
        try:
            if os.readlink(fds / fd) == str(database):
                flags = (fds.parent / "fdinfo" / fd).read_text().split("flags:")[1].split()[0]
                if int(flags, 8) & os.O_ACCMODE == os.O_RDWR:
                    return True
        except (FileNotFoundError, IndexError):
            continue
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: Linux only")
@pytest.mark.parametrize("group", [False, True], ids=["to-the-cli", "to-its-process-group"])
def test_ctrl_c_while_a_big_file_hashes_and_the_store_is_open_writes_nothing(tmp_path: Path, group: bool) -> None:
    """Ctrl-C once the store is ready for the write and the big file still hashes (open, in
    /proc/PID/fd of a hashing child): exit 130, the one line, the store as it was, the children gone;
    the next add works. A terminal's Ctrl-C reaches the whole process group, the children too."""
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GiB to hash, nothing on disk
    cli = [sys.executable, "-m", "datatrail"]
    subprocess.run([*cli, "init"], cwd=tmp_path, env=_cli_env(), check=True, capture_output=True)
    (tmp_path / "small.bin").write_bytes(b"x")
    subprocess.run([*cli, "add", "small.bin"], cwd=tmp_path, env=_cli_env(), check=True, capture_output=True)
    before = _state(tmp_path)
    database = tmp_path / ".datatrail" / "trail.db"
    for _attempt in range(5):
        # As from a shell's foreground, whatever this test process does with SIGINT.
        ours = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            proc = subprocess.Popen(
                [*cli, "add", "big.bin", "--no-cache"],
                cwd=tmp_path,
                env=_cli_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=group,
            )
        finally:
            signal.signal(signal.SIGINT, ours)
        children: list[int] = []
        try:
            caught = False
            while proc.poll() is None and not caught:
                try:
                    hashing = _hashing(proc.pid, big)
                    caught = hashing and _opened_for_writing(proc.pid, database)
                except (FileNotFoundError, ProcessLookupError):
                    break
                if caught:
                    children = _children(proc.pid)
                    if group:
                        os.killpg(proc.pid, signal.SIGINT)
                    else:
                        proc.send_signal(signal.SIGINT)
                else:
                    time.sleep(0.001)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if caught:
            assert (proc.returncode, out, err) == (130, "", INTERRUPTED)
            # Its hashing children stop too, silently: at the signal, or at their next chunk once
            # their parent has gone when only the parent got it.
            assert children
            deadline = time.monotonic() + 10
            while any(_running(c) for c in children) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not any(_running(c) for c in children)
            break
        assert proc.returncode == 0, err  # it finished before the store was open: try again
        before = _state(tmp_path)
    else:
        pytest.fail("never caught the add with its store open while the file hashed")
    assert _state(tmp_path) == before
    (tmp_path / "small.bin").write_bytes(b"y")
    out = subprocess.run([*cli, "add", "small.bin"], cwd=tmp_path, env=_cli_env(), capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, f"small.bin@2 {hash_path(tmp_path / 'small.bin').digest.short} (new)\n")


# ---------------------------------------------------------------- the exit of an add


@pytest.mark.parametrize("args", [["add", "big.bin", "--json"], ["add", "small.bin"], ["add", "missing.bin"]])
def test_the_quick_exit_of_an_add_leaves_what_the_usual_exit_leaves(tmp_path: Path, args: list[str]) -> None:
    """`datatrail add` (``cli.script``, the executable) exits without the interpreter's teardown: the same
    status, the whole output through a pipe, and the same files in .datatrail/ as ``cli.main`` with the
    usual exit (``python -m datatrail``)."""
    big_file(tmp_path / "big.bin")
    (tmp_path / "small.bin").write_bytes(b"x")
    run = "import sys\nfrom datatrail.cli import {0}\nsys.argv[0] = 'datatrail'\n{0}()\n"
    outcomes = []
    for cli in ([sys.executable, "-c", run.format("script")], [sys.executable, "-c", run.format("main")]):
        for name in os.listdir(tmp_path):
            if name.startswith("."):
                shutil.rmtree(tmp_path / name)
        subprocess.run([*cli, "init"], cwd=tmp_path, env=_cli_env(), check=True, capture_output=True)
        p = subprocess.run([*cli, *args], cwd=tmp_path, env=_cli_env(), capture_output=True, text=True, check=False)
        files = sorted(os.listdir(tmp_path / ".datatrail"))
        outcomes.append((p.returncode, p.stdout.replace(str(tmp_path), "ROOT"), p.stderr, files, _state(tmp_path)[0]))
    quick, usual_exit = outcomes
    for field in (0, 2, 3, 4):
        assert quick[field] == usual_exit[field]
    # --json carries the time of the version: all but that line is the same
    assert [x for x in quick[1].splitlines() if "_at" not in x] == [
        x for x in usual_exit[1].splitlines() if "_at" not in x
    ]
    assert quick[1].endswith("}\n" if "--json" in args else ")\n" if quick[0] == 0 else "")


@pytest.mark.parametrize(("file", "raised"), [("big.bin", True), ("small.bin", False)])
def test_an_add_of_big_files_collects_less_often_meanwhile(tmp_path: Path, file: str, raised: bool) -> None:
    """While big files hash ahead, the CLI's cyclic collector runs with higher thresholds (its imports'
    objects live to the exit); an add of a small file keeps the defaults, and a caller of ``main()`` in
    its own process gets its thresholds back."""
    digest = big_file(tmp_path / "big.bin")
    (tmp_path / "small.bin").write_bytes(b"x")
    cli = [sys.executable, "-m", "datatrail"]
    subprocess.run([*cli, "init"], cwd=tmp_path, env=_cli_env(), check=True, capture_output=True)
    script = (
        "import gc, sys\n"
        "from datatrail.cli import main, prefetch\n"
        "seen = []\n"
        "take = prefetch.take\n"
        "prefetch.take = lambda path: seen.append(gc.get_threshold()) or take(path)\n"
        "before = gc.get_threshold()\n"
        f"sys.argv = ['datatrail', 'add', {file!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(seen == [before], gc.get_threshold() == before, file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=_cli_env(), check=True, capture_output=True, text=True
    )
    assert out.stderr.split() == [str(not raised), "True"]
    expect = digest if raised else hashlib.sha256(b"x").hexdigest()
    assert out.stdout == f"{file}@1 sha256:{expect[:12]} (new)\n"
