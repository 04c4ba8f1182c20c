"""Verifying that the data behind versions is still what was recorded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from datatrail.core.errors import DatatrailError
from datatrail.core.model import Version
from datatrail.hashing import hash_path
from datatrail.remote import is_url

if TYPE_CHECKING:
    from datatrail.service import Trail


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
    trail: Trail,
    versions: Sequence[Version],
    *,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    report = VerifyReport()
    cache = trail.stat_cache() if use_cache else None
    for version in versions:
        path = local_path(version.uri)
        if path is None and is_url(version.uri) and version.digest is not None:
            from datatrail.remote.verify import verify_remote  # s3://, gs://…: listed, read only if changed

            verify_remote(trail, version, report, use_cache=use_cache, progress=progress)
            continue
        if path is None or version.digest is None:
            report.skipped.append((version, "no local data recorded"))
            continue
        report.checked.append(version)
        if not path.exists():
            report.problems.append(Problem(version.ref, "missing", str(path), str(version.digest)))
            continue
        try:
            hashed = hash_path(path, cache=cache, progress=progress)
        except DatatrailError as exc:
            report.problems.append(Problem(version.ref, "unreadable", str(path), None, str(exc)))
            continue
        if hashed.digest == version.digest:
            continue
        if hashed.files is None or not version.is_directory:
            report.problems.append(Problem(version.ref, "changed", str(path), str(version.digest), str(hashed.digest)))
            continue
        recorded = {f.path: f for f in trail.manifest(version)}
        now = {f.path: f for f in hashed.files}
        for rel in sorted(recorded.keys() | now.keys()):
            before, after = recorded.get(rel), now.get(rel)
            full = str(path / rel)
            if after is None:
                report.problems.append(
                    Problem(version.ref, "missing", full, f"sha256:{before.digest.hex}" if before else None)
                )
            elif before is None:
                report.problems.append(Problem(version.ref, "added", full, None, str(after.digest)))
            elif before.digest != after.digest:
                report.problems.append(Problem(version.ref, "changed", full, str(before.digest), str(after.digest)))
    return report
