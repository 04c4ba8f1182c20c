"""The SQL store's :class:`~datatrail.store.base.Locations`: which remote holds the bytes of which version.

A push records, per version whose objects are all on the remote, the remote's
name and URL (``content_locations``, revision 0007); a client whose own config
lacks that remote asks for it and fetches directly from the URL with its own
credentials. The store never holds bytes, nor credentials: a URL carrying any
is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select, update

from datatrail.core.errors import NotFound
from datatrail.core.model import Version
from datatrail.core.records import ContentLocation
from datatrail.core.times import stored_time
from datatrail.store.sql import tables as t
from datatrail.store.sql.audit import AuditTables, with_origin
from datatrail.store.sql.database import Database
from datatrail.store.sql.locate import check_location
from datatrail.store.sql.queries import dataset_row


class LocationTables:
    """Reads and writes of ``content_locations``."""

    def __init__(self, db: Database, audit: AuditTables) -> None:
        self._db = db
        self._audit = audit

    def content_locations(self, version: Version) -> list[ContentLocation]:
        c, v = t.content_locations.c, t.versions.c
        with self._db.read() as conn:
            ds = dataset_row(conn, version.namespace, version.name)
            rows = conn.execute(
                select(c.remote, c.url, c.recorded_at, c.recorded_by)
                .join(t.versions, v.id == c.version_id)
                .where(v.dataset_id == ds.id, v.number == version.number)
                .order_by(c.recorded_at.desc(), c.url)
            ).all()
        out = []
        for r in rows:
            when = stored_time(r.recorded_at)
            assert when is not None
            out.append(
                ContentLocation(version.namespace, version.name, version.number, r.remote, r.url, when, r.recorded_by)
            )
        return out

    def record_content_location(
        self, versions: Sequence[Version], remote: str, url: str, *, actor: str, origin: str | None = None
    ) -> int:
        """Record that ``url`` holds every object of ``versions``; the number of versions newly recorded there.

        A version recorded there already under the same name keeps its record (who pushed it first, when);
        one under another name is renamed. When nothing changes, nothing is written, not even an audit entry."""
        check_location(remote, url)
        if not versions:
            return 0
        c, v = t.content_locations.c, t.versions.c
        now = datetime.now(UTC)
        added = changed = 0
        with self._db.write() as tx:
            for version in versions:
                ds = dataset_row(tx, version.namespace, version.name)
                vid = tx.execute(select(v.id).where(v.dataset_id == ds.id, v.number == version.number)).scalar()
                if vid is None:
                    msg = f"{version.ref} does not exist in the store; `datatrail versions NAME` lists its versions"
                    raise NotFound(msg)
                key = (c.version_id == vid, c.url == url)
                known = tx.execute(select(c.remote).where(*key)).first()
                if known is None:
                    tx.execute(
                        t.content_locations.insert().values(
                            version_id=vid, url=url, remote=remote, recorded_at=now, recorded_by=actor
                        )
                    )
                    added += 1
                elif known.remote != remote:
                    tx.execute(update(t.content_locations).where(*key).values(remote=remote, recorded_at=now))
                    changed += 1
            if not added and not changed:
                return 0
            self._audit.append(
                tx,
                actor=actor,
                action="content.locate",
                target=versions[0].ref if len(versions) == 1 else None,
                details=with_origin({"remote": remote, "url": url, "versions": [x.ref for x in versions]}, origin),
                event_id=None,
            )
        return added

    def forget_content_location(
        self, versions: Sequence[Version], url: str, *, actor: str, origin: str | None = None
    ) -> int:
        """Remove the records that ``url`` holds ``versions`` (those it has); audited when any was removed."""
        if not versions:
            return 0
        c, v = t.content_locations.c, t.versions.c
        with self._db.write() as tx:
            ids = []
            for version in versions:
                try:
                    ds = dataset_row(tx, version.namespace, version.name)
                except NotFound:
                    continue  # nothing recorded for a dataset the store does not have
                vid = tx.execute(select(v.id).where(v.dataset_id == ds.id, v.number == version.number)).scalar()
                if vid is not None:
                    ids.append(vid)
            gone = (
                [
                    r.version_id
                    for r in tx.execute(select(c.version_id).where(c.url == url, c.version_id.in_(ids))).all()
                ]
                if ids
                else []
            )
            if not gone:
                return 0
            tx.execute(delete(t.content_locations).where(c.url == url, c.version_id.in_(gone)))
            names = [x.ref for x in versions]
            self._audit.append(
                tx,
                actor=actor,
                action="content.forget",
                target=names[0] if len(gone) == 1 and len(versions) == 1 else None,
                details=with_origin({"url": url, "forgotten": len(gone), "versions": names[:1000]}, origin),
                event_id=None,
            )
        return len(gone)


__all__ = ["LocationTables"]
