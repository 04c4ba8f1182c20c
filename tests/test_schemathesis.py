"""Schemathesis over the OpenAPI spec of a real `datatrail serve`: every route, generated requests.

Each operation of ``/openapi.json`` gets requests generated from its schema
(valid and invalid parameters and bodies). For every one: no 5xx, and every
response matches the schema the spec declares for its status. The server runs
as a real process over a store that already holds versions, a run and
lineage, so the reads reach real rows. The number of examples per operation is
kept small so the whole module runs in about a minute on two cores.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

import datatrail
from datatrail.server.app import create_app
from tests import httpserver
from tests.conftest import write

EXAMPLES = int(os.environ.get("DATATRAIL_SCHEMATHESIS_EXAMPLES", "12"))


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the spec, read from the application itself."""
    with tempfile.TemporaryDirectory() as d:
        app = create_app(f"sqlite:///{Path(d) / 'spec.db'}")
        spec = app.openapi()
        app.state.server.close()
    return [(m.upper(), p) for p, ops in sorted(spec["paths"].items()) for m in sorted(ops)]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    """A real server over a store with two datasets, a run between them, tags and checks."""
    folder = tmp_path_factory.mktemp("schemathesis")
    root = folder / "data"
    root.mkdir()
    trail = datatrail.init(root)
    raw = trail.add(write(root / "raw.csv", "a,b\n1,2\n3,4\n"), name="raw", tags=["prod"])
    with trail.run("clean", params={"k": 1}) as run:
        run.input(raw)
        run.output(write(root / "clean.csv", "a\n1\n"), name="clean")
        run.log_metric("rows", 1)
    trail.close()
    srv = httpserver.start(folder / "srv", store=f"sqlite:///{root / '.datatrail' / 'trail.db'}")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def schema(server: httpserver.Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.uri}/openapi.json")


def test_the_spec_lists_every_route(server: httpserver.Server) -> None:
    served = httpx.get(f"{server.uri}/openapi.json").json()
    assert [(m.upper(), p) for p, ops in sorted(served["paths"].items()) for m in sorted(ops)] == OPERATIONS
    assert len(OPERATIONS) >= 20


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error_and_responses_match_the_spec(
    schema: Any, server: httpserver.Server, method: str, path: str
) -> None:
    operation = schema[path][method]
    seen: list[int] = []
    # Valid requests and invalid ones (wrong types, missing fields, out-of-range values).
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(
            base_url=server.uri, checks=[not_a_server_error, response_schema_conformance], timeout=30
        )
        seen.append(response.status_code)
        if response.status_code >= 400:
            # Every refusal is the one error shape: {"error", "detail"}, even a request line too
            # long for the HTTP parser (a 414 from server/protocol.py).
            body = json.loads(response.content)
            assert set(body) == {"error", "detail"}, body

    check()
    assert seen and all(s < 500 for s in seen)


def test_the_store_survived(server: httpserver.Server) -> None:
    """After the generated traffic the server still answers and its store passes its check."""
    problems = httpx.get(f"{server.uri}/api/v1/integrity").json()["problems"]
    assert problems == []
    run = httpx.get(f"{server.uri}/api/v1/runs/{uuid.uuid4()}")
    assert run.status_code == 404
