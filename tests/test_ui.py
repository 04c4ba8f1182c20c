"""The web UI in a real headless Chromium (Debian's, through Selenium) against a real ``datatrail serve``.

Also without JavaScript: the same pages fetched with httpx, and Chromium with
JavaScript disabled. Screenshots go to ``test-artifacts/ui/`` (gitignored).
``scripts/ensure-chromium`` installs Chromium and chromedriver.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

import datatrail
from tests import httpserver

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CSP = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

# Names that must survive a round trip through the UI's URLs: slashes, '://', ports, dots, unicode.
TRICKY = [
    ("s3://lake", "staged/orders.v1.parquet"),
    ("postgres://db:5432", "public.orders"),
    ("équipe données", "météo/été 2024.csv"),
]
# Ingested text that would run script if it were rendered as HTML.
# Run, each would set the title to 42 or set window.dtRan.
HOSTILE_NAME = "<img src=x onerror=document.title=6*7>"
HOSTILE_NS = "<svg onload=window.dtRan=1>"
HOSTILE_TEXT = "<script>window.dtRan=2;document.title=6*7</script>"
HOSTILE_COLUMN = "<img src=x onerror=window.dtRan=3>"  # a feature of the monitored batches
# A name too long for a table column: cut with an ellipsis, whole in the title.
LONG_NAME = "features/" + "customer_lifetime_value_by_region_and_quarter_" * 3 + "v2.parquet"
BIG = "big"
CHAIN_STEPS = 30


def seg(value: str) -> str:
    return quote(value, safe="")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class Site:
    """A served store with known contents: a pipeline, tricky names and hostile text."""

    def __init__(self, server: httpserver.Server, runs: dict[str, str]) -> None:
        self.server = server
        self.uri = server.uri
        self.runs = runs

    def url(self, path: str) -> str:
        return self.uri + path


def drift_table(path: Path, shift: int) -> Path:
    """200 rows of mass, species and a hostile-named number; ``shift`` moves all three."""
    rows = [f"mass,species,{HOSTILE_COLUMN}"]
    for i in range(200):
        species = ("Adelie", "Gentoo", "Chinstrap")[i % 3] if not shift else ("Adelie", "Gentoo")[i % 5 > 0]
        rows.append(f"{3500 + (i * 37) % 1500 + shift * 800},{species},{(i * 13) % 100 / 100 + shift:.2f}")
    return write(path, "\n".join(rows) + "\n")


def seed(root: Path) -> dict[str, str]:
    """raw@1,@2 → clean (run) → clean → train (run) → model; a failed run; tricky and hostile names."""
    runs: dict[str, str] = {}
    with datatrail.init(root) as trail:
        raw = write(root / "raw.csv", "species,mass\nAdelie,3750\nGentoo,5000\nAdelie,3800\nChinstrap,3500\n")
        v1 = trail.add(raw, name="raw/penguins", checks=[{"rule": "not_null", "column": "mass"}])
        with trail.run("clean", params={"dropna": True, "note": HOSTILE_TEXT}) as run:
            run.input(v1)
            run.output(write(root / "clean.csv", "species,mass\nAdelie,3750\nGentoo,5000\n"), name="clean/penguins")
            run.log_metric("rows", 2)
            runs["clean"] = run.id
        with trail.run("train", job_type="train", params={"max_depth": 6, "n_estimators": 100}) as run:
            run.input("clean/penguins@latest")
            run.output(write(root / "model.bin", "weights"), name="models/penguin-classifier", kind="model")
            run.log_metric("accuracy", 0.93)
            runs["train"] = run.id
        trail.evaluate("models/penguin-classifier@1", "raw/penguins@1", metrics={"accuracy": 0.91, "f1": 0.88})
        with pytest.raises(RuntimeError), trail.run("evaluate") as run:
            run.input("models/penguin-classifier@latest")
            runs["evaluate"] = run.id
            raise RuntimeError(f"evaluation crashed {HOSTILE_TEXT}")
        trail.deploy("models/penguin-classifier@1", env="production")
        # Two monitored batches in production: the first like the reference, the second shifted.
        reference = trail.add(drift_table(root / "drift" / "reference.csv", 0), name="drift/reference")
        for i in (0, 1):
            batch = trail.add(drift_table(root / "drift" / f"batch-{i}.csv", i), name="drift/batch")
            runs[f"monitor-{i}"] = trail.monitor(batch, reference=reference, env="production").run_id
        write(root / "raw.csv", "species,mass\nAdelie,3750\nGentoo,5000\nAdelie,\nChinstrap,3500\nGentoo,5200\n")
        trail.add(raw, name="raw/penguins", tags=["candidate"])
        trail.check("raw/penguins@2", [{"rule": "not_null", "column": "mass"}])
        for namespace, name in TRICKY:
            trail.add(raw, name=name, namespace=namespace)
        trail.add(raw, name=HOSTILE_NAME, namespace=HOSTILE_NS)
        trail.add(raw, name=LONG_NAME)
        seed_big(trail, root / "big")
    return runs


def seed_big(trail: datatrail.Trail, root: Path) -> None:
    """Two graphs too large to read fitted, in the namespace ``big``.

    ``chain/s00`` → 30 steps, each a run reading the last step's output and writing 10 outputs
    (from ``chain/s15``, 15 steps up and down: 196 nodes, 61 layers wide at both levels).
    ``many/raw`` has 30 versions, each cleaned by its own run into a version of ``many/clean``
    (90 nodes in 3 tall columns; 3 nodes at the dataset level).
    """
    previous = trail.add(write(root / "s00.csv", "x\n0\n"), name="chain/s00", namespace=BIG)
    for step in range(1, CHAIN_STEPS + 1):
        with trail.run(f"step-{step:02d}", namespace=BIG) as run:
            run.input(previous)
            outputs = [
                run.output(write(root / f"s{step:02d}-{k}.csv", f"x\n{step}{k}\n"), name=name, namespace=BIG)
                for k, name in enumerate([f"chain/s{step:02d}", *(f"side/s{step:02d}-{k}" for k in range(1, 10))])
            ]
        previous = outputs[0]
    for i in range(1, 31):
        raw = trail.add(write(root / "many.csv", f"x\n{i}\n"), name="many/raw", namespace=BIG)
        with trail.run("clean-many", namespace=BIG) as run:
            run.input(raw)
            run.output(write(root / "many-clean.csv", f"x\n{i * 2}\n"), name="many/clean", namespace=BIG)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("ui-site")
    runs = seed(root)
    server = httpserver.start(root / "server", store=f"sqlite:///{root / '.datatrail' / 'trail.db'}")
    try:
        server.wait_ready()
        yield Site(server, runs)
    finally:
        server.stop()


def make_driver(javascript: bool = True) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = make_driver()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def nojs() -> Iterator[WebDriver]:
    driver = make_driver(javascript=False)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[WebDriver, str], Path]:
    """Save a screenshot as a test artifact: test-artifacts/ui/<test>-<what>.png."""

    def take(driver: WebDriver, what: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{request.node.name}-{what}")
        path = ARTIFACTS / f"{name}.png"
        assert driver.save_screenshot(str(path)), f"no screenshot saved to {path}"
        assert path.stat().st_size > 1000
        return path

    return take


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 15) -> Any:
    return WebDriverWait(driver, timeout).until(condition)


def text(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def no_alert(driver: WebDriver) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018 - raises when there is none
    except NoAlertPresentException:
        return True
    return False


def open_graph(driver: WebDriver, url: str) -> WebElement:
    driver.get(url)
    return graph_ready(driver)


def graph_ready(driver: WebDriver) -> WebElement:
    """The graph once lineage.js drew it and lineage-ui.js wired it (as it opens: the tests' graphs fit)."""
    graph: WebElement = wait_for(
        driver, lambda d: d.find_element(By.CSS_SELECTOR, "#lineage-graph[data-interactive='true']")
    )
    return graph


def follow(driver: WebDriver, element: WebElement, expect: str) -> WebElement:
    """Click a link or button that reloads the lineage page; wait for the new address and the graph."""
    before = driver.current_url
    element.click()
    wait_for(driver, lambda d: d.current_url != before and expect in d.current_url)
    return graph_ready(driver)


def click_node(driver: WebDriver, node: WebElement, *, shift: bool = False, double: bool = False) -> None:
    """Click a drawn node near its left end (a wide node's middle may lie under the details panel)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", node)
    width = node.rect["width"]
    actions = ActionChains(driver).move_to_element_with_offset(node, int(-width / 2 + 8), 0)
    if shift:
        actions = actions.key_down(Keys.SHIFT).click().key_up(Keys.SHIFT)
    elif double:
        actions = actions.double_click()
    else:
        actions = actions.click()
    actions.perform()


def graph_node(driver: WebDriver, node_id: str) -> WebElement:
    for element in driver.find_elements(By.CSS_SELECTOR, "#lineage-graph [data-id]"):
        if element.get_attribute("data-id") == node_id:
            return element
    raise AssertionError(f"no node {node_id!r} in the drawn graph")


# ---------------------------------------------------------------- without JavaScript: plain HTTP


def pages(site: Site) -> dict[str, str]:
    """Each page's path and a text it must show."""
    return {
        "/": "postgres://db:5432",
        "/search?q=penguin": "penguin-classifier",
        "/namespaces/default": "clean/penguins",
        "/datasets/default/raw%2Fpenguins": "candidate",
        "/datasets/default/raw%2Fpenguins/versions/2": "not_null",
        "/datasets/default/raw%2Fpenguins/diff?a=1&b=2": "row count",
        "/datasets/default/clean%2Fpenguins/lineage": "clean/penguins@1",
        f"/runs/{site.runs['clean']}": "dropna",
        f"/runs/{site.runs['clean']}/lineage": "raw/penguins@1",
        "/jobs/default/train": "train",
        "/jobs/default/train/lineage": "models/penguin-classifier@1",
        "/audit?limit=2000": "dataset.add",
        "/environments": "models/penguin-classifier@1",
        "/environments/production": "drift/batch@2",
        "/login": "needs no token",
    }


def test_every_page_renders_without_javascript_with_security_headers(site: Site) -> None:
    with httpx.Client(base_url=site.uri) as client:
        for path, expected in pages(site).items():
            r = client.get(path)
            assert r.status_code == 200, (path, r.text[:500])
            assert r.headers["content-type"].startswith("text/html"), path
            assert r.headers["content-security-policy"].startswith(CSP), path
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert expected in r.text, (path, expected)
            # No inline script or handler attribute: scripts only come from /static.
            assert not re.search(r"<script(?![^>]*\b(src=\"/static/|type=\"application/json\"))", r.text), path
            # (Attribute values are quoted and escaped: a title may hold the text "onload=", as text.)
            assert not re.search(r"<[^>]*\son[a-z]+\s*=", re.sub(r'"[^"]*"', '""', r.text)), path
        assert "content-security-policy" in client.get("/api/v1/namespaces").headers
        assert client.get("/static/ui/ui.css").headers["content-type"].startswith("text/css")


def test_profile_histograms_checks_and_diff_are_server_rendered(site: Site) -> None:
    with httpx.Client(base_url=site.uri) as client:
        version = client.get("/datasets/default/raw%2Fpenguins/versions/2").text
        assert '<svg class="histogram"' in version and "<rect" in version  # the mass column's histogram
        assert "FAIL" in version  # mass has a null in version 2
        assert "Adelie" in version  # top values of the species column
        # Values of the data print as they are, counts group their thousands (datatrail.core.text).
        assert "<td>3500</td>" in version and "<td>5200</td>" in version and "3,500" not in version
        assert "<span>5 rows</span>" in version and "<span>1 missing cell</span>" in version  # never "1 … cells"
        dataset = client.get("/datasets/default/raw%2Fpenguins").text
        assert "Who accessed it" in dataset and "dataset.add" in dataset
        assert "Not deployed anywhere." in dataset
        model = client.get("/datasets/default/models%2Fpenguin-classifier").text
        row = re.search(r'<table class="list" id="deployments">.*?</table>', model, re.S)
        assert row is not None and "production" in row.group(0) and "live" in row.group(0)
        diff = client.get("/datasets/default/raw%2Fpenguins/diff?a=1&b=2").text
        assert "4 → 5" in diff  # row count
        run = client.get(f"/runs/{site.runs['evaluate']}").text
        assert "FAIL" in run and "evaluation crashed" in run


def test_environment_page_charts_the_drift_history(site: Site) -> None:
    with httpx.Client(base_url=site.uri) as client:
        assert 'href="/environments">Environments</a>' in client.get("/").text
        listing = client.get("/environments").text
        assert 'href="/environments/production"' in listing
        model = client.get("/datasets/default/models%2Fpenguin-classifier").text
        assert 'href="/environments/production">production</a>' in model
        page = client.get("/environments/production").text
    live = re.search(r'<table class="list" id="live">.*?</table>', page, re.S)
    assert live is not None and 'href="/datasets/default/models%2Fpenguin-classifier/versions/1"' in live.group(0)
    svg = re.search(r'<svg class="drift-chart".*?</svg>', page, re.S)
    assert svg is not None
    chart = svg.group(0)
    # One line per feature, a point per feature and batch; the bounds dashed; the shifted batch shaded.
    assert len(re.findall(r'<path class="series c\d"', chart)) == 3
    assert len(re.findall(r'<circle class="point', chart)) == 6
    assert '<polyline class="threshold threshold-psi"' in chart and '<polyline class="threshold threshold-js"' in chart
    assert len(re.findall(r'<rect class="drifted-batch"', chart)) == 1
    assert len(re.findall(r'<text class="legend"', chart)) == 3 and ">mass<" in chart
    assert 'aria-label="drift score of 3 features over 2 batches"' in chart
    # The hostile feature name is text, in the chart and in the table.
    assert HOSTILE_COLUMN not in page and "&lt;img src=x onerror=window.dtRan=3&gt;" in page
    table = re.search(r'<table class="list drift-history">.*?</table>', page, re.S)
    assert table is not None
    rows = re.findall(r"<tr class=\"(drift|calm)\">", table.group(0))
    assert rows == ["calm", "drift"]
    assert "&lt;img src=x onerror=window.dtRan=3&gt;</span></th>" in table.group(0)
    assert 'href="/datasets/default/drift%2Fbatch/versions/2"' in table.group(0)
    assert f'href="/runs/{site.runs["monitor-1"]}"' in table.group(0)


@pytest.mark.parametrize(("namespace", "name"), TRICKY)
def test_names_round_trip_through_urls(site: Site, namespace: str, name: str) -> None:
    with httpx.Client(base_url=site.uri) as client:
        listing = client.get(f"/namespaces/{seg(namespace)}")
        assert listing.status_code == 200
        href = f"/datasets/{seg(namespace)}/{seg(name)}"
        assert f'href="{href}"' in listing.text
        page = client.get(href)
        assert page.status_code == 200
        assert re.search(r'<h1 id="dataset-name">(.*?)</h1>', page.text).group(1) == name  # type: ignore[union-attr]
        assert client.get(f"{href}/versions/1").status_code == 200
        assert client.get(f"{href}/lineage").status_code == 200


def test_unknown_things_are_html_404_pages(site: Site) -> None:
    with httpx.Client(base_url=site.uri) as client:
        for path, fragment in [
            ("/datasets/default/no%2Fsuch", "no dataset named"),
            ("/datasets/default/raw%2Fpenguins/versions/99", "99"),
            ("/namespaces/nowhere", "no namespace"),
            ("/runs/00000000-0000-4000-8000-000000000000", "00000000"),
            ("/jobs/default/nojob", "no job named"),
            ("/datasets/default/no%2Fsuch/lineage", "no dataset named"),
            ("/environments/nowhere", "no environment named"),
        ]:
            r = client.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"].startswith("text/html"), path
            assert fragment in r.text and "Traceback" not in r.text, path
        bad = client.get("/runs/not-a-uuid!")
        assert bad.status_code == 400 and "invalid run id" in bad.text


def test_hostile_text_is_escaped_in_the_html(site: Site) -> None:
    with httpx.Client(base_url=site.uri) as client:
        page = client.get(f"/datasets/{seg(HOSTILE_NS)}/{seg(HOSTILE_NAME)}").text
        assert HOSTILE_NAME not in page and "&lt;img src=x onerror=document.title=6*7&gt;" in page
        run = client.get(f"/runs/{site.runs['clean']}").text
        assert HOSTILE_TEXT not in run and "&lt;script&gt;" in run


def test_path_between_two_nodes_without_javascript(site: Site) -> None:
    start, end = "version:default:raw/penguins@1", "version:default:models/penguin-classifier@1"
    with httpx.Client(base_url=site.uri) as client:
        r = client.get("/datasets/default/clean%2Fpenguins/lineage", params={"from": start, "to": end})
        steps = re.findall(r'<span class="step">(.*?)</span>', r.text)
        assert steps[0] == "raw/penguins@1" and steps[-1] == "models/penguin-classifier@1"
        assert len(steps) == 5  # raw@1 → clean run → clean@1 → train run → model@1
        assert r.text.count('class=" on-path"') + r.text.count('class="root on-path"') == 5


# ---------------------------------------------------------------- login (auth on)


def test_token_login_sets_a_strict_httponly_cookie(tmp_path: Path) -> None:
    with httpserver.running(tmp_path, env={"DATATRAIL_API_KEYS": "ana=s3cret"}) as server:
        with httpx.Client(base_url=server.uri) as client:
            r = client.get("/namespaces/default")
            assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fnamespaces%2Fdefault"
            bad = client.post("/login", data={"token": "wrong", "next": "/"})
            assert bad.status_code == 401 and "not valid" in bad.text
            ok = client.post("/login", data={"token": "s3cret", "next": "//evil.example/"})
            assert ok.status_code == 303 and ok.headers["location"] == "/"
            cookie = ok.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            home = client.get("/")
            assert home.status_code == 200 and '<span class="who">ana</span>' in home.text
            assert client.get("/audit").status_code == 200  # an API key acts as an administrator
            client.post("/logout")
            assert client.get("/").status_code == 303


def test_users_see_only_what_they_may(tmp_path: Path) -> None:
    """With users in the store the pages read through the signed-in user's grants (issue 6)."""
    root = tmp_path / "store"
    with datatrail.init(root) as trail:
        data = write(root / "a.csv", "x\n1\n")
        trail.add(data, name="alpha", namespace="team-a")
        trail.add(data, name="beta", namespace="team-b")
        trail.add_user("ada", admin=True)
        trail.add_user("bob")
        _, ada = trail.create_token("ada")
        _, bob = trail.create_token("bob")
        trail.grant("bob", "viewer", "team-a")
    server = httpserver.start(tmp_path / "server", store=f"sqlite:///{root / '.datatrail' / 'trail.db'}")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.uri) as client:
            assert client.get("/").status_code == 303  # sign in first
            assert client.post("/login", data={"token": bob, "next": "/"}).status_code == 303
            home = client.get("/").text
            assert ">team-a<" in home and ">team-b<" not in home
            assert client.get("/datasets/team-a/alpha").status_code == 200
            assert client.get("/namespaces/team-b").status_code == 404
            assert client.get("/datasets/team-b/beta").status_code == 404
            assert ">beta<" not in client.get("/search?q=a").text
            assert client.get("/audit").status_code == 403
        with httpx.Client(base_url=server.uri) as client:
            assert client.post("/login", data={"token": ada, "next": "/"}).status_code == 303
            assert client.get("/audit").status_code == 200
            page = client.get("/datasets/team-a/alpha").text
            access = re.search(r'<table class="list" id="access">.*?</table>', page, re.S)
            assert access is not None and "<td>bob</td><td>dataset.read</td>" in access.group(0)
    finally:
        server.stop()


