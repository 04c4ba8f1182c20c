"""Verifying remote data against its versions (``datatrail verify`` of an ``s3://…`` version)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from datatrail.core.errors import DatatrailError, NotFound
from datatrail.core.model import Version
from datatrail.remote.add import hash_url
from datatrail.remote.hashing import CONTENT

if TYPE_CHECKING:
    from datatrail.service import Trail
    from datatrail.verify import VerifyReport


def verify_remote(
    trail: Trail,
    version: Version,
    report: VerifyReport,
    *,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Re-hash the remote data of ``version`` (unchanged objects are listed, not read) and add any problem."""
    from datatrail.verify import Problem

    uri = version.uri or ""
    report.checked.append(version)
    # A digest recorded from the store's checksums is verified the same way.
    checksum = version.properties.get("digest_source", CONTENT) != CONTENT
    try:
        _, hashed = hash_url(trail, uri, use_cache=use_cache, progress=progress, use_store_checksum=checksum)
    except NotFound:
        report.problems.append(Problem(version.ref, "missing", uri, str(version.digest)))
        return
    except DatatrailError as exc:
        report.problems.append(Problem(version.ref, "unreadable", uri, None, str(exc)))
        return
    result = hashed.result
    if result.digest == version.digest:
        return
    if result.files is None or not version.is_directory:
        report.problems.append(Problem(version.ref, "changed", uri, str(version.digest), str(result.digest)))
        return
    recorded = {f.path: f for f in trail.manifest(version)}
    now = {f.path: f for f in result.files}
    for rel in sorted(recorded.keys() | now.keys()):
        before, after = recorded.get(rel), now.get(rel)
        where = f"{uri.rstrip('/')}/{rel}"
        if after is None:
            report.problems.append(Problem(version.ref, "missing", where, str(before.digest) if before else None))
        elif before is None:
            report.problems.append(Problem(version.ref, "added", where, None, str(after.digest)))
        elif before.digest != after.digest:
            report.problems.append(Problem(version.ref, "changed", where, str(before.digest), str(after.digest)))


__all__ = ["verify_remote"]
