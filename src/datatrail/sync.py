"""Moving bytes between the cache and remotes (push, fetch, pull), and collecting what nothing keeps (gc).

These are the parts of :class:`~datatrail.storage.Storage` that need fsspec
and a remote's driver, imported only when objects travel. Which objects a
command moves follows from versions: the files of the versions named (or, by
default, of every version for ``push`` and of the latest of every dataset for
``fetch``/``pull``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from datatrail.content.objects import ObjectStore, remove_files, stale_temps
from datatrail.content.remotes import RemoteIndex, RemoteStore, Sink, Started, check_writable
from datatrail.content.restore import NewTree
from datatrail.content.settings import ContentSettings, RemoteConfig
from datatrail.core.errors import DatatrailError, Forbidden, InvalidInput, NotFound
from datatrail.core.model import Ref, Version

if TYPE_CHECKING:  # types only: a push loads no catalog or hashing machinery (start-up)
    from datatrail.catalog import Catalog
    from datatrail.hashing import ProgressFn


class Storage(Protocol):
    """What these operations use of :class:`datatrail.storage.Storage` (which imports this module)."""

    catalog: Catalog
    objects: ObjectStore

    @property
    def settings(self) -> ContentSettings: ...

    @property
    def cache_root(self) -> Path: ...

    def files_of(self, version: Version) -> dict[str, tuple[str, int]]: ...

    def checkout(self, ref: Version, *, force: bool = ..., remote: str | None = ...) -> Any: ...

    def default_path(self, version: Version) -> Path: ...

    def checked_out(self, version: Version, target: Path, changes: Sequence[Any]) -> Any: ...

    def exclusive(self) -> AbstractContextManager[None]: ...

    def record_locations(self, versions: Sequence[Version], remote: str, url: str) -> int: ...

    def forget_locations(self, versions: Sequence[Version], url: str) -> int: ...


@dataclass(frozen=True)
class SyncReport:
    """What a push, fetch or pull moved, and what it could not find."""

    remote: str
    url: str
    objects: int
    bytes: int
    packs: int
    requests: int
    already: int  # objects the other side had
    skipped: tuple[str, ...] = ()  # refs whose bytes are nowhere to be found
    checkouts: tuple[Any, ...] = ()  # CheckoutReport
    located: int = 0  # push: versions the store now knows this remote holds
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "url": self.url,
            "objects": self.objects,
            "bytes": self.bytes,
            "packs": self.packs,
            "requests": self.requests,
            "already": self.already,
            "skipped": list(self.skipped),
            "checkouts": [c.to_dict() for c in self.checkouts],
            "located": self.located,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class GcReport:
    """What gc removed (or would, with ``dry_run``) and what it kept."""

    kept_versions: int
    objects: int
    bytes: int
    remote_objects: int = 0
    remote_packs: int = 0
    remote_bytes: int = 0
    dry_run: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    forgotten_locations: int = 0  # versions the store no longer names the remote for
    temp_files: int = 0  # temporary files killed adds, pulls and checkouts left in the cache (a day old)
    temp_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept_versions": self.kept_versions,
            "objects": self.objects,
            "bytes": self.bytes,
            "remote_objects": self.remote_objects,
            "remote_packs": self.remote_packs,
            "remote_bytes": self.remote_bytes,
            "dry_run": self.dry_run,
            "notes": list(self.notes),
            "forgotten_locations": self.forgotten_locations,
            "temp_files": self.temp_files,
            "temp_bytes": self.temp_bytes,
        }


def open_remote(storage: Storage, config: RemoteConfig) -> RemoteStore:
    return RemoteStore(config.url, storage.cache_root / "remotes")


def _versions(storage: Storage, refs: Sequence[str], *, every: bool) -> list[Version]:
    """The versions ``refs`` name; with none, every version (``every``) or the latest of every dataset."""
    if refs:
        return [storage.catalog.get(r) for r in refs]
    out: list[Version] = []
    for d in storage.catalog.datasets():
        if d.latest is None:
            continue
        if every:
            out.extend(storage.catalog.dataset_versions(d.namespace, d.name))
        else:
            out.append(storage.catalog.lookup(Ref(d.namespace, d.name)))
    return out


def _digests(
    storage: Storage, versions: Sequence[Version], files: dict[str, dict[str, tuple[str, int]]] | None = None
) -> dict[str, dict[str, int]]:
    """ref → {hex digest: size} of each version that has content (``files``: their files, when known)."""
    out: dict[str, dict[str, int]] = {}
    for v in versions:
        if v.digest is None:
            continue
        known = files.get(v.ref) if files is not None else None
        out[v.ref] = {h: n for h, n in (known if known is not None else storage.files_of(v)).values()}
    return out


def push(
    storage: Storage,
    refs: Sequence[str] = (),
    *,
    remote: str | None = None,
    progress: ProgressFn | None = None,
    started: Started | None = None,
) -> SyncReport:
    """Upload the objects of versions (default: every version) that the remote lacks.

    Versions whose bytes are not in the cache are skipped and listed. ``started``: copies to a folder
    remote begun before this decided what to send (:meth:`RemoteStore.upload`)."""
    config = storage.settings.remote(remote)
    check_writable(config.url)
    versions = _versions(storage, refs, every=not refs)
    wanted = _digests(storage, versions)
    have: dict[str, int] = {}
    skipped: list[str] = []
    for ref, objs in wanted.items():
        missing = storage.objects.missing(set(objs))
        if missing and refs:
            msg = (
                f"{ref} cannot be pushed: {len(missing)} of its objects are not in the cache "
                "(added without --store-content?)"
            )
            raise NotFound(msg)
        if missing:
            skipped.append(ref)
            continue
        have.update(objs)
    store = open_remote(storage, config)
    index = store.index()
    todo = sorted((h, n) for h, n in have.items() if h not in index)
    moved = store.upload(storage.objects, todo, progress, started)
    pushed = [v for v in versions if v.ref in wanted and v.ref not in skipped]
    located, notes = _locate(storage, pushed, config)
    cleared = _clear_temps(store, index, dry_run=False)
    notes = (*notes, cleared) if cleared else notes
    return SyncReport(
        config.name, store.remote.url, moved.objects, moved.bytes, moved.packs, store.requests,
        len(have) - len(todo), tuple(skipped), (), located, notes,
    )  # fmt: skip


def _clear_temps(store: RemoteStore, index: RemoteIndex, *, dry_run: bool) -> str | None:
    """Remove the temporary files killed uploads left in a folder remote (not written for a day); what was done."""
    stale = store.stale_temps(index)
    if not stale:
        return None
    count, nbytes = (len(stale), sum(n for _, n in stale)) if dry_run else store.remove_temps(stale)
    if not count:
        return None
    verb = "would remove" if dry_run else "removed"
    what = "file" if count == 1 else "files"
    return f"{verb} {count} temporary {what} ({_size(nbytes)}) that interrupted uploads left on the remote"


def _size(n: int) -> str:
    """Bytes as the CLI prints sizes (cli/output.py's human_size), in a note the service writes."""
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _locate(storage: Storage, versions: list[Version], config: RemoteConfig) -> tuple[int, tuple[str, ...]]:
    """Tell the store that ``config`` holds every object of ``versions`` (so clients without it can pull)."""
    if not versions:
        return 0, ()
    try:
        return storage.record_locations(versions, config.name, config.url), ()
    except Forbidden as exc:  # the bytes are pushed; only the store's note of where they are is refused
        return 0, (f"the store did not record where the versions are: {exc}",)


def sources(storage: Storage, remote: str | None, versions: Sequence[Version]) -> Iterator[tuple[RemoteConfig, bool]]:
    """Where objects may come from, in order: ``remote`` (else the default), the other configured remotes,
    then the remotes the store says hold ``versions`` (pushed from another client), as (config, located).

    The store is asked only when the configured remotes did not have everything (the caller stops early)."""
    settings = storage.settings
    seen: set[str] = set()
    if remote is not None or settings.remotes:
        first = settings.remote(remote)
        for cfg in [first, *(r for r in settings.remotes if r.name != first.name)]:
            seen.add(cfg.url)
            yield cfg, False
    for v in versions:
        for loc in storage.catalog.content_locations(v):
            if loc.url not in seen:
                seen.add(loc.url)
                yield RemoteConfig(loc.remote, loc.url), True


@dataclass
class Gathered:
    """What :func:`gather` brought, from where, and what it could not find."""

    missing: set[str]
    objects: int = 0
    packs: int = 0
    requests: int = 0
    used: list[RemoteConfig] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def gather(
    storage: Storage,
    hexes: set[str],
    *,
    remote: str | None,
    versions: Sequence[Version],
    progress: ProgressFn | None = None,
    sink: Sink | None = None,
) -> Gathered:
    """Bring ``hexes`` into the cache from the first source (:func:`sources`) holding each; ``missing`` the rest.

    A remote the store named but this client cannot reach is noted and passed over."""
    out = Gathered(set(hexes))
    if not out.missing:
        return out
    for cfg, located in sources(storage, remote, versions):
        if not out.missing:
            break
        out.checked.append(cfg.name)
        try:
            store = open_remote(storage, cfg)
            index = store.index()
        except (DatatrailError, OSError) as exc:
            if not located:
                raise
            out.notes.append(f"the remote {cfg.name!r} ({cfg.url}) the store named could not be read: {exc}")
            continue
        here = {h for h in out.missing if h in index}
        if here:
            moved = store.download(storage.objects, here, index, progress, sink)
            out.objects += len(here)
            out.packs += moved.packs
            out.used.append(cfg)
            out.missing -= here
        out.requests += store.requests
    return out


def _nowhere(got: Gathered, what: str) -> NotFound:
    first = sorted(got.missing)[0][:12]
    if not got.checked:
        return NotFound(
            f"the bytes of {what or 'this version'} are not in the cache ({len(got.missing)} objects missing), no "
            "remote is configured and the store knows none that holds them: `datatrail remote add NAME URL`, "
            "or push them from a machine that has them"
        )
    names = ", ".join(got.checked)
    more = f" ({'; '.join(got.notes)})" if got.notes else ""
    return NotFound(
        f"{len(got.missing)} objects (e.g. {first}) are on no remote (checked: {names}){more}; "
        "push them from a machine that has them"
    )


def download(
    storage: Storage,
    hexes: set[str],
    *,
    remote: str | None = None,
    versions: Sequence[Version] = (),
    progress: ProgressFn | None = None,
    what: str = "",
) -> int:
    """Bring ``hexes`` into the cache (:func:`gather`); the number fetched. NotFound when some are nowhere."""
    got = gather(storage, hexes, remote=remote, versions=versions, progress=progress)
    if got.missing:
        raise _nowhere(got, what)
    return got.objects


def fetch(
    storage: Storage,
    refs: Sequence[str] = (),
    *,
    remote: str | None = None,
    progress: ProgressFn | None = None,
    sink: Sink | None = None,
    versions: Sequence[Version] | None = None,
    files: dict[str, dict[str, tuple[str, int]]] | None = None,
) -> SyncReport:
    """Download into the cache the objects of versions (default: the latest of every dataset) it lacks,
    from the remote (default: the default one), the other remotes, or one the store says holds them.

    ``sink`` is given each packed object downloaded, verified (:meth:`RemoteStore.download`);
    ``versions``: those ``refs`` name, and ``files`` their :meth:`Storage.files_of` by ref, when the
    caller has them already."""
    if versions is None:
        versions = [v for v in _versions(storage, refs, every=False) if v.digest is not None]
    wanted = _digests(storage, versions, files)
    missing = {ref: storage.objects.missing(set(objs)) for ref, objs in wanted.items()}
    need = set().union(*missing.values()) if missing else set()
    got = gather(storage, need, remote=remote, versions=versions, progress=progress, sink=sink)
    skipped: list[str] = []
    for ref, lacking in missing.items():
        absent = lacking & got.missing
        if absent and refs:
            where = f" (checked: {', '.join(got.checked)})" if got.checked else ""
            msg = (
                f"{ref}: {len(absent)} of its objects are neither in the cache nor on any remote{where}; "
                "push them from a machine that has them"
            )
            if not got.checked:
                raise _nowhere(got, ref)
            raise NotFound(msg)
        if absent:
            skipped.append(ref)
    total = {h for objs in wanted.values() for h in objs}
    sizes = {h: n for objs in wanted.values() for h, n in objs.items()}
    fetched = need - got.missing
    main = got.used[0] if got.used else _default_or_none(storage, remote)
    return SyncReport(
        main.name if main else "", main.url if main else "", got.objects, sum(sizes.get(h, 0) for h in fetched),
        got.packs, got.requests, len(total) - len(need), tuple(skipped), notes=tuple(got.notes),
    )  # fmt: skip


def _default_or_none(storage: Storage, remote: str | None) -> RemoteConfig | None:
    settings = storage.settings
    if remote is None and not settings.remotes:
        return None
    return settings.remote(remote)


def pull(
    storage: Storage,
    refs: Sequence[str] = (),
    *,
    remote: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> SyncReport:
    """:func:`fetch`, then check each version out where it was added.

    A directory version whose place holds nothing yet (a fresh clone) is written as the objects
    arrive, from the bytes just verified, into a hidden folder renamed into place once whole
    (:class:`~datatrail.content.restore.NewTree`); the others are checked out from the cache."""
    versions = [v for v in _versions(storage, refs, every=False) if v.digest is not None]
    files: dict[str, dict[str, tuple[str, int]]] = {}
    trees = _new_trees(storage, versions, files)
    waiting: dict[str, list[NewTree]] = {}
    for t in trees.values():
        for hexd in t.todo:
            waiting.setdefault(hexd, []).append(t)

    def sink(hexd: str, data: Any) -> None:
        for t in waiting.get(hexd, ()):
            t.put(hexd, data)

    try:
        for t in trees.values():
            t.start()
        given = sink if trees else None
        report = fetch(storage, refs, remote=remote, progress=progress, sink=given, versions=versions, files=files)
        done = []
        for v in versions:
            if v.ref in report.skipped or not v.uri:
                continue
            tree = trees.pop(v.ref, None)
            if tree is None:
                done.append(storage.checkout(v, force=force, remote=remote))
            else:
                done.append(storage.checked_out(v, tree.target, tree.finish(storage.objects)))
    finally:
        for t in trees.values():  # not finished: an error, or a version skipped
            t.abort()
    return SyncReport(
        report.remote, report.url, report.objects, report.bytes, report.packs, report.requests,
        report.already, report.skipped, tuple(done), notes=report.notes,
    )  # fmt: skip


def _new_trees(
    storage: Storage, versions: Sequence[Version], files: dict[str, dict[str, tuple[str, int]]]
) -> dict[str, NewTree]:
    """ref → the new tree to write, for directory versions whose place holds nothing (each place once).

    The files of those versions are kept in ``files`` (ref → :meth:`Storage.files_of`)."""
    out: dict[str, NewTree] = {}
    places: set[str] = set()
    for v in versions:
        if not v.uri or not v.is_directory:
            continue
        try:
            target = Path(os.path.abspath(storage.default_path(v)))
        except InvalidInput:
            continue  # not added from a local path: its checkout says so
        if os.path.lexists(target) or os.fspath(target) in places:
            continue
        places.add(os.fspath(target))
        files[v.ref] = storage.files_of(v)
        out[v.ref] = NewTree(target, {rel: f[0] for rel, f in files[v.ref].items()})
    return out


# ------------------------------------------------------------ gc


def parse_age(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``2w`` as a timedelta."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        msg = f"invalid age {text!r}: give a number and a unit, e.g. 90d, 12h, 2w"
        raise InvalidInput(msg)
    return timedelta(**{units[unit]: int(number)})


def kept_versions(
    storage: Storage, *, keep_latest: int | None, keep_aliases: bool, older_than: timedelta | None
) -> list[Version]:
    """The versions the policy keeps.

    Without ``keep_latest`` every version is kept. With it, a dataset keeps its
    ``keep_latest`` newest versions, plus (``keep_aliases``) those an alias
    names, plus every deployed one, plus (``older_than``) any not older than that.
    """
    deployed: set[tuple[str, str, int]] = set()
    if keep_latest is not None:
        for dep in storage.catalog.deployments(active=True):
            deployed.add((dep.namespace, dep.name, dep.version))
    now = datetime.now(UTC)
    kept: list[Version] = []
    for d in storage.catalog.datasets():
        versions = storage.catalog.dataset_versions(d.namespace, d.name)
        if keep_latest is None:
            kept.extend(versions)
            continue
        newest = {v.number for v in versions[-keep_latest:]} if keep_latest > 0 else set()
        for v in versions:
            young = older_than is not None and v.created_at is not None and now - v.created_at < older_than
            aliased = keep_aliases and bool(v.aliases)
            if v.number in newest or young or aliased or (v.namespace, v.name, v.number) in deployed:
                kept.append(v)
    return kept


def gc(
    storage: Storage,
    *,
    keep_latest: int | None = None,
    keep_aliases: bool = False,
    older_than: str | None = None,
    remote: bool = False,
    remote_name: str | None = None,
    dry_run: bool = False,
) -> GcReport:
    """Remove cached objects (and with ``remote``, remote ones) that no version kept by the policy reaches.

    The cache is locked against adds while gc decides and deletes (an add holds
    the lock from writing its objects until its version is recorded), so an
    add running at the same time never loses an object. A remote is collected
    against this store's versions: do not share one remote between stores.
    Temporary files killed adds, pulls and checkouts left in the cache go too,
    once nobody has written to them for a day (:data:`~datatrail.content.objects.STALE_TEMP_AGE`).
    """
    if keep_latest is not None and keep_latest < 0:
        msg = "--keep-latest takes 0 or more"
        raise InvalidInput(msg)
    age = parse_age(older_than) if older_than else None
    notes: list[str] = []
    with storage.exclusive():
        versions = kept_versions(storage, keep_latest=keep_latest, keep_aliases=keep_aliases, older_than=age)
        reachable: set[str] = set()
        for v in versions:
            if v.digest is not None:
                reachable.update(h for h, _ in storage.files_of(v).values())
        freed = count = 0
        for hexd in list(storage.objects):
            if hexd in reachable:
                continue
            try:
                size = storage.objects.size(hexd)
            except FileNotFoundError:
                continue
            count += 1
            freed += size if dry_run else storage.objects.remove(hexd)
        stale = stale_temps(_temp_folders(storage))
        temps = (len(stale), sum(n for _, n in stale)) if dry_run else remove_files(stale)
    r_objects = r_packs = r_bytes = forgotten = 0
    if remote:
        config = storage.settings.remote(remote_name)
        check_writable(config.url)
        store = open_remote(storage, config)
        index = store.index()
        r_objects, r_packs, r_bytes, partial, removed = _remote_garbage(store, index, reachable, dry_run)
        if partial:
            notes.append(f"{partial} packs hold both kept and unreachable objects; they stay whole")
        if removed and not dry_run:
            forgotten = _forget_collected(storage, versions, removed, config.url)
        cleared = _clear_temps(store, index, dry_run=dry_run)
        if cleared:
            notes.append(cleared)
    return GcReport(
        len(versions), count, freed, r_objects, r_packs, r_bytes, dry_run, tuple(notes), forgotten, *temps
    )  # fmt: skip


def _temp_folders(storage: Storage) -> list[str]:
    """Where the cache's writes leave temporary files: its objects' folders and packs, and each remote's
    copies of pack indexes (``remotes/<remote>/packs/``)."""
    remotes = storage.cache_root / "remotes"
    try:
        copies = sorted(e.path + "/packs" for e in os.scandir(remotes) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        copies = []
    return [*storage.objects.temp_folders(), *copies]


def _forget_collected(storage: Storage, kept: Sequence[Version], removed: set[str], url: str) -> int:
    """Tell the store that ``url`` no longer holds the versions that lost objects there.

    Only versions the policy did not keep can have lost any (a kept version's objects are
    reachable); ``remote locate`` and pulls from other clients then stop naming this remote for them.
    """
    keep = {(v.namespace, v.name, v.number) for v in kept}
    every = kept_versions(storage, keep_latest=None, keep_aliases=False, older_than=None)
    lost = [
        v
        for v in every
        if (v.namespace, v.name, v.number) not in keep
        and v.digest is not None
        and any(h in removed for h, _ in storage.files_of(v).values())
    ]
    return storage.forget_locations(lost, url) if lost else 0


def _remote_garbage(
    store: RemoteStore, index: RemoteIndex, reachable: set[str], dry_run: bool
) -> tuple[int, int, int, int, set[str]]:
    """What is unreachable on the remote (removed unless ``dry_run``): counts, and the digests removed."""
    paths: list[str] = []
    objects = packs = nbytes = partial = 0
    removed = index.loose - reachable
    for hexd in sorted(removed):
        paths.append(store.loose_path(hexd))
        objects += 1
        nbytes += index.loose_sizes.get(hexd, 0)
    for name, entries in index.packs.items():
        live = [e for e in entries if e.digest in reachable]
        if live:
            partial += len(live) < len(entries)
            continue
        paths.extend(store.pack_paths(name))
        packs += 1
        objects += len(entries)
        nbytes += index.pack_sizes.get(name, 0)
        removed.update(e.digest for e in entries)
    if not dry_run and paths:
        store.delete(paths)
        for name, entries in index.packs.items():
            if not any(e.digest in reachable for e in entries):
                store.forget_pack(name)
    return objects, packs, nbytes, partial, removed


__all__ = [
    "GcReport",
    "SyncReport",
    "download",
    "fetch",
    "gather",
    "gc",
    "kept_versions",
    "parse_age",
    "pull",
    "push",
    "sources",
]
