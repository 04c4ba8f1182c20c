"""The audit actions a client may ask its writes to be recorded as.

Through a server (``POST /api/v1/events``, the HTTP store's write) a client names
the action of each write; the server records only these, so a caller cannot
write entries that read as user, token or grant changes, reads or refusals.

>>> check_write_action("run.complete")
'run.complete'
"""

from __future__ import annotations

from typing import Any

from datatrail.core.errors import InvalidInput

WRITE_ACTIONS = frozenset(
    {
        "lineage.ingest",  # any OpenLineage event (Trail.ingest)
        "dataset.add",
        "dataset.classify",
        "version.tag",
        "version.check",
        "run.start",
        "run.running",
        "run.complete",
        "run.fail",
        "run.abort",
        "model.deploy",
        "model.monitor",
        "import.openlineage",
        "import.mlflow",
        "import.dvc",
    }
)


def check_write_action(action: Any) -> str:
    """``action`` when a client may ask for it; InvalidInput (400) listing the accepted ones otherwise."""
    if isinstance(action, str) and action in WRITE_ACTIONS:
        return action
    shown = repr(action[:64]) if isinstance(action, str) else type(action).__name__
    msg = f"the action {shown} cannot be requested; use one of {', '.join(sorted(WRITE_ACTIONS))}"
    raise InvalidInput(msg)
