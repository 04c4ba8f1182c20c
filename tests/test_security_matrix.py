"""Every route of the application, for every role: the status each must answer.

The table below has one entry per (method, path) of the FastAPI app, the web
UI's pages, the login form and the static files included; a route added
without an entry fails ``test_every_route_has_an_entry``. An entry holds one
request or several (the login form with a valid and with an invalid token).
Requests target team-a's resources: ``viewer`` may read team-a, ``editor`` may
write team-*, ``other_owner`` owns team-b only, ``admin`` may do everything,
``anonymous`` sends no token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import datatrail
from datatrail.core.changes import VersionInfo
from datatrail.events import build_dataset_event
from datatrail.server.app import create_app
from datatrail.server.marquez_models import job_version_uuid
from datatrail.server.routes.marquez import WRITES
from tests.security_scene import ROLES, Scene, build


def seg(value: str) -> str:
    return quote(value, safe="")


A, RAW, CLEAN = "team-a", seg("a/raw"), seg("a/clean")


def _statuses(anonymous: int, viewer: int, editor: int, other_owner: int, admin: int) -> dict[str, int]:
    return dict(zip(ROLES, (anonymous, viewer, editor, other_owner, admin), strict=True))


READ = _statuses(401, 200, 200, 404, 200)  # team-a's things: hidden (404) from the owner of team-b
LIST = _statuses(401, 200, 200, 200, 200)  # lists answer, without what the caller may not see
WRITE = _statuses(401, 403, 201, 403, 201)
AUDIT = _statuses(401, 403, 403, 200, 200)  # admins, and owners (of their namespaces' entries)
ADMIN = _statuses(401, 403, 403, 403, 200)
PUBLIC = _statuses(200, 200, 200, 200, 200)
UI_READ = _statuses(303, 200, 200, 404, 200)  # the UI sends anonymous browsers to log in
UI_LIST = _statuses(303, 200, 200, 200, 200)
UI_ADMIN = _statuses(303, 403, 403, 403, 200)
REFUSED = _statuses(401, 405, 405, 405, 405)  # Marquez's write API: send OpenLineage events instead


def _event(name: str) -> dict[str, Any]:
    return build_dataset_event(A, name, VersionInfo(key=f"k-{name}"))


Request = tuple[str, dict[str, Any]]  # url, extra request arguments
Maker = Callable[[Scene, str], Request]
Case = tuple[Maker, dict[str, int]]
BAD_TOKEN = "dtk_tok_000000000000_" + "b" * 43  # well-formed, unknown


def _clean_job_version(scene: Scene) -> str:
    """The Marquez job version id of team-a's clean run."""
    with datatrail.connect(scene.uri) as trail:
        run = trail.get_run(scene.clean_run)
    return job_version_uuid(run.namespace, run.job, run)


def _refused(method: str, path: str) -> Maker:
    values = {"namespace": A, "dataset": RAW, "job": "clean", "source": "default", "tag": "PII", "field": "x"}
    return lambda s, r: ("/api/v1" + path.format(**values, id=s.clean_run), {"json": {"ownerName": r}})


def _login(token: Callable[[Scene, str], str], next_page: str = "/") -> Maker:
    return lambda s, r: ("/login", {"data": {"token": token(s, r), "next": next_page}})


