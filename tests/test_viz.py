"""Lineage pictures: the layered layout, the dataset-level fold, DOT, Mermaid, SVG and the standalone HTML.

Graphs are built by hand for the layout's properties; the CLI runs end to end
on real stores (SQLite, PostgreSQL, a real server) with a real failed run and a
hostile dataset name; the standalone HTML runs in a real headless Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import re
import shlex
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.results import LineageNode
from datatrail.lineage import Graph
from datatrail.viz import fold_datasets, graph_payload, layout_graph, render_html, render_svg, to_dot, to_mermaid
from datatrail.viz.html import STATIC_DIR
from datatrail.viz.layout import Layout
from tests.conftest import write

HOSTILE = "<img src=x onerror=alert(1)>"
TRICKY = 'say "hi" & <b>bye</b> #quot; `x` \\N'
SVG_NS = "{http://www.w3.org/2000/svg}"
runner = CliRunner()


# ---------------------------------------------------------------- graphs by hand


def version(name: str, number: int = 1, **data: Any) -> LineageNode:
    nid = f"version:default:{name}@{number}"
    return LineageNode(nid, "version", 0, {"namespace": "default", "name": name, "version": number, **data})


def run(key: str, job: str = "job", state: str = "COMPLETE", **data: Any) -> LineageNode:
    return LineageNode(f"run:{key}", "run", 1, {"id": key, "namespace": "default", "job": job, "state": state, **data})


def graph(nodes: list[LineageNode], edges: list[tuple[LineageNode, LineageNode]], root: int = 0) -> Graph:
    return Graph(nodes[root].id, "both", 5, {n.id: n for n in nodes}, tuple((s.id, t.id) for s, t in edges))


def pipeline_graph(n: int, *, seed: int = 1, window: int = 30, inputs: int = 3) -> Graph:
    """Like real lineage: run i reads a few of the versions made shortly before it and writes version i."""
    rnd = random.Random(seed)
    vs = [version(f"data/v{i}", kind="model" if i % 11 == 0 else "dataset") for i in range(n)]
    nodes: list[LineageNode] = list(vs)
    edges = []
    for i in range(1, n):
        r = run(f"r{i}", job=f"job{i % 7}")
        nodes.append(r)
        for j in rnd.sample(range(max(0, i - window), i), min(inputs, i - max(0, i - window))):
            edges.append((vs[j], r))
        edges.append((r, vs[i]))
    return graph(nodes, edges, root=n - 1)


def fan_graph(n: int) -> tuple[Graph, LineageNode]:
    """One source read by n runs, each writing its own output."""
    src = version("src")
    nodes, edges = [src], []
    for i in range(n):
        r, out = run(f"r{i:02d}", job=f"j{i}"), version(f"out{i:02d}")
        nodes += [r, out]
        edges += [(src, r), (r, out)]
    return graph(nodes, edges), src


# ---------------------------------------------------------------- layout properties


def assert_no_overlap(lay: Layout) -> None:
    boxes = list(lay.boxes.values())
    for a, b in itertools.combinations(boxes, 2):
        apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
        assert apart, (a, b)
    for box in boxes:
        assert box.x >= 0 and box.x + box.w <= lay.width and box.y >= 0 and box.y + box.h <= lay.height, box


def assert_left_to_right(lay: Layout) -> None:
    for route in lay.routes:
        assert not route.reversed, route
        xs = [x for x, _ in route.points]
        assert xs == sorted(xs), route
        s, t = lay.boxes[route.source], lay.boxes[route.target]
        assert s.x + s.w <= t.x, (s, t)
        # The route leaves the source's right side and ends on the target's left side.
        assert route.points[0] == pytest.approx((s.x + s.w, s.cy))
        assert route.points[-1] == pytest.approx((t.x, t.cy))


def assert_complete(g: Graph, lay: Layout) -> None:
    """Every node is drawn, as its own box or inside exactly one group; every edge is drawn once."""
    for nid in g.nodes:
        assert (nid in lay.boxes) != (nid in lay.owner), nid
    drawn = {(r.source, r.target) for r in lay.routes}
    for s, t in g.edges:
        a, b = lay.owner.get(s, s), lay.owner.get(t, t)
        assert a == b or (a, b) in drawn, (s, t)


def crossings(lay: Layout) -> int:
    """Edge crossings of a drawing, counted from the routes between neighbouring layers."""
    gaps: dict[int, list[tuple[float, float]]] = {}
    for route in lay.routes:
        for (x0, y0), (x1, y1) in itertools.pairwise(route.points):
            if x1 - x0 < 1:
                continue
            (k,) = [i for i, (cx, cw) in enumerate(lay.columns) if cx - 0.5 <= x0 <= cx + cw + 0.5]
            gaps.setdefault(k, []).append((y0, y1))
    return sum(
        1 for segs in gaps.values() for a, b in itertools.combinations(segs, 2) if (a[0] - b[0]) * (a[1] - b[1]) < 0
    )


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    n = draw(st.integers(1, 40))
    nodes = [version(f"v{i}") if i % 2 == 0 else run(f"r{i}") for i in range(n)]
    pairs = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    edges = [(nodes[a], nodes[b]) for a, b in pairs if a < b]  # i < j: no cycle
    return graph(nodes, edges, root=draw(st.integers(0, n - 1)))


@settings(max_examples=60, deadline=None)
@given(dags())
def test_layout_of_any_dag_goes_left_to_right_without_overlaps(g: Graph) -> None:
    lay = layout_graph(g, collapse_over=4)
    assert_complete(g, lay)
    assert_left_to_right(lay)
    assert_no_overlap(lay)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_layout_of_a_300_node_pipeline_is_readable(seed: int) -> None:
    g = pipeline_graph(150, seed=seed)
    assert len(g.nodes) == 299
    lay = layout_graph(g)
    assert_complete(g, lay)
    assert_left_to_right(lay)
    assert_no_overlap(lay)
    # Boxes are tall enough for a line of text and no wider than the cap; labels that do not fit are shortened.
    for box in lay.boxes.values():
        assert box.h >= 30 and 72 <= box.w <= 280
        assert box.text == box.label or (box.text.endswith("…") and box.label.startswith(box.text[:-1]))
    # The sweeps cut crossings well below the graph's own order.
    assert crossings(lay) < crossings(layout_graph(g, sweeps=0)) / 2


def test_crossing_reduction_untangles_a_crafted_graph() -> None:
    # Sources in one order, their readers listed in the reverse order: every pair of edges crosses.
    srcs = [version(f"s{i}") for i in range(6)]
    runs = [run(f"r{i}") for i in range(6)]
    outs = [version(f"o{i}") for i in range(6)]
    merge, final = run("merge"), version("final")  # one connected graph (parts are laid out apart)
    nodes = [*srcs, *reversed(runs), *outs, merge, final]
    edges = [(srcs[i], runs[i]) for i in range(6)] + [(runs[i], outs[i]) for i in range(6)]
    edges += [*((o, merge) for o in outs), (merge, final)]
    g = graph(nodes, edges)
    tangled = layout_graph(g, sweeps=0)
    assert crossings(tangled) == 30  # 15 pairs between each of the two pairs of layers
    untangled = layout_graph(g)
    assert crossings(untangled) == 0
    assert_no_overlap(untangled)
    # A node with one neighbour on each side sits level with them: the chains come out straight.
    for i in range(6):
        ys = {untangled.boxes[n.id].cy for n in (srcs[i], runs[i], outs[i])}
        assert max(ys) - min(ys) < 1


def test_long_edges_pass_through_dummy_points_between_layers() -> None:
    a, r1, b, r2, c = version("a"), run("1"), version("b"), run("2"), version("c")
    g = graph([a, r1, b, r2, c], [(a, r1), (r1, b), (b, r2), (r2, c), (a, r2)])
    lay = layout_graph(g)
    assert [lay.boxes[n.id].layer for n in (a, r1, b, r2, c)] == [0, 1, 2, 3, 4]
    (long,) = [r for r in lay.routes if (r.source, r.target) == (a.id, r2.id)]
    assert len(long.points) == 2 + 2 * 2  # two layers crossed, entering and leaving each
    for box in (lay.boxes[r1.id], lay.boxes[b.id]):  # and it goes around the boxes in its way
        for x, y in long.points[1:-1]:
            assert not (box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h)
    assert_left_to_right(lay)


def test_sources_sit_next_to_their_readers() -> None:
    # a feeds a deep chain's last run: a goes in the layer right before it, not at the far left.
    chain = [version("c0"), run("1"), version("c1"), run("2"), version("c2"), run("3"), version("c3")]
    late = version("late")
    g = graph([*chain, late], [*itertools.pairwise(chain), (late, chain[5])])
    lay = layout_graph(g)
    assert lay.boxes[late.id].layer == lay.boxes[chain[5].id].layer - 1


def test_disconnected_parts_are_stacked() -> None:
    a, r, b = version("a"), run("1"), version("b")
    c, s, d = version("c"), run("2"), version("d")
    lay = layout_graph(graph([a, r, b, c, s, d], [(a, r), (r, b), (c, s), (s, d)]))
    assert_no_overlap(lay)
    top = {n.id: lay.boxes[n.id] for n in (a, r, b)}
    bottom = {n.id: lay.boxes[n.id] for n in (c, s, d)}
    assert max(b.y + b.h for b in top.values()) < min(b.y for b in bottom.values())


def test_large_fan_out_collapses_into_an_expandable_group() -> None:
    g, src = fan_graph(30)
    lay = layout_graph(g)
    assert_complete(g, lay)
    runs_group, outs_group = f"group:out:{src.id}", f"group:out:group:out:{src.id}"
    assert set(lay.groups) == {runs_group, outs_group}
    assert len(lay.groups[runs_group].members) == 30 and lay.groups[runs_group].member_type == "run"
    assert lay.groups[outs_group].parent == runs_group and lay.groups[outs_group].member_type == "version"
    assert set(lay.boxes) == {src.id, runs_group, outs_group}
    assert lay.boxes[runs_group].kind == "group" and lay.boxes[runs_group].label == "30 runs (+)"
    assert {(r.source, r.target) for r in lay.routes} == {(src.id, runs_group), (runs_group, outs_group)}
    # Expanded on request (what the UI does for a click): every run has its box again.
    opened = layout_graph(g, expanded={runs_group})
    assert not opened.groups and len(opened.boxes) == 61
    assert_left_to_right(opened)
    assert_no_overlap(opened)
    # Twelve siblings stay as they are; collapse_over=0 never collapses.
    assert not layout_graph(fan_graph(12)[0]).groups
    assert not layout_graph(g, collapse_over=0).groups


def test_a_group_carries_its_members_marks_and_never_hides_the_root() -> None:
    src = version("src")
    runs = [run(f"r{i:02d}", state="FAIL" if i == 3 else "COMPLETE") for i in range(20)]
    g = graph([*runs, src], [(src, r) for r in runs], root=5)
    lay = layout_graph(g)
    (group,) = lay.groups.values()
    assert runs[5].id not in group.members and runs[5].id in lay.boxes
    assert len(group.members) == 19
    assert lay.boxes[group.id].marks == ("failed",)


def test_siblings_joined_by_a_path_are_not_folded_into_a_cycle() -> None:
    # Run i also reads the output of run i-1: grouping all readers of src would make a loop.
    src = version("src")
    nodes, edges, prev = [src], [], None
    for i in range(20):
        r, out = run(f"r{i:02d}"), version(f"o{i:02d}")
        nodes += [r, out]
        edges += [(src, r), (r, out)]
        if prev is not None:
            edges.append((prev, r))
        prev = out
    g = graph(nodes, edges)
    lay = layout_graph(g)
    assert_complete(g, lay)
    assert_left_to_right(lay)
    assert_no_overlap(lay)


@pytest.mark.parametrize("size", [1, 2, 3, 200])
def test_cycles_terminate_with_reversed_edges(size: int) -> None:
    nodes = [version(f"c{i}") if i % 2 == 0 else run(f"c{i}") for i in range(max(size, 2))]
    edges = [(nodes[i], nodes[(i + 1) % len(nodes)]) for i in range(len(nodes))]
    edges.append((nodes[0], nodes[-1]))  # and a chord
    g = graph(nodes, edges)
    lay = layout_graph(g)
    assert set(lay.boxes) == set(g.nodes)
    assert_no_overlap(lay)
    drawn = {(r.source, r.target) for r in lay.routes}
    assert drawn == set(g.edges)
    back = [r for r in lay.routes if r.reversed]
    assert back  # a cycle has at least one edge drawn backwards
    for r in lay.routes:
        xs = [x for x, _ in r.points]
        assert xs == sorted(xs, reverse=r.reversed)


def test_a_self_loop_and_a_two_cycle_do_not_hang() -> None:
    a, r = version("a"), run("1")
    g = Graph(a.id, "both", 1, {a.id: a, r.id: r}, ((a.id, r.id), (r.id, a.id), (a.id, a.id)))
    lay = layout_graph(g)
    assert set(lay.boxes) == {a.id, r.id}
    assert {(x.source, x.target) for x in lay.routes} == {(a.id, r.id), (r.id, a.id)}


def test_an_empty_graph_and_a_root_outside_the_graph() -> None:
    empty = Graph("dataset:default:x", "both", 1, {}, ())
    lay = layout_graph(empty)
    assert not lay.boxes and lay.width > 0 and lay.height > 0
    ET.fromstring(render_svg(empty))
    assert "datatrail-graph" in render_html(empty)


# ---------------------------------------------------------------- dataset level


def test_fold_datasets_merges_versions_and_runs() -> None:
    raw1, raw2 = version("raw", 1), version("raw", 2, checks={"failed": 1})
    clean1, clean2 = version("clean", 1), version("clean", 2, drift={"alert": True})
    r1 = run("a1", job="clean", started_at="2024-01-01T00:00:00+00:00")
    r2 = run("a2", job="clean", state="FAIL", started_at="2024-01-02T00:00:00+00:00")
    g = graph([clean2, raw1, raw2, clean1, r1, r2], [(raw1, r1), (r1, clean1), (raw2, r2), (r2, clean2)])
    folded = fold_datasets(g)
    assert folded.root == "dataset:default:clean"
    assert set(folded.nodes) == {"dataset:default:raw", "dataset:default:clean", "job:default:clean"}
    assert folded.edges == (
        ("dataset:default:raw", "job:default:clean"),
        ("job:default:clean", "dataset:default:clean"),
    )
    raw, clean, job = (
        folded.nodes[k].data for k in ("dataset:default:raw", "dataset:default:clean", "job:default:clean")
    )
    assert raw["versions"] == [1, 2] and raw["checks"] == {"failed": 1} and "drift" not in raw
    assert clean["drift"] == {"alert": True}
    assert job["runs"] == ["a1", "a2"] and job["states"] == {"COMPLETE": 1, "FAIL": 1} and job["state"] == "FAIL"
    assert folded.label("job:default:clean") == "job clean [FAIL] (2 runs)"
    assert folded.label("dataset:default:raw") == "raw (2 versions)"
    lay = layout_graph(folded)
    assert lay.boxes["job:default:clean"].marks == ("failed",)
    assert lay.boxes["dataset:default:raw"].marks == ("checks",)
    assert lay.boxes["dataset:default:clean"].marks == ("drift",)
    assert "failed checks: 1" in to_mermaid(folded)


def test_fold_keeps_a_job_that_rewrites_its_input_as_a_cycle() -> None:
    d1, d2, r = version("d", 1), version("d", 2), run("x", job="append")
    folded = fold_datasets(graph([d2, d1, r], [(d1, r), (r, d2)]))
    assert set(folded.edges) == {
        ("dataset:default:d", "job:default:append"),
        ("job:default:append", "dataset:default:d"),
    }
    lay = layout_graph(folded)
    assert sum(x.reversed for x in lay.routes) == 1


# ---------------------------------------------------------------- the formats


def marked_graph(name: str = HOSTILE) -> Graph:
    src = version(name, checks={"failed": 2})
    model = version("model", kind="model", drift={"alert": True})
    bad = run("b" * 8, job="train", state="FAIL")
    return graph([model, src, bad], [(src, bad), (bad, model)])


def parse_dot(text: str) -> Any:
    """One graph parsed by pydot (a real DOT grammar, no Graphviz binary needed)."""
    with warnings.catch_warnings():
        # pydot 4 still calls pyparsing's old camelCase names.
        warnings.filterwarnings("ignore", message=".*deprecated - use", category=DeprecationWarning)
        graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1, text
    return graphs[0]


def test_dot_parses_with_shapes_marks_and_escaped_labels() -> None:
    g = marked_graph(TRICKY)
    parsed = parse_dot(to_dot(g))
    assert parsed.get_type() == "digraph" and parsed.get_rankdir() == "LR"
    nodes = {n.get_name().strip('"'): n for n in parsed.get_nodes() if n.get_name() not in ("node", "edge")}
    ids = {nid.replace("\\", "\\\\").replace('"', '\\"') for nid in g.nodes}
    assert set(nodes) == ids
    assert {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in parsed.get_edges()} == {
        (s.replace("\\", "\\\\").replace('"', '\\"'), t.replace("\\", "\\\\").replace('"', '\\"')) for s, t in g.edges
    }

    def attrs(nid: str) -> dict[str, str]:
        return nodes[nid.replace("\\", "\\\\").replace('"', '\\"')].get_attributes()

    src_id = f"version:default:{TRICKY}@1"
    assert attrs(src_id)["shape"] == "ellipse"
    assert attrs("version:default:model@1")["shape"] == "hexagon"
    assert attrs("run:bbbbbbbb")["shape"] == "box"
    assert attrs("run:bbbbbbbb")["color"] == '"#c62828"'
    assert attrs(src_id)["color"] == '"#e65100"' and "failed checks: 2" in attrs(src_id)["label"]
    assert attrs("version:default:model@1")["color"] == '"#6a1b9a"'
    # The label is the escaped text: unescaped, it is the node's label again.
    label = attrs(src_id)["label"]
    assert label.startswith('"') and label.endswith('"')
    assert label[1:-1].replace('\\"', '"').replace("\\\\", "\\").split("\\n")[0] == g.label(src_id)


def test_graph_methods_delegate_to_viz() -> None:
    g = marked_graph()
    assert g.to_dot() == to_dot(g)
    assert g.to_mermaid() == to_mermaid(g)


def test_mermaid_structure_shapes_and_escaping() -> None:
    g = marked_graph(TRICKY + "\nsecond line")
    text = to_mermaid(g)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    node_line = re.compile(r'^  (n\d+)(\["|\(\["|\{\{")([^"<>`]*)("\]|"\]\)|"\}\})$')
    found = {m.group(1): m for m in map(node_line.match, lines[1:]) if m}
    assert len(found) == 3
    shapes = {m.group(3).split(" ")[0]: m.group(2) for m in found.values()}
    assert shapes["run"] == '["' and shapes["model@1"] == '{{"'
    assert any(
        m.group(2) == '(["' and "#quot;hi#quot; #amp; #lt;b#gt;bye#lt;/b#gt; #35;quot; #96;x#96;" in m.group(3)
        for m in found.values()
    )
    assert sum(" --> " in line for line in lines) == 2
    assert re.search(r"^  classDef failed .*\n  class n\d+ failed$", text, re.MULTILINE)
    assert "  classDef checks " in text and "  classDef drift " in text
    assert "second line" in text and len(lines) == 1 + 3 + 2 + 6


def test_svg_is_xml_with_every_label_escaped_and_a_legend() -> None:
    g = pipeline_graph(40)
    g = Graph(g.root, g.direction, g.depth, {**g.nodes, **marked_graph().nodes}, g.edges + marked_graph().edges)
    svg = render_svg(g)
    tree = ET.fromstring(svg)
    assert tree.tag == f"{SVG_NS}svg"
    texts = [t.text or "" for t in tree.iter(f"{SVG_NS}text")]
    titles = [t.text or "" for t in tree.iter(f"{SVG_NS}title")]
    lay = layout_graph(g)
    for box in lay.boxes.values():
        assert box.text in texts
        assert any(t.startswith(box.label) for t in titles)
    assert HOSTILE + "@1" in texts and "<img" not in svg
    for words in ("dataset version", "model version", "run", "failed run", "failed checks", "drift alert"):
        assert words in texts
    shapes = {n.get("data-id"): n for n in tree.iter(f"{SVG_NS}g") if n.get("data-id")}
    assert shapes[f"version:default:{HOSTILE}@1"].get("class") == "node dataset checks"
    assert shapes["version:default:model@1"].find(f"{SVG_NS}polygon") is not None
    assert shapes["run:bbbbbbbb"].get("class") == "node run failed"
    assert len(list(tree.iter(f"{SVG_NS}path"))) >= len(g.edges)
    assert not re.search(r"""\s(?:href|src|xlink:href)\s*=\s*["']""", svg)  # no attribute fetches anything


