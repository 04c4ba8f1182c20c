"""Derived state beyond the core tables, applied inside ``SqlStore.ingest``.

``SqlStore._apply`` records datasets, versions, runs and run inputs/outputs.
Everything else an event can carry (column lineage, standard facets mapped onto
the model, deployments, classifications…) is applied by the functions listed in
:func:`appliers`, each in its own module, in the same transaction. An applier
receives an :class:`Applied` and must, like the core, give the same final state
whatever order events arrive in and however often they repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from datatrail.core.changes import Changes, DatasetChange


@dataclass(frozen=True)
class Touched:
    """One dataset of the event, with the rows it maps to."""

    change: DatasetChange
    dataset_id: int
    version_id: int | None  # None: an input with no version known yet


@dataclass(frozen=True)
class Applied:
    """What the core ingest did for one event, handed to each applier."""

    conn: Connection
    dialect: str
    changes: Changes
    event_id: int
    run_pk: int | None
    datasets: tuple[Touched, ...] = field(default_factory=tuple)
    # The id of the dataset (namespace, name), created if it does not exist yet (a RENAME's previous name).
    dataset_of: Callable[[str, str], int] | None = None

    def insert_ignore(self, table: Any, rows: list[dict[str, Any]]) -> None:
        """INSERT rows, skipping those whose key already exists (repeats are no-ops)."""
        if not rows:
            return
        from sqlalchemy.dialects import postgresql, sqlite

        mod = postgresql if self.dialect == "postgresql" else sqlite
        self.conn.execute(mod.insert(table).on_conflict_do_nothing(), rows)


Applier = Callable[[Applied], None]


def appliers() -> list[Applier]:
    """Every applier, in the order they run (imported lazily: only writers need them)."""
    from datatrail.store.sql import classify, facet_map, ml_apply

    return [facet_map.apply, ml_apply.apply, classify.apply]