def test_login_in_the_browser(tmp_path: Path, browser: WebDriver, shot: Callable[[WebDriver, str], Path]) -> None:
    with httpserver.running(tmp_path, env={"DATATRAIL_API_KEYS": "ana=s3cret"}) as server:
        browser.delete_all_cookies()
        browser.get(server.uri + "/")
        wait_for(browser, lambda d: "/login" in d.current_url)
        browser.find_element(By.NAME, "token").send_keys("s3cret")
        shot(browser, "login")
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        wait_for(browser, lambda d: d.current_url.rstrip("/") == server.uri)
        assert text(browser, "header .who") == "ana"
        assert browser.execute_script("return document.cookie") == ""  # HttpOnly: scripts cannot read it
        browser.delete_all_cookies()


# ---------------------------------------------------------------- Chromium with JavaScript


def test_browse_from_home_to_a_dataset(site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]) -> None:
    browser.get(site.url("/"))
    shot(browser, "home")
    browser.find_element(By.LINK_TEXT, "default").click()
    wait_for(browser, lambda d: d.current_url.endswith("/namespaces/default"))
    shot(browser, "namespace")
    browser.find_element(By.LINK_TEXT, "raw/penguins").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "dataset-name"))
    assert text(browser, "#dataset-name") == "raw/penguins"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")) == 2
    shot(browser, "dataset")
    Select(browser.find_element(By.NAME, "a")).select_by_value("1")
    Select(browser.find_element(By.NAME, "b")).select_by_value("2")
    browser.find_element(By.CSS_SELECTOR, "form.diff button").click()
    wait_for(browser, lambda d: "/diff?" in d.current_url)
    assert "4 → 5" in text(browser, "#diff-summary")
    shot(browser, "diff")
    browser.back()
    browser.find_element(By.LINK_TEXT, "@2").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "version-facts"))
    shot(browser, "version")
    run = site.runs["evaluate"]
    browser.get(site.url(f"/runs/{run}"))
    assert "evaluation crashed" in text(browser, "#run-error")
    shot(browser, "failed-run")


