"""Verifying that the data behind versions is still what was recorded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from datatrail.core.errors import DatatrailError, NotFound
from datatrail.core.model import FileEntry, Version
from datatrail.hashing import HashResult
from datatrail.recorder import Recorder
from datatrail.remote import is_url

CONTENT = "content"  # a digest read from the bytes (remote data may record the store's checksum instead)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a version's data: ``missing``, ``changed``, ``added`` or ``unreadable``."""

    ref: str
    kind: str
    path: str
    expected: str | None = None
    actual: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "problem": self.kind,
            "path": self.path,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass
class VerifyReport:
    checked: list[Version] = field(default_factory=list)
    skipped: list[tuple[Version, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": [v.ref for v in self.checked],
            "skipped": [{"ref": v.ref, "reason": why} for v, why in self.skipped],
            "problems": [p.to_dict() for p in self.problems],
        }


def local_path(uri: str | None) -> Path | None:
    if not uri or not uri.startswith("file:"):
        return None
    return Path(unquote(urlparse(uri).path))


def verify_versions(
    recorder: Recorder,
    manifest: Callable[[Version], list[FileEntry]],
    versions: Sequence[Version],
    *,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Re-hash the data behind each version (a local path or a URL) and report what is missing or changed.

    ``manifest`` gives a directory version's recorded files, to say which file changed.
    """
    report = VerifyReport()
    for version in versions:
        path = local_path(version.uri)
        remote = path is None and is_url(version.uri) and version.digest is not None
        if not remote and (path is None or version.digest is None):
            report.skipped.append((version, "no local data recorded"))
            continue
        report.checked.append(version)
        where = str(path) if path is not None else version.uri or ""
        if path is not None and not path.exists():
            report.problems.append(Problem(version.ref, "missing", where, str(version.digest)))
            continue
        try:
            hashed = _rehash(recorder, version, path, use_cache, progress)
        except NotFound:
            report.problems.append(Problem(version.ref, "missing", where, str(version.digest)))
            continue
        except DatatrailError as exc:
            report.problems.append(Problem(version.ref, "unreadable", where, None, str(exc)))
            continue
        if hashed.digest == version.digest:
            continue
        if hashed.files is None or not version.is_directory:
            report.problems.append(Problem(version.ref, "changed", where, str(version.digest), str(hashed.digest)))
            continue
        report.problems.extend(_changed_files(version, where, manifest(version), hashed.files, local=path is not None))
    return report


def _rehash(
    recorder: Recorder,
    version: Version,
    path: Path | None,
    use_cache: bool,
    progress: Callable[[int, int], None] | None,
) -> HashResult:
    if path is not None:
        return recorder.hash(path, use_cache=use_cache, progress=progress)
    # s3://, gs://…: listed, read only if changed; a digest recorded from the store's checksums is verified so too.
    checksum = version.properties.get("digest_source", CONTENT) != CONTENT
    uri = version.uri or ""
    return recorder.hash_url(uri, use_cache=use_cache, progress=progress, use_store_checksum=checksum).result


def _changed_files(
    version: Version, where: str, recorded: list[FileEntry], now: tuple[FileEntry, ...], *, local: bool
) -> list[Problem]:
    """One problem per file missing, added or changed between the recorded manifest and the data now."""
    before_of = {f.path: f for f in recorded}
    after_of = {f.path: f for f in now}
    out: list[Problem] = []
    for rel in sorted(before_of.keys() | after_of.keys()):
        before, after = before_of.get(rel), after_of.get(rel)
        full = str(Path(where) / rel) if local else f"{where.rstrip('/')}/{rel}"
        if after is None:
            out.append(Problem(version.ref, "missing", full, str(before.digest) if before else None))
        elif before is None:
            out.append(Problem(version.ref, "added", full, None, str(after.digest)))
        elif before.digest != after.digest:
            out.append(Problem(version.ref, "changed", full, str(before.digest), str(after.digest)))
    return out
