"""Remote data through fsspec: memory://, file:// and a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import socket
import sqlite3
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import boto3
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs
from hypothesis import given
from hypothesis import strategies as st

import datatrail
from datatrail.core.errors import DatatrailError, InvalidInput, NotFound, StoreUnavailable
from datatrail.core.model import RunState
from datatrail.hashing import hash_path
from datatrail.remote import SECRET_PARAMS, default_name, is_url, redact
from datatrail.remote import hashing as remote_hashing
from tests import s3server
from tests.conftest import write
from tests.test_cli import assert_one_line_error, cli, datatrail_command, ok, run_process

SECRET = "s3cr3tVALUEnotToBeStored"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=2)
    return buf.getvalue()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.S3Server]:
    server = s3server.start(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """Dummy credentials and the moto endpoint in the environment, as a user's shell would have them."""
    s3_server.point_env_at(monkeypatch)
    monkeypatch.setenv("DATATRAIL_REMOTE_TIMEOUT", "20")
    s3fs.S3FileSystem.clear_instance_cache()
    return s3_server.endpoint


@pytest.fixture
def s3(s3_env: str) -> Any:
    return boto3.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"dt-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


class OpenCounter:
    """Counts the real opens (each a GET on S3) a filesystem class does; the reads still happen."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type) -> None:
        self.paths: list[str] = []
        original = cls._open

        def counting(fs: Any, path: str, *args: Any, **kwargs: Any) -> Any:
            if "r" in (args[0] if args else kwargs.get("mode", "rb")):  # reads, not the test's own writes
                self.paths.append(path)
            return original(fs, path, *args, **kwargs)

        monkeypatch.setattr(cls, "_open", counting)

    def __len__(self) -> int:
        return len(self.paths)


@pytest.fixture
def memfs() -> Iterator[Any]:
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex[:8]}"
    yield fs, root
    fs.rm(root, recursive=True) if fs.exists(root) else None


# ---------------------------------------------------------------- URLs


def test_urls_are_told_from_paths() -> None:
    assert is_url("s3://b/k") and is_url("gs://b/k") and is_url("file:///tmp/x") and is_url("abfs://c/p")
    assert not is_url("data/raw.csv") and not is_url("C://data") and not is_url(Path("s3:/x")) and not is_url("")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://AKIA:secret@bucket/key", "s3://bucket/key"),
        ("https://user:pw@host:8443/a.csv?sig=abc&x=1", "https://host:8443/a.csv?x=1"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ff&X-Amz-Security-Token=t&v=2",
            "https://b.s3.amazonaws.com/k?v=2",
        ),
        ("az://c/p?sv=2022&sig=secret%3D", "az://c/p?sv=2022"),
        ("gs://b/k?token=abc", "gs://b/k"),
        ("s3://bucket/key", "s3://bucket/key"),
        ("data/odd?name=1#x.csv", "data/odd?name=1#x.csv"),  # a local path is left alone
    ],
)
def test_redact_strips_embedded_credentials_and_secret_parameters(url: str, shown: str) -> None:
    assert redact(url) == shown


@given(
    secret=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789+/=", min_size=8, max_size=40),
    scheme=st.sampled_from(["s3", "gs", "az", "abfs", "https", "hdfs"]),
    param=st.sampled_from(sorted(SECRET_PARAMS)),
    key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz/._-", min_size=1, max_size=30),  # no letter of a secret
)
def test_no_secret_survives_redaction(secret: str, scheme: str, param: str, key: str) -> None:
    url = f"{scheme}://user:{quote(secret, safe='')}@bucket/{key}?{param.upper()}={quote(secret, safe='')}&v=1"
    shown = redact(url)
    assert secret not in unquote(shown) and quote(secret, safe="") not in shown
    assert shown.startswith(f"{scheme}://bucket/") and shown.endswith("v=1")


def test_default_names_follow_openlineage() -> None:
    assert default_name("s3://bkt/raw/a.parquet", "h") == ("s3://bkt", "raw/a.parquet")
    assert default_name("s3://k:s@bkt/raw/", "h") == ("s3://bkt", "raw")
    assert default_name("file:///data/a.csv", "h") == ("file://h", "/data/a.csv")
    with pytest.raises(InvalidInput, match="--name"):
        default_name("s3://bkt", "h")


# ---------------------------------------------------------------- memory:// and file://


def test_memory_prefix_has_the_local_digest_rules_and_unchanged_objects_are_not_read(
    sqlite_trail: datatrail.Trail, memfs: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, root = memfs
    files = {"a.txt": b"alpha\n", "sub/b.txt": b"beta\n" * 1000, "sub/deep/c.bin": bytes(range(256)) * 50}
    for rel, data in files.items():
        fs.pipe(f"{root}/d/{rel}", data)
        write(workdir / "copy" / rel, data)
    opens = OpenCounter(monkeypatch, type(fs))
    seen: list[tuple[int, int]] = []
    r1 = sqlite_trail.register(f"memory:/{root}/d", progress=lambda f, b: seen.append((f, b)))
    assert r1.created and len(opens) == 3
    assert r1.version.digest == hash_path(workdir / "copy").digest  # same bytes, same directory digest
    assert (sum(f for f, _ in seen), sum(b for _, b in seen)) == (3, sum(map(len, files.values())))
    assert r1.version.namespace == f"memory://{root.strip('/')}" and r1.version.name == "d"
    assert [(f.path, f.size, str(f.digest)) for f in sqlite_trail.manifest(r1.version)] == [
        (rel, len(data), sha(data)) for rel, data in sorted(files.items())
    ]
    assert r1.version.properties["digest_source"] == "content"

    r2 = sqlite_trail.register(f"memory:/{root}/d")
    assert not r2.created and r2.version.number == 1
    assert len(opens) == 3  # listed, not read again

    fs.pipe(f"{root}/d/sub/b.txt", b"changed\n")
    r3 = sqlite_trail.register(f"memory:/{root}/d")
    assert r3.created and r3.version.number == 2
    assert opens.paths[3:] == [f"{root}/d/sub/b.txt"]  # only the changed object is read
    diff = sqlite_trail.diff(r1.version, r3.version)
    assert "sub/b.txt" in json.dumps(diff)


def test_a_file_url_is_the_same_data_as_its_local_path(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    path = write(workdir / "data" / "raw.csv", "a,b\n1,x\n2,y\n")
    local = sqlite_trail.add(path, name="raw")
    remote = sqlite_trail.register(path.resolve().as_uri())
    # The same location is the same dataset: lineage never splits between a path and its file:// URL.
    assert not remote.created and remote.version == local
    assert remote.note is not None and "is raw@1 (its location)" in remote.note
    profile = sqlite_trail.profile(remote.version)
    assert profile is not None and profile["row_count"] == 2
    # It verifies like any local version (its uri is the same file:// URI).
    assert sqlite_trail.verify([remote.version.ref]).ok


# ---------------------------------------------------------------- http:// (a real HTTP server on loopback)


@pytest.fixture
def www(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static file server on a free loopback port, serving a fresh folder."""
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_https_style_url_is_added_profiled_and_verified(
    sqlite_trail: datatrail.Trail, www: tuple[str, Path]
) -> None:
    host, folder = www
    write(folder / "d.csv", "a,b\n1,x\n2,y\n3,z\n")
    url = f"http://someone:{SECRET}@{host}/d.csv?token={SECRET}"
    r = sqlite_trail.register(url)
    v = r.version
    assert r.created and (v.namespace, v.name, v.uri) == (f"http://{host}", "d.csv", f"http://{host}/d.csv")
    assert str(v.digest) == sha((folder / "d.csv").read_bytes()) and v.format == "csv"
    assert sqlite_trail.profile(v)["row_count"] == 3  # type: ignore[index]
    assert not sqlite_trail.register(url).created
    assert sqlite_trail.verify([v.ref]).ok
    write(folder / "d.csv", "a,b\n9,q\n")
    assert [p.kind for p in sqlite_trail.verify([v.ref]).problems] == ["changed"]
    with pytest.raises(NotFound) as missing:
        sqlite_trail.add(f"http://someone:{SECRET}@{host}/nothing.csv?token={SECRET}")
    assert SECRET not in str(missing.value) and f"http://{host}/nothing.csv" in str(missing.value)