def test_search_box(site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]) -> None:
    browser.get(site.url("/"))
    box = browser.find_element(By.NAME, "q")
    box.send_keys("orders", Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements(By.ID, "results"))
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#results td:nth-child(2) a")]
    assert names == ["public.orders", "staged/orders.v1.parquet"]
    shot(browser, "results")
    browser.find_element(By.LINK_TEXT, "staged/orders.v1.parquet").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "dataset-name"))
    assert text(browser, "#dataset-name") == "staged/orders.v1.parquet"
    assert text(browser, ".crumbs") == "Namespaces / s3://lake /"


def test_lineage_graph_open_a_node_expand_and_follow_a_link(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    graph = open_graph(browser, site.url("/datasets/default/clean%2Fpenguins/lineage?version=1&up=0&down=0"))
    assert graph.find_elements(By.CSS_SELECTOR, "[data-id]")
    assert text(browser, "#node-count") == "1 node"
    shot(browser, "depth-0")
    # Expand: one more step each way (the pages reload with more depth). A step is a run and its other side.
    follow(browser, browser.find_element(By.ID, "more-up"), "up=1")
    assert text(browser, "#node-count") == "3 nodes"  # raw@1 → clean run → clean@1
    follow(browser, browser.find_element(By.ID, "more-down"), "down=1")
    assert text(browser, "#node-count") == "5 nodes"  # … → train run → model@1
    follow(browser, browser.find_element(By.ID, "more-down"), "down=2")
    assert text(browser, "#node-count") == "8 nodes"  # … → the two evaluate runs and the deploy run (read the model)
    drawn = {e.get_attribute("data-id") for e in browser.find_elements(By.CSS_SELECTOR, "#lineage-graph [data-id]")}
    assert f"run:{site.runs['evaluate']}" in drawn
    shot(browser, "expanded")
    # The depth control (a form) sets both depths at once.
    for field, value in (("depth-up", "0"), ("depth-down", "3")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#lineage-form button"), "down=3")
    assert "up=0" in browser.current_url
    # Open a node: a click shows its details, with the link to its page.
    node = graph_node(browser, "version:default:models/penguin-classifier@1")
    click_node(browser, node)
    panel = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#lineage-graph .dtl-panel h2"))
    assert panel.text.startswith("models/penguin-classifier@1")
    shot(browser, "details")
    browser.find_element(By.CSS_SELECTOR, "#lineage-graph a.dtl-open").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "version-name"))
    assert text(browser, "#version-name") == "models/penguin-classifier"
    assert browser.current_url.endswith("/datasets/default/models%2Fpenguin-classifier/versions/1")
    shot(browser, "followed")