def test_svg_dataset_level_and_control_characters() -> None:
    g = marked_graph("a\x01b\x0bc")  # characters XML 1.0 forbids are dropped, not written
    ET.fromstring(render_svg(g))
    tree = ET.fromstring(render_svg(marked_graph(), level="dataset"))
    titles = [t.text or "" for t in tree.iter(f"{SVG_NS}title")]
    assert f"{HOSTILE} (1 version)\nfailed checks" in titles and "job train [FAIL] (1 run)\nfailed run" in titles


def json_block(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="datatrail-graph">(.*?)</script>', page, re.DOTALL)
    assert m, "no JSON payload"
    assert "<" not in m.group(1)
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def test_html_is_standalone_with_payload_and_viewer() -> None:
    g, _ = fan_graph(20)
    g = Graph(g.root, g.direction, g.depth, {**g.nodes, **marked_graph().nodes}, g.edges + marked_graph().edges)
    page = render_html(g)
    # Nothing is fetched: no remote src/href, no external script or stylesheet, a CSP that allows no source.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"<(?:link|img|iframe|object|embed)\b", page, re.IGNORECASE)
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page)
    js = (STATIC_DIR / "lineage.js").read_text(encoding="utf-8")
    css = (STATIC_DIR / "lineage.css").read_text(encoding="utf-8")
    assert f"<script>{js}</script>" in page and css in page
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert csp and "default-src 'none'" in csp.group(1)
    digest = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp.group(1)
    payload = json_block(page)
    assert payload == json.loads(json.dumps(graph_payload(g)))
    assert set(payload["views"]) == {"version", "dataset"}
    view = payload["views"]["version"]
    assert {n["id"] for n in view["nodes"]} == set(g.nodes)
    assert len(view["groups"]) == 2 and sorted(map(tuple, view["links"])) == sorted(g.edges)
    hostile = next(n for n in view["nodes"] if n["data"].get("name") == HOSTILE)
    assert hostile["label"] == f"{HOSTILE}@1" and hostile["marks"] == ["checks"]
    assert "<img" not in page  # the hostile name is in the JSON, escaped as \u003c


