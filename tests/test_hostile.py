"""Hostile input at every door: the HTTP API of a real server, the CLI, and the Python API.

Each bad input must get a clear refusal (a 4xx with ``{"error", "detail"}``,
or one ``error:`` line and a non-zero exit) and leave every table as it was.
Files outside the paths the user named are never opened, and URIs inside
events (schemaURL, producer, dataSource, facet ``_schemaURL``) are never
fetched.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import sqlite3
import subprocess
import sys
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import InvalidInput
from tests import httpserver
from tests.conftest import write

PRODUCER = "https://example.com/tests/hostile"
RUN_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
runner = CliRunner()


def event(**changes: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "eventType": "COMPLETE",
        "eventTime": "2024-05-01T10:00:00+00:00",
        "producer": PRODUCER,
        "schemaURL": RUN_SCHEMA,
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "hostile", "name": "job", "facets": {}},
        "inputs": [],
        "outputs": [{"namespace": "hostile", "name": "out", "facets": {}}],
    }
    ev.update(changes)
    return ev


def row_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    """One real server for the module: each test compares row counts before and after itself."""
    srv = httpserver.start(tmp_path_factory.mktemp("hostile"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def server_db(srv: httpserver.Server) -> Path:
    return Path(srv.store.removeprefix("sqlite:///"))


def refused(response: httpx.Response, status: int, *fragments: str) -> str:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    detail = json.dumps(body["detail"]) if not isinstance(body["detail"], str) else body["detail"]
    assert "Traceback" not in response.text and len(response.content) < 5000
    for fragment in fragments:
        assert fragment in detail, detail
    return detail


def deep(n: int) -> str:
    return "[" * n + "]" * n


# ---------------------------------------------------------------- HTTP: bodies


@pytest.mark.slow
def test_bad_bodies_are_4xx_and_store_nothing(server: httpserver.Server) -> None:
    url = f"{server.uri}/api/v1/lineage"
    assert httpx.post(url, json=event()).status_code == 201  # the store exists and has one event
    db = server_db(server)
    before = row_counts(db)
    post = httpx.Client(timeout=60)
    json_headers = {"Content-Type": "application/json"}
    cases: list[tuple[bytes | str, int, tuple[str, ...], dict[str, str]]] = [
        (b'{"eventType": "START", "run": ', 400, ("not valid JSON",), json_headers),
        (b"\xff\xfe not utf-8", 400, ("not valid JSON",), json_headers),
        (b'{"eventTime": NaN}', 400, ("NaN",), json_headers),
        (deep(10_000), 400, ("nested too deeply",), json_headers),
        (json.dumps(event(eventType=5)), 400, ("eventType",), json_headers),
        (json.dumps(event(run="x")), 400, ("run",), json_headers),
        (json.dumps(event(inputs={"a": 1})), 400, ("inputs must be an array",), json_headers),
        (json.dumps(event(eventTime=12)), 400, ("eventTime",), json_headers),
        (json.dumps(event(job={"namespace": "n", "name": 7})), 400, ("job",), json_headers),
        (json.dumps([1, 2]), 400, (), json_headers),
        (json.dumps("a string"), 400, (), json_headers),
        # A facet 10,000 levels deep inside an otherwise valid event.
        (
            json.dumps(event())[:-1] + ', "x": ' + deep(10_000) + "}",
            400,
            ("nested too deeply",),
            json_headers,
        ),
    ]
    for body, status, fragments, headers in cases:
        refused(post.post(url, content=body, headers=headers), status, *fragments)
    # 100,000 inputs in one event (7 MB, under the body limit): refused by count.
    many = event(inputs=[{"namespace": "hostile", "name": f"in-{i}"} for i in range(100_000)])
    refused(post.post(url, json=many), 400, "100000 items", "at most 10000")
    # Over the body limit (10 MB), plain and as a small gzip that inflates past it.
    refused(post.post(url, content=b" " * (11 * 1024 * 1024), headers=json_headers), 413, "larger than")
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    assert len(bomb) < 100_000
    refused(post.post(url, content=bomb, headers={**json_headers, "Content-Encoding": "gzip"}), 413, "larger")
    refused(post.post(url, content=b"x", headers={**json_headers, "Content-Encoding": "br"}), 415)
    refused(post.post(url, content=b"\x1f\x8b garbage", headers={**json_headers, "Content-Encoding": "gzip"}), 400)
    # The batch endpoint: one bad event among good ones is named, the good ones stored (documented).
    assert row_counts(db) == before
    post.close()


NAMES = {
    "NUL": "raw\x00data",
    "control": "raw\x07data",
    "line break": "raw\ndata",
    "bidi override": "invoice\u202etxt.exe",
    "bidi isolate": "a\u2066b",
    "zero-width": "a\u200bb",
    "10,000 characters": "n" * 10_000,
    "empty": "",
}


@pytest.mark.parametrize("what", sorted(NAMES))
def test_bad_names_in_events_are_400(server: httpserver.Server, what: str) -> None:
    url = f"{server.uri}/api/v1/lineage"
    assert httpx.post(url, json=event()).status_code == 201
    before = row_counts(server_db(server))
    name = NAMES[what]
    bad_job = event(job={"namespace": "hostile", "name": name, "facets": {}})
    bad_output = event(outputs=[{"namespace": "hostile", "name": name, "facets": {}}])
    bad_namespace = event(outputs=[{"namespace": name, "name": "ok", "facets": {}}])
    for body in (bad_job, bad_output, bad_namespace):
        refused(httpx.post(url, json=body), 400)
    assert row_counts(server_db(server)) == before


def test_nfc_and_nfd_names_are_one_name(server: httpserver.Server) -> None:
    """Decision: names are normalised to NFC, so 'café' typed either way is one dataset."""
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    url = f"{server.uri}/api/v1/lineage"
    for name in (nfc, nfd):
        version = {"version": {"_producer": PRODUCER, "datasetVersion": "v1"}}
        out = [{"namespace": "unicode", "name": name, "facets": version}]
        assert httpx.post(url, json=event(outputs=out)).status_code == 201
    names = [d["name"] for d in httpx.get(f"{server.uri}/api/v1/namespaces/unicode/datasets").json()["datasets"]]
    assert names == [nfc]
    for name in (nfc, nfd):
        got = httpx.get(f"{server.uri}/api/v1/namespaces/unicode/datasets/{name}")
        assert got.status_code == 200 and got.json()["name"] == nfc


# ---------------------------------------------------------------- HTTP: paths

TRAVERSALS = [
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "..%5C..%5Cwindows%5Cwin.ini",
    "%2Fetc%2Fpasswd",
    "file%3A%2F%2F%2Fetc%2Fpasswd",
    "....%2F%2F....%2F%2Fetc%2Fpasswd",
    "%c0%ae%c0%ae%c0%afetc%c0%afpasswd",  # overlong UTF-8 for "../": not UTF-8 at all
    "%ff%fe",
]


@pytest.mark.parametrize("segment", TRAVERSALS)
def test_path_traversal_in_urls_is_4xx(server: httpserver.Server, segment: str) -> None:
    before = row_counts(server_db(server))
    api = f"{server.uri}/api/v1"
    # A resource named by the segment: not found (a name is a key in the store, never a file).
    resources = [
        f"{api}/namespaces/default/datasets/{segment}",
        f"{api}/namespaces/default/datasets/{segment}/versions/1/files",
        f"{api}/namespaces/{segment}/datasets/x",
        f"{api}/namespaces/{segment}/jobs/{segment}/runs",
        f"{api}/runs/{segment}",
        f"{server.uri}/{segment}",
        f"{api}/{segment}",
    ]
    with httpx.Client() as client:
        for url in resources:
            response = client.get(url)
            assert 400 <= response.status_code < 500, (url, response.status_code, response.text[:300])
            assert "root:" not in response.text and "[fonts]" not in response.text
            assert set(response.json()) == {"error", "detail"}
        # A namespace used as a filter (namespaces are URIs, file:// ones too): an empty listing.
        listing = client.get(f"{api}/namespaces/{segment}/datasets")
        assert listing.status_code in (200, 400, 404), listing.text
        assert listing.status_code != 200 or listing.json()["datasets"] == []
        # Raw, unnormalised paths as an attacker's client would send them.
        for raw in ("/api/v1/../../../etc/passwd", "/api/v1/namespaces/../../../../etc/passwd/datasets"):
            response = client.send(client.build_request("GET", f"{server.uri}{raw}"))
            assert 400 <= response.status_code < 500 and "root:" not in response.text
    assert row_counts(server_db(server)) == before


# ---------------------------------------------------------------- URIs inside events are never fetched


class Listener:
    """A local HTTP server that records every request it gets."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_HEAD = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = hits
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def event_full_of_urls(base: str) -> dict[str, Any]:
    facet = {"_producer": f"{base}/producer", "_schemaURL": f"{base}/facet-schema.json"}
    return event(
        producer=f"{base}/producer",
        schemaURL=f"{base}/OpenLineage.json#/$defs/RunEvent",
        run={"runId": str(uuid.uuid4()), "facets": {"custom": {**facet, "href": f"{base}/run"}}},
        outputs=[
            {
                "namespace": f"{base}/ns",
                "name": "table",
                "facets": {
                    "dataSource": {**facet, "name": "src", "uri": f"{base}/datasource"},
                    "schema": {**facet, "fields": [{"name": "a", "type": "int"}]},
                    "documentation": {**facet, "description": f"see {base}/docs"},
                },
            }
        ],
    )


