"""DVC's cache and datatrail's object cache, both ways: MD5 objects re-hashed once to SHA-256, and back.

DVC 3 keeps file ``md5`` at ``.dvc/cache/files/md5/ab/cdef…`` (DVC 2 at
``.dvc/cache/ab/cdef…``), and a directory as ``<md5>.dir``: a JSON listing of
``{"md5", "relpath"}`` per file. Importing reads each object once, computing
MD5 (checked against its name) and SHA-256 together, and keeps it in
``.datatrail/objects/`` under its SHA-256, so a DVC project moves to datatrail
with its data. Exporting writes a ``.dvc`` file and DVC's cache entries for a
version, so ``dvc checkout`` gives it back.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from datatrail.core.errors import InvalidInput
from datatrail.core.model import Digest, FileEntry
from datatrail.hashing import HashResult, manifest_digest

if TYPE_CHECKING:
    from datatrail.service import Trail

CHUNK = 1 << 20


def cache_dir(root: Path) -> Path | None:
    """The project's DVC cache (``.dvc/cache``), when it has one."""
    found = root / ".dvc" / "cache"
    return found if found.is_dir() else None


def _object(cache: Path, md5: str) -> Path | None:
    for candidate in (cache / "files" / "md5" / md5[:2] / md5[2:], cache / md5[:2] / md5[2:]):
        if candidate.is_file():
            return candidate
    return None


def _import_file(trail: Trail, cache: Path, md5: str) -> tuple[str, int] | None:
    """(sha256 hex, size) of DVC's object ``md5``, kept in datatrail's cache; None when DVC's cache lacks it."""
    path = _object(cache, md5)
    if path is None:
        return None
    m, s = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            m.update(chunk)
            s.update(chunk)
            size += len(chunk)
    if m.hexdigest() != md5:
        return None  # a corrupt DVC object is not imported; the version keeps its MD5 only
    trail.storage.objects.add_file(s.hexdigest(), path)
    return s.hexdigest(), size


def hash_from_cache(trail: Trail, root: Path, md5: str) -> HashResult | None:
    """The SHA-256 digest (and manifest) of a DVC output from DVC's cache, its objects kept; None if incomplete."""
    cache = cache_dir(root)
    if cache is None:
        return None
    if not md5.endswith(".dir"):
        got = _import_file(trail, cache, md5)
        return None if got is None else HashResult(Digest.sha256(got[0]), got[1], None)
    listing_path = _object(cache, md5)
    if listing_path is None:
        return None
    try:
        listing = json.loads(listing_path.read_bytes())
    except ValueError:
        return None
    files = []
    for item in sorted(listing, key=lambda e: e.get("relpath", "")):
        if not isinstance(item, dict) or not isinstance(item.get("md5"), str):
            return None
        got = _import_file(trail, cache, item["md5"])
        if got is None:
            return None
        files.append(FileEntry(str(item["relpath"]), got[1], Digest.sha256(got[0])))
    entries = tuple(files)
    return HashResult(manifest_digest(entries), sum(f.size for f in entries), entries)


def keep_from_workspace(trail: Trail, path: Path, hashed: HashResult) -> None:
    """Keep the bytes of a workspace output that matched DVC's record (as ``add --store-content`` does)."""
    with trail.storage.writing():
        trail.storage.keep(path, hashed)


# ------------------------------------------------------------ export


def export_dvc(trail: Trail, ref: str, project: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Write ``<path>.dvc`` and DVC's cache entries for a version, in the DVC project ``project``.

    The path is the dataset's path relative to the store's root (where it was added).

    >>> export_dvc(trail, "data/images@2")           # doctest: +SKIP
    {'dvc_file': '.../data/images.dvc', 'md5': '…​.dir', 'objects': 3}
    """
    root = Path(project).resolve() if project is not None else trail.root
    if not (root / ".dvc").is_dir():
        msg = f"{os.fspath(root)!r} is not a DVC project (no .dvc/ folder); run `dvc init` there first"
        raise InvalidInput(msg)
    version = trail.get(ref)
    files = trail.storage.files_of(version)
    trail.storage.ensure_local({h for h, _ in files.values()}, version=version)
    target = trail.storage.default_path(version)
    try:
        rel = target.resolve().relative_to(root)
    except ValueError:
        msg = f"{version.ref} was added at {os.fspath(target)!r}, outside the DVC project {os.fspath(root)!r}"
        raise InvalidInput(msg) from None
    cache = root / ".dvc" / "cache" / "files" / "md5"
    written = 0
    md5s: dict[str, str] = {}
    for relpath, (hexd, _size) in sorted(files.items()):
        data_path = trail.storage.objects.path(hexd)
        md5 = _md5(data_path)
        md5s[relpath] = md5
        written += _write_cache(cache, md5, data_path.read_bytes() if _small(data_path) else data_path)
    out: dict[str, Any] = {"path": rel.name, "hash": "md5", "size": version.size}
    if version.is_directory:
        listing = [{"md5": md5s[r], "relpath": r} for r in sorted(md5s)]
        payload = json.dumps(listing, sort_keys=True).encode("utf-8")
        dir_md5 = hashlib.md5(payload, usedforsecurity=False).hexdigest() + ".dir"
        written += _write_cache(cache, dir_md5, payload)
        out = {"md5": dir_md5, **out, "nfiles": len(md5s)}
    else:
        out = {"md5": md5s[""], **out}
    dvc_file = root / rel.parent / f"{rel.name}.dvc"
    dvc_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = dvc_file.with_name(f".{dvc_file.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(yaml.safe_dump({"outs": [out]}, sort_keys=False), encoding="utf-8")
    os.replace(tmp, dvc_file)
    return {"ref": version.ref, "dvc_file": os.fspath(dvc_file), "md5": out["md5"], "objects": written}


def _small(path: Path) -> bool:
    return path.stat().st_size < CHUNK


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _write_cache(cache: Path, md5: str, data: bytes | Path) -> int:
    """Write one DVC cache object (atomically, read-only like DVC's); 0 when it was there already."""
    dest = cache / md5[:2] / md5[2:]
    if dest.exists():
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    if isinstance(data, Path):
        import shutil  # light

        shutil.copyfile(data, tmp)
    else:
        tmp.write_bytes(data)
    tmp.chmod(0o444)
    os.replace(tmp, dest)
    return 1


__all__ = ["export_dvc", "hash_from_cache", "keep_from_workspace"]
