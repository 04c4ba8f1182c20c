"""Start copying a push's big objects to a folder remote while the CLI is still starting up.

A warm ``datatrail push`` of one big file to a folder is its start-up (imports,
opening the store, deciding what to send: ~70 ms of CPU) followed by the kernel
copy ``cp`` makes (docs/benchmarks.md, "Round eight"). So for a plain ``datatrail
push [--remote NAME] [--json]`` in a repository whose store is its own
``.datatrail/trail.db`` and whose remote is a local folder, the big objects the
store's versions name, that the cache holds and the remote lacks are copied
first, in a thread, each into a temporary name beside its place on the remote
(:data:`~datatrail.content.objects.TEMP`), while the main thread imports and
decides what to send as usual. This is only a guess made early: the push's
upload takes a copy (:meth:`EarlyCopies.take`) only for an object it decided to
send itself, and renames it into place; every copy not taken, cut short or
failed is removed (:meth:`EarlyCopies.close`, also at exit) and the upload
copies the object itself. So the remote never holds a half-written object, nor
one the push did not decide to send. The module imports only the standard
library's small parts (no ``datatrail.content``: its imports would come before
the first byte copied).
"""

from __future__ import annotations

import os
import sqlite3
import threading

TYPE_CHECKING = False  # not typing's: its import would come before the first byte copied
if TYPE_CHECKING:
    from collections.abc import Sequence

MIN_BYTES = 64 * 1024 * 1024  # less in all is not worth a thread: the start-up it hides is ~70 ms
MIN_OBJECT = 1024 * 1024  # content.packs.PACK_BELOW: smaller objects travel in packs, built by the push itself
MAX_OBJECTS = 64
MAX_FILES = 100_000  # a store naming more files than this is not scanned twice (the push reads them too)
# Per call: each return to Python is where a cancel (Ctrl-C, an error) is seen; 4 calls for 1 GiB cost the
# same CPU as one (docs/benchmarks.md, "Round eight: one big file, warm").
BLOCK = 256 * 1024 * 1024
TEMP = ".tmp-"  # content.objects.TEMP (not imported: see above); listings skip such names
_OPTIONS = {"--remote", "-r"}

# The big objects of every version (a single file's own digest, a folder's files'): what a push with no refs sends.
_BIG = (
    "SELECT substr(digest, 8), size FROM versions WHERE file_count IS NULL AND digest LIKE 'sha256:%' AND size >= ?"
    " UNION SELECT sha256, size FROM version_files WHERE size >= ? ORDER BY 1 LIMIT ?"
)


class EarlyCopies:
    """Copies of cache objects to a folder remote, one after another in a thread, each into a temporary name."""

    def __init__(self, jobs: Sequence[tuple[str, str]]) -> None:
        self._jobs = list(jobs)  # (source, destination)
        self._lock = threading.Lock()
        self._claimed: set[str] = set()  # destinations the push copies itself (asked before their copy began)
        self._started: set[str] = set()
        self._done: dict[str, threading.Event] = {dest: threading.Event() for _, dest in self._jobs}
        self._temps: dict[str, str] = {}  # destination -> its finished temporary copy, until taken
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name="datatrail-prepush", daemon=True)
        import atexit  # built in

        atexit.register(self.close)  # before the first byte: whatever path the command ends on, no copy is left
        self._thread.start()

    def _run(self) -> None:
        for source, dest in self._jobs:
            with self._lock:
                if self._cancelled:
                    break
                if dest in self._claimed:
                    continue
                self._started.add(dest)
            tmp = os.path.join(os.path.dirname(dest), f"{TEMP}{os.urandom(16).hex()}")
            try:
                if self._copy(source, tmp):
                    with self._lock:
                        self._temps[dest] = tmp
                        tmp = ""
            except OSError:  # the push copies it itself and reports what is wrong
                pass
            finally:
                if tmp:
                    _unlink(tmp)
                self._done[dest].set()

    def _copy(self, source: str, tmp: str) -> bool:
        """Copy ``source`` into the new file ``tmp`` with ``copy_file_range``; False when cancelled or short."""
        src = os.open(source, os.O_RDONLY)
        try:
            size = os.fstat(src).st_size
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                copied = 0
                while not self._cancelled and (got := os.copy_file_range(src, dst, BLOCK)):
                    copied += got
                return not self._cancelled and copied == size
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def take(self, dest: str) -> str | None:
        """The finished temporary copy for ``dest`` (the caller renames or removes it), once its copy ends;
        None when this was not copied early (or failed): the caller copies it itself."""
        with self._lock:
            if dest not in self._done:
                return None
            if dest not in self._started:
                self._claimed.add(dest)
                return None
        self._done[dest].wait()
        with self._lock:
            return self._temps.pop(dest, None)

    def close(self) -> None:
        """Stop copying (at the current block) and remove every copy not taken."""
        self._cancelled = True
        if self._thread.ident is not None:  # started (Ctrl-C may come between the registration and the start)
            self._thread.join()
        with self._lock:
            left, self._temps = list(self._temps.values()), {}
        for tmp in left:
            _unlink(tmp)


