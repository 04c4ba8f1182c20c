"""The Python API and the CLI against a real `datatrail serve` process, with a token.

(The store contract itself runs over HTTP through the ``http`` param of ``store_uri``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import Forbidden, InvalidInput, StoreUnavailable
from datatrail.store.http import HttpStore
from tests import httpserver
from tests.conftest import write
from tests.pgserver import free_port

TOKEN = "t0ken-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    srv = httpserver.start(
        tmp_path_factory.mktemp("remote"), "--max-body", "65536", env={"DATATRAIL_API_KEYS": f"ada={TOKEN}"}
    )
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def test_python_api_over_http(server: httpserver.Server, workdir: Path) -> None:
    trail = datatrail.connect(server.uri, token=TOKEN)
    assert isinstance(trail._store, HttpStore)
    # Only metadata travels: a file far above the server's body limit is hashed here.
    big = write(workdir / "data" / "big.bin", os.urandom(512 * 1024))
    v = trail.add(big, name="remote/big.bin", namespace="s3://lake")
    assert v.size == 512 * 1024 and v.number == 1
    assert trail.add(big, name="remote/big.bin", namespace="s3://lake").number == 1
    with trail.run("train", params={"lr": 0.1}, namespace="s3://lake") as run:
        run.input(v)
        model = run.output(write(workdir / "model.pkl", "weights"), name="remote/model", namespace="s3://lake")
        run.log_metric("acc", 0.9)
    got = trail.get_run(run.id)
    assert got.metrics == {"acc": 0.9} and [o.name for o in got.outputs] == ["remote/model"]
    graph = trail.lineage(f"s3://lake:{model.name}")
    assert f"version:s3://lake:{v.name}@1" in graph.nodes
    # The token's principal is the recorded actor.
    assert {e.actor for e in trail._store.audit_log(10)} == {"ada"}
    trail.close()


def test_cli_over_http(server: httpserver.Server, workdir: Path) -> None:
    env = {"DATATRAIL_URI": server.uri, "DATATRAIL_TOKEN": TOKEN}
    write(workdir / "raw.csv", "a,b\n1,2\n")
    runner = CliRunner()
    added = runner.invoke(app, ["add", "raw.csv", "--name", "cli/raw", "--json"], env=env)
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["status"] == "new"
    listed = runner.invoke(app, ["ls", "--json"], env=env)
    assert "cli/raw" in {d["name"] for d in json.loads(listed.stdout)}
    shown = runner.invoke(app, ["show", "cli/raw@1"], env=env)
    assert shown.exit_code == 0 and "cli/raw" in shown.stdout


def test_cli_errors_over_http(server: httpserver.Server, workdir: Path) -> None:
    datatrail_cli = Path(sys.executable).with_name("datatrail")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}

    def run(uri: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(datatrail_cli), *args],
            env={**env, "DATATRAIL_URI": uri, "DATATRAIL_TOKEN": token},
            capture_output=True,
            text=True,
            cwd=workdir,
            check=False,
        )

    missing = run(server.uri, TOKEN, "show", "no/such")
    assert missing.returncode == 3 and missing.stderr.count("\n") == 1 and "no dataset named" in missing.stderr
    refused = run(server.uri, "wrong", "ls")
    assert refused.returncode == 5 and "token" in refused.stderr and refused.stderr.count("\n") == 1
    down = run(f"http://127.0.0.1:{free_port()}", TOKEN, "ls")
    assert down.returncode == 3 and "cannot reach the datatrail server" in down.stderr


def test_errors_map_to_the_local_classes(server: httpserver.Server) -> None:
    for store, error in (
        (HttpStore(server.uri, token="nope"), Forbidden),
        (HttpStore(f"http://127.0.0.1:{free_port()}", retries=0), StoreUnavailable),
    ):
        try:
            with pytest.raises(error):
                store.list_datasets()
        finally:
            store.close()


@pytest.mark.postgres
def test_two_servers_on_one_postgres_take_concurrent_writes(pg_uri: str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.test_server import run_event

    servers = [httpserver.start(tmp_path / f"s{i}", store=pg_uri) for i in range(2)]
    try:
        for s in servers:
            s.wait_ready()
        # 4 jobs x 15 runs, each run START + COMPLETE writing a new version of a shared dataset.
        events = []
        for job in range(4):
            for n in range(15):
                rid = f"00000000-0000-4000-8000-{job:04d}{n:08d}"
                for state in ("START", "COMPLETE"):
                    events.append(run_event(f"job{job}", [], [("s3://lake", "shared")], state=state, run_id=rid))

        def send(i: int, shift: int = 0) -> int:
            url = servers[(i + shift) % 2].uri + "/api/v1/lineage"
            return httpx.post(url, json=events[i], timeout=60).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(send, range(len(events)))) == {201}
            # Everything again, each event through the other server: retries change nothing.
            assert set(pool.map(lambda i: send(i, 1), range(len(events)))) == {201}
        trail = datatrail.connect(servers[0].uri)
        versions = trail._store.list_versions("s3://lake", "shared")
        assert [v.number for v in versions] == list(range(1, 61))
        assert len({v.run_id for v in versions}) == 60
        assert len(trail.runs(limit=1000)) == 60
        assert all(r.state.value == "COMPLETE" for r in trail.runs(limit=1000))
        # One write entry per event (the server audits reads too: those carry no event).
        assert len([e for e in trail._store.audit_log(10_000) if "event" in e.details]) == len(events)
        assert trail._store.check_integrity() == []
        trail.close()
    finally:
        for s in servers:
            s.stop()


def test_serve_with_several_workers(tmp_path: Path) -> None:
    import httpx

    from tests.test_server import run_event

    srv = httpserver.start(tmp_path / "w", "--workers", "2")
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.uri) as client:
            for i in range(10):
                event = run_event("load", [], [("default", f"d{i}")])
                assert client.post("/api/v1/lineage", json=event).status_code == 201
            assert len(client.get("/api/v1/namespaces/default/datasets").json()["datasets"]) == 10
            assert client.get("/openapi.json").json()["info"]["title"] == "datatrail"
    finally:
        srv.stop()


def test_wire_round_trips_every_field() -> None:
    """A field added to Version or Run must travel over HTTP too: this fails until store/wire.py carries it."""
    import dataclasses
    from datetime import UTC, datetime

    from datatrail.core.model import Digest, Run, RunState, Version
    from datatrail.store import wire

    when = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    version = Version(
        namespace="s3://lake",
        name="a/b",
        number=3,
        digest=Digest.sha256("ab" * 32),
        size=10,
        uri="file:///x",
        format="csv",
        created_at=when,
        created_by="ada",
        host="h",
        message="m",
        kind="model",
        file_count=2,
        run_id="r",
        aliases=("prod",),
        properties={"k": 1},
        id=None,
        key="sha256:" + "ab" * 32,
    )
    assert {f.name for f in dataclasses.fields(Version)} == {*version.to_dict(), "number", "id", "key"} - {
        "version",
        "ref",
    }
    back = wire.version_from_wire(wire.version_to_wire(version))
    assert back == version and back.key == version.key
    run = Run(
        id="r",
        namespace="n",
        job="j",
        state=RunState.FAIL,
        started_at=when,
        ended_at=when,
        user="u",
        host="h",
        command="c",
        cwd="/",
        params={"p": 1},
        metrics={"m": 1.0},
        code={"commit": "x"},
        error="e",
        parent_run_id="p",
        workflow="w",
        inputs=(version,),
        outputs=(version,),
        facets={"nominalTime": {"time": "t", "value": {}}},
        planned_outputs=(("file", "/d/never.txt"),),
        children=("c1", "c2"),
    )
    assert {f.name for f in dataclasses.fields(Run)} == set(run.to_dict())
    assert wire.run_from_wire(wire.run_to_wire(run)) == run


# ---------------------------------------------------------------- tokens are bound to the server they are for


class Recorder:
    """A real listening socket that answers like an empty datatrail server and keeps every request it gets."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen: list[dict[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                seen.append({"request": f"{self.command} {self.path}", "headers": str(self.headers), "body": body})
                found = self.path.startswith("/api/v1/datasets")
                payload = {"datasets": []} if found else {"error": "not_found", "detail": "nothing here"}
                data = json.dumps(payload).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.seen = seen
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def authorizations(self) -> set[str]:
        return {
            line.split(":", 1)[1].strip()
            for r in self.seen
            for line in r["headers"].splitlines()
            if line.lower().startswith("authorization:")
        }

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_repository_config_cannot_send_your_token_to_its_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = Recorder()
    try:
        repo = tmp_path / "cloned"
        write(repo / ".datatrail" / "config.toml", f'[store]\nuri = "{listener.url}"\n')
        write(repo / "data.csv", "a,b\n1,2\n")
        config_home = tmp_path / "config"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
        env.update({"DATATRAIL_TOKEN": "env-secret", "XDG_CONFIG_HOME": str(config_home)})

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(httpserver.DATATRAIL), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120
            )

        listed = run("ls")
        assert listed.returncode == 0 and listed.stdout.startswith("no datasets yet"), listed.stderr
        assert listener.seen and listener.authorizations() == set()  # it was asked, without the token
        config = repo / ".datatrail" / "config.toml"
        assert listed.stderr.count("\n") == 1 and listed.stderr.startswith(
            f"datatrail: using the remote store {listener.url} named by {config} without a token"
        ), listed.stderr
        run("add", "data.csv")  # the metadata goes to the configured store, said on stderr, with no token
        assert len(listener.seen) >= 2 and listener.authorizations() == set()
        assert "env-secret" not in json.dumps(listener.seen)
        # A token the user bound to that origin in their own tokens.toml is sent, and only that one.
        tokens = write(config_home / "datatrail" / "tokens.toml", f'[tokens]\n"{listener.url}/" = "bound-token"\n')
        tokens.chmod(0o644)
        refused = run("ls")
        assert refused.returncode == 2 and "chmod 600" in refused.stderr and refused.stderr.count("\n") == 1
        tokens.chmod(0o600)
        listener.seen.clear()
        listed = run("ls")
        assert listed.returncode == 0 and "with the token" in listed.stderr, listed.stderr
        assert listener.authorizations() == {"Bearer bound-token"}
        # DATATRAIL_TOKEN still goes to the store the user names, which proves the listener sees the header.
        listener.seen.clear()
        named = run("--store", listener.url.replace("127.0.0.1", "localhost"), "ls")
        assert named.returncode == 0 and named.stderr == "", named.stderr
        assert listener.authorizations() == {"Bearer env-secret"}
        # The Python API refuses a token for a store it did not name.
        monkeypatch.chdir(repo)
        with pytest.raises(InvalidInput, match=r"named by .*config\.toml, not by you"):
            datatrail.connect(token="explicit")
    finally:
        listener.close()