def test_lineage_js_never_evaluates_or_injects_markup() -> None:
    js = (STATIC_DIR / "lineage.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", js, flags=re.DOTALL)
    for banned in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setTimeout("',
        "onclick",
        "onerror",
        "fetch(",
        "XMLHttpRequest",
        "import(",
    ):
        assert banned not in code, banned
    assert "textContent" in code and 'getElementById("datatrail-graph")' in code


def test_static_files_are_package_data() -> None:
    assert (STATIC_DIR / "lineage.js").is_file() and (STATIC_DIR / "lineage.css").is_file()
    assert STATIC_DIR.parent.name == "viz" and STATIC_DIR.parent.parent.name == "datatrail"


# ---------------------------------------------------------------- the CLI, end to end


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return str(result.stdout)


def one_line_error(result: Any, fragment: str) -> None:
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and fragment in line, line


@pytest.fixture
def failed_pipeline(trail: datatrail.Trail, workdir: Path) -> dict[str, str]:
    """A hostile-named source, a failed run that still wrote its output, and a model trained from it."""
    raw = trail.add(write(workdir / "raw.csv", "a\n1\n"), name=HOSTILE)
    with pytest.raises(RuntimeError, match="boom"):
        with trail.run("clean") as clean:
            clean.input(raw)
            clean.output(write(workdir / "clean.csv", "a\n"), name="clean")
            raise RuntimeError("boom")
    with trail.run("train") as train:
        train.input("clean")
        train.output(write(workdir / "model.bin", b"\x00w"), name="model", kind="model")
    return {"clean_run": clean.id, "train_run": train.id}


