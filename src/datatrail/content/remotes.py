"""A remote object store on any fsspec filesystem: a folder, S3, GCS, Azure, SSH, HTTP (read-only).

Layout under the remote's URL (docs/storage.md)::

    packs/<sha256 of the pack>.pack    small objects, concatenated (datatrail.content.packs)
    packs/<sha256 of the pack>.idx     their index: written after the pack, so it vouches for it
    objects/sha256/ab/cdef…            objects of 1 MiB or more, one file each

Knowing what a remote holds costs one listing of ``packs/``, the indexes not
seen before (kept under ``.datatrail/remotes/``, since packs never change), and
one listing of ``objects/``. Every object downloaded is hashed before it enters
the cache. Uploads of a local folder go through a temporary name and a rename;
object stores (S3, GCS, Azure) make each PUT whole or nothing themselves.
Credentials come from each store's usual environment (:mod:`datatrail.remote.fs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar

from datatrail.content.objects import STALE_TEMP_AGE, TEMP, ObjectStore, kernel_copy, remove_files
from datatrail.content.packs import PACK_BELOW, PackEntry, build_pack, group, parse_index
from datatrail.core.errors import IntegrityError, InvalidInput, NotFound
from datatrail.remote import is_url
from datatrail.remote.fs import Remote, open_url, translate

if TYPE_CHECKING:
    from concurrent.futures import Future

ProgressFn = Callable[[int, int], None]
Sink = Callable[[str, Any], None]
"""Given each object a download verified and kept: (hex digest, its bytes)."""
T = TypeVar("T")
WORKERS = 8


class Started(Protocol):
    """Copies to a folder remote begun before the push decided what to send (cli/prepush.py)."""

    def take(self, dest: str) -> str | None:
        """A finished temporary copy beside ``dest`` (to rename or remove), or None: copy it yourself."""
        ...


@dataclass
class RemoteIndex:
    """What a remote holds: loose objects, and packed ones with where they lie."""

    loose: set[str] = field(default_factory=set)
    loose_sizes: dict[str, int] = field(default_factory=dict)
    packed: dict[str, tuple[str, PackEntry]] = field(default_factory=dict)  # digest → (pack name, entry)
    packs: dict[str, list[PackEntry]] = field(default_factory=dict)  # pack name → its entries
    pack_sizes: dict[str, int] = field(default_factory=dict)
    temps: list[str] = field(default_factory=list)  # temporary files of uploads, finished or not (TEMP)

    def __contains__(self, hexd: object) -> bool:
        return hexd in self.loose or hexd in self.packed

    @property
    def digests(self) -> set[str]:
        return self.loose | set(self.packed)


@dataclass(frozen=True)
class Transfer:
    """What a push or a download moved."""

    objects: int = 0
    bytes: int = 0
    packs: int = 0
    requests: int = 0


class RemoteStore:
    """The objects at one URL (or local folder); ``cache_dir`` keeps copies of its pack indexes."""

    def __init__(self, url: str, cache_dir: Path, *, workers: int = WORKERS) -> None:
        self.url = url
        if is_url(url):
            self.remote = open_url(url)
        else:  # a folder: plain system calls, no fsspec (whose import reads every installed package's entry points)
            folder = Path(url).resolve()
            self.remote = Remote(LocalFolder(), folder.as_posix(), folder.as_uri(), "file")
        self.fs = self.remote.fs
        self.root = self.remote.path.rstrip("/")
        self.local = self.remote.protocol in ("file", "local")
        self.cache_dir = cache_dir / hashlib.sha256(self.remote.url.encode()).hexdigest()[:16]
        self.workers = workers
        self.requests = 0

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        with translate(self.remote.url, self.remote.secrets):
            yield

    def _p(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def loose_path(self, hexd: str) -> str:
        return self._p("objects", "sha256", hexd[:2], hexd[2:])

    # ------------------------------------------------------------ what it holds

    def index(self) -> RemoteIndex:
        """List the remote: its pack indexes (new ones downloaded once) and its loose objects."""
        out = RemoteIndex()
        with self.translated():
            names = self._list(self._p("packs"))
            self.requests += 1
            sizes = {n.rsplit("/", 1)[-1]: s for n, s in names}
            out.temps.extend(n for n in (n for n, _ in names) if n.rsplit("/", 1)[-1].startswith(TEMP))
            packs = [n[: -len(".idx")] for n in sizes if n.endswith(".idx") and n[: -len(".idx")] + ".pack" in sizes]
            (self.cache_dir / "packs").mkdir(parents=True, exist_ok=True)
            unseen = [p for p in packs if not (self.cache_dir / "packs" / f"{p}.idx").is_file()]

            parsed: dict[str, list[PackEntry]] = {}

            def fetch_index(name: str) -> None:
                data = self.fs.cat_file(self._p("packs", f"{name}.idx"))
                parsed[name] = parse_index(data, name)  # refuse a corrupt one before keeping it
                _write_atomic(self.cache_dir / "packs" / f"{name}.idx", data)

            self._parallel(fetch_index, unseen)
            self.requests += len(unseen)
            for name in packs:
                entries = parsed.get(name) or parse_index((self.cache_dir / "packs" / f"{name}.idx").read_bytes(), name)
                out.packs[name] = entries
                out.pack_sizes[name] = sizes[f"{name}.pack"]
                for e in entries:
                    out.packed[e.digest] = (name, e)
            for path, size in self._find(self._p("objects", "sha256")):
                parts = path.rstrip("/").split("/")
                hexd = parts[-2] + parts[-1]
                if len(hexd) == 64 and not parts[-1].startswith("."):
                    out.loose.add(hexd)
                    out.loose_sizes[hexd] = size
                elif parts[-1].startswith(TEMP):
                    out.temps.append(path)
            self.requests += 1
        return out

    def _list(self, path: str) -> list[tuple[str, int]]:
        try:
            entries = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return [(e["name"], int(e.get("size") or 0)) for e in entries if e.get("type") != "directory"]

    def _find(self, path: str) -> list[tuple[str, int]]:
        try:
            found = self.fs.find(path, detail=True)
        except FileNotFoundError:
            return []
        return [(name, int(info.get("size") or 0)) for name, info in found.items()]

    # ------------------------------------------------------------ upload

    def upload(
        self,
        objects: ObjectStore,
        items: list[tuple[str, int]],
        progress: ProgressFn | None = None,
        started: Started | None = None,
    ) -> Transfer:
        """Upload ``items`` (digest, size) from ``objects``: small ones in packs, big ones alone.

        Each small object is hashed as it is packed: a corrupt one is removed from the cache and the
        push stops with an :class:`IntegrityError` (the packs already uploaded are sound, and a rerun
        sends the rest). Big ones are copied as they are (the cache verified them when it wrote them);
        to a folder, a copy ``started`` already made of one is renamed into place instead."""
        small = sorted((h, n) for h, n in items if n < PACK_BELOW)
        big = [(h, n) for h, n in items if n >= PACK_BELOW]
        groups = list(group(small))

        def send_loose(item: tuple[str, int]) -> None:
            hexd, size = item
            self._put_file(os.fspath(objects.path(hexd)), self.loose_path(hexd), started)
            if progress is not None:
                progress(1, size)

        with self.translated():
            self._send_packs(objects, small, groups, progress)
            self._parallel(send_loose, big)
        requests = 2 * len(groups) + len(big)
        self.requests += requests
        return Transfer(len(items), sum(n for _, n in items), len(groups), requests)

    def _send_packs(
        self, objects: ObjectStore, small: list[tuple[str, int]], groups: list[list[str]], progress: ProgressFn | None
    ) -> None:
        """Read every small object in this thread, in digest order, and hand each pack's objects to writers.

        One reader: reading a small file is a few system calls around a few microseconds of Python,
        and reader threads would mostly pass the GIL to each other (a profile of 8 threads reading
        20,000 objects: 330,000 ``futex`` calls). The writers verify, assemble and upload packs
        (hashlib and writes release the GIL); one for a folder, ``workers`` for a network store,
        at most one pack more in memory than there are writers."""
        if not groups:
            return
        cache = self.cache_dir / "packs"
        cache.mkdir(parents=True, exist_ok=True)

        def send(got: list[tuple[str, bytes]]) -> None:
            sha256 = hashlib.sha256
            for hexd, data in got:
                if sha256(data).hexdigest() != hexd:
                    objects.remove(hexd)  # so that it is not pushed again: the version's bytes are incomplete
                    msg = (
                        f"the cached object {hexd[:12]} was corrupt (its bytes hash differently): it is removed "
                        "from the cache and was not pushed; add its file again with --store-content (or fetch "
                        "it from another remote) and push again"
                    )
                    raise IntegrityError(msg)
            pack = build_pack(got)
            self._put_bytes(self._p("packs", f"{pack.name}.pack"), pack.data)
            self._put_bytes(self._p("packs", f"{pack.name}.idx"), pack.index)  # after the pack: it vouches for it
            _write_atomic(cache / f"{pack.name}.idx", pack.index)
            if progress is not None:
                progress(len(got), len(pack.data))

        writers = 1 if self.local else max(1, self.workers)
        with contextlib.closing(objects.read_many(small)) as reading:  # its folder descriptor closed on errors too
            batches = ([next(reading) for _ in hexes] for hexes in groups)
            if len(groups) == 1:
                for got in batches:
                    send(got)
                return
            from concurrent.futures import ThreadPoolExecutor  # start-up: only a push of several packs

            with ThreadPoolExecutor(writers, thread_name_prefix="datatrail-push") as pool:
                pending: deque[Future[None]] = deque()
                try:
                    for got in batches:
                        pending.append(pool.submit(send, got))
                        while len(pending) > writers or (pending and pending[0].done()):
                            pending.popleft().result()
                    while pending:
                        pending.popleft().result()
                finally:
                    for f in pending:
                        f.cancel()

    def _put_bytes(self, path: str, data: bytes) -> None:
        if self.local:
            _write_atomic(Path(path), data)
        else:
            self.fs.pipe_file(path, data)

    def _put_file(self, source: str, path: str, started: Started | None = None) -> None:
        if self.local:
            dest = Path(path)
            early = started.take(path) if started is not None else None
            if early is None:
                dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(early) if early is not None else dest.with_name(_temp_name())
            try:  # a verified object: one kernel copy (or a reflink), no hash, into a name the listing skips
                if early is None:
                    kernel_copy(source, os.fspath(tmp))
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
        else:
            self.fs.put_file(source, path)

    # ------------------------------------------------------------ download

    def download(
        self,
        objects: ObjectStore,
        wanted: set[str],
        index: RemoteIndex,
        progress: ProgressFn | None = None,
        sink: Sink | None = None,
    ) -> Transfer:
        """Bring ``wanted`` objects (all held by this remote, per ``index``) into ``objects``, each verified.

        ``sink(digest, bytes)`` is given each packed object once it is verified and kept (a pull writes
        the workspace from the same bytes instead of reading the cache back). Packs are read by
        worker threads; their objects are hashed and written by the calling thread alone (one writer
        per folder is fastest, and the workers never wait on each other for the GIL)."""
        by_pack: dict[str, list[PackEntry]] = {}
        loose: list[str] = []
        for hexd in sorted(wanted):
            if hexd in index.packed:
                name, entry = index.packed[hexd]
                by_pack.setdefault(name, []).append(entry)
            elif hexd in index.loose:
                loose.append(hexd)
            else:
                msg = f"object {hexd[:12]} is not on the remote {self.remote.url!r}"
                raise NotFound(msg)
        requests = 0

        def get_pack(item: tuple[str, list[PackEntry]]) -> tuple[str, list[tuple[PackEntry, Any]], Any]:
            name, entries = item
            path = self._p("packs", f"{name}.pack")
            need = sum(e.length for e in entries)
            if need * 2 >= index.pack_sizes.get(name, need):
                blob = self.fs.cat_file(path)
                view = memoryview(blob)
                return name, [(e, view[e.offset : e.offset + e.length]) for e in entries], blob
            got = [(e, self.fs.cat_file(path, start=e.offset, end=e.offset + e.length)) for e in entries]
            return name, got, None

        def corrupt(name: str, e: PackEntry) -> IntegrityError:
            msg = f"object {e.digest[:12]} in pack {name[:12]} on {self.remote.url!r} is corrupt; push it again"
            return IntegrityError(msg)

        def keep_pack(name: str, got: list[tuple[PackEntry, Any]], blob: Any) -> None:
            if blob is not None and len(got) == len(index.packs.get(name, ())):
                # Every object of the pack is wanted: verify each, then keep the pack as it came (one file).
                for e, data in got:
                    if hashlib.sha256(data).hexdigest() != e.digest:
                        raise corrupt(name, e)
                objects.add_pack(name, blob, [e for e, _ in got])
                if sink is not None:
                    for e, data in got:
                        sink(e.digest, data)
            else:
                for e, data in got:
                    try:
                        objects.add_bytes(e.digest, data, known_missing=True)  # hashed there, before it is kept
                    except IntegrityError:
                        raise corrupt(name, e) from None
                    if sink is not None:
                        sink(e.digest, data)
            if progress is not None:
                progress(len(got), sum(e.length for e, _ in got))

        def get_loose(hexd: str) -> int:
            try:
                if self.local:  # copied by the kernel, hashed beside it
                    objects.add_copy(hexd, self.loose_path(hexd), (lambda n: progress(0, n)) if progress else None)
                else:  # one streamed GET (multipart-aware drivers), then hashed from the local copy
                    objects.add_fetched(hexd, lambda tmp: self.fs.get_file(self.loose_path(hexd), tmp))
            except IntegrityError:
                msg = f"object {hexd[:12]} on {self.remote.url!r} is corrupt (hash mismatch); push it again"
                raise IntegrityError(msg) from None
            if progress is not None:
                progress(1, 0)
            return 1

        with self.translated():
            for name, got, blob in self._stream(get_pack, list(by_pack.items())):
                requests += 1 if blob is not None else len(got)
                keep_pack(name, got, blob)
            requests += sum(self._parallel(get_loose, loose))
        self.requests += requests
        return Transfer(len(wanted), 0, len(by_pack), requests)

    # ------------------------------------------------------------ deletion (gc)

    def delete(self, paths: list[str]) -> None:
        with self.translated():
            self._parallel(lambda p: self.fs.rm_file(p), paths)

    def pack_paths(self, name: str) -> list[str]:
        return [self._p("packs", f"{name}.idx"), self._p("packs", f"{name}.pack")]

    def forget_pack(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.cache_dir / "packs" / f"{name}.idx").unlink()

    def stale_temps(self, index: RemoteIndex, *, age: float = STALE_TEMP_AGE) -> list[tuple[str, int]]:
        """The temporary files of ``index`` that killed uploads left: (path, size) of each not written for ``age``
        seconds. Only a folder remote has any (an object store makes each PUT whole itself)."""
        if not self.local:
            return []
        now = time.time()
        out = []
        for path in index.temps:
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # renamed into place since, or removed by another client
                continue
            if now - st.st_mtime > age and stat.S_ISREG(st.st_mode):
                out.append((path, st.st_size))
        return out

    def remove_temps(self, temps: list[tuple[str, int]]) -> tuple[int, int]:
        """Remove what :meth:`stale_temps` found; the files and bytes removed (another client may be first)."""
        return remove_files(temps)

    # ------------------------------------------------------------ helpers

    def _stream(self, fn: Callable[[Any], T], items: list[Any]) -> Iterator[T]:
        """``fn`` of each item, in order, computed by worker threads at most a few items ahead of the caller."""
        if len(items) <= 1 or self.workers <= 1:
            yield from (fn(i) for i in items)
            return
        from concurrent.futures import ThreadPoolExecutor  # start-up: only when several items travel

        ahead = min(self.workers, len(items))
        with ThreadPoolExecutor(ahead, thread_name_prefix="datatrail-remote") as pool:
            pending = [pool.submit(fn, i) for i in items[:ahead]]
            rest = iter(items[ahead:])
            try:
                while pending:
                    done = pending.pop(0).result()
                    nxt = next(rest, None)
                    if nxt is not None:
                        pending.append(pool.submit(fn, nxt))
                    yield done
            finally:
                for f in pending:
                    f.cancel()

    def _parallel(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        todo = list(items)
        if len(todo) <= 1 or self.workers <= 1:
            return [fn(i) for i in todo]
        from concurrent.futures import ThreadPoolExecutor  # start-up: only when several items travel

        with ThreadPoolExecutor(min(self.workers, len(todo)), thread_name_prefix="datatrail-remote") as pool:
            return list(pool.map(fn, todo))


class LocalFolder:
    """The calls :class:`RemoteStore` makes of a filesystem, on a local folder, as fsspec's local filesystem
    answers them (paths are absolute, '/'-separated; a missing one is FileNotFoundError)."""

    def ls(self, path: str, detail: bool = True) -> list[dict[str, Any]]:
        out = []
        with os.scandir(path) as it:
            for e in it:
                is_dir = e.is_dir()
                out.append({"name": f"{path}/{e.name}", "type": "directory" if is_dir else "file",
                            "size": 0 if is_dir else e.stat().st_size})  # fmt: skip
        return out

    def find(self, path: str, detail: bool = True) -> dict[str, dict[str, Any]]:
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        found: dict[str, dict[str, Any]] = {}
        for folder, _dirs, files in os.walk(path):
            for name in files:
                full = f"{folder}/{name}"
                found[full] = {"name": full, "type": "file", "size": os.stat(full).st_size}
        return found

    def cat_file(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        with open(path, "rb") as f:
            if start:
                f.seek(start)
            return f.read() if end is None else f.read(end - (start or 0))

    def open(self, path: str, mode: str = "rb", **_: Any) -> BinaryIO:
        if mode != "rb":
            msg = "a remote's files are read with mode 'rb'"
            raise ValueError(msg)
        return open(path, "rb")

    def get_file(self, source: str, dest: str) -> None:
        import shutil  # start-up: RemoteStore copies with kernel_copy itself; this is the fsspec-like API

        shutil.copyfile(source, dest)

    def put_file(self, source: str, dest: str) -> None:
        import shutil  # start-up: as above

        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(source, dest)

    def pipe_file(self, path: str, data: bytes) -> None:
        _write_atomic(Path(path), data)

    def rm_file(self, path: str) -> None:
        os.unlink(path)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(_temp_name())
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _temp_name() -> str:
    return f"{TEMP}{os.urandom(16).hex()}"


def check_writable(url: str) -> None:
    if url.startswith(("http://", "https://")):
        msg = f"the remote {url!r} is read-only (HTTP); push to a folder, s3://, gs://, az:// or ssh:// remote"
        raise InvalidInput(msg)


__all__ = ["STALE_TEMP_AGE", "TEMP", "RemoteIndex", "RemoteStore", "Sink", "Started", "Transfer", "check_writable"]
