"""Moving bytes between the cache and remotes (push, fetch, pull), and collecting what nothing keeps (gc).

These are the parts of :class:`~datatrail.storage.Storage` that need fsspec
and a remote's driver, imported only when objects travel. Which objects a
command moves follows from versions: the files of the versions named (or, by
default, of every version for ``push`` and of the latest of every dataset for
``fetch``/``pull``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from datatrail.catalog import Catalog
from datatrail.content.objects import ObjectStore
from datatrail.content.remotes import RemoteIndex, RemoteStore, check_writable
from datatrail.content.settings import ContentSettings, RemoteConfig
from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.model import Ref, Version
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

    def exclusive(self) -> AbstractContextManager[None]: ...


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


def _digests(storage: Storage, versions: Sequence[Version]) -> dict[str, dict[str, int]]:
    """ref → {hex digest: size} of each version that has content."""
    out: dict[str, dict[str, int]] = {}
    for v in versions:
        if v.digest is None:
            continue
        out[v.ref] = {h: n for h, n in storage.files_of(v).values()}
    return out


def push(
    storage: Storage, refs: Sequence[str] = (), *, remote: str | None = None, progress: ProgressFn | None = None
) -> SyncReport:
    """Upload the objects of versions (default: every version) that the remote lacks.

    Versions whose bytes are not in the cache are skipped and listed."""
    config = storage.settings.remote(remote)
    check_writable(config.url)
    wanted = _digests(storage, _versions(storage, refs, every=not refs))
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
    moved = store.upload(storage.objects, todo, progress)
    return SyncReport(
        config.name, store.remote.url, moved.objects, moved.bytes, moved.packs, store.requests,
        len(have) - len(todo), tuple(skipped),
    )  # fmt: skip


def download(storage: Storage, config: RemoteConfig, hexes: set[str], *, progress: ProgressFn | None = None) -> int:
    """Bring ``hexes`` into the cache from ``config``'s remote, then from the other remotes; the number fetched.

    NotFound naming the objects when some are on no remote."""
    settings = storage.settings
    order = [config, *(r for r in settings.remotes if r.name != config.name)]
    todo = set(hexes)
    fetched = 0
    for cfg in order:
        if not todo:
            break
        store = open_remote(storage, cfg)
        index = store.index()
        here = {h for h in todo if h in index}
        if here:
            store.download(storage.objects, here, index, progress)
            fetched += len(here)
            todo -= here
    if todo:
        names = ", ".join(r.name for r in order)
        first = sorted(todo)[0][:12]
        msg = (
            f"{len(todo)} objects (e.g. {first}) are on no remote (checked: {names}); "
            "push them from a machine that has them"
        )
        raise NotFound(msg)
    return fetched


def fetch(
    storage: Storage, refs: Sequence[str] = (), *, remote: str | None = None, progress: ProgressFn | None = None
) -> SyncReport:
    """Download into the cache the objects of versions (default: the latest of every dataset) it lacks."""
    config = storage.settings.remote(remote)
    wanted = _digests(storage, _versions(storage, refs, every=False))
    store = open_remote(storage, config)
    index = store.index()
    need: set[str] = set()
    skipped: list[str] = []
    total: set[str] = set()
    for ref, objs in wanted.items():
        missing = storage.objects.missing(set(objs))
        absent = {h for h in missing if h not in index}
        if absent:
            if refs:
                msg = f"{ref}: {len(absent)} of its objects are neither in the cache nor on the remote {config.name!r}"
                raise NotFound(msg)
            skipped.append(ref)
            continue
        total |= set(objs)
        need |= missing
    moved = store.download(storage.objects, need, index, progress)
    sizes = {h: n for objs in wanted.values() for h, n in objs.items()}
    nbytes = sum(sizes.get(h, 0) for h in need)
    return SyncReport(
        config.name, store.remote.url, moved.objects, nbytes, moved.packs, store.requests,
        len(total) - len(need), tuple(skipped),
    )  # fmt: skip


def pull(
    storage: Storage,
    refs: Sequence[str] = (),
    *,
    remote: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> SyncReport:
    """:func:`fetch`, then check each version out where it was added."""
    report = fetch(storage, refs, remote=remote, progress=progress)
    versions = [
        v for v in _versions(storage, refs, every=False) if v.digest is not None and v.ref not in report.skipped
    ]
    done = tuple(storage.checkout(v, force=force, remote=remote) for v in versions if v.uri)
    return SyncReport(
        report.remote, report.url, report.objects, report.bytes, report.packs, report.requests,
        report.already, report.skipped, done,
    )  # fmt: skip


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
    r_objects = r_packs = r_bytes = 0
    if remote:
        config = storage.settings.remote(remote_name)
        check_writable(config.url)
        store = open_remote(storage, config)
        index = store.index()
        r_objects, r_packs, r_bytes, partial = _remote_garbage(store, index, reachable, dry_run)
        if partial:
            notes.append(f"{partial} packs hold both kept and unreachable objects; they stay whole")
    return GcReport(len(versions), count, freed, r_objects, r_packs, r_bytes, dry_run, tuple(notes))


def _remote_garbage(
    store: RemoteStore, index: RemoteIndex, reachable: set[str], dry_run: bool
) -> tuple[int, int, int, int]:
    paths: list[str] = []
    objects = packs = nbytes = partial = 0
    for hexd in sorted(index.loose - reachable):
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
    if not dry_run and paths:
        store.delete(paths)
        for name, entries in index.packs.items():
            if not any(e.digest in reachable for e in entries):
                store.forget_pack(name)
    return objects, packs, nbytes, partial


__all__ = ["GcReport", "SyncReport", "download", "fetch", "gc", "kept_versions", "parse_age", "pull", "push"]