def test_cli_formats_end_to_end(failed_pipeline: dict[str, str], workdir: Path) -> None:
    bad = f"run:{failed_pipeline['clean_run']}"
    src = f"version:default:{HOSTILE}@1"
    # tree stays the default, json and --json agree.
    assert ok("lineage", "model").splitlines()[0].startswith("model@1 sha256:")
    assert json.loads(ok("lineage", "model", "--format", "json")) == json.loads(ok("lineage", "model", "--json"))
    # DOT: the failed run is marked, the hostile name is a quoted string.
    dot = parse_dot(ok("lineage", "model", "-f", "dot"))
    attrs = {n.get_name().strip('"'): n.get_attributes() for n in dot.get_nodes()}
    assert attrs[bad]["color"] == '"#c62828"' and attrs[bad]["shape"] == "box"
    assert attrs["version:default:model@1"]["shape"] == "hexagon"
    assert attrs[src]["label"].startswith(f'"{HOSTILE}@1')
    # Mermaid: a failed class, the name escaped.
    mermaid = ok("lineage", "model", "-f", "mermaid")
    assert "#lt;img src=x onerror=alert(1)#gt;@1" in mermaid and "<img" not in mermaid
    assert re.search(r"^  class n\d+ failed$", mermaid, re.MULTILINE)
    # SVG to stdout: valid XML, the name as text.
    tree = ET.fromstring(ok("lineage", "model", "-f", "svg"))
    texts = [t.text for t in tree.iter(f"{SVG_NS}text")]
    assert any(t and t.startswith(HOSTILE + "@1") for t in texts)
    assert any(g.get("data-id") == bad and "failed" in (g.get("class") or "") for g in tree.iter(f"{SVG_NS}g"))
    # HTML to a file, with a note on stderr; its payload holds both levels.
    result = cli("lineage", "model", "-f", "html", "-o", "lineage.html")
    assert result.exit_code == 0 and result.stdout == "" and "wrote lineage.html" in result.stderr
    payload = json_block((workdir / "lineage.html").read_text(encoding="utf-8"))
    assert {n["id"] for n in payload["views"]["version"]["nodes"]} >= {bad, src, "version:default:model@1"}
    job = next(n for n in payload["views"]["dataset"]["nodes"] if n["id"] == "job:default:clean")
    assert job["marks"] == ["failed"]
    # --level dataset applies to every format.
    assert ok("lineage", "model", "--level", "dataset") == (
        "model (1 version) (model)\n"
        "└── <- job train [COMPLETE] (1 run)\n"
        "    └── <- clean (1 version)\n"
        "        └── <- job clean [FAIL] (1 run)\n"
        f"            └── <- {HOSTILE} (1 version)\n"
    )
    folded = json.loads(ok("lineage", "model", "--level", "dataset", "--json"))
    assert {n["id"] for n in folded["nodes"]} == {
        "dataset:default:model",
        "job:default:train",
        "dataset:default:clean",
        "job:default:clean",
        f"dataset:default:{HOSTILE}",
    }
    ok("lineage", "model", "--level", "dataset", "-f", "svg", "-o", "datasets.svg")
    ET.parse(workdir / "datasets.svg")
    # Bad input: one line each, nothing written.
    one_line_error(cli("lineage", "model", "-f", "png"), "png")
    one_line_error(cli("lineage", "model", "--level", "job"), "--level dataset")
    one_line_error(cli("lineage", "model", "-f", "svg", "-o", str(workdir / "missing" / "x.svg")), "cannot write")
    assert not (workdir / "missing").exists()


