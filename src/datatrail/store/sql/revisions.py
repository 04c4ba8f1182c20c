"""The schema revisions this datatrail knows (kept free of SQLAlchemy imports)."""

from __future__ import annotations

# Every Alembic revision in migrations/versions, oldest first; the last is the head.
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011", "0012", "0013")
HEAD = REVISIONS[-1]
