"""What the core of ingest did for one event, as each applier (appliers.py) receives it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from datatrail.core.changes import Changes, DatasetChange
from datatrail.store.sql.transaction import Tx


@dataclass(frozen=True)
class Touched:
    """One dataset of the event, with the rows it maps to."""

    change: DatasetChange
    dataset_id: int
    version_id: int | None  # None: an input with no version known yet


@dataclass(frozen=True)
class Applied:
    """The event's transaction (everything an applier writes runs through it), its changes and their rows."""

    tx: Tx
    changes: Changes
    event_id: int
    run_pk: int | None
    datasets: tuple[Touched, ...] = field(default_factory=tuple)
    # The id of the dataset (namespace, name), created if it does not exist yet (a RENAME's previous name).
    dataset_of: Callable[[str, str], int] | None = None  # a dataset's id by namespace and name (made if need be)

    def insert_ignore(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """INSERT rows, skipping those whose key already exists (repeats are no-ops)."""
        if not rows:
            return
        mod = postgresql if self.tx.dialect == "postgresql" else sqlite
        self.tx.execute(mod.insert(table).on_conflict_do_nothing(), rows)


Applier = Callable[[Applied], None]