# (method, route path) -> how to call it for a role and the status expected per role (or several such)
TABLE: dict[tuple[str, str], Case | list[Case]] = {
    ("GET", "/healthz"): (lambda s, r: ("/healthz", {}), PUBLIC),
    ("GET", "/openapi.json"): (lambda s, r: ("/openapi.json", {}), LIST),
    ("GET", "/docs"): (lambda s, r: ("/docs", {}), LIST),
    ("GET", "/docs/oauth2-redirect"): (lambda s, r: ("/docs/oauth2-redirect", {}), LIST),
    ("POST", "/api/v1/lineage"): (lambda s, r: ("/api/v1/lineage", {"json": _event(f"w/{r}")}), WRITE),
    ("POST", "/api/v1/lineage/batch"): (lambda s, r: ("/api/v1/lineage/batch", {"json": [_event(f"b/{r}")]}), WRITE),
    ("GET", "/api/v1/lineage"): (lambda s, r: (f"/api/v1/lineage?nodeId=dataset:{A}:a/raw", {}), READ),
    ("GET", "/api/v1/column-lineage"): (lambda s, r: (f"/api/v1/column-lineage?nodeId=dataset:{A}:a/clean", {}), READ),
    ("GET", "/api/v1/namespaces"): (lambda s, r: ("/api/v1/namespaces", {}), LIST),
    ("GET", "/api/v1/namespaces/{namespace}/datasets"): (lambda s, r: (f"/api/v1/namespaces/{A}/datasets", {}), LIST),
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{name}"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/datasets/{RAW}", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{name}/versions"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/datasets/{RAW}/versions", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{name}/versions/{version}"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/datasets/{RAW}/versions/1", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{name}/versions/{version}/files"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/datasets/{RAW}/versions/1/files", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{name}/versions/{version}/profile"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/datasets/{RAW}/versions/1/profile", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{name}/versions/{version}/facets"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/datasets/{RAW}/versions/1/facets", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/datasets/{name}/versions/{version}/checks"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/datasets/{RAW}/versions/1/checks", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/jobs"): (lambda s, r: (f"/api/v1/namespaces/{A}/jobs", {}), LIST),
    ("GET", "/api/v1/namespaces/{namespace}/jobs/{job}"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/jobs/clean", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/jobs/{job}/runs"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/jobs/clean/runs", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/jobs/{job}/versions"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/jobs/clean/versions", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}/jobs/{job}/versions/{version}"): (
        lambda s, r: (f"/api/v1/namespaces/{A}/jobs/clean/versions/{_clean_job_version(s)}", {}),
        READ,
    ),
    ("GET", "/api/v1/namespaces/{namespace}"): (lambda s, r: (f"/api/v1/namespaces/{A}", {}), READ),
    ("GET", "/api/v1/jobs/runs/{run_id}"): (lambda s, r: (f"/api/v1/jobs/runs/{s.clean_run}", {}), READ),
    ("GET", "/api/v1/jobs/runs/{run_id}/facets"): (
        lambda s, r: (f"/api/v1/jobs/runs/{s.clean_run}/facets?type=job", {}),
        READ,
    ),
    ("GET", "/api/v1/runlineage/upstream"): (
        lambda s, r: (f"/api/v1/runlineage/upstream?runId={s.clean_run}", {}),
        READ,
    ),
    ("GET", "/api/v1/events/lineage"): (lambda s, r: ("/api/v1/events/lineage", {}), LIST),
    ("GET", "/api/v1/sources"): (lambda s, r: ("/api/v1/sources", {}), LIST),
    ("GET", "/api/v1/sources/{source}"): (lambda s, r: ("/api/v1/sources/default", {}), LIST),
    ("GET", "/api/v1/tags"): (lambda s, r: ("/api/v1/tags", {}), LIST),
    ("GET", "/api/v1/dataset-versions"): (
        lambda s, r: (f"/api/v1/dataset-versions?namespace={A}&name=a/raw", {}),
        READ,
    ),
    **{(method, "/api/v1" + path): (_refused(method, path), REFUSED) for method, path, _ in WRITES},
    ("GET", "/api/v1/runs"): (lambda s, r: ("/api/v1/runs", {}), LIST),
    ("GET", "/api/v1/runs/{run_id}"): (lambda s, r: (f"/api/v1/runs/{s.clean_run}", {}), READ),
    ("GET", "/api/v1/search"): (lambda s, r: ("/api/v1/search?q=a", {}), LIST),
    ("GET", "/api/v1/audit"): (lambda s, r: ("/api/v1/audit", {}), AUDIT),
    ("GET", "/api/v1/integrity"): (lambda s, r: ("/api/v1/integrity", {}), ADMIN),
    ("GET", "/api/v1/events"): (lambda s, r: ("/api/v1/events", {}), LIST),
    ("POST", "/api/v1/events"): (
        lambda s, r: (
            "/api/v1/events",
            {"json": {"event": _event(f"e/{r}"), "actor": "x", "action": "lineage.ingest"}},
        ),
        WRITE,
    ),
    ("GET", "/api/v1/datasets"): (lambda s, r: ("/api/v1/datasets", {}), LIST),
    ("GET", "/api/v1/jobs"): (lambda s, r: ("/api/v1/jobs", {}), LIST),
    ("GET", "/api/v1/latest-versions"): (lambda s, r: ("/api/v1/latest-versions", {}), LIST),
    ("GET", "/api/v1/resolve"): (lambda s, r: (f"/api/v1/resolve?namespace={A}&name=a/raw", {}), READ),
    # A version key of a dataset the caller may not see is simply not there: {"version": null}.
    ("GET", "/api/v1/version-by-key"): (
        lambda s, r: (f"/api/v1/version-by-key?namespace={A}&name=a/raw&key=x", {}),
        LIST,
    ),
    ("GET", "/api/v1/versions-at"): (
        lambda s, r: ("/api/v1/versions-at?uri=file:///nowhere.csv", {}),
        LIST,
    ),
    ("POST", "/api/v1/column-lineage/traverse"): (
        lambda s, r: ("/api/v1/column-lineage/traverse", {"json": [[A, "a/clean", 1, None]]}),
        _statuses(401, 200, 200, 404, 200),
    ),
    ("POST", "/api/v1/lineage/traverse"): (
        lambda s, r: ("/api/v1/lineage/traverse", {"json": [[A, "a/raw", 1]]}),
        _statuses(401, 200, 200, 404, 200),
    ),
    ("GET", "/api/v1/dataset-page"): (lambda s, r: (f"/api/v1/dataset-page?namespace={A}", {}), LIST),
    ("GET", "/api/v1/dataset-details"): (
        lambda s, r: (f"/api/v1/dataset-details?namespace={A}&name=a%2Fraw", {}),
        LIST,
    ),
    ("GET", "/api/v1/versions-by-number"): (
        lambda s, r: (f"/api/v1/versions-by-number?namespace={A}&name=a%2Fraw&number=1", {}),
        READ,
    ),
    ("GET", "/api/v1/jobs-by-name"): (lambda s, r: (f"/api/v1/jobs-by-name?namespace={A}&name=mix", {}), LIST),
    ("GET", "/api/v1/job-page"): (lambda s, r: (f"/api/v1/job-page?namespace={A}", {}), LIST),
    ("GET", "/api/v1/namespace-summaries"): (lambda s, r: ("/api/v1/namespace-summaries", {}), LIST),
    ("GET", "/api/v1/runs-by-id"): (lambda s, r: (f"/api/v1/runs-by-id?id={s.mix_run}", {}), LIST),
    ("GET", "/api/v1/dataset-page-details"): (lambda s, r: (f"/api/v1/dataset-page-details?namespace={A}", {}), LIST),
    ("GET", "/api/v1/content-locations"): (
        lambda s, r: (f"/api/v1/content-locations?namespace={A}&name=a/raw&version=1", {}),
        READ,
    ),
    # Recording where a version's bytes are is a write on its namespace; team-b's owner cannot see it.
    ("POST", "/api/v1/content-locations"): (
        lambda s, r: (
            "/api/v1/content-locations",
            {"json": {"remote": "origin", "url": f"file:///srv/remote-{r}", "versions": [[A, "a/raw", 1]]}},
        ),
        _statuses(401, 403, 200, 404, 200),
    ),
    ("POST", "/api/v1/content-locations/forget"): (
        lambda s, r: (
            "/api/v1/content-locations/forget",
            {"json": {"url": f"file:///srv/remote-{r}", "versions": [[A, "a/raw", 1]]}},
        ),
        _statuses(401, 403, 200, 404, 200),
    ),
    ("GET", "/api/v1/deployments"): (lambda s, r: ("/api/v1/deployments", {}), LIST),
    ("GET", "/api/v1/drift"): (lambda s, r: ("/api/v1/drift", {}), LIST),
    # Grants: admins anywhere, owners inside their namespaces (team-z is nobody's but the admin's).
    ("POST", "/api/v1/grants"): (
        lambda s, r: ("/api/v1/grants", {"json": {"user": "vera", "role": "viewer", "pattern": "team-z"}}),
        _statuses(401, 403, 403, 403, 201),
    ),
    ("POST", "/api/v1/grants/revoke"): (
        lambda s, r: ("/api/v1/grants/revoke", {"json": {"user": "vera", "role": "viewer", "pattern": "team-z"}}),
        _statuses(401, 403, 403, 403, 200),
    ),
    ("GET", "/api/v1/evaluations"): (
        lambda s, r: (f"/api/v1/evaluations?namespace={A}&name=a/raw&version=1", {}),
        READ,
    ),
    # The web UI.
    ("GET", "/datasets/{namespace}/{name}/lineage"): (lambda s, r: (f"/datasets/{A}/{RAW}/lineage", {}), UI_READ),
    ("GET", "/jobs/{namespace}/{name}/lineage"): (lambda s, r: (f"/jobs/{A}/clean/lineage", {}), UI_READ),
    ("GET", "/runs/{run_id}/lineage"): (lambda s, r: (f"/runs/{s.clean_run}/lineage", {}), UI_READ),
    ("GET", "/"): (lambda s, r: ("/", {}), UI_LIST),
    ("GET", "/search"): (lambda s, r: ("/search?q=a", {}), UI_LIST),
    ("GET", "/namespaces/{namespace}"): (lambda s, r: (f"/namespaces/{A}", {}), UI_READ),
    ("GET", "/datasets/{namespace}/{name}"): (lambda s, r: (f"/datasets/{A}/{RAW}", {}), UI_READ),
    ("GET", "/datasets/{namespace}/{name}/versions/{version}"): (
        lambda s, r: (f"/datasets/{A}/{RAW}/versions/1", {}),
        UI_READ,
    ),
    ("GET", "/datasets/{namespace}/{name}/diff"): (lambda s, r: (f"/datasets/{A}/{RAW}/diff?a=1&b=1", {}), UI_READ),
    ("GET", "/jobs/{namespace}/{name}"): (lambda s, r: (f"/jobs/{A}/clean", {}), UI_READ),
    ("GET", "/runs/{run_id}"): (lambda s, r: (f"/runs/{s.clean_run}", {}), UI_READ),
    ("GET", "/audit"): (lambda s, r: ("/audit", {}), UI_ADMIN),
    ("GET", "/environments"): (lambda s, r: ("/environments", {}), UI_LIST),
    # canary serves only team-a's a/report: it does not exist for team-b's owner.
    ("GET", "/environments/{environment}"): (lambda s, r: ("/environments/canary", {}), UI_READ),
    ("GET", "/login"): [
        (lambda s, r: ("/login", {}), PUBLIC),
        (lambda s, r: ("/login?next=%2Fdatasets%2Fteam-a%2Fa%252Fraw", {}), PUBLIC),
    ],
    # Signing in with the role's token: 303 onwards; with none or a bad one, the form again (401).
    ("POST", "/login"): [
        (_login(lambda s, r: s.tokens.get(r, "")), _statuses(401, 303, 303, 303, 303)),
        (_login(lambda s, r: BAD_TOKEN), _statuses(401, 401, 401, 401, 401)),
        (_login(lambda s, r: s.tokens.get(r, "") + "x", "/audit"), _statuses(401, 401, 401, 401, 401)),
    ],
    ("POST", "/logout"): (lambda s, r: ("/logout", {}), _statuses(303, 303, 303, 303, 303)),
    ("MOUNT", "/static/viz"): (lambda s, r: ("/static/viz/lineage.js", {}), PUBLIC),
    ("MOUNT", "/static/ui"): (lambda s, r: ("/static/ui/ui.css", {}), PUBLIC),
}


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers and mounts."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for ctx in contexts():
                for method in sorted(ctx.methods or ()):
                    if method != "HEAD":
                        yield method, ctx.path
        elif getattr(route, "methods", None):
            for method in sorted(route.methods):  # type: ignore[attr-defined]
                if method != "HEAD":
                    yield method, route.path  # type: ignore[attr-defined]
        else:
            yield "MOUNT", route.path  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    found = build(tmp_path_factory.mktemp("matrix"))
    with datatrail.connect(found.uri) as trail:  # deployments of both teams, and a drift report of team-a's
        trail.deploy("team-a:a/clean@1", env="production")
        trail.deploy("team-b:b/secret@1", env="production")
        trail.deploy("team-a:a/report@1", env="canary")
        trail.monitor("team-a:a/clean@1", reference="team-a:a/raw@1", env="production", model="team-a:a/clean")
    return found


