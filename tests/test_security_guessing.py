"""Token guessing against real `datatrail serve` processes: the limiter, the login form, trusted proxies.

Guessing (many different bad tokens) is limited per client address and for the
whole server; a valid user's token is always accepted, and one misconfigured
client repeating its bad token limits no one. The UI's login shares the limiter
and the audit. ``X-Forwarded-For`` names the client only when a trusted proxy
(``serve --trusted-proxy``) sent it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from datatrail.core.tokens import parse_token
from tests import httpserver
from tests.security_scene import Scene, build

NAMESPACES = "/api/v1/namespaces"


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return build(tmp_path_factory.mktemp("guessing"))


@pytest.fixture(scope="module")
def server(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    """Behind a proxy on this machine: each test plays its clients through X-Forwarded-For."""
    srv = httpserver.start(tmp_path_factory.mktemp("srv"), "--trusted-proxy", "127.0.0.1", store=scene.uri)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def guess(i: int) -> str:
    """A well-formed user token that does not exist."""
    return "dtk_tok_000000000000_" + str(i).rjust(43, "x")


def get(srv: httpserver.Server, token: str | None, client: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if client:
        headers["X-Forwarded-For"] = client
    return httpx.get(srv.uri + NAMESPACES, headers=headers, timeout=30)


def login(srv: httpserver.Server, token: str, client: str) -> httpx.Response:
    return httpx.post(
        srv.uri + "/login", data={"token": token, "next": "/"}, headers={"X-Forwarded-For": client}, timeout=30
    )


def refusals(srv: httpserver.Server, scene: Scene, origin: str, action: str = "auth.token") -> list[dict[str, Any]]:
    entries = httpx.get(
        srv.uri + "/api/v1/audit",
        params={"limit": 1000, "action": action},
        headers={"Authorization": f"Bearer {scene.tokens['admin']}"},
        timeout=30,
    ).json()["entries"]
    return [e for e in entries if e["details"]["origin"] == origin]


def test_a_guesser_is_limited_and_valid_tokens_from_its_address_are_not(
    server: httpserver.Server, scene: Scene
) -> None:
    guesser = "10.1.2.3"
    for i in range(10):
        assert get(server, guess(i), guesser).status_code == 401
    slowed = get(server, guess(10), guesser)
    assert slowed.status_code == 429 and 1 <= int(slowed.headers["retry-after"]) <= 60
    assert slowed.json()["error"] == "too_many_requests"
    # Something that could be guessed (an API key) is not even compared while limited.
    assert get(server, "s3cret", guesser).status_code == 429
    # A valid user's token from the same address (a producer behind the same proxy) is accepted.
    for role in ("viewer", "admin"):
        assert get(server, scene.tokens[role], guesser).status_code == 200
    assert get(server, None, guesser).status_code == 401  # no token is no guess
    assert get(server, guess(0), "10.9.9.9").status_code == 401  # another client is not limited
    # Each refused token is one denied entry (without the token); the 429s add none.
    refused = refusals(server, scene, guesser)
    assert len(refused) == 10
    assert {(e["actor"], e["outcome"], e["target"]) for e in refused} == {("anonymous", "denied", "GET " + NAMESPACES)}


def test_one_misconfigured_client_limits_no_one(server: httpserver.Server, scene: Scene) -> None:
    worker = "10.7.7.7"  # an Airflow worker with a revoked token, retrying every task
    for _ in range(40):
        assert get(server, guess(7), worker).status_code == 401
    assert get(server, scene.tokens["editor"], worker).status_code == 200
    assert get(server, guess(8), worker).status_code == 401  # its neighbours' mistakes still get a 401
    assert len(refusals(server, scene, worker)) == 2  # the audit log is not flooded either


def test_the_login_form_shares_the_limiter_and_the_audit(server: httpserver.Server, scene: Scene) -> None:
    browser = "10.3.3.3"
    for i in range(10):
        page = login(server, f"wrong-{i}", browser)
        assert page.status_code == 401 and "not valid" in page.text
    slowed = login(server, "wrong-10", browser)
    assert slowed.status_code == 429 and "Wait" in slowed.text and int(slowed.headers["retry-after"]) >= 1
    assert get(server, guess(99), browser).status_code == 429  # one limiter for the API and the form
    ok = login(server, scene.tokens["viewer"], browser)  # a valid user's token signs in all the same
    assert ok.status_code == 303 and "datatrail_token=" in ok.headers["set-cookie"]
    denied = refusals(server, scene, browser, "auth.login")
    assert len(denied) == 10
    assert {(e["actor"], e["outcome"], e["target"]) for e in denied} == {("anonymous", "denied", "POST /login")}
    assert "wrong-" not in json.dumps(denied)


def test_guessing_from_many_addresses_is_limited_overall(scene: Scene, tmp_path: Path) -> None:
    srv = httpserver.start(tmp_path, "--trusted-proxy", "127.0.0.1", store=scene.uri)
    try:
        srv.wait_ready()
        for i in range(100):  # one guess each from 100 addresses: no address reaches its own limit
            assert get(srv, guess(i), f"10.50.{i // 250}.{i % 250}").status_code == 401
        assert get(srv, guess(100), "10.60.0.1").status_code == 429
        assert get(srv, "s3cret", "10.60.0.2").status_code == 429
        assert get(srv, scene.tokens["admin"], "10.60.0.3").status_code == 200
    finally:
        srv.stop()


def test_an_api_key_is_never_compared_for_a_limited_client(tmp_path: Path) -> None:
    # Guesses at a configured key, the key itself among the late ones. As many as fit well inside the
    # limiter's 60-second window on a loaded machine (400 took over a minute beside a soak: the window
    # ended and guesses were compared again, as they should be).
    srv = httpserver.start(
        tmp_path, "--trusted-proxy", "127.0.0.1", env={"DATATRAIL_API_KEYS": "ana=k3y-57"}, store=None
    )
    try:
        srv.wait_ready()
        answers = [login(srv, f"k3y-{i}", "10.4.4.4").status_code for i in range(60)]
        assert answers[:10] == [401] * 10 and set(answers[10:]) == {429}
        assert login(srv, "k3y-57", "10.4.4.5").status_code == 303  # from an address that did not guess
    finally:
        srv.stop()


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    server: httpserver.Server, scene: Scene, tmp_path: Path
) -> None:
    assert get(server, guess(5), "10.8.8.8").status_code == 401
    assert [e["details"]["origin"] for e in refusals(server, scene, "10.8.8.8")] == ["10.8.8.8"]
    srv = httpserver.start(tmp_path, store=scene.uri)  # no --trusted-proxy: the TCP peer is the client
    try:
        srv.wait_ready()
        answers = [get(srv, guess(200 + i), f"10.20.0.{i}").status_code for i in range(11)]
        assert answers == [401] * 10 + [429]  # a new X-Forwarded-For each time changes nothing
        assert refusals(srv, scene, "10.20.0.1") == []
        assert len([e for e in refusals(srv, scene, "127.0.0.1") if e["target"] == "GET " + NAMESPACES]) >= 10
    finally:
        srv.stop()
    done = subprocess.run(
        [str(httpserver.DATATRAIL), "--store", scene.uri, "serve", "--trusted-proxy", "proxy.internal"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "not an IP address or network" in done.stderr


def test_no_token_reaches_the_audit_log(server: httpserver.Server, scene: Scene) -> None:
    entries = httpx.get(
        server.uri + "/api/v1/audit",
        params={"limit": 10_000},
        headers={"Authorization": f"Bearer {scene.tokens['admin']}"},
        timeout=30,
    ).text
    secrets = [parse_token(t)[1] for t in scene.tokens.values()]  # type: ignore[index]
    assert not any(s in entries for s in secrets) and "xxxxxxxxxxxxxxxx" not in entries