def test_tokens_are_matched_by_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datatrail.config import Location, origin, token_for

    assert origin("HTTPS://Trail.Example.com/api/") == "https://trail.example.com:443"
    assert origin("http://[::1]:8000") == "http://[::1]:8000"
    assert origin("http://h") == origin("http://h:80/x") != origin("https://h") != origin("http://h:8080")
    assert origin("sqlite:///t.db") is None and origin("postgresql://h/db") is None
    tokens = write(tmp_path / "cfg" / "datatrail" / "tokens.toml", '[tokens]\n"https://a.example" = "for-a"\n')
    tokens.chmod(0o600)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("DATATRAIL_TOKEN", "env")

    def at(uri: str, source: str) -> Location:
        return Location(uri, tmp_path, tmp_path / ".datatrail", None, source)  # type: ignore[arg-type]

    assert token_for(at("https://a.example:443", "config")) == "for-a"
    assert token_for(at("https://b.example", "config")) is None
    assert token_for(at("https://b.example", "environment")) == "env"
    assert token_for(at("https://a.example", "argument")) == "env"  # the user's own choice wins
    assert token_for(at("https://a.example", "argument"), "given") == "given"
    assert token_for(at("sqlite:///x.db", "argument"), "given") is None
    monkeypatch.delenv("DATATRAIL_TOKEN")
    assert token_for(at("https://a.example/", "argument")) == "for-a"
    with pytest.raises(InvalidInput, match="not by you"):
        token_for(at("https://a.example", "config"), "given")
