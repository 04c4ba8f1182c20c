"""Getting versions back: keeping their bytes, checking them out, reading them, and DataFrames as versions.

:class:`Storage` is ``trail.storage``. It composes the content engine
(:mod:`datatrail.content`: the object cache, packs, remotes) with what the
store knows (which files, with which digests, make up a version):

- ``add(path, store_content=True)`` keeps the bytes of each new file in the
  cache as the version is recorded; ``add(df, name=…)`` records a DataFrame or
  Arrow table as a version whose bytes are its canonical Arrow IPC stream;
- ``checkout(ref, path)`` writes a version back, verified byte for byte,
  refusing to overwrite local changes unless forced;
- ``open``/``read_arrow``/``read_pandas``/``read_polars`` read a version
  without writing it anywhere;
- ``push``/``fetch``/``pull`` and ``gc`` (:mod:`datatrail.sync`).

Objects missing from the cache come transparently from the default remote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlparse

from datatrail.config import Location
from datatrail.content import restore
from datatrail.content import settings as settings_mod
from datatrail.content.objects import ObjectStore
from datatrail.content.restore import Change
from datatrail.content.settings import ContentSettings, RemoteConfig, read_settings
from datatrail.core.errors import Conflict, InvalidInput, NotFound
from datatrail.core.model import DEFAULT_NAMESPACE, Ref, Version, validate_name, validate_namespace

if TYPE_CHECKING:
    # Types only: a push or a checkout loads neither recording (events, checks, profiles) nor hashing's
    # machinery (start-up; docs/benchmarks.md, "Round seven: one big file").
    from datatrail.catalog import Catalog
    from datatrail.content.remotes import Started
    from datatrail.content.vfs import VersionFileSystem
    from datatrail.core.records import ContentLocation
    from datatrail.hashing import HashResult, ProgressFn
    from datatrail.recorder import AddResult, Recorder
    from datatrail.store.base import Store
    from datatrail.sync import GcReport, SyncReport
    from datatrail.workspace import Workspace

LOCK = ".lock"


@dataclass(frozen=True)
class CheckoutReport:
    """What a checkout changed: per file added, modified, removed or unchanged."""

    version: Version
    path: Path
    changes: tuple[Change, ...]
    kept: int = 0  # files found unchanged as a whole (the tree listed as when it last hashed), not in ``changes``

    def count(self, action: str) -> int:
        found = sum(1 for c in self.changes if c.action == action)
        return found + self.kept if action == restore.UNCHANGED else found

    @property
    def changed(self) -> bool:
        return any(c.action != restore.UNCHANGED for c in self.changes)

    def summary(self) -> str:
        parts = [f"{self.count(a)} {a}" for a in (restore.ADDED, restore.MODIFIED, restore.REMOVED, restore.UNCHANGED)]
        return ", ".join(p for p in parts if not p.startswith("0 ")) or "nothing to do"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.version.ref,
            "digest": str(self.version.digest) if self.version.digest else None,
            "path": os.fspath(self.path),
            "added": self.count(restore.ADDED),
            "modified": self.count(restore.MODIFIED),
            "removed": self.count(restore.REMOVED),
            "unchanged": self.count(restore.UNCHANGED),
            "changes": [{"path": c.path, "action": c.action} for c in self.changes if c.action != restore.UNCHANGED],
        }


class Storage:
    """The bytes of versions: kept, checked out, read, pushed, pulled and collected."""

    def __init__(
        self,
        catalog: Catalog,
        recorder: Callable[[], Recorder],
        workspace: Workspace,
        location: Location,
        store: Store,
        user: str,
    ) -> None:
        self.catalog = catalog
        self._recorder = recorder
        self.workspace = workspace
        self.location = location
        self.objects = ObjectStore(workspace.objects_dir)
        self._store = store  # for where pushed bytes are (record_locations), as the recorder would write it
        self._user = user

    @cached_property
    def recorder(self) -> Recorder:
        """The Trail's recorder, built on first use (a push records nothing but where its bytes went)."""
        return self._recorder()

    @property
    def settings(self) -> ContentSettings:
        """``[content]`` and ``[remotes.*]`` of ``.datatrail/config.toml`` (read afresh)."""
        return read_settings(self.location.config_dir)

    # ------------------------------------------------------------ keeping bytes

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the cache's shared lock while objects are written and their version recorded.

        ``gc`` takes the lock exclusively, so it never sees an object whose version is not yet recorded.
        """
        with self._lock(shared=True):
            yield

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold the cache's lock alone (gc): no add writes objects meanwhile."""
        return self._lock(shared=False)

    @property
    def cache_root(self) -> Path:
        """``.datatrail/`` (or where the cache lives): objects/, and remotes/ (copies of remote pack indexes)."""
        return self.objects.root.parent

    @contextlib.contextmanager
    def _lock(self, *, shared: bool) -> Iterator[None]:
        try:
            import fcntl  # POSIX only: elsewhere gc relies on its grace period alone
        except ImportError:  # pragma: no cover
            yield
            return
        self.objects.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.objects.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def keep(self, path: Path, hashed: HashResult) -> int:
        """Keep the bytes of every file of a hashed ``path`` not yet in the cache; the number of objects added."""
        if hashed.files is None:
            return int(self.objects.add_file(hashed.digest.hex, path))
        added = 0
        for f in hashed.files:
            if not self.objects.has(f.digest.hex):
                added += self.objects.add_file(f.digest.hex, path / f.path)
        return added

    def add(
        self,
        path: Any,
        *,
        name: str | None = None,
        store_content: bool | None = None,
        **options: Any,
    ) -> AddResult:
        """Record a file, directory or URL (``Recorder.register``), keeping its bytes when asked.

        ``store_content`` (default: ``[content] store`` of the config) keeps the
        bytes of each new file in ``.datatrail/objects/``. A DataFrame or Arrow
        table is recorded by :meth:`add_frame` (its bytes always kept).
        """
        from datatrail.frames import is_data  # start-up: DataFrames' encoding loads with the first add

        if is_data(path):
            if name is None:
                msg = "a DataFrame or table needs a name: trail.add(df, name='clean/penguins')"
                raise InvalidInput(msg)
            return self.add_frame(path, name=name, **options)
        if store_content is None:
            store_content = self.settings.store
        if not store_content:
            return self.recorder.register(path, name=name, **options)
        from datatrail.remote import is_url  # light: no driver

        if is_url(path):
            msg = "--store-content keeps local files; a URL's bytes stay where they are (add it without the option)"
            raise InvalidInput(msg)
        with self.writing():
            return self.recorder.register(path, name=name, keep=self.keep, **options)

    def add_frame(
        self,
        value: Any,
        *,
        name: str,
        namespace: str = DEFAULT_NAMESPACE,
        message: str | None = None,
        tags: Sequence[str] = (),
        profile: bool = True,
        **ignored: Any,
    ) -> AddResult:
        """Record a pandas or polars DataFrame or an Arrow table as a version; its bytes go to the cache.

        The digest is the SHA-256 of the table's canonical Arrow IPC stream
        (docs/python-api.md, "DataFrames as versions"): the same data and
        schema give the same digest whichever library holds them.

        >>> v = trail.add(df, name="clean/penguins")              # doctest: +SKIP
        >>> trail.read_pandas("clean/penguins@1").equals(df)      # doctest: +SKIP
        True
        """
        from datatrail.events import build_dataset_event  # start-up: recording loads with the first add
        from datatrail.frames import encode_data  # start-up: as above
        from datatrail.recorder import AddResult, check_aliases  # start-up: as above

        unknown = set(ignored) - {"use_cache", "progress", "hint", "jobs", "use_store_checksum", "checks", "kind"}
        if unknown:
            msg = f"unknown option(s) for a DataFrame: {', '.join(sorted(unknown))}"
            raise InvalidInput(msg)
        namespace, name = validate_namespace(namespace), validate_name(name)
        aliases = check_aliases(tags)
        payload, info = encode_data(value, self.user, self.recorder.host)
        existing = self.catalog.find_key(namespace, name, info.key)
        with self.writing():
            self.objects.add_bytes(info.digest.hex if info.digest else "", payload)
            if existing is not None and all(a in existing.aliases for a in aliases):
                return AddResult(existing, False)
            if profile and existing is None and info.format == "arrow":
                from datatrail.profiling import profile_table  # pyarrow: only when a profile is due

                info = _replace(info, message=message, profile=profile_table(_read_ipc(payload)))
            else:
                info = _replace(info, message=message)
            event = build_dataset_event(namespace, name, info, aliases)
            version, created = self.recorder.write(event, "dataset.add").versions[0]
        return AddResult(version, created)

    @property
    def user(self) -> str:
        return self._user

    def record_locations(self, versions: Sequence[Version], remote: str, url: str) -> int:
        """Record that the remote ``remote`` at ``url`` holds every object of ``versions`` (after a push)."""
        return self._store.record_content_location(versions, remote, url, actor=self._user)

    def forget_locations(self, versions: Sequence[Version], url: str) -> int:
        """Forget that ``url`` holds ``versions`` (their objects there were collected)."""
        return self._store.forget_content_location(versions, url, actor=self._user)

    # ------------------------------------------------------------ what a version holds

    def files_of(self, version: Version) -> dict[str, tuple[str, int]]:
        """Relative path → (hex digest, size) of a version's files ('' for a single file)."""
        if version.digest is None:
            msg = f"{version.ref} has no content digest (a producer's version); there are no bytes to get back"
            raise NotFound(msg)
        if version.is_directory:
            return {f.path: (f.digest.hex, f.size) for f in self.catalog.manifest(version)}
        return {"": (version.digest.hex, version.size or 0)}

    def default_path(self, version: Version) -> Path:
        """Where a version was added: the store root + its name when the name was its relative path, else its uri."""
        uri = urlparse(version.uri or "")
        if uri.scheme != "file":
            msg = f"{version.ref} was not added from a local path; say where to put it: datatrail checkout REF PATH"
            raise InvalidInput(msg)
        path = Path(unquote(uri.path))
        if path.as_posix().endswith("/" + version.name):
            return self.location.root / version.name
        return path

    def ensure_local(
        self,
        hexes: set[str],
        *,
        remote: str | None = None,
        progress: ProgressFn | None = None,
        version: Version | None = None,
    ) -> int:
        """Bring objects missing from the cache; the number fetched.

        They come from ``remote`` (default: the default one), then the other
        configured remotes, then any remote the store says holds ``version``
        (pushed from another client: fetched directly, with this client's credentials)."""
        missing = self.objects.missing(hexes)
        if not missing:
            return 0
        from datatrail.sync import download  # fsspec and the remote's driver: only when objects travel

        what = version.ref if version is not None else ""
        versions = [version] if version is not None else []
        return download(self, missing, remote=remote, versions=versions, progress=progress, what=what)

    # ------------------------------------------------------------ checkout

    def checkout(
        self,
        ref: str | Ref | Version,
        path: str | os.PathLike[str] | None = None,
        *,
        force: bool = False,
        remote: str | None = None,
        progress: ProgressFn | None = None,
        link: bool = True,
    ) -> CheckoutReport:
        """Restore the exact bytes of a version to ``path`` (default: where it was added).

        Every byte is hashed as it is written and compared with the manifest.
        Files that differ from the version (local changes) are overwritten only
        with ``force``; then files the version does not hold are removed too.
        Objects missing from the cache come from the default remote. Files of
        1 MiB or more are hard-linked from the cache, read-only (``link=False``
        copies them); smaller ones are copied, or reflinked where the filesystem can.

        >>> report = trail.checkout("raw/penguins@2")            # doctest: +SKIP
        >>> report.summary()                                    # doctest: +SKIP
        '1 modified'
        """
        version = self.catalog.get(ref)
        if version.digest is None:
            self.files_of(version)  # NotFound: no content digest
        target = Path(path) if path is not None else self.default_path(version)
        target = Path(os.path.abspath(target))
        is_dir = version.is_directory
        if is_dir and target.is_dir():
            known, listing = self.recorder.known_tree(target)
            if known is not None and known.digest == version.digest:
                # Listed exactly as when it last hashed to the version: nothing to read, look up or write.
                if not known.paths:
                    return CheckoutReport(version, target, (Change("", restore.UNCHANGED, None),))
                return CheckoutReport(version, target, (), kept=len(known.paths))
            hashed: HashResult | None = self.recorder.hash(target, listing=listing)
        else:
            hashed = self._present(target, is_dir, force)
        if hashed is not None and hashed.digest == version.digest:
            # The workspace hashes to the version (a directory: its manifest digest): nothing to read or write.
            same = hashed.files or ()
            unchanged = [Change(f.path, restore.UNCHANGED, f.digest.hex) for f in same]
            return CheckoutReport(
                version, target, tuple(unchanged or [Change("", restore.UNCHANGED, hashed.digest.hex)])
            )
        files = self.files_of(version)
        present: dict[str, str] = {}
        if hashed is not None:
            present = {"": hashed.digest.hex} if hashed.files is None else {f.path: f.digest.hex for f in hashed.files}
        changes = restore.plan({rel: f[0] for rel, f in files.items()}, present)
        local = [c for c in changes if c.action in (restore.MODIFIED, restore.REMOVED)]
        if local and not force:
            names = ", ".join(repr(c.path or target.name) for c in local[:3]) + (" …" if len(local) > 3 else "")
            msg = (
                f"{os.fspath(target)!r} has local changes ({len(local)} files: {names}); "
                "record them with `datatrail add`, or pass --force to overwrite them"
            )
            raise Conflict(msg)
        needed = {c.digest for c in changes if c.action in (restore.ADDED, restore.MODIFIED) and c.digest}
        self.ensure_local(needed, remote=remote, version=version)
        if is_dir and target.is_file():
            target.unlink()  # forced: a file stands where the version has a folder
        restore.apply(changes, target, self.objects, is_dir=is_dir, progress=progress, link=link)
        return CheckoutReport(version, target, tuple(changes))

    def checked_out(self, version: Version, target: Path, changes: Sequence[Change]) -> CheckoutReport:
        """The report of a checkout done elsewhere (a pull writing a new tree as its objects arrive)."""
        return CheckoutReport(version, target, tuple(changes))

    def _present(self, target: Path, is_dir: bool, force: bool) -> HashResult | None:
        """What the workspace holds at ``target``, hashed through the stat cache; None when nothing is there."""
        if not os.path.lexists(target):
            return None
        if is_dir != target.is_dir():
            if not force:
                kind = "a folder" if target.is_dir() else "a file"
                msg = f"{os.fspath(target)!r} is {kind}, unlike the version; pass --force to replace it, or give a PATH"
                raise Conflict(msg)
            if target.is_dir():
                msg = f"{os.fspath(target)!r} is a folder where the version has a file; move it away first"
                raise Conflict(msg)
            return None
        return self.recorder.hash(target)

    # ------------------------------------------------------------ reading

    def open(self, ref: str | Ref | Version) -> BinaryIO | VersionFileSystem:
        """A version's bytes: a binary file for a file version, a read-only fsspec filesystem for a directory.

        >>> with trail.open("raw/penguins@1") as f:               # doctest: +SKIP
        ...     header = f.readline()
        >>> fs = trail.open("images@3"); fs.ls("")                 # doctest: +SKIP
        """
        version = self.catalog.get(ref)
        files = self.files_of(version)
        if not version.is_directory:
            hexd = files[""][0]
            self.ensure_local({hexd}, version=version)
            return self.objects.open(hexd)
        return self._filesystem(version, files)

    def _filesystem(self, version: Version, files: dict[str, tuple[str, int]]) -> VersionFileSystem:
        from datatrail.content.vfs import VersionFileSystem  # fsspec: only when a directory version is read

        self.ensure_local({f[0] for f in files.values()}, version=version)
        return VersionFileSystem(files, self.objects)

    def read_arrow(self, ref: str | Ref | Version) -> Any:
        """A tabular version (CSV, Parquet, JSON Lines, Arrow, or a folder of them) as a pyarrow Table."""
        version = self.catalog.get(ref)
        fmt = version.format
        from datatrail.formats import is_tabular  # light

        if not is_tabular(fmt) or fmt is None:
            msg = f"{version.ref} is not tabular data ({fmt or 'unknown format'}); read its bytes with trail.open()"
            raise InvalidInput(msg)
        files = self.files_of(version)
        import pyarrow as pa
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        from datatrail.scan import scan_path  # pyarrow: only when a table is read

        if version.is_directory:
            fs = self._filesystem(version, files)
            where = Path("")
        else:
            hexd, size = files[""]
            self.ensure_local({hexd}, version=version)
            from datatrail.content.vfs import VersionFileSystem  # fsspec: only when a table is read

            fs = VersionFileSystem({"data": (hexd, size)}, self.objects)
            where = Path("data")
        collected = scan_path(where, fmt, _Batches, PyFileSystem(FSSpecHandler(fs)))
        if collected is None:
            msg = f"the files of {version.ref} have different columns; read them one by one with trail.open()"
            raise InvalidInput(msg)
        if not collected.batches:
            return pa.table({})
        return pa.Table.from_batches(collected.batches)

    def read_pandas(self, ref: str | Ref | Version) -> Any:
        """A tabular version as a pandas DataFrame (a DataFrame added with ``trail.add(df)`` comes back equal)."""
        return self.read_arrow(ref).to_pandas()

    def read_polars(self, ref: str | Ref | Version) -> Any:
        """A tabular version as a polars DataFrame."""
        import polars as pl  # only when asked for

        return pl.from_arrow(self.read_arrow(ref))

    # ------------------------------------------------------------ remotes

    def _config_dir(self) -> Path:
        if self.location.config_dir is None:
            msg = "remotes are configured in .datatrail/config.toml; run `datatrail init` here first"
            raise NotFound(msg)
        return self.location.config_dir

    def remotes(self) -> list[RemoteConfig]:
        """The configured remotes (the default one marked)."""
        return list(self.settings.remotes)

    def add_remote(self, name: str, url: str, *, default: bool = False, replace: bool = False) -> RemoteConfig:
        """Name a remote (a folder or an fsspec URL: ``s3://bucket/prefix``…); credentials never go in the config.

        >>> trail.storage.add_remote("origin", "s3://bucket/datatrail", default=True)  # doctest: +SKIP
        """
        return settings_mod.add_remote(self._config_dir(), name, url, default=default, replace=replace)

    def remove_remote(self, name: str) -> None:
        settings_mod.remove_remote(self._config_dir(), name)

    def set_default_remote(self, name: str) -> None:
        settings_mod.set_default_remote(self._config_dir(), name)

    def set_store_content(self, store: bool) -> None:
        """Make ``datatrail add`` keep bytes by default (``[content] store``)."""
        settings_mod.set_store_content(self._config_dir(), store)

    def locate(self, ref: str | Ref | Version) -> tuple[Version, list[ContentLocation]]:
        """The version and the remotes (name, URL) a push recorded as holding all its bytes, most recent first.

        >>> version, where = trail.storage.locate("raw/penguins@2")  # doctest: +SKIP
        >>> where[0].url                                              # doctest: +SKIP
        's3://bucket/datatrail'
        """
        version = self.catalog.get(ref)
        return version, self.catalog.content_locations(version)

    def push(
        self,
        refs: Sequence[str] = (),
        *,
        remote: str | None = None,
        progress: ProgressFn | None = None,
        started: Started | None = None,
    ) -> SyncReport:
        """Upload the objects of versions (default: every version kept in the cache) that the remote lacks.

        Small objects travel in pack files of about 4 MiB with an index, big ones alone. ``started``:
        copies to a folder remote the CLI began while it started up (cli/prepush.py); only those of
        objects this push sends are used.

        >>> trail.push(["raw/penguins@latest"]).objects          # doctest: +SKIP
        1
        """
        from datatrail import sync  # fsspec: only when objects travel

        return sync.push(self, refs, remote=remote, progress=progress, started=started)

    def fetch(
        self, refs: Sequence[str] = (), *, remote: str | None = None, progress: ProgressFn | None = None
    ) -> SyncReport:
        """Download into the cache the objects of versions (default: the latest of every dataset) it lacks."""
        from datatrail import sync  # fsspec: only when objects travel

        return sync.fetch(self, refs, remote=remote, progress=progress)

    def pull(
        self,
        refs: Sequence[str] = (),
        *,
        remote: str | None = None,
        force: bool = False,
        progress: ProgressFn | None = None,
    ) -> SyncReport:
        """Fetch the versions' objects, then check each version out where it was added."""
        from datatrail import sync  # fsspec: only when objects travel

        return sync.pull(self, refs, remote=remote, force=force, progress=progress)

    def gc(
        self,
        *,
        keep_latest: int | None = None,
        keep_aliases: bool = False,
        older_than: str | None = None,
        remote: bool = False,
        remote_name: str | None = None,
        dry_run: bool = False,
    ) -> GcReport:
        """Remove cached (and with ``remote``, remote) objects that no version kept by the policy reaches.

        Without ``keep_latest`` every version is kept and only unreferenced objects go.

        >>> trail.storage.gc(keep_latest=3, keep_aliases=True, dry_run=True).bytes  # doctest: +SKIP
        1048576
        """
        from datatrail import sync  # fsspec: only with --remote, but one module

        return sync.gc(
            self,
            keep_latest=keep_latest,
            keep_aliases=keep_aliases,
            older_than=older_than,
            remote=remote,
            remote_name=remote_name,
            dry_run=dry_run,
        )


class _Batches:
    """Collects the record batches :func:`datatrail.scan.scan_path` reads."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    def add(self, batch: Any) -> None:
        self.batches.append(batch)


def _read_ipc(payload: bytes) -> Any:
    import pyarrow as pa  # only for tables

    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


def _replace(info: Any, **changes: Any) -> Any:
    return dataclasses.replace(info, **changes)


__all__ = ["CheckoutReport", "Storage"]