def test_cli_help_teaches_the_formats() -> None:
    text = ok("lineage", "--help")
    for words in ("--format", "--output", "--level", "svg", "html", "-o lineage.html", "--level dataset"):
        assert words in text, words


# ---------------------------------------------------------------- the standalone file in a browser


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def no_alert(driver: WebDriver) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018
    except NoAlertPresentException:
        return True
    return False


def test_standalone_html_works_offline_in_a_browser(browser: WebDriver, tmp_path: Path) -> None:
    g, src = fan_graph(20)
    g = Graph(src.id, g.direction, g.depth, {**g.nodes, **marked_graph().nodes}, g.edges + marked_graph().edges)
    page = tmp_path / "lineage.html"
    page.write_text(render_html(g), encoding="utf-8")
    browser.get(page.as_uri())
    nodes = browser.find_elements(By.CSS_SELECTOR, ".dtl-node")
    group = f"group:out:{src.id}"
    assert {n.get_attribute("data-id") for n in nodes} >= {src.id, group, f"version:default:{HOSTILE}@1"}
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    # The hostile name is text, not markup.
    hostile = browser.find_element(By.CSS_SELECTOR, f'.dtl-node[data-id="version:default:{HOSTILE}@1"]')
    assert hostile.find_element(By.TAG_NAME, "text").text == f"{HOSTILE}@1"
    hostile.click()
    assert browser.find_element(By.CSS_SELECTOR, ".dtl-panel h2").text == f"{HOSTILE}@1"
    assert "failed checks" in browser.find_element(By.CSS_SELECTOR, ".dtl-panel").text
    assert browser.execute_script("return document.images.length") == 0 and no_alert(browser)
    # Downstream of the hostile source: its run and the model light up, the rest dims.
    next(b for b in browser.find_elements(By.CSS_SELECTOR, ".dtl-actions button") if b.text == "Downstream").click()
    lit = {n.get_attribute("data-id") for n in browser.find_elements(By.CSS_SELECTOR, ".dtl-node.dtl-lit")}
    assert lit == {f"version:default:{HOSTILE}@1", "run:bbbbbbbb", "version:default:model@1"}
    # A group opens into its members.
    browser.find_element(By.CSS_SELECTOR, f'.dtl-node[data-id="{group}"]').click()
    next(b for b in browser.find_elements(By.CSS_SELECTOR, ".dtl-actions button") if b.text == "Expand").click()
    ids = {n.get_attribute("data-id") for n in browser.find_elements(By.CSS_SELECTOR, ".dtl-node")}
    assert group not in ids and {f"run:r{i:02d}" for i in range(20)} <= ids
    # Zoom changes the viewport's transform; the dataset level draws folded nodes.
    before = browser.find_element(By.CSS_SELECTOR, ".dtl-viewport").get_attribute("transform")
    next(b for b in browser.find_elements(By.CSS_SELECTOR, ".dtl-toolbar button") if b.text == "+").click()
    assert browser.find_element(By.CSS_SELECTOR, ".dtl-viewport").get_attribute("transform") != before
    next(b for b in browser.find_elements(By.CSS_SELECTOR, ".dtl-toolbar button") if b.text == "Datasets").click()
    ids = {n.get_attribute("data-id") for n in browser.find_elements(By.CSS_SELECTOR, ".dtl-node")}
    assert "job:default:train" in ids and f"dataset:default:{HOSTILE}" in ids
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert no_alert(browser)