def test_lineage_path_between_two_selected_nodes(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    open_graph(browser, site.url("/datasets/default/clean%2Fpenguins/lineage?version=1&up=2&down=2"))
    start = graph_node(browser, "version:default:raw/penguins@1")
    click_node(browser, start, shift=True)
    end = graph_node(browser, "version:default:models/penguin-classifier@1")
    click_node(browser, end, shift=True)
    graph = browser.find_element(By.ID, "lineage-graph")
    wait_for(browser, lambda d: len((graph.get_attribute("data-path") or "").split("\n")) == 5)
    on_path = {e.get_attribute("data-id") for e in graph.find_elements(By.CSS_SELECTOR, "[data-id].dt-on-path")}
    assert on_path == {
        "version:default:raw/penguins@1",
        f"run:{site.runs['clean']}",
        "version:default:clean/penguins@1",
        f"run:{site.runs['train']}",
        "version:default:models/penguin-classifier@1",
    }
    assert "/lineage" in browser.current_url  # shift-click selects; it does not navigate
    shot(browser, "path")


def test_dataset_level_lineage(site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]) -> None:
    graph = open_graph(browser, site.url("/datasets/default/raw%2Fpenguins/lineage?level=dataset&up=3&down=3"))
    ids = {e.get_attribute("data-id") for e in graph.find_elements(By.CSS_SELECTOR, "[data-id]")}
    assert {"dataset:default:raw/penguins", "job:default:clean", "dataset:default:clean/penguins"} <= ids
    shot(browser, "datasets")
    # A double click opens the node's page at once.
    click_node(browser, graph_node(browser, "job:default:clean"), double=True)
    wait_for(browser, lambda d: d.current_url.endswith("/jobs/default/clean"))