@pytest.fixture(scope="module")
def client(scene: Scene) -> Iterator[TestClient]:
    with TestClient(create_app(scene.uri), follow_redirects=False) as c:
        yield c


def test_every_route_has_an_entry(client: TestClient) -> None:
    routes = set(app_routes(client.app))  # type: ignore[arg-type]
    assert ("GET", "/api/v1/namespaces") in routes and ("GET", "/datasets/{namespace}/{name}") in routes
    missing = sorted(routes - set(TABLE))
    assert not missing, f"routes without an entry in the authorization table: {missing}"
    stale = sorted(set(TABLE) - routes)
    assert not stale, f"table entries for routes that no longer exist: {stale}"


def _headers(scene: Scene, role: str, method: str, path: str) -> dict[str, str]:
    token = scene.tokens.get(role)
    if token is None or path in ("/login", "/logout"):
        return {}
    if path.startswith("/api/") or path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/healthz"):
        return {"Authorization": f"Bearer {token}"}
    return {"Cookie": f"datatrail_token={token}"}  # the UI's session


def cases() -> Iterator[tuple[str, str, Maker, dict[str, int]]]:
    for (method, path), entry in TABLE.items():
        for make, expected in entry if isinstance(entry, list) else [entry]:
            yield method, path, make, expected