def test_a_refused_connection_is_store_unavailable(sqlite_trail: datatrail.Trail) -> None:
    from tests.pgserver import free_port

    with pytest.raises(StoreUnavailable, match="did not answer"):
        sqlite_trail.add(f"http://127.0.0.1:{free_port()}/d.csv")
    assert sqlite_trail.datasets() == []


# ---------------------------------------------------------------- S3 (moto server)


def test_s3_prefix_add_readd_change_and_verify(
    sqlite_trail: datatrail.Trail, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = {f"raw/part-{i:02}.csv": f"id,v\n{i},{i * i}\n".encode() for i in range(12)}
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    opens = OpenCounter(monkeypatch, s3fs.S3FileSystem)
    active, most, threads = 0, 0, set()
    lock = threading.Lock()
    real_read = remote_hashing.read_digest

    def tracked(*args: Any) -> tuple[str, int]:  # the real read, watched
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
            threads.add(threading.current_thread().name.rsplit("_", 1)[0])
        try:
            return real_read(*args)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(remote_hashing, "read_digest", tracked)
    r1 = sqlite_trail.register(f"s3://{bucket}/raw/", jobs=4, profile=False)
    assert r1.created and len(opens) == 12
    assert 1 <= most <= 4 and threads == {"datatrail-remote"}  # a bounded pool of connections
    v = r1.version
    assert (v.namespace, v.name, v.uri, v.format) == (f"s3://{bucket}", "raw", f"s3://{bucket}/raw/", "csv-dir")
    assert [str(f.digest) for f in sqlite_trail.manifest(v)] == [sha(d) for _, d in sorted(objects.items())]

    again = sqlite_trail.recorder.hash_url(f"s3://{bucket}/raw/")
    assert again.result.digest == v.digest and again.result.bytes_read == 0
    assert not sqlite_trail.register(f"s3://{bucket}/raw/").created
    assert len(opens) == 12  # re-adding an unchanged prefix downloads nothing
    assert sqlite_trail.verify([v.ref]).ok and len(opens) == 12

    s3.put_object(Bucket=bucket, Key="raw/part-03.csv", Body=b"id,v\n3,-1\n")
    report = sqlite_trail.verify([v.ref])
    assert [(p.kind, p.path) for p in report.problems] == [("changed", f"s3://{bucket}/raw/part-03.csv")]
    assert opens.paths[12:] == [f"{bucket}/raw/part-03.csv"]
    r2 = sqlite_trail.register(f"s3://{bucket}/raw/")
    assert r2.created and r2.version.number == 2
    # The cache knows the changed object since verify read it; the new version's profile reads the 12 CSVs.
    assert len(opens) == 13 + 12 and sorted(opens.paths[13:]) == sorted(f"{bucket}/{k}" for k in objects)
    profile = sqlite_trail.profile(r2.version)
    assert profile is not None and profile["row_count"] == 12

    s3.delete_object(Bucket=bucket, Key="raw/part-07.csv")
    report = sqlite_trail.verify([r2.version.ref])
    assert [(p.kind, p.path) for p in report.problems] == [("missing", f"s3://{bucket}/raw/part-07.csv")]


def test_s3_single_object_records_etag_and_verifies(sqlite_trail: datatrail.Trail, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="models/m.bin", Body=b"weights" * 100)
    v = sqlite_trail.add(f"s3://{bucket}/models/m.bin", name="model", kind="model")
    head = s3.head_object(Bucket=bucket, Key="models/m.bin")
    assert v.digest is not None and str(v.digest) == sha(b"weights" * 100) and v.size == 700
    assert v.properties == {"digest_source": "content", "etag": head["ETag"].strip('"')}
    assert sqlite_trail.verify(["model"]).ok
    s3.put_object(Bucket=bucket, Key="models/m.bin", Body=b"other")
    (problem,) = sqlite_trail.verify(["model"]).problems
    assert (problem.kind, problem.actual) == ("changed", sha(b"other"))
    s3.delete_object(Bucket=bucket, Key="models/m.bin")
    (problem,) = sqlite_trail.verify(["model"]).problems
    assert problem.kind == "missing"


def test_use_store_checksum_reads_no_bytes_and_says_so(
    sqlite_trail: datatrail.Trail, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = b"checksummed by the store\n", b"no sha256 here\n"
    s3.put_object(Bucket=bucket, Key="p/a.txt", Body=a, ChecksumAlgorithm="SHA256")
    head = s3.head_object(Bucket=bucket, Key="p/a.txt", ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == hashlib.sha256(a).hexdigest()
    opens = OpenCounter(monkeypatch, s3fs.S3FileSystem)

    one = sqlite_trail.register(f"s3://{bucket}/p/a.txt", name="a", use_store_checksum=True).version
    assert str(one.digest) == sha(a) and len(opens) == 0
    assert one.properties["digest_source"] == "store-checksum"

    s3.put_object(Bucket=bucket, Key="p/b.txt", Body=b, ChecksumAlgorithm="CRC32")
    both = sqlite_trail.register(f"s3://{bucket}/p/", name="p", use_store_checksum=True).version
    assert opens.paths == [f"{bucket}/p/b.txt"]  # only the object without a SHA-256 checksum is read
    assert both.properties["digest_source"] == "content+store-checksum"
    assert [str(f.digest) for f in sqlite_trail.manifest(both)] == [sha(a), sha(b)]
    # The same bytes read without the option give the same digest (a digest is a digest).
    assert sqlite_trail.register(f"s3://{bucket}/p/", name="p", use_cache=False).version.number == 1
    assert sqlite_trail.verify(["a", "p"]).ok


def test_remote_parquet_is_profiled(sqlite_trail: datatrail.Trail, s3: Any, bucket: str) -> None:
    table = pa.table({"id": [1, 2, 3, 4, 5], "species": ["a", "b", "a", None, "c"], "mass": [1.5, 2.5, 3.5, 4.5, None]})
    s3.put_object(Bucket=bucket, Key="tables/penguins.parquet", Body=parquet_bytes(table))
    v = sqlite_trail.add(f"s3://{bucket}/tables/penguins.parquet", name="penguins")
    assert v.format == "parquet"
    profile = sqlite_trail.profile(v)
    assert profile is not None and profile["row_count"] == 5
    columns = {c["name"]: c for c in profile["columns"]}
    assert set(columns) == {"id", "species", "mass"}
    assert columns["species"]["null_count"] == 1 and columns["mass"]["null_count"] == 1
    local = write(Path("penguins.parquet"), parquet_bytes(table))
    assert sqlite_trail.profile(sqlite_trail.add(local, name="local"))["row_count"] == 5  # type: ignore[index]


def test_a_remote_run_input_and_output_through_a_real_command(
    sqlite_trail: datatrail.Trail, s3: Any, bucket: str, workdir: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="in/raw.csv", Body=b"a\n1\n2\n")
    # The child is any program: here Python with boto3, finding the endpoint in the environment.
    script = (
        "import boto3, sys; c = boto3.client('s3'); b = sys.argv[1]; "
        "body = c.get_object(Bucket=b, Key='in/raw.csv')['Body'].read(); "
        "c.put_object(Bucket=b, Key='out/clean.csv', Body=body + b'3\\n')"
    )
    p = run_process(
        [*datatrail_command(), "run", "--name", "copy", "-i", f"s3://{bucket}/in/raw.csv",
         "-o", f"s3://{bucket}/out/clean.csv", "--", sys.executable, "-c", script, bucket],
        workdir,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    (run,) = sqlite_trail.runs("copy")
    assert run.state is RunState.COMPLETE
    assert [(v.namespace, v.name, str(v.digest)) for v in run.inputs] == [
        (f"s3://{bucket}", "in/raw.csv", sha(b"a\n1\n2\n"))
    ]
    assert [(v.name, str(v.digest)) for v in run.outputs] == [("out/clean.csv", sha(b"a\n1\n2\n3\n"))]
    assert sqlite_trail.lineage(f"s3://{bucket}:out/clean.csv").nodes

    p = run_process(
        [*datatrail_command(), "run", "--name", "lazy", "-o", f"s3://{bucket}/out/never.csv",
         "--", sys.executable, "-c", "pass"],
        workdir,
    )  # fmt: skip
    assert p.returncode == 125 and f"did not write the output 's3://{bucket}/out/never.csv'" in p.stderr
    (failed,) = sqlite_trail.runs("lazy")
    assert failed.state is RunState.FAIL and failed.outputs == ()


def test_autolog_records_pandas_reads_and_writes_of_s3(
    sqlite_trail: datatrail.Trail, s3: Any, bucket: str, workdir: Path
) -> None:
    import pandas as pd

    table = pa.table({"x": [1, 2, 3]})
    s3.put_object(Bucket=bucket, Key="f/in.parquet", Body=parquet_bytes(table))
    s3.put_object(Bucket=bucket, Key="f/other.parquet", Body=parquet_bytes(pa.table({"z": [0]})))
    datatrail.autolog(trail=sqlite_trail)
    try:
        with sqlite_trail.run("features") as run:
            df = pd.read_parquet(f"s3://{bucket}/f/in.parquet")
            assert pq.read_table(f"s3://{bucket}/f/other.parquet").num_rows == 1  # pyarrow's own S3 client
            df.assign(y=df.x * 2).to_parquet(f"s3://{bucket}/f/out.parquet")
    finally:
        datatrail.autolog(disable=True)
    got = sqlite_trail.get_run(run.id)
    assert sorted((v.namespace, v.name) for v in got.inputs) == [
        (f"s3://{bucket}", "f/in.parquet"),
        (f"s3://{bucket}", "f/other.parquet"),
    ]
    assert [(v.namespace, v.name) for v in got.outputs] == [(f"s3://{bucket}", "f/out.parquet")]
    written = s3.get_object(Bucket=bucket, Key="f/out.parquet")["Body"].read()
    assert str(got.outputs[0].digest) == sha(written)

    # Under `datatrail run`, a script's pandas read of s3:// joins the run (endpoint from AWS_ENDPOINT_URL).
    write(workdir / "job.py", f"import pandas as pd\nprint(len(pd.read_parquet('s3://{bucket}/f/in.parquet')))\n")
    p = run_process([*datatrail_command(), "run", "--name", "script", "--", sys.executable, "job.py"], workdir)
    assert p.returncode == 0 and p.stdout == "3\n", p.stderr
    (script_run,) = sqlite_trail.runs("script")
    in_version = sqlite_trail.get(f"s3://{bucket}:f/in.parquet")
    assert [(v.name, v.digest) for v in script_run.inputs] == [("f/in.parquet", in_version.digest)]


def test_embedded_credentials_are_used_but_never_stored_or_shown(
    sqlite_trail: datatrail.Trail, s3: Any, bucket: str, workdir: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="k/data.csv", Body=b"a\n1\n")
    url = f"s3://AKIAEXAMPLE:{SECRET}@{bucket}/k/data.csv?X-Amz-Signature={SECRET}"
    result = cli("add", url, "--json")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "AKIAEXAMPLE" not in result.output
    v = sqlite_trail.get(f"s3://{bucket}:k/data.csv")
    assert v.uri == f"s3://{bucket}/k/data.csv"
    missing = cli("add", f"s3://AKIAEXAMPLE:{SECRET}@{bucket}/k/nothing.csv")
    line = assert_one_line_error(missing, f"s3://{bucket}/k/nothing.csv")
    assert SECRET not in line
    for db in (workdir / ".datatrail").glob("*.db*"):
        blob = db.read_bytes()
        assert SECRET.encode() not in blob and b"AKIAEXAMPLE" not in blob, db


def test_the_cli_adds_and_verifies_urls_with_jobs(sqlite_trail: datatrail.Trail, s3: Any, bucket: str) -> None:
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}.txt", Body=f"{i}\n".encode())
    out = json.loads(ok("add", f"s3://{bucket}/d", "--jobs", "2", "--name", "numbers", "--json"))
    assert out["status"] == "new" and out["file_count"] == 5 and out["uri"] == f"s3://{bucket}/d"
    assert ok("add", f"s3://{bucket}/d", "--name", "numbers").endswith("(unchanged)\n")
    assert json.loads(ok("verify", "numbers", "--json"))["ok"] is True
    assert "--use-store-checksum" in ok("add", "--help")
    assert_one_line_error(cli("add", f"s3://{bucket}/d", "--jobs", "0"), "--jobs")


# ---------------------------------------------------------------- bad input: one line, nothing stored


def test_unknown_scheme_and_missing_driver(sqlite_trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_one_line_error(cli("add", "nosuchscheme://b/k"), "unknown URL scheme 'nosuchscheme://'")
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if gcsfs were not installed
    assert_one_line_error(cli("add", "gs://b/k.csv"), "pip install 'datatrail[gcs]'")
    assert sqlite_trail.datasets() == []


def test_missing_object_and_empty_prefix(sqlite_trail: datatrail.Trail, bucket: str) -> None:
    with pytest.raises(NotFound, match="not found"):
        sqlite_trail.add(f"s3://{bucket}/nope.csv")
    with pytest.raises(NotFound):
        sqlite_trail.add("s3://dt-no-such-bucket-anywhere/x.csv")
    assert sqlite_trail.datasets() == []


def test_access_denied_is_one_line(
    sqlite_trail: datatrail.Trail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_env: str
) -> None:
    guarded = s3server.start(tmp_path / "moto-auth", auth=True)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", guarded.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
        s3fs.S3FileSystem.clear_instance_cache()
        line = assert_one_line_error(cli("add", "s3://some-bucket/k.csv"), "access denied", "s3://some-bucket/k.csv")
        assert "AWS_ACCESS_KEY_ID" in line
    finally:
        guarded.stop()
    assert sqlite_trail.datasets() == []


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_a_timeout_is_store_unavailable(
    sqlite_trail: datatrail.Trail, silent_endpoint: str, monkeypatch: pytest.MonkeyPatch, s3_env: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)
    monkeypatch.setenv("DATATRAIL_REMOTE_TIMEOUT", "0.3")
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(StoreUnavailable, match="did not answer"):
        sqlite_trail.add("s3://slow-bucket/k.csv")
    assert sqlite_trail.datasets() == []
    monkeypatch.setenv("DATATRAIL_REMOTE_TIMEOUT", "soon")
    with pytest.raises(InvalidInput, match="DATATRAIL_REMOTE_TIMEOUT"):
        sqlite_trail.add("s3://slow-bucket/k.csv")


def test_checks_on_remote_data_are_refused(sqlite_trail: datatrail.Trail, memfs: Any) -> None:
    fs, root = memfs
    fs.pipe(f"{root}/a.csv", b"a\n1\n")
    with pytest.raises(DatatrailError, match="local data"):
        sqlite_trail.register(f"memory:/{root}/a.csv", checks=[{"rule": "row_count", "min": 1}])
    assert sqlite_trail.datasets() == []


# ---------------------------------------------------------------- over a remote datatrail server


@pytest.mark.http
def test_remote_data_recorded_through_the_http_store(
    workdir: Path, http_servers: Any, s3: Any, bucket: str, request: pytest.FixtureRequest
) -> None:
    server = http_servers.take()
    request.addfinalizer(server.stop)
    s3.put_object(Bucket=bucket, Key="h/a.txt", Body=b"over http", ChecksumAlgorithm="SHA256")
    with datatrail.init(workdir, server.uri) as remote_trail:
        v = remote_trail.add(f"s3://{bucket}/h/a.txt", use_store_checksum=True)
        got = remote_trail.get(f"s3://{bucket}:h/a.txt")
        assert got.digest == v.digest and str(v.digest) == sha(b"over http")
        assert got.properties["digest_source"] == "store-checksum" and got.uri == f"s3://{bucket}/h/a.txt"
        assert remote_trail.verify([got.ref]).ok


def test_sqlite_cache_has_a_remote_table(sqlite_trail: datatrail.Trail, memfs: Any) -> None:
    fs, root = memfs
    fs.pipe(f"{root}/x.bin", b"x")
    sqlite_trail.add(f"memory:/{root}/x.bin", name="x")
    path = sqlite_trail.location.config_dir / "statcache.db"  # type: ignore[operator]
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT url, size, sha256, source FROM remote_stat").fetchall()
    assert rows == [(f"memory:/{root}/x.bin", 1, hashlib.sha256(b"x").hexdigest(), "content")]