# ---------------------------------------------------------------- Chromium without JavaScript


def test_pages_work_with_javascript_disabled(
    site: Site, nojs: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    nojs.get(site.url("/"))
    nojs.find_element(By.NAME, "q").send_keys("penguins", Keys.ENTER)
    wait_for(nojs, lambda d: d.find_elements(By.ID, "results"))
    nojs.find_element(By.LINK_TEXT, "clean/penguins").click()
    wait_for(nojs, lambda d: d.find_elements(By.ID, "dataset-name"))
    assert text(nojs, "#dataset-name") == "clean/penguins"
    nojs.find_element(By.LINK_TEXT, "Lineage").click()
    wait_for(nojs, lambda d: d.find_elements(By.ID, "nodes"))
    # The graph is not drawn (it needs JavaScript), but every node is listed with its link.
    assert not nojs.find_elements(By.CSS_SELECTOR, "#lineage-graph[data-interactive]")
    nojs.find_element(By.ID, "more-up").click()
    wait_for(nojs, lambda d: "up=3" in d.current_url)
    shot(nojs, "lineage")
    nojs.find_element(By.LINK_TEXT, "raw/penguins@1").click()
    wait_for(nojs, lambda d: d.find_elements(By.ID, "version-name"))
    assert text(nojs, "#version-name") == "raw/penguins"
    shot(nojs, "version")


# ---------------------------------------------------------------- injection


def test_hostile_names_run_no_script(site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]) -> None:
    pages = [
        f"/datasets/{seg(HOSTILE_NS)}/{seg(HOSTILE_NAME)}",
        f"/namespaces/{seg(HOSTILE_NS)}",
        f"/search?q={seg('onerror')}",
        f"/datasets/{seg(HOSTILE_NS)}/{seg(HOSTILE_NAME)}/lineage",
        f"/runs/{site.runs['clean']}",
        f"/runs/{site.runs['evaluate']}",
        "/",
    ]
    for path in pages:
        browser.get(site.url(path))
        if path.endswith("/lineage"):
            wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#lineage-graph[data-interactive='true']"))
        time.sleep(0.2)  # give an injected handler (an image that fails to load) the time to fire
        assert no_alert(browser), path
        assert browser.execute_script("return window.dtRan === undefined"), path
        assert browser.title != "42" and browser.title.endswith("· datatrail"), path
    browser.get(site.url(f"/datasets/{seg(HOSTILE_NS)}/{seg(HOSTILE_NAME)}"))
    assert text(browser, "#dataset-name") == HOSTILE_NAME  # shown as the text it is
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main svg[onload]")
    shot(browser, "hostile-dataset")
    browser.get(site.url(f"/runs/{site.runs['clean']}"))
    assert HOSTILE_TEXT in text(browser, "#run-params")
    shot(browser, "hostile-params")