@pytest.mark.parametrize("role", ROLES)
def test_route_answers_by_role(client: TestClient, scene: Scene, role: str) -> None:
    wrong = []
    for method, path, make, expected in cases():
        url, extra = make(scene, role)
        verb = "GET" if method == "MOUNT" else method
        response = client.request(verb, url, headers=_headers(scene, role, method, url), **extra)
        if response.status_code != expected[role]:
            wrong.append(
                f"{method} {path} as {role}: {response.status_code} (expected {expected[role]}) {response.text[:160]}"
            )
        if path.startswith("/api/v1") and response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error", "detail"}, (method, path, body)
    assert not wrong, "\n".join(wrong)


def test_an_invalid_token_opens_what_no_token_opens(client: TestClient, scene: Scene) -> None:
    stale = Scene(scene.uri, {role: BAD_TOKEN for role in ROLES}, scene.clean_run, scene.mix_run)
    wrong = []
    for method, path, make, expected in cases():
        url, extra = make(scene, "anonymous")
        verb = "GET" if method == "MOUNT" else method
        response = client.request(verb, url, headers=_headers(stale, "viewer", method, url), **extra)
        if response.status_code != expected["anonymous"]:
            wrong.append(f"{method} {path}: {response.status_code} (expected {expected['anonymous']})")
    assert not wrong, "\n".join(wrong)


