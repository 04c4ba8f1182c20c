"""Standard OpenLineage facets mapped onto the model (filled in by the server issue)."""

from __future__ import annotations

from datatrail.store.sql.appliers import Applied


def apply(applied: Applied) -> None:
    return None
