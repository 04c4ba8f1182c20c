"""Derived state beyond the core tables, applied inside the ingest transaction.

The core of ingest (apply.py) records datasets, versions, runs and run
inputs/outputs. Everything else an event can carry (column lineage, standard
facets mapped onto the model, deployments, classifications…) is applied by the
functions :data:`APPLIERS` lists, each in its own module, in the same
transaction. An applier receives an :class:`~datatrail.store.sql.applied.Applied`
and must, like the core, give the same final state whatever order events arrive
in and however often they repeat.
"""

from __future__ import annotations

from datatrail.store.sql import classify, facet_map, ml_apply
from datatrail.store.sql.applied import Applier

# In the order they run: classify reads the column lineage facet_map writes.
APPLIERS: tuple[Applier, ...] = (facet_map.apply, ml_apply.apply, classify.apply)