def test_hidden_things_are_absent_from_lists_and_search(client: TestClient, scene: Scene) -> None:
    other = {"Authorization": f"Bearer {scene.tokens['other_owner']}"}
    viewer = {"Authorization": f"Bearer {scene.tokens['viewer']}"}
    text = json.dumps(
        [
            client.get(url, headers=other).json()
            for url in (
                "/api/v1/namespaces",
                "/api/v1/namespace-summaries",
                f"/api/v1/namespace-summaries?name={A}",
                "/api/v1/datasets",
                "/api/v1/jobs",
                "/api/v1/runs",
                "/api/v1/search?q=a",
                "/api/v1/events",
                "/api/v1/events/lineage",
                "/api/v1/sources",
                "/api/v1/tags",
            )
        ]
    )
    assert "a/raw" not in text and "team-a" not in text and scene.clean_run not in text
    assert "b/secret" in json.dumps(client.get("/api/v1/datasets", headers=other).json())
    names = {d["name"] for d in client.get("/api/v1/datasets", headers=viewer).json()["datasets"]}
    assert {"a/raw", "a/clean", "a/report"} <= names and "b/secret" not in names
    hits = client.get("/api/v1/search?q=secret", headers=viewer).json()
    assert hits == {"results": [], "totalCount": 0}


def test_hidden_lineage_in_the_ui_is_a_placeholder(client: TestClient, scene: Scene) -> None:
    cookie = {"Cookie": f"datatrail_token={scene.tokens['viewer']}"}
    page = client.get(f"/datasets/{A}/{seg('a/report')}/lineage?up=5&down=0", headers=cookie)
    assert page.status_code == 200
    assert "b/secret" not in page.text and "team-b" not in page.text and "salary" not in page.text
    assert "(hidden" in page.text or "hidden:" in page.text
    admin = {"Cookie": f"datatrail_token={scene.tokens['admin']}"}
    assert "b/secret" in client.get(f"/datasets/{A}/{seg('a/report')}/lineage?up=5&down=0", headers=admin).text


