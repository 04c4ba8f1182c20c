"""A classified column's values appear nowhere (issue 16, finding 7), through a real server and the CLI.

Versions stored *before* the column was classified are the hard case: their
facets, check results, raw events and drift reports were written with the
values in them. After ``classify``, every read path — facets, profiles, check
results, raw events, drift reports, the OpenLineage export — shows counts only.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import datatrail
from tests import httpserver

# Values that must never be seen again once ``amount`` is classified.
SECRETS = ("987654.25", "987654", "123457.5", "123457")
ROWS = "id,amount\n1,987654.25\n2,123457.5\n3,555555.0\n"
LATER = "id,amount\n1,987654.25\n2,123457.5\n3,555555.0\n4,111111.0\n"


@dataclass
class Setup:
    server: httpserver.Server
    token: str
    folder: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("privacy")
    uri = f"sqlite:///{folder / 'trail.db'}"
    first, second = folder / "customers.csv", folder / "customers2.csv"
    first.write_text(ROWS)
    second.write_text(LATER)
    with datatrail.init(folder, uri) as trail:
        v1 = trail.add(first, name="customers", namespace="team-a")
        v2 = trail.add(second, name="customers", namespace="team-a")
        trail.check(v1, [{"rule": "between", "column": "amount", "min": 0, "max": 100}])
        trail.deploy(v1, env="production")
        trail.monitor(v2, reference=v1, env="production", exact=True)
        # Only now: everything above was stored with the values in it.
        trail.classify(v1, "amount", "pii")
        trail.add_user("root", admin=True)
        token = trail.create_token("root", expires="1d")[1]
    server = httpserver.start(folder / "srv", store=uri)
    server.wait_ready()
    try:
        yield Setup(server, token, folder)
    finally:
        server.stop()


def fetch(setup: Setup, url: str) -> str:
    # The API takes the Bearer header; the UI its login cookie.
    auth = {"Authorization": f"Bearer {setup.token}"} if url.startswith("/api/") else {}
    cookies = {} if auth else {"datatrail_token": setup.token}
    with httpx.Client(base_url=setup.server.uri, headers=auth, cookies=cookies) as client:
        response = client.get(url)
    assert response.status_code == 200, response.text
    return response.text


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/namespaces/team-a/datasets/customers/versions/1/facets",
        "/api/v1/namespaces/team-a/datasets/customers/versions/2/facets",
        "/api/v1/namespaces/team-a/datasets/customers/versions/1/profile",
        "/api/v1/namespaces/team-a/datasets/customers/versions/1/checks",
        "/api/v1/events",
        "/api/v1/drift",
        "/datasets/team-a/customers/versions/1",
        "/datasets/team-a/customers",
    ],
)
def test_classified_values_are_not_served(setup: Setup, url: str) -> None:
    text = fetch(setup, url)
    assert not leaked(text), f"{url} shows {leaked(text)}"


def test_the_facets_keep_counts_of_a_classified_column(setup: Setup) -> None:
    facets = json.loads(fetch(setup, "/api/v1/namespaces/team-a/datasets/customers/versions/1/facets"))
    amount = facets["stats"]["dataQualityMetrics"]["columnMetrics"]["amount"]
    assert set(amount) <= {"nullCount", "distinctCount", "count"} and amount["count"] == 3
    other = facets["stats"]["dataQualityMetrics"]["columnMetrics"]["id"]
    assert other["max"] == 3  # an unclassified column keeps its statistics


def test_the_export_leaves_classified_values_out(setup: Setup) -> None:
    exe = str(httpserver.DATATRAIL)
    env = {"DATATRAIL_TOKEN": setup.token, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [exe, "--store", setup.server.uri, "export", "openlineage"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") >= 4 and not leaked(done.stdout)
    local = subprocess.run(
        [exe, "--store", f"sqlite:///{setup.folder / 'trail.db'}", "export", "openlineage"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert local.returncode == 0 and not leaked(local.stdout), local.stderr
