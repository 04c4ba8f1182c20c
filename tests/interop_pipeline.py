"""A small pipeline the interop tests share: versions with digests, runs, metrics and column lineage."""

from __future__ import annotations

import uuid
from pathlib import Path

import datatrail
from datatrail.core.model import RunState, Version
from datatrail.events import PRODUCER, build_run_event
from tests.conftest import write

COLUMN_LINEAGE_URL = (
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
)


def build_pipeline(trail: datatrail.Trail, root: Path) -> dict[str, Version]:
    """raw/penguins → clean (a run) → clean/penguins → features (a run with column lineage) → features."""
    raw = write(root / "data" / "raw.csv", "id,bill_length_mm,bill_depth_mm\n1,39.1,18.7\n2,39.5,17.4\n3,,\n")
    v_raw = trail.add(raw, name="raw/penguins", tags=["candidate"])
    with trail.run("clean", params={"dropna": True}) as run:
        run.input(v_raw)
        clean = write(root / "data" / "clean.csv", "id,bill_length_mm,bill_depth_mm\n1,39.1,18.7\n2,39.5,17.4\n")
        v_clean = run.output(clean, name="clean/penguins")
        run.log_metric("rows_dropped", 1)
    features = write(root / "data" / "features.csv", "id,bill_ratio\n1,2.09\n2,2.27\n")
    info = trail.version_info(features, trail.hash(features))
    event = build_run_event(
        RunState.COMPLETE,
        str(uuid.uuid4()),
        "default",
        "features",
        run_facts={"user": "ada", "command": "python features.py", "params": {"ratio": "length/depth"}},
        inputs=[("default", "clean/penguins", str(v_clean.key))],
        outputs=[("default", "features", info)],
    )
    inputs = [
        {"namespace": "default", "name": "clean/penguins", "field": f, "transformations": [{"type": "DIRECT"}]}
        for f in ("bill_length_mm", "bill_depth_mm")
    ]
    event["outputs"][0]["facets"]["columnLineage"] = {
        "_producer": PRODUCER,
        "_schemaURL": COLUMN_LINEAGE_URL,
        "fields": {"bill_ratio": {"inputFields": inputs}},
    }
    trail.ingest(event)
    return {"raw": v_raw, "clean": v_clean, "features": trail.get("features")}
