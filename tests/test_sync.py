"""Remotes: push, fetch and pull through pack files, on a local folder and a real S3-compatible server (moto)."""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import s3fs  # type: ignore[import-untyped]
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.errors import Conflict, IntegrityError, InvalidInput, NotFound, StoreUnavailable
from tests import s3server
from tests.conftest import write
from tests.pgserver import free_port

runner = CliRunner()
SMALL_FILES = 300


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.S3Server]:
    server = s3server.start(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    s3_server.point_env_at(monkeypatch)
    s3fs.S3FileSystem.clear_instance_cache()
    name = f"dt-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_data(workdir: Path) -> Path:
    data = workdir / "data"
    for i in range(SMALL_FILES):
        write(data / f"part-{i // 100}" / f"f{i:04d}.txt", f"row {i}\n" * 4000)  # ~36 KiB: 300 make 3 packs
    write(data / "big.bin", os.urandom(2 * 1024 * 1024 + 7))
    return data


def clone(workdir: Path, tmp_path: Path) -> Path:
    """Another machine: the same metadata (the store and the config), an empty cache and workspace."""
    other = tmp_path / "clone"
    (other / ".datatrail").mkdir(parents=True)
    for name in ("config.toml", "trail.db", "trail.db-wal"):
        if (workdir / ".datatrail" / name).exists():
            shutil.copy(workdir / ".datatrail" / name, other / ".datatrail" / name)
    return other


@pytest.fixture(params=["folder", "s3"])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "folder":
        return os.fspath(tmp_path / "remote")
    return f"s3://{request.getfixturevalue('bucket')}/datatrail"


def test_push_then_pull_into_an_empty_clone(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, remote_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data(workdir)
    original = tree(data)
    v = sqlite_trail.add(data, store_content=True)
    sqlite_trail.storage.add_remote("origin", remote_url, default=True)
    pushed = sqlite_trail.push()
    assert pushed.objects == SMALL_FILES + 1
    # 300 small files: 3 packs (2 requests each), the big file alone, and the listings.
    assert pushed.packs == 3 and pushed.requests <= 2 * pushed.packs + 1 + 3
    again = sqlite_trail.push()
    assert (again.objects, again.already) == (0, SMALL_FILES + 1)

    other = clone(workdir, tmp_path)
    monkeypatch.chdir(other)
    with datatrail.connect() as there:
        report = there.pull()
        assert report.objects == SMALL_FILES + 1
        assert tree(other / "data") == original
        assert there.checkout(v.ref).summary() == f"{SMALL_FILES + 1} unchanged"
        # A version checked out elsewhere with an empty cache: fetched transparently.
        shutil.rmtree(other / ".datatrail" / "objects")
        there.checkout(v.ref, other / "copy")
        assert tree(other / "copy") == original


def test_only_missing_objects_travel_and_dataframes_too(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path
) -> None:
    import pandas as pd

    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"))
    path = write(workdir / "a.txt", "one")
    sqlite_trail.add(path, store_content=True)
    assert sqlite_trail.push().objects == 1
    write(path, "two")
    sqlite_trail.add(path, store_content=True)
    sqlite_trail.add(pd.DataFrame({"x": [1, 2]}), name="frame")
    assert sqlite_trail.push().objects == 2
    other = clone(workdir, tmp_path)
    os.chdir(other)
    with datatrail.connect() as there:
        assert there.fetch(["frame@1"]).objects == 1
        assert there.read_pandas("frame@1")["x"].tolist() == [1, 2]


def test_missing_everywhere_and_fallback_to_another_remote(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path
) -> None:
    path = write(workdir / "a.txt", "payload")
    v = sqlite_trail.add(path, store_content=True)
    sqlite_trail.storage.add_remote("first", os.fspath(tmp_path / "r1"), default=True)
    sqlite_trail.storage.add_remote("second", os.fspath(tmp_path / "r2"))
    sqlite_trail.push(remote="second")
    shutil.rmtree(workdir / ".datatrail" / "objects")
    sqlite_trail.checkout(v, workdir / "out.txt")  # not on the default remote: found on the other one
    assert (workdir / "out.txt").read_text() == "payload"
    shutil.rmtree(workdir / ".datatrail" / "objects")
    shutil.rmtree(tmp_path / "r2")
    with pytest.raises(NotFound, match=r"on no remote \(checked: first, second\)"):
        sqlite_trail.checkout(v, workdir / "again.txt")
    assert not (workdir / "again.txt").exists()


def test_corrupt_pack_on_the_remote_is_refused(sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    v = sqlite_trail.add(write(workdir / "a.txt", "payload"), store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"))
    sqlite_trail.push()
    (pack,) = (tmp_path / "remote" / "packs").glob("*.pack")
    pack.write_bytes(b"PAYLOAD")
    shutil.rmtree(workdir / ".datatrail" / "objects")
    write(workdir / "a.txt", "local")
    with pytest.raises(IntegrityError, match="corrupt"):
        sqlite_trail.checkout(v, force=True)
    assert (workdir / "a.txt").read_text() == "local"
    assert list(sqlite_trail.storage.objects) == []


def test_a_push_cut_short_is_resumed(sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    v = sqlite_trail.add(make_data(workdir), store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"))
    sqlite_trail.push()
    # A push cut short before a pack's index was written: that pack does not count.
    idx = sorted((tmp_path / "remote" / "packs").glob("*.idx"))[0]
    idx.unlink()
    shutil.rmtree(workdir / ".datatrail" / "remotes")
    resumed = sqlite_trail.push()
    assert 0 < resumed.objects < SMALL_FILES
    shutil.rmtree(workdir / ".datatrail" / "objects")
    assert sqlite_trail.fetch([v.ref]).objects == SMALL_FILES + 1


def test_credentials_never_enter_the_config(sqlite_trail: datatrail.Trail) -> None:
    with pytest.raises(InvalidInput, match="holds credentials"):
        sqlite_trail.storage.add_remote("origin", "s3://AKIAEXAMPLE:s3cretkey@bucket/prefix")
    config = (sqlite_trail.location.config_dir / "config.toml").read_text()  # type: ignore[operator]
    assert "s3cret" not in config


def test_an_unreachable_remote_is_one_line(
    sqlite_trail: datatrail.Trail, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("DATATRAIL_REMOTE_TIMEOUT", "2")
    s3fs.S3FileSystem.clear_instance_cache()
    sqlite_trail.add(write(workdir / "a.txt", "x"), store_content=True)
    sqlite_trail.storage.add_remote("origin", "s3://nowhere/prefix")
    with pytest.raises(StoreUnavailable, match="did not answer"):
        sqlite_trail.push()


def test_gc_remote_removes_unreachable_packs(sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    path = workdir / "a.txt"
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"))
    for i in range(3):
        write(path, f"version {i}")
        sqlite_trail.add(path, store_content=True)
        sqlite_trail.push()
    assert len(list((tmp_path / "remote" / "packs").glob("*.pack"))) == 3
    url = os.fspath(tmp_path / "remote")
    assert all(sqlite_trail.catalog.content_locations(f"a.txt@{n}") for n in (1, 2, 3))
    assert sqlite_trail.gc(keep_latest=1, remote=True, dry_run=True).forgotten_locations == 0
    assert all(sqlite_trail.catalog.content_locations(f"a.txt@{n}") for n in (1, 2, 3))  # a dry run changes nothing
    report = sqlite_trail.gc(keep_latest=1, remote=True)
    assert (report.objects, report.remote_packs, report.forgotten_locations) == (2, 2, 2)
    assert len(list((tmp_path / "remote" / "packs").glob("*.pack"))) == 1
    # The store no longer sends other clients to this remote for the collected versions.
    assert [sqlite_trail.catalog.content_locations(f"a.txt@{n}") for n in (1, 2)] == [[], []]
    assert [loc.url for loc in sqlite_trail.catalog.content_locations("a.txt@3")] == [url]
    assert sqlite_trail.audit_entries(action="content.forget")[0].details["forgotten"] == 2
    shutil.rmtree(workdir / ".datatrail" / "objects")
    sqlite_trail.checkout("a.txt@3", force=True)
    assert path.read_text() == "version 2"


def test_cli_remote_push_pull(workdir: Path, tmp_path: Path) -> None:
    def run(*args: str) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result

    run("init")
    write(workdir / "d/x.txt", "one")
    run("add", "d", "--store-content")
    run("remote", "add", "origin", os.fspath(tmp_path / "remote"), "--default")
    assert "* origin" in run("remote", "list").stdout
    assert "pushed 1 objects" in run("push").stdout
    shutil.rmtree(workdir / "d")
    shutil.rmtree(workdir / ".datatrail" / "objects")
    out = run("pull").stdout
    assert "pulled 1 objects" in out and (workdir / "d/x.txt").read_text() == "one"
    dup = runner.invoke(app, ["remote", "add", "origin", "/elsewhere"])
    assert dup.exit_code == 4 and dup.stderr.count("\n") == 1
    none = runner.invoke(app, ["remote", "remove", "nope"])
    assert none.exit_code == 3


def test_through_a_team_server_content_goes_client_to_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server keeps metadata only; each client pushes to and pulls from the remote itself."""
    from tests import httpserver

    remote = os.fspath(tmp_path / "remote")
    with httpserver.running(tmp_path / "server") as server:
        alice = tmp_path / "alice"
        alice.mkdir()
        monkeypatch.chdir(alice)
        with datatrail.init(alice, server.uri) as trail:
            original = tree(make_data(alice))
            v = trail.add(alice / "data", store_content=True)
            trail.storage.add_remote("origin", remote, default=True)
            assert trail.push().objects == SMALL_FILES + 1
        bob = tmp_path / "bob"
        bob.mkdir()
        monkeypatch.chdir(bob)
        with datatrail.init(bob, server.uri) as trail:
            trail.storage.add_remote("origin", remote, default=True)
            report = trail.pull([v.ref])
            assert report.checkouts[0].path == bob / "data"
            assert tree(bob / "data") == original
            assert not list((tmp_path / "server").rglob("objects"))  # no bytes on the server's side


def test_through_a_team_server_a_client_without_remotes_pulls_from_where_the_store_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote_url: str
) -> None:
    """Item 8: A pushes and the server records which remote holds the version (name and URL only); B, with
    nothing but the server's URL, asks it and fetches from the remote directly, with its own credentials."""
    import json

    from tests import httpserver

    with httpserver.running(tmp_path / "server") as server:
        alice = tmp_path / "alice"
        alice.mkdir()
        monkeypatch.chdir(alice)
        with datatrail.init(alice, server.uri) as trail:
            original = tree(make_data(alice))
            v = trail.add(alice / "data", store_content=True)
            single = trail.add(write(alice / "notes.txt", "exact bytes\n"), store_content=True)
            trail.storage.add_remote("origin", remote_url, default=True)
            pushed = trail.push()
            assert pushed.objects == SMALL_FILES + 2 and pushed.located == 2
        bob = tmp_path / "bob"
        bob.mkdir()
        monkeypatch.chdir(bob)
        with datatrail.init(bob, server.uri) as trail:
            assert trail.storage.remotes() == []
            located = runner.invoke(app, ["remote", "locate", v.ref, "--json"])
            assert located.exit_code == 0, located.output
            where = json.loads(located.stdout)["locations"]
            assert [(w["remote"], w["url"]) for w in where] == [("origin", remote_url)]
            text = runner.invoke(app, ["remote", "locate", v.ref])
            assert text.exit_code == 0 and f"origin  {remote_url}" in text.output
            report = trail.pull([v.ref])
            assert report.objects == SMALL_FILES + 1 and report.remote == "origin"
            assert tree(bob / "data") == original
            # checkout alone (no pull) of a version whose bytes are not in the cache: located the same way
            trail.checkout(single.ref, bob / "copy.txt")
            assert (bob / "copy.txt").read_bytes() == b"exact bytes\n"
        assert not list((tmp_path / "server").rglob("objects"))  # no bytes on the server's side


def test_a_version_no_remote_holds_is_one_line_without_remotes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import httpserver

    with httpserver.running(tmp_path / "server") as server:
        alice = tmp_path / "alice"
        alice.mkdir()
        monkeypatch.chdir(alice)
        with datatrail.init(alice, server.uri) as trail:
            v = trail.add(write(alice / "a.txt", "never pushed"), store_content=True)
        bob = tmp_path / "bob"
        bob.mkdir()
        monkeypatch.chdir(bob)
        with datatrail.init(bob, server.uri):
            result = runner.invoke(app, ["checkout", v.ref, os.fspath(bob / "a.txt")])
            assert result.exit_code != 0
            assert "no remote is configured and the store knows none" in result.output
            errors = [x for x in result.output.splitlines() if not x.startswith("datatrail: using the remote store")]
            assert len(errors) == 1  # one line (beside the note of which store is used)
            assert not (bob / "a.txt").exists()
            empty = runner.invoke(app, ["remote", "locate", v.ref])
            assert empty.exit_code == 0 and "no remote is known to hold" in empty.output


# ---------------------------------------------------------------- pull into an empty place: the tree written whole


def _last_pack(remote: Path) -> tuple[Path, list[Any]]:
    """The pack whose objects a pull writes last (packs cover ranges of digests, fetched in digest order)."""
    from datatrail.content.packs import parse_index

    packs = {p: parse_index(p.with_suffix(".idx").read_bytes()) for p in (remote / "packs").glob("*.pack")}
    return max(packs.items(), key=lambda item: max(e.digest for e in item[1]))


def _cache_is_sound(objects_dir: Path) -> int:
    """Every object in the cache (a file of its own or in a kept pack) hashes to its name, and no
    temporary file is left; their number."""
    from datatrail.content.objects import ObjectStore

    left = list(objects_dir.rglob(".tmp*"))
    assert not left, f"temporary files are left in the cache: {left}"
    store = ObjectStore(objects_dir)
    names = list(store)
    assert all(store.verify(h) for h in names)
    return len(names)


def test_a_corrupt_object_stops_a_pull_leaving_nothing_half_written_and_a_rerun_resumes(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data(workdir)
    original = tree(data)
    sqlite_trail.add(data, store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"), default=True)
    sqlite_trail.push()
    pack, entries = _last_pack(tmp_path / "remote")
    sound = pack.read_bytes()
    spoiled = entries[len(entries) // 2]  # an object in the middle: the pack's first half is kept before it
    broken = bytearray(sound)
    broken[spoiled.offset] ^= 0xFF
    pack.write_bytes(bytes(broken))

    other = clone(workdir, tmp_path)
    monkeypatch.chdir(other)
    result = runner.invoke(app, ["pull"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and f"object {spoiled.digest[:12]}" in line and "corrupt" in line
    # Nothing of the tree under its name, no hidden folder left, and the cache holds only sound objects.
    assert sorted(p.name for p in other.iterdir()) == [".datatrail"]
    kept = _cache_is_sound(other / ".datatrail" / "objects")
    assert 0 < kept < SMALL_FILES

    pack.write_bytes(sound)  # the remote repaired: the rerun fetches only what the cache lacks
    with datatrail.connect() as there:
        report = there.pull()
        assert report.objects == SMALL_FILES + 1 - kept
        assert report.already == kept
        (checkout,) = report.checkouts
        assert checkout.summary() == f"{SMALL_FILES + 1} added"
    assert tree(other / "data") == original
    assert _cache_is_sound(other / ".datatrail" / "objects") == SMALL_FILES + 1
    assert sorted(p.name for p in other.iterdir()) == [".datatrail", "data"]


def test_the_hidden_folder_of_a_killed_pull_is_removed_by_the_next(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from datatrail.content.restore import STAGE

    data = make_data(workdir)
    original = tree(data)
    sqlite_trail.add(data, store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"), default=True)
    sqlite_trail.push()
    other = clone(workdir, tmp_path)
    # A process that dies midway through writing a tree leaves its hidden folder (named by its pid).
    script = (
        "import os, pathlib; "
        f"stage = pathlib.Path({os.fspath(other)!r}) / f'.data{STAGE}{{os.getpid()}}-x-0' / 'part-0'; "
        "stage.mkdir(parents=True); (stage / 'f0000.txt').write_bytes(b'row 0')"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    (left,) = [p for p in other.iterdir() if p.name.startswith(f".data{STAGE}")]
    # One of a process still running (this one's parent) is not touched.
    alive = other / f".data{STAGE}{os.getppid()}-y-0"
    alive.mkdir()
    monkeypatch.chdir(other)
    with datatrail.connect() as there:
        there.pull()
    assert tree(other / "data") == original
    assert not left.exists() and alive.is_dir()


def test_pull_checks_out_as_before_where_the_place_is_not_empty(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data(workdir)
    original = tree(data)
    sqlite_trail.add(data, store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"), default=True)
    sqlite_trail.push()
    other = clone(workdir, tmp_path)
    write(other / "data" / "part-0" / "f0000.txt", "a local change")
    monkeypatch.chdir(other)
    with datatrail.connect() as there:
        with pytest.raises(Conflict, match="local changes"):
            there.pull()
        assert (other / "data" / "part-0" / "f0000.txt").read_text() == "a local change"
        report = there.pull(force=True)
        (checkout,) = report.checkouts
        assert checkout.count("modified") == 1 and checkout.count("added") == SMALL_FILES
    assert tree(other / "data") == original


def test_packs_a_pull_keeps_serve_checkouts_reads_and_gc(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data(workdir)
    original = tree(data)
    v = sqlite_trail.add(data, store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"), default=True)
    sqlite_trail.push()
    other = clone(workdir, tmp_path)
    monkeypatch.chdir(other)
    with datatrail.connect() as there:
        there.pull()
        objects = there.storage.objects
        kept = other / ".datatrail" / "objects" / "packs"
        assert len(list(kept.glob("*.pack"))) == len(list(kept.glob("*.idx"))) == 3  # the 3 packs, as they came
        assert len(list(objects)) == SMALL_FILES + 1 and not objects.missing(set(objects))
        # Read and checked out elsewhere from the packs, every byte verified.
        fs = there.open(v.ref)
        assert not isinstance(fs, io.IOBase)
        assert fs.cat_file("part-0/f0000.txt") == original["part-0/f0000.txt"]
        there.checkout(v.ref, other / "copy")
        assert tree(other / "copy") == original
        # gc (here: removing one object) takes the pack's other objects out before the pack goes.
        gone = min(h for h in objects.packed)
        pack = objects.packed[gone][0]
        siblings = {h for h, (p, _, _) in objects.packed.items() if p == pack and h != gone}
        assert objects.remove(gone) > 0
        assert not os.path.exists(pack) and objects.missing(siblings | {gone}) == {gone}
        assert all(objects.verify(h) for h in siblings)
        # A corrupt packed object: the pack is removed and a checkout fetches its objects again.
        h = min(objects.packed)
        path, offset, _ = objects.packed[h]
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(b"\0")
        shutil.rmtree(other / "copy")
        for loose in (other / ".datatrail" / "objects" / "sha256").rglob("*"):
            if loose.is_file() and loose.parent.name + loose.name == h:
                loose.unlink()
        with pytest.raises(IntegrityError, match="was corrupt"):
            there.checkout(v.ref, other / "copy")
        assert not os.path.exists(path)  # each file written so far is whole and right (apply: one at a time)
        there.checkout(v.ref, other / "copy")
        assert tree(other / "copy") == original
