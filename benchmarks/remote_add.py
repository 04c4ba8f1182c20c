"""Adding an S3 prefix: datatrail's parallel streaming and its remote cache, against a serial boto3 loop.

A local S3-compatible server (moto in server mode, on loopback) holds OBJECTS
objects of SIZE bytes under one prefix. Measured in the same run:

- baseline: a plain boto3 loop that downloads each object and hashes it with
  SHA-256, one after another (what a script without datatrail would do);
- datatrail: ``trail.add("s3://bench/data/", jobs=8)`` of the prefix, first
  time (every object read, 8 connections), and again unchanged (listed, not
  read: the remote cache keys on ETag, size and last-modified).

Targets (issue 11): the first add at least as fast as the serial loop (it also
writes the manifest and the version), and the unchanged re-add at least 5x
faster than the first add.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_seconds, note, quick, report, scratch, tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """moto_server on a free loopback port; its output goes to moto.log in ``folder``."""
    exe = tool("moto_server")
    if exe is None:
        sys.exit("benchmarks/remote_add.py: moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    with open(folder / "moto.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                return proc, endpoint
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("benchmarks/remote_add.py: moto_server did not start")


def main() -> None:
    objects, size = (40, 64 * 1024) if quick() else (200, 512 * 1024)
    with scratch("remote-") as folder:
        proc, endpoint = start_moto(folder)
        try:
            os.environ.update(
                AWS_ACCESS_KEY_ID="bench",
                AWS_SECRET_ACCESS_KEY="bench",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ENDPOINT_URL=endpoint,
                XDG_CACHE_HOME=str(folder / "cache"),
            )
            import boto3

            import datatrail

            s3 = boto3.client("s3")
            s3.create_bucket(Bucket="bench")
            for i in range(objects):
                s3.put_object(Bucket="bench", Key=f"data/part-{i:05}.bin", Body=os.urandom(size))
            note(f"{objects} objects of {size // 1024} KiB ({objects * size / 2**20:.0f} MiB) on moto at {endpoint}")

            started = time.perf_counter()
            keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="bench", Prefix="data/")["Contents"])
            for key in keys:
                hashlib.sha256(s3.get_object(Bucket="bench", Key=key)["Body"].read()).hexdigest()
            serial = time.perf_counter() - started

            (folder / "work").mkdir()
            trail = datatrail.init(folder / "work")
            try:
                started = time.perf_counter()
                first = trail.register("s3://bench/data/", jobs=8, profile=False)
                cold = time.perf_counter() - started
                started = time.perf_counter()
                again = trail.register("s3://bench/data/", jobs=8, profile=False)
                warm = time.perf_counter() - started
            finally:
                trail.close()
            assert first.created and not again.created
        finally:
            proc.terminate()
            proc.wait()
    report(
        "first add of the prefix (8 connections)",
        fmt_seconds(cold),
        "serial boto3 download+sha256",
        fmt_seconds(serial),
        serial / cold,
        1.0,
    )
    report("unchanged re-add (listed, not read)", fmt_seconds(warm), "first add", fmt_seconds(cold), cold / warm, 5.0)


if __name__ == "__main__":
    main()
