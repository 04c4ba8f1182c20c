"""A push's big objects copied while the CLI starts (cli/prepush.py): used only as the push decides, never left half.

The copies are a guess made before the store is opened by the push: the push's
upload renames a copy into place only for an object it decided to send, and
whatever it did not take (a version it was not asked for, an error, Ctrl-C)
is removed, so the remote holds whole objects and no temporary file after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import datatrail
from datatrail.cli import prepush
from datatrail.content.objects import TEMP
from datatrail.content.packs import PACK_BELOW

MIB = 1 << 20


def _repo(root: Path, sizes: dict[str, int]) -> dict[str, bytes]:
    """``root`` with a store holding a version of each file (bytes kept) and a default folder remote ``remote``."""
    data = {name: os.urandom(size) for name, size in sizes.items()}
    with datatrail.init(root) as trail:
        for name, blob in data.items():
            (root / name).write_bytes(blob)
            trail.add(root / name, name=name.removesuffix(".bin"), store_content=True)
        trail.storage.add_remote("origin", os.fspath(root / "remote"), default=True)
    return data


def _remote_files(root: Path) -> tuple[dict[str, bytes], list[Path]]:
    """The remote's objects (digest prefix → bytes) and its temporary files."""
    objects = root / "remote" / "objects" / "sha256"
    files = [p for p in objects.rglob("*") if p.is_file()] if objects.is_dir() else []
    whole = {p.parent.name + p.name[:10]: p.read_bytes() for p in files if not p.name.startswith(TEMP)}
    return whole, [p for p in files if p.name.startswith(TEMP)]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATATRAIL_URI", raising=False)
    monkeypatch.setattr(prepush, "MIN_BYTES", 1)  # small objects here: the same path as for 1 GiB
    return tmp_path


def test_a_plain_push_renames_the_early_copies_into_place(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _repo(here, {"a.bin": 3 * MIB, "b.bin": 2 * MIB + 7, "small.bin": 1000})
    prepush.start_from_argv(["push"])
    started = prepush.take()
    assert started is not None and prepush.take() is None  # handed out once
    inodes: dict[str, int] = {}
    take = started.take

    def spy(dest: str) -> str | None:
        tmp = take(dest)
        if tmp is not None:
            inodes[dest] = os.stat(tmp).st_ino
        return tmp

    monkeypatch.setattr(started, "take", spy)
    started._thread.join(30)  # both copied before the push asks: else it copies what was not begun itself
    try:
        with datatrail.connect() as trail:
            report = trail.storage.push(started=started)
    finally:
        started.close()
    assert (report.objects, report.packs, report.located) == (3, 1, 3)
    whole, temps = _remote_files(here)
    assert sorted(whole.values()) == sorted(v for v in data.values() if len(v) >= PACK_BELOW)
    assert temps == []
    # Both big objects are the files copied early, renamed: the push copied neither again.
    assert len(inodes) == 2
    assert all(os.stat(dest).st_ino == ino for dest, ino in inodes.items())
    with datatrail.connect() as trail:
        assert trail.storage.push().objects == 0


def test_early_copies_the_push_does_not_send_are_removed(here: Path) -> None:
    data = _repo(here, {"a.bin": 3 * MIB, "b.bin": 2 * MIB})
    prepush.start_from_argv(["push"])  # copies both: a push of every version would send both
    started = prepush.take()
    assert started is not None
    try:
        with datatrail.connect() as trail:
            report = trail.storage.push(["a"], started=started)  # but this one sends a only
    finally:
        started.close()
    assert report.objects == 1
    whole, temps = _remote_files(here)
    assert list(whole.values()) == [data["a.bin"]]
    assert temps == []


def test_a_copy_cut_short_leaves_neither_an_object_nor_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepush, "BLOCK", 64 * 1024)  # many calls: close() lands between two
    source = tmp_path / "object"
    source.write_bytes(os.urandom(16 * MIB))
    dest = tmp_path / "remote" / "objects" / "sha256" / "ab" / ("cd" * 31)
    copies = prepush.EarlyCopies([(os.fspath(source), os.fspath(dest))])
    copies.close()  # as on Ctrl-C or an error: cancelled mid-copy, or finished and not taken
    assert not dest.exists()
    assert [p for p in (tmp_path / "remote").rglob("*") if p.is_file()] == []
    assert copies.take(os.fspath(dest)) is None  # the push then copies it itself