def test_uris_inside_events_are_never_fetched(server: httpserver.Server, workdir: Path) -> None:
    with Listener() as listener:
        assert httpx.get(f"{listener.url}/probe").status_code == 200  # it does answer
        listener.hits.clear()
        response = httpx.post(f"{server.uri}/api/v1/lineage", json=event_full_of_urls(listener.url))
        assert response.status_code == 201, response.text
        batch = [event_full_of_urls(listener.url) for _ in range(3)]
        assert httpx.post(f"{server.uri}/api/v1/lineage/batch", json=batch).status_code in (200, 201)
        # Reading it all back does not fetch anything either.
        for path in ("/api/v1/namespaces", "/api/v1/runs", "/api/v1/search?q=table"):
            assert httpx.get(f"{server.uri}{path}").status_code == 200
        # Nor does the Python API on an embedded store.
        with datatrail.init(workdir) as trail:
            trail.ingest(event_full_of_urls(listener.url))
            assert trail.datasets()
        assert listener.hits == []


# ---------------------------------------------------------------- the CLI door


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code not in (0, 70), (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def store(workdir: Path) -> Path:
    datatrail.init(workdir).close()
    write(workdir / "data.csv", "a\n1\n")
    assert cli("add", "data.csv").exit_code == 0
    return workdir / ".datatrail" / "trail.db"


CLI_NAMES = {
    "control": ("raw\x07data", "control or format character"),
    "bidi override": ("invoice\u202etxt", "U+202E"),
    "zero-width": ("a\u200bb", "U+200B"),
    "10,000 characters": ("n" * 10_000, "at most 1024"),
    "dot-dot": ("../../etc/passwd", "'..' segments"),
    "inner dot-dot": ("raw/../../x", "'..' segments"),
    "backslash": ("..\\..\\windows", "backslashes"),
    "reserved": ("file:///etc/passwd", "reserved for refs"),
}


@pytest.mark.parametrize("what", sorted(CLI_NAMES))
def test_bad_names_on_the_command_line(store: Path, workdir: Path, what: str) -> None:
    name, words = CLI_NAMES[what]
    before = row_counts(store)
    one_line_error(cli("add", "data.csv", "--name", name), words)
    one_line_error(cli("show", name))
    if what in ("control", "bidi override", "zero-width", "10,000 characters"):
        one_line_error(cli("tag", "data.csv@1", name), words)
    assert row_counts(store) == before


def test_nfc_and_nfd_on_the_command_line(store: Path, workdir: Path) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert cli("add", "data.csv", "--name", nfd).exit_code == 0
    result = cli("show", nfc, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["name"] == nfc
    # A file whose own name is NFD gets the NFC dataset name.
    write(workdir / nfd / "x.txt", "x\n")
    assert cli("add", nfd).stdout.startswith(f"{nfc}@2 ")  # the same dataset as the NFD --name above
    assert [d["name"] for d in json.loads(cli("ls", "--json").stdout)] == sorted(["data.csv", nfc])


@pytest.mark.parametrize(
    "path",
    ["../outside.txt", "%2e%2e%2foutside.txt", "..\\outside.txt", "/etc/hostname", "sub/../../outside.txt"],
)
def test_paths_outside_the_tree_need_a_name(store: Path, workdir: Path, path: str) -> None:
    """A path outside the store's root has no default name: refused unless the user names the dataset."""
    write(workdir.parent / "outside.txt", "outside\n")
    before = row_counts(store)
    one_line_error(cli("add", path))
    assert row_counts(store) == before


def test_symlinks_out_of_a_tree_are_refused_without_opening_the_target(store: Path, workdir: Path) -> None:
    """Decision: `add` of a directory refuses a symlink leading out of it (it does not skip it silently).

    The target is a FIFO: opening it for reading would block, so a refusal that
    returns at all did not open it.
    """
    outside = workdir.parent / "outside"
    outside.mkdir()
    fifo = outside / "pipe"
    os.mkfifo(fifo)
    write(workdir / "tree" / "ok.txt", "ok\n")
    (workdir / "tree" / "sneaky").symlink_to(fifo)
    before = row_counts(store)
    env = {k: v for k, v in os.environ.items() if k != "DATATRAIL_URI"}
    cmd = [sys.executable, "-m", "datatrail.cli.app", "add", "tree"]
    p = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "symlink leading out" in p.stderr, p.stderr
    (workdir / "tree" / "sneaky").unlink()
    (workdir / "tree" / "up").symlink_to("../../outside")  # a directory out of the tree
    p = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert row_counts(store) == before
    # A symlink inside the tree is followed (it is part of what the user named).
    (workdir / "tree" / "up").unlink()
    (workdir / "tree" / "alias.txt").symlink_to("ok.txt")
    assert cli("add", "tree").exit_code == 0


def test_python_api_refuses_the_same(workdir: Path) -> None:
    with datatrail.init(workdir) as trail:
        write(workdir / "d.csv", "a\n1\n")
        for name, _ in CLI_NAMES.values():
            with pytest.raises(InvalidInput):
                trail.add(workdir / "d.csv", name=name)
        with pytest.raises(InvalidInput, match="at most 10000"):
            trail.ingest(event(inputs=[{"namespace": "n", "name": f"i{i}"} for i in range(10_001)]))
        with pytest.raises(InvalidInput):
            trail.ingest(event(job={"namespace": "n", "name": "a\x00b"}))
        assert trail.datasets() == []


def _event_line(**changes: Any) -> str:
    return json.dumps(event(**changes))


CLI_EVENTS = {
    "malformed JSON": ('{"eventType": "START", "run": \n', "not JSON"),
    "10,000-deep nesting": (deep(10_000) + "\n", "nested too deeply"),
    "deep facet": ('{"a": ' * 5000 + "1" + "}" * 5000 + "\n", "nested too deeply"),
    "wrong types": (json.dumps({"eventTime": 5, "run": "x"}) + "\n", "eventTime"),
    "100,000 inputs": (
        _event_line(inputs=[{"namespace": "n", "name": f"i{i}"} for i in range(100_000)]) + "\n",
        "at most 10000",
    ),
    "NUL in a job name": (_event_line(job={"namespace": "n", "name": "a\x00b"}) + "\n", "U+0000"),
    "bidi in a dataset name": (
        _event_line(outputs=[{"namespace": "n", "name": "x\u202ey"}]) + "\n",
        "U+202E",
    ),
}


@pytest.mark.parametrize("what", sorted(CLI_EVENTS))
def test_bad_events_through_the_cli_import_door(store: Path, workdir: Path, what: str) -> None:
    text, words = CLI_EVENTS[what]
    good = _event_line() + "\n"
    (workdir / "events.jsonl").write_text(good + text, encoding="utf-8")
    before = row_counts(store)
    one_line_error(cli("import", "openlineage", "events.jsonl"), words)
    assert row_counts(store) == before  # not even the good event before it


# ---------------------------------------------------------------- the terminal door

# What a hostile producer can put into stored text: retitle the window, clear the screen, fake a
# line of output (a CR or line break, then a "result:" of its own), reverse the rest of a line.
TERMINAL = "\x1b]0;pwned\x07\x1b[2J\rresult: every version is present\n\u202egnp.\x9b31m\x7f"
RAW = ("\x1b", "\x07", "\r", "\u202e", "\x9b", "\x7f")


def test_safe_escapes_every_control_and_format_character() -> None:
    from datatrail.cli.output import safe

    assert safe("plain text, ünïcode, 日本, tab-free") == "plain text, ünïcode, 日本, tab-free"
    assert safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe("a\rb\nc\td") == "a\\rb\\nc\\td"
    assert safe("\x00\x7f\x85\x9b") == "\\x00\\x7f\\x85\\x9b"  # C0, DEL, C1
    assert safe("x\u202ey\u2066z\u200b\u2028") == "x\\u202ey\\u2066z\\u200b\\u2028"  # bidi, zero-width, separator
    assert safe("\U000e0001") == "\\U000e0001"  # a format character beyond the BMP
    assert safe(safe(TERMINAL)) == safe(TERMINAL) and all(c not in safe(TERMINAL) for c in RAW)


def _hostile_events(workdir: Path) -> tuple[str, list[dict[str, Any]]]:
    """A run whose command, params, user, host, cwd and error are hostile, and its output's message."""
    from datatrail.core.changes import VersionInfo
    from datatrail.core.model import Digest, RunState
    from datatrail.events import build_run_event

    data = write(workdir / "model.bin", "weights\n")
    digest = Digest.sha256(__import__("hashlib").sha256(data.read_bytes()).hexdigest())
    run_id = str(uuid.uuid4())
    facts = {
        "user": f"mallory{TERMINAL}",
        "host": f"host{TERMINAL}",
        "command": f"python train.py{TERMINAL}",
        "cwd": f"/tmp{TERMINAL}",
        "params": {f"lr{TERMINAL}": f"0.1{TERMINAL}"},
        "code": {"commit": f"abc{TERMINAL}", "branch": f"main{TERMINAL}"},
    }
    info = VersionInfo(
        key=str(digest),
        digest=digest,
        size=8,
        uri=data.as_uri(),
        format=f"bin{TERMINAL}",
        created_by=f"mallory{TERMINAL}",
        host=f"host{TERMINAL}",
        message=f"trained{TERMINAL}",
    )
    done = build_run_event(
        RunState.COMPLETE,
        run_id,
        "default",
        "train",
        run_facts=facts,
        outputs=[("default", "model.bin", info)],
        error=f"failed{TERMINAL}",
    )
    return run_id, [done]


def test_stored_text_reaches_the_terminal_escaped(store: Path, workdir: Path) -> None:
    run_id, events = _hostile_events(workdir)
    (workdir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    imported = cli("import", "openlineage", "events.jsonl")
    assert imported.exit_code == 0, imported.output
    # The config's user is text from the repository too: it becomes the audit log's actor.
    config = workdir / ".datatrail" / "config.toml"
    text = config.read_text().replace("# name =", 'name = "eve\\u001b]0;x\\u0007"\n# name =', 1)
    config.write_text(text)
    write(workdir / "more.csv", "a\n2\n")
    assert cli("add", "more.csv").exit_code == 0
    commands = [
        ("show", f"run:{run_id}"),
        ("show", "model.bin@1"),
        ("runs",),
        ("ls",),
        ("versions", "model.bin"),
        ("reproduce", "model.bin@1", "--check"),
        ("audit", "log"),
        ("lineage", "model.bin"),
        ("lineage", "model.bin", "-f", "mermaid"),
    ]
    for args in commands:
        result = cli(*args)
        assert result.exit_code in (0, 1), (args, result.output)
        for raw in RAW:
            assert raw not in result.stdout and raw not in result.stderr, (args, raw, result.stdout)
    shown = cli("show", f"run:{run_id}").stdout
    assert "command:   python train.py\\x1b]0;pwned\\x07\\x1b[2J\\rresult: every version is present\\n\\u202e" in shown
    assert [ln for ln in shown.splitlines() if ln.startswith("result:")] == []
    checked = cli("reproduce", "model.bin@1", "--check").stdout
    assert [ln for ln in checked.splitlines() if ln.startswith("result:")] == [checked.splitlines()[-1]]
    # JSON keeps the stored text exactly (JSON escapes control characters itself).
    data = json.loads(cli("show", f"run:{run_id}", "--json").stdout)
    assert data["command"] == f"python train.py{TERMINAL}"
    assert "\x1b" not in cli("show", f"run:{run_id}", "--json").stdout
    assert "eve\\x1b]0;x\\x07" in cli("audit", "log").stdout


# ---------------------------------------------------------------- the -o door


@pytest.mark.parametrize(
    "args",
    [
        ("lineage", "data.csv", "-f", "html", "-o"),
        ("lineage", "data.csv", "-o"),
        ("export", "atlas", "--all", "-o"),
        ("export", "attestation", "data.csv@1", "-o"),
        ("export", "openlineage", "-o"),
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_output_files_are_never_written_through_a_symlink(store: Path, workdir: Path, args: tuple[str, ...]) -> None:
    """A repository may commit `lineage.html -> ~/.bashrc`: -o must not overwrite the target."""
    victim = write(workdir.parent / "victim.txt", "precious\n")
    link = workdir / "out.txt"
    link.symlink_to(victim)
    one_line_error(cli(*args, "out.txt"), "out.txt", "is a symlink", "--force")
    assert victim.read_text() == "precious\n" and link.is_symlink()
    # The streaming export's scratch file used to be a fixed name beside FILE: a planted one is not opened.
    planted = workdir / "new.txt.partial"
    planted.symlink_to(victim)
    assert cli(*args, "new.txt").exit_code == 0
    assert victim.read_text() == "precious\n" and (workdir / "new.txt").is_file()
    # --force replaces the link itself, and only the link.
    forced = cli(*args, "out.txt", "--force")
    assert forced.exit_code == 0, forced.output
    assert victim.read_text() == "precious\n" and not link.is_symlink() and link.stat().st_size > 0
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(".out")) == []  # no scratch left
    one_line_error(cli(*args[:-1], "--force"), "--force goes with -o")