def test_owners_grant_inside_their_namespaces_only(client: TestClient, scene: Scene) -> None:
    owner = {"Authorization": f"Bearer {scene.tokens['other_owner']}"}
    inside = {"user": "ed", "role": "viewer", "pattern": "team-b"}
    response = client.post("/api/v1/grants", json=inside, headers=owner)
    assert response.status_code == 201 and response.json()["added"] is True
    assert client.post("/api/v1/grants/revoke", json=inside, headers=owner).status_code == 200
    for pattern in ("team-a", "*", "team-b*"):
        outside = {**inside, "pattern": pattern}
        refused = client.post("/api/v1/grants", json=outside, headers=owner)
        assert refused.status_code == 403 and "owner" in refused.json()["detail"]
    admin = {"Authorization": f"Bearer {scene.tokens['admin']}"}
    entries = client.get("/api/v1/audit?limit=20", headers=admin).json()["entries"]
    changes = [
        (e["actor"], e["action"], e["outcome"])
        for e in entries
        if e["action"] in ("grant.add", "grant.revoke", "grant")
    ]
    assert changes[:5] == [
        ("olga", "grant", "denied"),
        ("olga", "grant", "denied"),
        ("olga", "grant", "denied"),
        ("olga", "grant.revoke", "allowed"),
        ("olga", "grant.add", "allowed"),
    ]
    bad = client.post("/api/v1/grants", json={"user": "ed"}, headers=admin)
    assert bad.status_code == 400 and set(bad.json()) == {"error", "detail"}


def test_environment_pages_show_only_the_deployments_and_drift_the_caller_may_read(
    client: TestClient, scene: Scene
) -> None:
    def page(role: str, path: str) -> str:
        response = client.get(path, headers={"Cookie": f"datatrail_token={scene.tokens[role]}"})
        assert response.status_code == 200, (role, path, response.status_code)
        return response.text

    viewer = page("viewer", "/environments/production")
    assert "a/clean" in viewer and 'class="drift-chart"' in viewer and "a/raw@1" in viewer
    assert "b/secret" not in viewer and "team-b" not in viewer
    owner = page("other_owner", "/environments/production")
    assert "b/secret" in owner and "No batch has been monitored" in owner
    assert "a/clean" not in owner and "team-a" not in owner and "drift-chart" not in owner
    listing = page("other_owner", "/environments")
    assert 'href="/environments/production"' in listing and "canary" not in listing and "a/report" not in listing
    admin = page("admin", "/environments/production")
    assert "a/clean" in admin and "b/secret" in admin and 'class="drift-chart"' in admin
    assert "canary" in page("viewer", "/environments")


def test_a_batch_is_refused_whole_when_one_event_goes_where_the_caller_may_not(
    client: TestClient, scene: Scene
) -> None:
    editor = {"Authorization": f"Bearer {scene.tokens['editor']}"}
    admin = {"Authorization": f"Bearer {scene.tokens['admin']}"}
    allowed = build_dataset_event(A, "batch-ok", VersionInfo(key="k-batch-ok"))
    refused = build_dataset_event("elsewhere", "batch-no", VersionInfo(key="k-batch-no"))  # ed edits team-* only
    answer = client.post("/api/v1/lineage/batch", json=[allowed, refused], headers=editor)
    assert answer.status_code == 403 and "elsewhere" in answer.json()["detail"]
    names = {d["name"] for d in client.get(f"/api/v1/namespaces/{A}/datasets", headers=admin).json()["datasets"]}
    assert "batch-ok" not in names  # nothing of the batch is stored
    answer = client.post("/api/v1/lineage/batch", json=[allowed, {"eventTime": "not a time"}], headers=editor)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["stored"] == 1 and [(f["index"], f["error"]) for f in body["failed"]] == [(1, "invalid_input")]
    names = {d["name"] for d in client.get(f"/api/v1/namespaces/{A}/datasets", headers=admin).json()["datasets"]}
    assert "batch-ok" in names