def test_an_object_asked_for_before_its_copy_began_is_left_to_the_push(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    copy = prepush.EarlyCopies._copy

    def held(self: prepush.EarlyCopies, source: str, tmp: str) -> bool:
        gate.wait(30)  # the first copy is still running when the push asks for the second object
        return copy(self, source, tmp)

    monkeypatch.setattr(prepush.EarlyCopies, "_copy", held)
    remote = tmp_path / "remote" / "objects" / "sha256" / "ab"
    jobs = []
    for n in (1, 2):
        source = tmp_path / f"object{n}"
        source.write_bytes(os.urandom(n * MIB))
        jobs.append((os.fspath(source), os.fspath(remote / (str(n) * 62))))
    copies = prepush.EarlyCopies(jobs)
    assert copies.take(jobs[1][1]) is None  # not begun: the push copies it itself, at once
    gate.set()
    first = copies.take(jobs[0][1])
    assert first is not None and Path(first).read_bytes() == Path(jobs[0][0]).read_bytes()
    copies.close()
    assert sorted(p for p in remote.iterdir()) == [Path(first)]  # the one taken (to be renamed), nothing else


def test_ctrl_c_during_an_early_copy_leaves_no_half_written_object(tmp_path: Path) -> None:
    """The executable, interrupted while the thread copies (before or while the push decides)."""
    data = _repo(tmp_path, {"big.bin": 256 * MIB})
    env = {k: v for k, v in os.environ.items() if k != "DATATRAIL_URI"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    argv = [sys.executable, "-m", "datatrail", "push"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    seen = False
    while proc.poll() is None and time.monotonic() < deadline and not seen:
        seen = bool(_remote_files(tmp_path)[1])  # the early copy has begun
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert seen, "no early copy was seen on the remote"
    whole, temps = _remote_files(tmp_path)
    assert temps == [], err
    assert list(whole.values()) in ([], [data["big.bin"]])  # absent, or whole (renamed just before the signal)
    if proc.returncode == 130:
        assert b"interrupted" in err
    else:  # the push had finished first
        assert proc.returncode == 0, err
        assert whole


@pytest.mark.parametrize(
    ("argv", "remote"),
    [
        (["push"], None),
        (["push", "--json"], None),
        (["push", "-r", "backup"], "backup"),
        (["push", "--remote", "backup", "--json"], "backup"),
        (["push", "--remote=backup"], "backup"),
    ],
)
def test_the_plain_push_lines_are_guessed(argv: list[str], remote: str | None) -> None:
    assert prepush._remote_option(argv) == remote


@pytest.mark.parametrize(
    "argv",
    [
        ["ls"],
        ["push", "raw"],  # refs: the push decides alone
        ["push", "--help"],
        ["push", "-r"],
        ["push", "-r", "a", "--remote", "b"],
        ["push", "--remote="],
        ["push", "--store", "x"],
        ["push", "-r", "-x"],
    ],
)
def test_other_command_lines_are_left_to_the_push(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        prepush._remote_option(argv)


def test_no_guess_for_another_store_a_url_remote_or_too_few_bytes(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _repo(here, {"a.bin": 2 * MIB})
    config = here / ".datatrail" / "config.toml"
    plain = config.read_text()
    monkeypatch.setenv("DATATRAIL_URI", f"sqlite:///{here / '.datatrail' / 'trail.db'}")
    assert prepush._jobs(None) != [] and _started_for(["push"]) is None
    monkeypatch.delenv("DATATRAIL_URI")
    config.write_text(plain.replace('url = "', 'url = "file://'))
    assert _started_for(["push"]) is None
    config.write_text(plain)
    assert _started_for(["push", "-r", "nowhere"]) is None
    monkeypatch.setattr(prepush, "MIN_BYTES", 4 * MIB)
    assert _started_for(["push"]) is None
    monkeypatch.setattr(prepush, "MIN_BYTES", 1)
    started = _started_for(["push"])
    assert started is not None
    started.close()
    assert _remote_files(here) == ({}, [])


def _started_for(argv: list[str]) -> prepush.EarlyCopies | None:
    prepush.start_from_argv(argv)
    return prepush.take()


def test_the_names_it_shares_with_the_content_engine_agree() -> None:
    assert (prepush.TEMP, prepush.MIN_OBJECT) == (TEMP, PACK_BELOW)


def _filled(tables: prepush.Tables | None) -> prepush.Tables | None:
    """Without the empty tables (tomllib makes the parent of ``[a.b]`` one, the line reader does not)."""
    return None if tables is None else {k: v for k, v in tables.items() if v}


def _tables(data: dict[str, object], prefix: tuple[str, ...] = ()) -> prepush.Tables:
    """tomllib's answer in the form of :func:`prepush._read_config`'s."""
    out: prepush.Tables = {prefix: {}}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_tables(value, (*prefix, key)))
        else:
            assert isinstance(value, str | bool)
            out[prefix][key] = value
    return out


def test_the_config_datatrail_writes_is_read_as_tomllib_reads_it(tmp_path: Path) -> None:
    import tomllib

    from datatrail.content.settings import add_remote, set_store_content

    with datatrail.init(tmp_path):
        pass
    config_dir = tmp_path / ".datatrail"
    path = os.fspath(config_dir / "config.toml")
    for name, url, default in [
        ("origin", os.fspath(tmp_path / "a folder"), True),
        ("back.up", "s3://bucket/dt", False),
        ("x-y_z", os.fspath(tmp_path / "ünï cödé"), False),
        ("weird", os.fspath(tmp_path / "quote'and#hash"), True),
    ]:
        add_remote(config_dir, name, url, default=default)
        set_store_content(config_dir, default)
        with open(path, "rb") as f:
            assert _filled(prepush._read_config(path)) == _filled(_tables(tomllib.load(f)))


@pytest.mark.parametrize(
    "text",
    [
        '[store]\nuri = "sqlite:///x.db"\n',
        '[content]\nremote = "o" # the default\n[remotes."o"]\nurl = \'/srv/dt\'\n',
        '[remotes . "a.b" ]\nurl = "/srv"\n',
        "[a]\nb = true\n\n# comment\n[c] # c\nd = false\n",
    ],
)
def test_plain_configs_are_read_as_tomllib_reads_them(tmp_path: Path, text: str) -> None:
    import tomllib

    (tmp_path / "c.toml").write_text(text)
    assert _filled(prepush._read_config(os.fspath(tmp_path / "c.toml"))) == _filled(_tables(tomllib.loads(text)))


@pytest.mark.parametrize(
    "text",
    [
        '[remotes]\norigin.url = "/srv"\n',  # a dotted key
        '[remotes."a\\.b"]\nurl = "/srv"\n',  # an escape in a name
        '[r]\nurl = "C:\\\\data"\n',  # an escape
        '[r]\nurl = """/srv"""\n',
        "[r]\nn = 3\n",
        "[[r]]\nurl = '/srv'\n",
        '[r]\nurl = "/srv"\nurl = "/other"\n',
        '[r]\nurl = "/srv" trailing\n',
        "[r]\nurl = { a = 1 }\n",
    ],
)
def test_anything_else_in_a_config_is_left_to_the_push(tmp_path: Path, text: str) -> None:
    (tmp_path / "c.toml").write_text(text)
    assert prepush._read_config(os.fspath(tmp_path / "c.toml")) is None
