"""Web UI: the lineage page of a 300-node graph, interactive in a real Chromium in under 1 s.

The store is built through the real ingest path (OpenLineage events): 15
source datasets, then 12 layers of runs (9 of 14 runs, then 8, 4, 2), each run
reading two versions of the layer before and writing one, and a last run
writing the sink: 297 nodes (156 versions, 141 runs) when the sink's lineage is
walked 13 steps upstream.
A real ``datatrail serve`` serves it and Debian's Chromium (headless, through
Selenium and chromedriver; ``scripts/ensure-chromium`` installs them) loads
the sink's lineage page.

Measured: from navigation start to the moment ``lineage-ui.js`` marks the
graph interactive (``data-interactive="true"``, with ``performance.now()`` in
``data-ready-ms``): the HTML fetched (the server walks the graph and lays it
out in Python), lineage.js drawn, the UI's handlers wired. Baseline, in the
same run: the sink's dataset page (server-rendered, no graph) to its load
event, so the ratio says what the graph costs over a plain page.

    python benchmarks/ui_lineage.py [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import datatrail_cmd, fmt_seconds, median, note, quick, report, scratch, verdict

TARGET_MS = 1000.0
# The graph page may cost up to three plain pages (a ratio of plain / graph of at least 1/3).
TARGET_RATIO = 0.33
PRODUCER = "https://github.com/datatrail/benchmarks"
RUN_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def event(job: str, inputs: list[str], outputs: list[str], when: float) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when * 1000) % 1000:03d}+00:00"
    return {
        "eventType": "COMPLETE",
        "eventTime": stamp,
        "producer": PRODUCER,
        "schemaURL": RUN_SCHEMA,
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "bench", "name": job, "facets": {}},
        "inputs": [{"namespace": "bench", "name": n, "facets": {}} for n in inputs],
        "outputs": [{"namespace": "bench", "name": n, "facets": {}} for n in outputs],
    }


def build(uri: str, sources: int, widths: list[int]) -> str:
    """The layered graph; returns the sink's dataset name.

    Run ``i`` of a layer reads versions ``2i`` and ``2i + 1`` (modulo its width) of the
    layer before, so every version is read, and the last layers narrow to two, so the
    sink's upstream walk reaches the whole graph.
    """
    from datatrail.config import Location
    from datatrail.service import Trail
    from datatrail.store import open_store

    trail = Trail(open_store(uri, create=True), Location(uri, Path.cwd(), None), "bench")
    try:
        clock = 1_700_000_000.0
        previous = [f"src/s{i:02d}" for i in range(sources)]
        for layer, width in enumerate(widths):
            current = []
            for i in range(width):
                out = f"l{layer:02d}/d{i:02d}"
                ins = [previous[(2 * i) % len(previous)], previous[(2 * i + 1) % len(previous)]]
                clock += 1
                trail.ingest(event(f"step-{layer:02d}-{i:02d}", sorted(set(ins)), [out], clock))
                current.append(out)
            previous = current
        clock += 1
        trail.ingest(event("report", previous, ["sink/report"], clock))
    finally:
        trail.close()
    return "sink/report"


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"datatrail serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("datatrail serve did not start")


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def load_interactive(driver: Any, url: str) -> tuple[float, int, str]:
    """Milliseconds from navigation start to data-interactive, the number of drawn boxes, the node count."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get(url)
    graph = WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#lineage-graph[data-interactive='true']")
    )
    drawn = len(driver.find_elements(By.CSS_SELECTOR, "#lineage-graph .dtl-node"))
    nodes = driver.find_element(By.ID, "node-count").text
    return float(graph.get_attribute("data-ready-ms")), drawn, nodes


def load_plain(driver: Any, url: str) -> float:
    """Milliseconds from navigation start to the load event of a page without a graph."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
    )
    return float(driver.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2 if quick() else 7)
    args = parser.parse_args()
    widths = [4, 2] if quick() else [14] * 9 + [8, 4, 2]
    layers = len(widths)
    with scratch("ui-lineage-") as folder:
        uri = f"sqlite:///{folder / 'trail.db'}"
        t0 = time.perf_counter()
        sink = build(uri, sources=15, widths=widths)
        note(f"built the store in {fmt_seconds(time.perf_counter() - t0)}")
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
        env["DATATRAIL_LOG_LEVEL"] = "warning"
        proc = subprocess.Popen(
            [*datatrail_cmd(), "--store", uri, "serve", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        driver = None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, proc)
            page = f"{base}/datasets/bench/{sink.replace('/', '%2F')}/lineage?up={layers + 1}&down=0"
            plain = f"{base}/datasets/bench/{sink.replace('/', '%2F')}"
            driver = browser()
            load_interactive(driver, page)  # warm: the store's caches, Chromium's
            load_plain(driver, plain)
            ours: list[float] = []
            theirs: list[float] = []
            drawn, nodes = 0, "?"
            for _ in range(args.repeats):
                ms, drawn, nodes = load_interactive(driver, page)
                ours.append(ms)
                theirs.append(load_plain(driver, plain))
            t1 = time.perf_counter()
            with urllib.request.urlopen(page, timeout=30) as r:
                size = len(r.read())
            server_ms = (time.perf_counter() - t1) * 1000
        finally:
            if driver is not None:
                driver.quit()
            proc.terminate()
            proc.wait(10)
    ours_ms, theirs_ms = median(ours), median(theirs)
    note(f"{nodes}, {drawn} boxes drawn (a fan-out over 12 would be one group box); page {size / 1024:.0f} KiB")
    note(f"breakdown: the server answers the page in {server_ms:.0f} ms (walk, layout, HTML); the rest is the browser")
    note(f"median of {len(ours)} loads; min {min(ours):.0f} ms, max {max(ours):.0f} ms")
    report(
        f"lineage page interactive, {nodes}, vs a plain page",
        f"{ours_ms:.0f} ms",
        "the dataset page (no graph)",
        f"{theirs_ms:.0f} ms",
        theirs_ms / ours_ms,
        TARGET_RATIO,
    )
    print(
        f"lineage page interactive, {nodes}: datatrail {ours_ms:.0f} ms (target < {TARGET_MS:g} ms)"
        f" {verdict(ours_ms < TARGET_MS)}",
        flush=True,
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    main()