def _unlink(path: str) -> None:
    try:  # noqa: SIM105 - contextlib's import would come before the first byte copied
        os.unlink(path)
    except OSError:
        pass


_started: list[EarlyCopies] = []


def start_from_argv(argv: Sequence[str]) -> None:
    """Start copying for ``datatrail push [--remote NAME] [--json]`` when the guess is cheap and clear."""
    if os.environ.get("DATATRAIL_URI") or os.environ.get("_DATATRAIL_COMPLETE") or not hasattr(os, "copy_file_range"):
        return  # another store than .datatrail/'s, a shell completing a word, or no kernel copy (the push copies)
    try:
        remote = _remote_option(argv)
        jobs = _jobs(remote)
    except (OSError, ValueError, sqlite3.Error):
        return  # anything unclear: the push decides and copies on its own, and says what is wrong
    if jobs:
        _started.append(EarlyCopies(jobs))


def _remote_option(argv: Sequence[str]) -> str | None:
    """The remote ``push [--remote NAME] [--json]`` names; ValueError for any other command line."""
    if not argv or argv[0] != "push":
        raise ValueError(argv)
    remote: str | None = None
    rest = list(argv[1:])
    while rest:
        token = rest.pop(0)
        if token == "--json":
            continue
        name, equals, value = token.partition("=")
        if not equals and token in _OPTIONS and rest and not rest[0].startswith("-"):
            value = rest.pop(0)
        elif not (equals and name == "--remote" and value):
            raise ValueError(token)  # a ref, --store, --help…: left to the push
        if remote is not None or value.startswith("-"):
            raise ValueError(token)
        remote = value
    return remote


def _jobs(remote: str | None) -> list[tuple[str, str]]:
    """(cache object, its place on the remote) for the big objects to send; empty when the guess is unclear."""
    config_dir = _config_dir()
    if config_dir is None:
        return []
    config = _read_config(os.path.join(config_dir, "config.toml"))
    if config is None or "uri" in config.get(("store",), {}):
        return []  # a config this cannot read, or a store named in it: the push finds it
    url = _remote_url(config, remote)
    if url is None or "://" in url:
        return []  # a URL (S3, SSH, file://…): copied by its driver, not here
    root = os.path.realpath(os.path.join(os.path.dirname(config_dir), url))
    db = sqlite3.connect(f"file:{_quoted(os.path.join(config_dir, 'trail.db'))}?mode=ro", uri=True, timeout=0.2)
    try:
        files = db.execute("SELECT coalesce(sum(file_count), 0) FROM versions").fetchone()[0]
        if files > MAX_FILES:
            return []
        big = db.execute(_BIG, (MIN_OBJECT, MIN_OBJECT, MAX_OBJECTS + 1)).fetchall()
    finally:
        db.close()
    if len(big) > MAX_OBJECTS:
        return []
    cache = os.path.join(config_dir, "objects", "sha256")
    jobs: list[tuple[str, str]] = []
    total = 0
    for hexd, size in big:
        if len(hexd) != 64 or hexd.strip("0123456789abcdef"):
            return []
        source = os.path.join(cache, hexd[:2], hexd[2:])
        dest = f"{root}/objects/sha256/{hexd[:2]}/{hexd[2:]}"
        if os.path.exists(dest) or not _whole(source, size):
            continue  # on the remote already, or not (loose) in the cache: the push sees it too
        jobs.append((source, dest))
        total += size
    return jobs if total >= MIN_BYTES else []