# ---------------------------------------------------------------- docs/visualization.md


VIZ_MD = Path(__file__).resolve().parent.parent / "docs" / "visualization.md"
RUN_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def console_examples(text: str) -> list[tuple[list[str], str]]:
    """Each `$ datatrail …` line of the console blocks (cut at a pipe or redirection), with the output shown."""
    found: list[tuple[list[str], str]] = []
    for block in re.findall(r"^```console\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                words = shlex.split(line[2:], comments=True)
                cut = next((i for i, w in enumerate(words) if w in ("|", ">", ">>")), len(words))
                found.append((words[:cut], ""))
            else:
                args, shown = found[-1]
                found[-1] = (args, shown + line + "\n")
    return found


def normalized(text: str) -> list[str]:
    return sorted(re.sub(r"\bn\d+\b", "n#", text).splitlines())


def test_visualization_docs_examples_run(trail: datatrail.Trail, workdir: Path) -> None:
    """The commands of docs/visualization.md, on the store it describes; shown output must match."""
    raw = trail.add(write(workdir / "raw.csv", "a\n1\n"), name="raw/penguins")
    with trail.run("clean") as clean:
        clean.input(raw)
        clean.output(write(workdir / "clean.csv", "a\n"), name="clean/penguins")
    with pytest.raises(RuntimeError):
        with trail.run("train") as train:
            train.input("clean/penguins")
            train.output(write(workdir / "model.bin", "w"), name="penguin-model", kind="model")
            raise RuntimeError("diverged")
    examples = console_examples(VIZ_MD.read_text(encoding="utf-8"))
    assert len(examples) >= 8
    short = {clean.id[:8]: "6c202447", train.id[:8]: "c2397a3b"}
    for args, shown in examples:
        assert args[0] == "datatrail", args
        result = cli(*args[1:])
        assert result.exit_code == 0, (args, result.stderr)
        if shown:
            out = RUN_UUID.sub(
                lambda m: {
                    clean.id: "6c202447-1203-4742-a85b-941ba43746b5",
                    train.id: "c2397a3b-f74d-4c3f-8d4d-1200df32751d",
                }[m.group(0)],
                result.stdout + result.stderr,
            )
            for real, documented in short.items():
                out = out.replace(real, documented)
            # Node order follows the ids, and run ids are random: compare the lines as a set.
            assert normalized(out) == normalized(shown), args
    ET.parse(workdir / "lineage.svg")
    assert "datatrail-graph" in (workdir / "lineage.html").read_text(encoding="utf-8")


def test_payload_of_an_already_folded_graph_has_one_view() -> None:
    folded = fold_datasets(marked_graph())
    assert fold_datasets(folded) is folded
    lay = layout_graph(folded)
    payload = graph_payload(folded, lay)
    assert payload["level"] == "dataset" and list(payload["views"]) == ["dataset"]
    assert payload["views"]["dataset"]["width"] == round(lay.width, 1)
    assert {n["id"] for n in payload["views"]["dataset"]["nodes"]} == set(folded.nodes)
