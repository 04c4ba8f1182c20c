"""The environments' pages: what is live where (``datatrail deploy``) and how its inputs drifted since.

``/environments`` lists every environment the caller can see a deployment in;
``/environments/{env}`` shows the live deployment(s) and, for each, the drift
history since it went live (``datatrail drift --history --env ENV``) as an SVG
line chart drawn on the server and as a table. Both read through the request's
Trail, so deployments and drift reports of datasets the caller may not read
are left out, and an environment with nothing visible is a 404 page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datatrail.core.errors import DatatrailError, NotFound
from datatrail.core.model import Ref
from datatrail.core.records import Deployment
from datatrail.ml.lifecycle import DriftHistory
from datatrail.server.ui import hooks
from datatrail.server.ui.chart import drift_chart, series
from datatrail.server.ui.pages import _decode, page
from datatrail.server.ui.render import version_url
from datatrail.service import Trail

router = APIRouter(include_in_schema=False)

MAX_BATCHES = 200  # a longer history shows its latest batches (the CLI and the API give them all)


def ref_url(ref: str) -> str:
    """The version page of a ref as a drift report stores it (``ns:name@3``), or "" when it does not parse."""
    try:
        parsed = Ref.parse(ref)
    except DatatrailError:
        return ""
    return version_url(parsed.namespace, parsed.name, parsed.selector or "latest")


def _environments(trail: Trail) -> dict[str, Any]:
    found: dict[str, dict[str, Any]] = {}
    for d in hooks.environment_deployments(trail):  # newest first
        env = found.setdefault(d.environment, {"name": d.environment, "live": [], "count": 0, "last": d.deployed_at})
        env["count"] += 1
        if d.active:
            env["live"].append(d)
    return {"environments": sorted(found.values(), key=lambda e: e["name"]), "title": "Environments"}


@router.get("/environments")
async def environments_page(request: Request) -> Response:
    return await page(request, "environments.html", _environments)


def _history(history: DriftHistory) -> dict[str, Any]:
    """One history as the template shows it: the chart, and the table's rows (its latest MAX_BATCHES)."""
    total = len(history.records)
    history = DriftHistory(history.environment, history.deployment, history.records[-MAX_BATCHES:])
    first = total - len(history.records) + 1
    data = series(history)
    rows = []
    for number, (record, batch) in enumerate(zip(history.records, data["batches"], strict=True), first):
        rows.append(
            {
                "number": number,
                "run_id": record.run_id,
                "time": record.created_at,
                "current": record.current,
                "current_url": ref_url(record.current),
                "reference": record.reference,
                "reference_url": ref_url(record.reference),
                "drifted": record.drifted,
                "cells": [
                    {"score": batch["scores"][f], "drifted": f in batch["drifted_columns"]} for f in data["features"]
                ],
            }
        )
    return {
        "deployment": history.deployment,
        "features": [{"name": f, "kind": data["kinds"].get(f, "other")} for f in data["features"]],
        "bounds": data["bounds"],
        "rows": rows,
        "total": total,
        "chart": drift_chart(history, first),
    }


def _environment(trail: Trail, raw: str) -> dict[str, Any]:
    (environment,) = _decode(raw)
    deployments: list[Deployment] = hooks.environment_deployments(trail, environment)
    if not deployments:
        msg = f"no environment named {environment!r}: nothing was deployed there (datatrail deploy REF --env NAME)"
        raise NotFound(msg)
    histories = hooks.drift_histories(trail, environment, deployments)
    return {
        "environment": environment,
        "live": [d for d in deployments if d.active],
        "retired": [d for d in deployments if not d.active],
        "histories": [_history(h) for h in histories],
        "title": f"Environment {environment}",
    }


@router.get("/environments/{environment}")
async def environment_page(request: Request, environment: str) -> Response:
    return await page(request, "environment.html", _environment, environment)