Tables = dict[tuple[str, ...], dict[str, str | bool]]


def _read_config(path: str) -> Tables | None:
    """The tables of a config.toml as datatrail writes it (config.py, content/settings.py): ``[a."b"]`` headers,
    ``key = "text"``, ``key = 'text'``, ``key = true`` lines and comments; None for anything else.

    Not tomllib: its import (with ``re``) would come before the first byte copied. What this cannot read
    with certainty it leaves to the push, which reads the file with tomllib."""
    tables: Tables = {(): {}}
    table = tables[()]
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                header, _, comment = line[1:].partition("]")
                name = _dotted(header)
                if name is None or not name or name in tables or comment.strip()[:1] not in ("", "#"):
                    return None
                table = tables[name] = {}
                continue
            key, equals, text = line.partition("=")
            name = _dotted(key)
            value = _value(text.strip())
            if not equals or name is None or len(name) != 1 or value is None or name[0] in table:
                return None
            table[name[0]] = value
    return tables


def _dotted(text: str) -> tuple[str, ...] | None:
    """``a."b.c".d`` as its parts: bare keys and quoted ones without escapes; None for anything else."""
    parts = []
    rest = text.strip()
    while True:
        if rest[:1] in ('"', "'"):
            end = rest.find(rest[0], 1)
            if end < 0 or "\\" in rest[1:end]:
                return None
            parts.append(rest[1:end])
            rest = rest[end + 1 :].lstrip()
        else:
            bare = 0
            while bare < len(rest) and rest[bare].isascii() and (rest[bare].isalnum() or rest[bare] in "_-"):
                bare += 1
            if not bare:
                return None
            parts.append(rest[:bare])
            rest = rest[bare:].lstrip()
        if not rest:
            return tuple(parts)
        if rest[0] != ".":
            return None
        rest = rest[1:].lstrip()


def _value(text: str) -> str | bool | None:
    """A string without escapes or a boolean, before an optional comment; None for anything else."""
    if text[:1] in ('"', "'"):
        end = text.find(text[0], 1)
        rest = text[end + 1 :].strip() if end > 0 else "?"
        if end < 0 or "\\" in text[1:end] or rest[:1] not in ("", "#"):
            return None
        return text[1:end]
    word = text.partition("#")[0].strip()
    return {"true": True, "false": False}.get(word)


def _config_dir() -> str | None:
    """The nearest ``.datatrail/`` holding a config.toml, walking up from the working directory (as config.py)."""
    here = os.path.realpath(os.getcwd())
    while True:
        candidate = os.path.join(here, ".datatrail")
        if os.path.isfile(os.path.join(candidate, "config.toml")):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _remote_url(config: Tables, name: str | None) -> str | None:
    """The URL of the remote ``name`` (else the default, else the only one), as content/settings.py picks it."""
    remotes = {path[1]: table for path, table in config.items() if len(path) == 2 and path[0] == "remotes"}
    if any(path[:1] == ("remotes",) and len(path) != 2 for path in config):
        return None
    default = config.get(("content",), {}).get("remote")
    if name is None and isinstance(default, str):
        name = default
    if name is None and len(remotes) == 1:
        name = next(iter(remotes))
    url = remotes.get(name, {}).get("url") if name is not None else None
    return url if isinstance(url, str) and url.strip() else None


def _whole(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


def _quoted(path: str) -> str:
    """``path`` in a ``file:`` URI (SQLite's own rules: ``?``, ``#`` and ``%`` escaped)."""
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def take() -> EarlyCopies | None:
    """The copies started for this command line, if any (handed out once)."""
    return _started.pop() if _started else None


__all__ = ["EarlyCopies", "start_from_argv", "take"]