def test_environment_chart_in_the_browser(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    browser.get(site.url("/environments"))
    browser.find_element(By.LINK_TEXT, "production").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "environment-name"))
    chart = browser.find_element(By.CSS_SELECTOR, "svg.drift-chart")
    assert chart.is_displayed() and chart.rect["width"] > 300
    lines = browser.find_elements(By.CSS_SELECTOR, "svg.drift-chart path.series")
    assert len(lines) == 3 and all(line.rect["width"] > 50 for line in lines)  # drawn across both batches
    legend = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "svg.drift-chart text.legend")]
    assert legend[0] == "mass" and legend[2].startswith("<img src=x onerror=")  # the name, as text
    time.sleep(0.2)
    assert browser.execute_script("return window.dtRan === undefined") and browser.title != "42"
    shot(browser, "environment")


def test_an_injected_inline_script_would_be_blocked_by_the_policy(site: Site, browser: WebDriver) -> None:
    """The second line of defence: even markup that got through could not run inline script."""
    browser.get(site.url("/"))
    blocked = browser.execute_script(
        "var s = document.createElement('script'); s.textContent = 'window.__ran = true';"
        " document.body.appendChild(s); return window.__ran === true;"
    )
    assert blocked is False


def test_screenshots_are_kept(site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]) -> None:
    browser.get(site.url("/audit?verify=true"))
    assert text(browser, "#integrity") == "The audit hash chain verifies."
    path = shot(browser, "audit")
    assert path.parent == ARTIFACTS


# ---------------------------------------------------------------- readable lineage, tables, model card, home

# Each drawn node's label as Chromium shows it: its text, the node's tooltip, whether it is displayed, its
# font size on screen (computed size x the screen transform's scale), its box and the drawing area's box.
MEASURE_LABELS = """
var graph = document.getElementById('lineage-graph');
var area = graph.querySelector('svg.dtl-svg').getBoundingClientRect();
var nodes = [];
graph.querySelectorAll('.dtl-node').forEach(function (n) {
  var t = n.querySelector('text:not(.dtl-badge-text)');
  var style = getComputedStyle(t);
  var r = n.getBoundingClientRect();
  nodes.push({id: n.getAttribute('data-id'), text: t.textContent, title: n.querySelector('title').textContent,
    shown: style.display !== 'none', px: parseFloat(style.fontSize) * t.getScreenCTM().a,
    box: [r.left, r.top, r.right, r.bottom]});
});
return {area: [area.left, area.top, area.right, area.bottom], nodes: nodes,
  level: graph.querySelector('.dtl-toolbar button[aria-pressed="true"]').textContent};
"""


def inside(box: list[float], area: list[float]) -> bool:
    return box[0] >= area[0] - 0.5 and box[1] >= area[1] - 0.5 and box[2] <= area[2] + 0.5 and box[3] <= area[3] + 0.5


