"""Search pages in the store (issue 22, item 6): ``GET /api/v1/search`` and the UI's search page answer
exactly what the route answered when it fetched every match and sorted and sliced in Python.

That algorithm is kept here as the reference (:func:`reference`). Every store (SQLite, PostgreSQL, a real
server through the HTTP store) is filled with names that stress the matching and the order (case, Unicode
case folding, wildcards, names outside printable ASCII, several namespaces and days), and many
(q, filter, sort, namespace, before, after, limit, offset) are asked of the new route and of the reference;
both SQL paths (names outside ASCII folded in SQL, and the fallback that sorts light rows in Python) are
checked, and a reader who may see one namespace gets the reference's answer with the others left out,
in the page and in ``totalCount``.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import datatrail
from datatrail.core.times import iso
from datatrail.server import create_app
from datatrail.store.sql import search as sql_search

PRODUCER = "https://example.com/tests"
NAMES = [
    *("b", "a", "A", "Ab", "aB", "c_d", "cxd", "Straße", "STRASSE", "straße", "d9999", "D9999", "d19999"),
    *("x\\y", "ünï", "ÜNÏ", "e%f", "z", "\u212a", "k", "\u01c5x", "i\u0307x", "İx", "ǈ", "wide é"),
]
SPACES = ["ns", "NS2", "team-a", "team-b", "ßpace"]
QUERIES = ["a", "A", "ss", "ß", "SS", "c_d", "c%d", "_", "%", "x\\y", "e%f", "ns", "team", "ü", "k", "K", "\u212a"]
QUERIES += ["d9", "d9_99", "nothing", "i\u0307", "ǆ", "é", "b%", "%a%b", "\t", "pace", "-"]
Search = Callable[[dict[str, Any]], dict[str, Any]]


def event(namespace: str, output: str, job: str, day: int) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": f"2026-01-0{day}T0{day}:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": [],
        "outputs": [{"namespace": namespace, "name": output}],
    }


def fill(trail: datatrail.Trail) -> None:
    """Each name in a few namespaces, written on one of five days, with a job named after it (two jobs of
    the same day share a second, so the newest-first order has ties)."""
    rng = random.Random(7)
    for i, name in enumerate(NAMES):
        for ns in rng.sample(SPACES, 2):
            trail.ingest(event(ns, name, rng.choice([f"job {name}", name.upper(), "shared"]), 1 + i % 5))


def reference(
    trail: datatrail.Trail, q: str, kind: str | None, namespace: str | None, sort: str, before: Any, after: Any
) -> list[dict[str, Any]]:
    """The route's algorithm before issue 22's item 6: every match of every kind, then dates and order here."""
    hits: list[dict[str, Any]] = []
    if kind in (None, "dataset"):
        hits += [
            {
                "type": "DATASET",
                "name": d.name,
                "updatedAt": iso(d.created_at),
                "namespace": d.namespace,
                "nodeId": f"dataset:{d.namespace}:{d.name}",
            }
            for d in trail.datasets(namespace, match=q)
        ]
    if kind in (None, "job"):
        hits += [
            {
                "type": "JOB",
                "name": j.name,
                "updatedAt": iso(j.created_at),
                "namespace": j.namespace,
                "nodeId": f"job:{j.namespace}:{j.name}",
            }
            for j in trail.jobs(namespace, match=q)
        ]
    if before is not None:
        hits = [h for h in hits if h["updatedAt"] is not None and h["updatedAt"][:10] < before]
    if after is not None:
        hits = [h for h in hits if h["updatedAt"] is not None and h["updatedAt"][:10] > after]
    hits.sort(key=lambda h: (h["name"].casefold(), h["namespace"], h["type"]))
    if sort == "updated_at":
        hits.sort(key=lambda h: h["updatedAt"] or "", reverse=True)
    return hits


def cases(n: int) -> Iterator[dict[str, Any]]:
    """Every query with the defaults, then ``n`` drawn combinations of every parameter."""
    for q in QUERIES:
        yield {"q": q}
    rng = random.Random(22)
    for _ in range(n):
        params = {
            "q": rng.choice(QUERIES),
            "filter": rng.choice([None, "dataset", "job", "DATASET", "Job"]),
            "sort": rng.choice([None, "name", "updated_at", "UPDATED_AT"]),
            "namespace": rng.choice([None, None, "ns", "team-a", "ßpace", "nowhere"]),
            "before": rng.choice([None, None, "2026-01-03", "2026-01-01", "2027-01-01"]),
            "after": rng.choice([None, None, "2026-01-02", "2026-01-05", "2025-12-31"]),
            "limit": rng.choice([None, 1, 3, 7, 100]),
            "offset": rng.choice([None, 0, 0, 2, 5, 40]),
        }
        yield {k: v for k, v in params.items() if v is not None}


def expected(trail: datatrail.Trail, params: dict[str, Any], shown: Callable[[str], bool]) -> dict[str, Any]:
    kind = params.get("filter")
    sort = (params.get("sort") or "name").lower()
    hits = reference(
        trail,
        params["q"],
        kind.lower() if kind else None,
        params.get("namespace"),
        sort,
        params.get("before"),
        params.get("after"),
    )
    hits = [h for h in hits if shown(h["namespace"])]
    offset, limit = params.get("offset", 0), params.get("limit", 100)
    return {"totalCount": len(hits), "results": hits[offset : offset + limit]}


def compare(trail: datatrail.Trail, ask: Search, n: int, shown: Callable[[str], bool] = lambda _: True) -> int:
    """How many cases answered exactly as the reference (all of them, or the assertion says which not)."""
    done = 0
    for params in cases(n):
        got, want = ask(params), expected(trail, params, shown)
        assert got == want, params
        assert [list(h) for h in got["results"]] == [list(h) for h in want["results"]], params  # key order too
        done += 1
    return done


def asker(client: TestClient | httpx.Client, headers: dict[str, str] | None = None) -> Search:
    def ask(params: dict[str, Any]) -> dict[str, Any]:
        response = client.get("/api/v1/search", params=params, headers=headers)
        assert response.status_code == 200, (params, response.text)
        answer: dict[str, Any] = response.json()
        return answer

    return ask


@pytest.fixture
def filled(trail: datatrail.Trail) -> datatrail.Trail:
    fill(trail)
    return trail


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def local(request: pytest.FixtureRequest, workdir: Path) -> Iterator[datatrail.Trail]:
    """A filled store with its own users and tokens (those are managed where the store is, not through a
    server), on SQLite or PostgreSQL."""
    uri = str(request.getfixturevalue("pg_uri")) if request.param == "postgres" else None
    trail = datatrail.init(workdir, uri)
    try:
        fill(trail)
        yield trail
    finally:
        trail.close()


def test_search_answers_what_fetching_every_match_answered(
    filled: datatrail.Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    if filled.uri.startswith("http"):
        # The new route of a real server, asked straight and through the HTTP store's search.
        with httpx.Client(base_url=filled.uri, timeout=60) as client:
            assert compare(filled, asker(client), 150) == 150 + len(QUERIES)
        hits, total = filled.catalog.search("a", sort="updated_at", limit=4, offset=1)
        want = expected(filled, {"q": "a", "sort": "updated_at", "limit": 4, "offset": 1}, lambda _: True)
        assert total == want["totalCount"] > 5
        assert [(h.type, h.namespace, h.name, iso(h.updated_at)) for h in hits] == [
            (h["type"], h["namespace"], h["name"], h["updatedAt"]) for h in want["results"]
        ]
        return
    with TestClient(create_app(filled.uri)) as client:
        assert compare(filled, asker(client), 300) == 300 + len(QUERIES)
        # Many names outside printable ASCII match: the light rows are sorted here instead; the same answers.
        monkeypatch.setattr(sql_search, "FOLDED_IN_SQL", 0)
        assert compare(filled, asker(client), 100) == 100 + len(QUERIES)


def test_a_restricted_reader_sees_and_counts_only_what_it_may_read(local: datatrail.Trail) -> None:
    local.add_user("vera")
    local.grant("vera", "viewer", "team-*")
    token = local.create_token("vera", expires="1d")[1]
    seen = {"team-a", "team-b"}
    vera = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(local.uri)) as client:
        assert compare(local, asker(client, vera), 120, lambda ns: ns in seen) == 120 + len(QUERIES)
        everything = client.get("/api/v1/search", params={"q": "%", "limit": 500}, headers=vera).json()
    assert {h["namespace"] for h in everything["results"]} == seen
    assert (
        everything["totalCount"]
        == len(everything["results"])
        < len(reference(local, "%", None, None, "name", None, None))
    )


def test_a_date_that_does_not_exist_is_refused(local: datatrail.Trail) -> None:
    with TestClient(create_app(local.uri)) as client:
        for name in ("before", "after"):
            answer = client.get("/api/v1/search", params={"q": "a", name: "2026-02-30"})
            assert answer.status_code == 400, answer.text
            assert f"invalid {name} '2026-02-30'" in answer.json()["detail"]


def test_the_ui_search_page_shows_the_first_page_and_the_count(local: datatrail.Trail) -> None:
    want = expected(local, {"q": "a", "limit": 200}, lambda _: True)
    assert want["totalCount"] > 10
    with TestClient(create_app(local.uri)) as client:
        page = client.get("/search", params={"q": "a"}).text
    assert f"{want['totalCount']} results" in page
    kinds = re.findall(r"<td>(dataset|job)</td>", page)
    assert kinds == [h["type"].lower() for h in want["results"]]