def readable_labels(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """The drawn nodes, after checking each label: shown at 11 px or more, whole or cut with its tooltip."""
    nodes: list[dict[str, Any]] = measured["nodes"]
    assert nodes
    for n in nodes:
        assert n["shown"], n
        assert n["px"] >= 11, n
        assert n["title"].startswith(n["text"].removesuffix("…")), n  # the whole name, or cut and in the tooltip
    return nodes


def focus_box(nodes: list[dict[str, Any]], node_id: str) -> list[float]:
    return next(n["box"] for n in nodes if n["id"] == node_id)


def test_small_lineage_opens_fitted_and_readable(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    open_graph(browser, site.url("/datasets/default/clean%2Fpenguins/lineage?version=1&up=2&down=2"))
    measured = browser.execute_script(MEASURE_LABELS)
    nodes = readable_labels(measured)
    assert len(nodes) == 8 and measured["level"] == "Versions"
    assert all(inside(n["box"], measured["area"]) for n in nodes)  # fitted: every node in view
    assert not browser.find_element(By.CSS_SELECTOR, "#lineage-graph .dtl-minimap").is_displayed()
    labels = {n["id"]: n["text"] for n in nodes}
    assert labels["version:default:clean/penguins@1"] == "clean/penguins@1"
    assert labels[f"run:{site.runs['evaluate']}"] == f"evaluate {site.runs['evaluate'][:8]} [FAIL]"
    # The breadcrumb names the namespace, then the dataset and the version.
    assert text(browser, ".crumbs") == "Namespaces / default / clean/penguins / @1 /"
    shot(browser, "fitted")


def mini_node(graph: WebElement, node_id: str) -> WebElement:
    for element in graph.find_elements(By.CSS_SELECTOR, ".dtl-mini-node"):
        if element.get_attribute("data-id") == node_id:
            return element
    raise AssertionError(f"no node {node_id!r} in the minimap")


def test_large_lineage_opens_on_the_focus_node_with_a_minimap(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    graph = open_graph(browser, site.url(f"/datasets/{BIG}/{seg('chain/s15')}/lineage?version=1&up=20&down=20"))
    assert text(browser, "#node-count") == "196 nodes"  # 15 steps up (2 nodes each), 15 down (11 each), the root
    measured = browser.execute_script(MEASURE_LABELS)
    nodes = readable_labels(measured)  # at both levels too wide to read fitted: labels stay 11 px or more
    assert len(nodes) == 196
    focus = f"version:{BIG}:chain/s15@1"
    assert inside(focus_box(nodes, focus), measured["area"])
    assert not all(inside(n["box"], measured["area"]) for n in nodes)
    # The minimap shows the whole graph and, as a frame, the part in view.
    minimap = graph.find_element(By.CSS_SELECTOR, ".dtl-minimap")
    assert minimap.is_displayed()
    whole = graph.find_element(By.CSS_SELECTOR, ".dtl-minimap-svg").rect
    frame = graph.find_element(By.CSS_SELECTOR, ".dtl-minimap-view").rect
    assert len(graph.find_elements(By.CSS_SELECTOR, ".dtl-mini-node")) == 196
    assert 0 < frame["width"] < whole["width"] / 2 and whole["x"] < frame["x"] < whole["x"] + whole["width"]
    shot(browser, "focus")
    # The rest is reachable: a click on the last step in the minimap (its right end) brings it into view.
    last = f"version:{BIG}:chain/s{CHAIN_STEPS:02d}@1"
    assert not inside(focus_box(nodes, last), measured["area"])
    ActionChains(browser).move_to_element(mini_node(graph, last)).click().perform()
    moved = browser.execute_script(MEASURE_LABELS)
    assert inside(focus_box(readable_labels(moved), last), moved["area"])
    assert graph.find_element(By.CSS_SELECTOR, ".dtl-minimap-view").rect["x"] > frame["x"]
    shot(browser, "minimap-moved")
    # And the upstream end, at the minimap's left.
    first = f"version:{BIG}:chain/s00@1"
    assert not inside(focus_box(moved["nodes"], first), moved["area"])
    ActionChains(browser).move_to_element(mini_node(graph, first)).click().perform()
    upstream = browser.execute_script(MEASURE_LABELS)
    assert inside(focus_box(readable_labels(upstream), first), upstream["area"])
    # "Fit" shows all of it; too small to read, the labels are hidden rather than shrunk.
    graph.find_element(By.CSS_SELECTOR, "button[title='Fit the graph in view']").click()
    fitted = browser.execute_script(MEASURE_LABELS)
    assert all(inside(n["box"], fitted["area"]) for n in fitted["nodes"])
    assert not any(n["shown"] for n in fitted["nodes"])
    shot(browser, "fit-unlabelled")


def test_lineage_too_large_in_versions_opens_at_the_dataset_level(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    graph = open_graph(browser, site.url(f"/datasets/{BIG}/{seg('many/raw')}/lineage?up=0&down=1"))
    assert text(browser, "#node-count") == "90 nodes"  # 30 versions, 30 runs, 30 versions
    measured = browser.execute_script(MEASURE_LABELS)
    shot(browser, "opened")
    nodes = readable_labels(measured)
    assert measured["level"] == "Datasets"
    assert {n["id"] for n in nodes} == {f"dataset:{BIG}:many/raw", f"job:{BIG}:clean-many", f"dataset:{BIG}:many/clean"}
    assert all(inside(n["box"], measured["area"]) for n in nodes)
    assert "too large to read at once" in graph.find_element(By.CSS_SELECTOR, ".dtl-note").text
    shot(browser, "datasets")
    # The versions stay one click away, centred on the newest version of the page's dataset.
    next(b for b in graph.find_elements(By.CSS_SELECTOR, ".dtl-toolbar button") if b.text == "Versions").click()
    versions = browser.execute_script(MEASURE_LABELS)
    assert len(readable_labels(versions)) == 90
    assert inside(focus_box(versions["nodes"], f"version:{BIG}:many/raw@30"), versions["area"])
    assert graph.find_element(By.CSS_SELECTOR, ".dtl-minimap").is_displayed()
    assert not graph.find_element(By.CSS_SELECTOR, ".dtl-note").is_displayed()
    # An address that names the level keeps it.
    open_graph(browser, site.url(f"/datasets/{BIG}/{seg('many/raw')}/lineage?up=0&down=1&level=version"))
    assert browser.execute_script(MEASURE_LABELS)["level"] == "Versions"


def test_lineage_breadcrumbs_name_the_namespace(site: Site) -> None:
    with httpx.Client(base_url=site.uri) as client:
        for path, crumbs in [
            (
                f"/datasets/{seg('s3://lake')}/{seg('staged/orders.v1.parquet')}/lineage",
                [("/", "Namespaces"), (f"/namespaces/{seg('s3://lake')}", "s3://lake")],
            ),
            ("/jobs/default/train/lineage", [("/namespaces/default", "default"), ("/jobs/default/train", "job train")]),
            (
                f"/runs/{site.runs['clean']}/lineage",
                [("/namespaces/default", "default"), ("/jobs/default/clean", "job clean")],
            ),
        ]:
            page = client.get(path).text
            found = re.search(r'<p class="crumbs">(.*?)</p>', page, re.S)
            assert found is not None, path
            links = re.findall(r'<a href="([^"]*)">([^<]*)</a>', found.group(1))
            for link in crumbs:
                assert link in links, (path, link, links)


# Words (runs of non-space text) that a table cell breaks across lines, and cut values without their title.
MEASURE_TABLES = """
var broken = [], untitled = [], cells = 0;
document.querySelectorAll('main table td, main table th').forEach(function (cell) {
  cells++;
  var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    var node = walker.currentNode, re = /\\S+/g, m;
    while ((m = re.exec(node.textContent))) {
      var range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      var tops = {};
      Array.prototype.forEach.call(range.getClientRects(), function (r) {
        if (r.width > 0) tops[Math.round(r.top)] = 1;
      });
      if (Object.keys(tops).length > 1) broken.push(m[0]);
    }
  }
});
var cut = 0;
document.querySelectorAll('main .clip').forEach(function (c) {
  if (c.scrollWidth > c.clientWidth + 1) {
    cut++;
    if (c.getAttribute('title') !== c.textContent) untitled.push(c.textContent);
  }
});
return {cells: cells, broken: broken, untitled: untitled, cut: cut};
"""


def test_table_cells_never_break_inside_a_word(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    cut = 0
    pages = [
        ("audit", "/audit?limit=2000", "#audit"),
        ("drift", "/environments/production", "table.drift-history"),
        ("home", "/", "#recent"),
        ("namespace", "/namespaces/default", "#datasets"),
        ("dataset", "/datasets/default/raw%2Fpenguins", "#versions"),
        ("version", "/datasets/default/raw%2Fpenguins/versions/2", "table.profile"),
        ("model", "/datasets/default/models%2Fpenguin-classifier", "#evaluations"),
        ("lineage-nodes", "/datasets/default/clean%2Fpenguins/lineage", "#nodes"),
        ("run", f"/runs/{site.runs['clean']}", "#run-params"),
        ("job", "/jobs/default/clean", "#runs"),
        ("environments", "/environments", "#environments"),
        ("search", "/search?q=s", "#results"),
        ("diff", "/datasets/default/raw%2Fpenguins/diff?a=1&b=2", "#diff-summary"),
    ]
    # A wide window, and a narrow one where the tables no longer fit: they scroll, their cells stay whole.
    try:
        for width in (1280, 760):
            browser.set_window_size(width, 900)
            for what, path, anchor in pages:
                browser.get(site.url(path))
                browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(By.CSS_SELECTOR, anchor))
                found = browser.execute_script(MEASURE_TABLES)
                assert found["cells"] > 0, path
                assert found["broken"] == [], (width, path, found["broken"])
                assert found["untitled"] == [], (width, path, found["untitled"])
                page_width = browser.execute_script("return document.documentElement.scrollWidth")
                assert page_width <= width, (width, path, page_width)  # no sideways scrolling of the page
                cut += found["cut"]
                shot(browser, what if width == 1280 else f"{what}-narrow")
    finally:
        browser.set_window_size(1280, 900)
    assert cut > 0  # the long name was cut somewhere (and had its title)
    # On the audit page the short columns fit their content: the target column does not take the width.
    browser.get(site.url("/audit?limit=2000"))
    widths = browser.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('#audit thead th'), function (th) {"
        " return th.getBoundingClientRect().width; });"
    )
    main = browser.find_element(By.TAG_NAME, "main").rect["width"]
    assert widths[4] < main / 2, widths
    long_cell = next(
        c
        for c in browser.find_elements(By.CSS_SELECTOR, "#audit td.target .clip")
        if "customer_lifetime" in (c.get_attribute("title") or "")
    )
    assert LONG_NAME in long_cell.get_attribute("title")
    assert browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", long_cell)


def test_model_page_shows_the_model_card(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    with datatrail.connect(site.uri) as trail:
        card = trail.model_card("models/penguin-classifier@1").to_dict()
    browser.get(site.url("/datasets/default/models%2Fpenguin-classifier"))
    wait_for(browser, lambda d: d.find_elements(By.ID, "model-card"))
    page = text(browser, "main")
    assert "No profile" not in page
    training = browser.find_element(By.CSS_SELECTOR, "#training-run a[href^='/runs/']")
    assert training.get_attribute("href").endswith(f"/runs/{card['training_run']['id']}")
    assert card["training_run"]["id"] == site.runs["train"]
    assert "clean/penguins@1" in text(browser, "#training-run")
    assert text(browser, "#model-params") == "max_depth 6\nn_estimators 100"
    assert text(browser, "#model-metrics") == "accuracy 0.93"
    rows = browser.find_elements(By.CSS_SELECTOR, "#evaluations tbody tr")
    assert len(rows) == len(card["evaluations"]) == 2  # trail.evaluate's, and the evaluate run that failed
    scored = next(r for r in rows if "accuracy" in r.text)
    assert "raw/penguins@1" in scored.text and "accuracy 0.91" in scored.text and "f1 0.88" in scored.text
    deployed = text(browser, "#model-deployments tbody")
    assert "production" in deployed and "live" in deployed
    shot(browser, "model")
    # The version page shows the same card.
    browser.get(site.url("/datasets/default/models%2Fpenguin-classifier/versions/1"))
    assert text(browser, "#model-metrics") == "accuracy 0.93" and "No profile" not in text(browser, "main")


def test_home_shows_recent_datasets_failing_checks_and_drift_alerts(
    site: Site, browser: WebDriver, shot: Callable[[WebDriver, str], Path]
) -> None:
    browser.get(site.url("/"))
    recent = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#recent tbody td:first-child a")]
    assert len(recent) == 10 and "many/raw" in recent  # the newest versions are the big graphs'
    failing = text(browser, "#failing tbody")
    assert "raw/penguins@2" in failing and "not_null on mass" in failing
    alerts = browser.find_elements(By.CSS_SELECTOR, "#drift-alerts tbody tr")
    assert len(alerts) == 1 and "drift/batch@2" in alerts[0].text and "production" in alerts[0].text
    assert (
        alerts[0]
        .find_element(By.CSS_SELECTOR, "a[href^='/runs/']")
        .get_attribute("href")
        .endswith(f"/runs/{site.runs['monitor-1']}")
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#namespaces tbody tr")
    shot(browser, "home")
    browser.find_element(By.LINK_TEXT, "raw/penguins@2").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "version-name"))
    assert "FAIL" in text(browser, "main")
