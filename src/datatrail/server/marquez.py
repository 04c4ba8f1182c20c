"""Lineage in Marquez's shape: ``{"graph": [{"id", "type", "data", "inEdges", "outEdges"}]}``.

Node ids: ``dataset:<namespace>:<name>`` and ``job:<namespace>:<name>`` at dataset
level (versions folded into their datasets, runs into their jobs), and
``dataset:<namespace>:<name>#<number>`` and ``run:<uuid>`` at version level.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.limits import MAX_ID_LENGTH, check_length
from datatrail.core.model import MAX_NAME_LENGTH
from datatrail.core.results import REDACTED_JSON, LineageColumns, LineageJson, LineageNode
from datatrail.lineage import Graph
from datatrail.server.marquez_models import run_state

NODE_ID_RULE = (
    "a nodeId is dataset:<namespace>:<name>[#<version>], job:<namespace>:<name> or run:<uuid>; the version"
    " follows the last '#', and the namespace ends at the last ':' that leaves an existing dataset or job"
    " (so namespaces and names may hold ':')"
)
MAX_SPLITS = 8  # the ':' tried as the namespace's end, from the last: each try is a store lookup


def split_node_id(node_id: str, exists: Callable[[str, str], bool]) -> tuple[str, str, str | None]:
    """(namespace, name, version or None) of a dataset nodeId.

    Namespaces carry ``://`` and ports (``postgres://db:5432``) and OpenLineage names
    may carry ``:`` too, so no fixed rule splits every nodeId. The candidates are
    tried from the last ``:`` to the first, with the ``#<version>`` suffix split
    off first and then kept as part of the name, and the first one naming an
    existing dataset wins: the longest namespace, as in datatrail's refs.

    At most the ``MAX_SPLITS`` last ``:`` are tried, and a nodeId longer than
    ``MAX_ID_LENGTH`` is refused, so the work is linear in its length.

    >>> split_node_id("dataset:postgres://db:5432:public.orders#2", lambda ns, n: True)
    ('postgres://db:5432', 'public.orders', '2')
    """
    check_length(node_id, "nodeId", MAX_ID_LENGTH)
    kind, sep, rest = node_id.partition(":")
    if kind != "dataset" or not sep or not rest:
        msg = f"invalid nodeId {node_id!r}: {NODE_ID_RULE}"
        raise InvalidInput(msg)
    candidates: list[tuple[str, str | None]] = []
    base, hashmark, version = rest.rpartition("#")
    if hashmark and base and version:
        candidates.append((base, version))
    candidates.append((rest, None))
    for text, ver in candidates:
        found = _split(text, exists)
        if found is not None:
            return found[0], found[1], ver
    msg = f"no dataset matches nodeId {node_id!r} ({NODE_ID_RULE})"
    raise NotFound(msg)


def split_job_id(node_id: str, exists: Callable[[str, str], bool]) -> tuple[str, str]:
    """(namespace, name) of ``job:<namespace>:<name>``, split by the same rule as datasets."""
    check_length(node_id, "nodeId", MAX_ID_LENGTH)
    kind, sep, rest = node_id.partition(":")
    if kind != "job" or not sep or not rest:
        msg = f"invalid nodeId {node_id!r}: {NODE_ID_RULE}"
        raise InvalidInput(msg)
    found = _split(rest, exists)
    if found is None:
        msg = f"no job matches nodeId {node_id!r} ({NODE_ID_RULE})"
        raise NotFound(msg)
    return found


def _split(text: str, exists: Callable[[str, str], bool]) -> tuple[str, str] | None:
    """The first (namespace, name) that ``exists``, trying the last ``MAX_SPLITS`` possible ':' from the end.

    A split whose namespace or name is longer than any stored one is skipped without asking.
    """
    tries = 0
    end = len(text) - 1  # the name is never empty
    while tries < MAX_SPLITS:
        i = text.rfind(":", 1, end)
        if i < 0 or len(text) - i - 1 > MAX_NAME_LENGTH:
            return None
        end = i
        if i > MAX_NAME_LENGTH:
            continue
        tries += 1
        if exists(text[:i], text[i + 1 :]):
            return text[:i], text[i + 1 :]
    return None


def _fold(node: LineageNode, fold: bool) -> tuple[str, str, dict[str, Any]]:
    d = node.data
    if d.get("redacted"):  # hidden from the caller: type kept, nothing else (security/guard.py)
        kinds = ("DATASET", "JOB") if fold else ("DATASET_VERSION", "RUN")
        return node.id, kinds[0] if node.type == "version" else kinds[1], {"redacted": True}
    if node.type == "version":
        if fold:
            return (
                f"dataset:{d['namespace']}:{d['name']}",
                "DATASET",
                {
                    "namespace": d["namespace"],
                    "name": d["name"],
                    "kind": d.get("kind"),
                },
            )
        return f"dataset:{d['namespace']}:{d['name']}#{d['version']}", "DATASET_VERSION", dict(d)
    if fold:
        return f"job:{d['namespace']}:{d['job']}", "JOB", {"namespace": d["namespace"], "name": d["job"]}
    return f"run:{d['id']}", "RUN", dict(d)


def _fold_all(graph: Graph, nodes: dict[str, dict[str, Any]], keys: dict[str, str]) -> None:
    """``nodes`` (by folded id) and ``keys`` (node id → folded id) of a graph folded to datasets and jobs:
    what :func:`_fold` makes of each node, each folded node made once (a connected graph folds some
    30,000 versions and runs into 4,000 nodes), its versions and runs gathered."""
    states: dict[Any, str] = {}
    for node in graph.nodes.values():
        d = node.data
        if d.get("redacted"):
            nid, kind, data = _fold(node, True)
            keys[node.id] = nid
            nodes.setdefault(nid, {"id": nid, "type": kind, "data": data, "inEdges": [], "outEdges": []})
            continue
        if node.type == "version":
            nid = f"dataset:{d['namespace']}:{d['name']}"
            keys[node.id] = nid
            entry = nodes.get(nid)
            if entry is None:
                data = {"namespace": d["namespace"], "name": d["name"], "kind": d.get("kind")}
                entry = nodes[nid] = {"id": nid, "type": "DATASET", "data": data, "inEdges": [], "outEdges": []}
            entry["data"].setdefault("versions", []).append(d["version"])
        else:
            nid = f"job:{d['namespace']}:{d['job']}"
            keys[node.id] = nid
            entry = nodes.get(nid)
            if entry is None:
                data = {"namespace": d["namespace"], "name": d["job"]}
                entry = nodes[nid] = {"id": nid, "type": "JOB", "data": data, "inEdges": [], "outEdges": []}
            state = d["state"]
            shown = states.get(state)
            if shown is None:
                shown = states[state] = run_state(state)
            entry["data"].setdefault("runs", []).append({"id": d["id"], "state": shown})


def fold_columns(columns: LineageColumns) -> dict[str, Any]:
    """``to_marquez(graph, fold=True)`` straight from columns, in one pass: no object per version or run
    walked (a dataset's graph walks several of each per folded node), each folded node made once, and
    the folded edges deduplicated and sorted as integers (``rank(origin) * m + rank(destination)``
    over the sorted folded ids, which sorts as the id pairs would)."""
    nodes: dict[str, dict[str, Any]] = {}
    versions: dict[str, list[Any]] = {}  # each folded dataset's version numbers, each job's runs
    runs: dict[str, list[dict[str, Any]]] = {}
    keys: list[str] = []
    states: dict[Any, str] = {}
    for nid, kind, d in zip(columns.ids, columns.types, columns.data, strict=True):
        if d.get("redacted"):  # hidden from the caller: type kept, nothing else (security/guard.py)
            key = nid
            if key not in nodes:
                shown = {"redacted": True}
                nodes[key] = {"id": key, "type": "DATASET" if kind == "version" else "JOB", "data": shown}
        elif kind == "version":
            namespace, name = d["namespace"], d["name"]
            key = f"dataset:{namespace}:{name}"
            numbers = versions.get(key)
            if numbers is None:
                numbers = versions[key] = []
                data = {"namespace": namespace, "name": name, "kind": d.get("kind"), "versions": numbers}
                nodes[key] = {"id": key, "type": "DATASET", "data": data}
            numbers.append(d["version"])
        else:
            namespace, name = d["namespace"], d["job"]
            key = f"job:{namespace}:{name}"
            held = runs.get(key)
            if held is None:
                held = runs[key] = []
                nodes[key] = {"id": key, "type": "JOB", "data": {"namespace": namespace, "name": name, "runs": held}}
            state = d["state"]
            try:
                shown_state = states[state]
            except KeyError:
                shown_state = states[state] = run_state(state)
            held.append({"id": d["id"], "state": shown_state})
        keys.append(key)
    for numbers in versions.values():
        numbers.sort()
    for held in runs.values():
        held.sort(key=_run_id)
    order = sorted(nodes)
    entries = [nodes[key] for key in order]
    for entry in entries:
        entry["inEdges"], entry["outEdges"] = [], []
    m = len(order)
    rank = {key: i for i, key in enumerate(order)}
    at = [rank[key] for key in keys]
    for code in sorted({at[o] * m + at[d] for o, d in zip(columns.origins, columns.destinations, strict=True)}):
        origin, destination = divmod(code, m)
        if origin != destination:
            edge = {"origin": order[origin], "destination": order[destination]}
            entries[origin]["outEdges"].append(edge)
            entries[destination]["inEdges"].append(edge)
    return {"graph": entries}


def _run_id(run: dict[str, Any]) -> Any:
    return run["id"]


def to_marquez(graph: Graph, *, fold: bool) -> dict[str, Any]:
    """The graph as Marquez answers ``GET /api/v1/lineage``, folded to datasets and jobs when ``fold``."""
    nodes: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    if fold:
        _fold_all(graph, nodes, keys)
    else:
        for node in graph.nodes.values():
            nid, kind, data = _fold(node, fold)
            keys[node.id] = nid
            nodes.setdefault(nid, {"id": nid, "type": kind, "data": data, "inEdges": [], "outEdges": []})
    edges = sorted({(keys[s], keys[t]) for s, t in graph.edges if s in keys and t in keys})
    for origin, destination in edges:
        if origin == destination:
            continue
        edge = {"origin": origin, "destination": destination}
        nodes[origin]["outEdges"].append(edge)
        nodes[destination]["inEdges"].append(edge)
    for entry in nodes.values():
        data = entry["data"]
        if "versions" in data:
            data["versions"].sort()
        if "runs" in data:
            data["runs"].sort(key=lambda r: r["id"])
    return {"graph": [nodes[k] for k in sorted(nodes)]}


def version_graph(graph: Graph) -> dict[str, Any]:
    """``to_marquez(graph, fold=False)``, built in one pass: the version-level answer of thousands of nodes.

    Each node's entry is made once, straight from its data (no folding, no merging: a version-level
    node id names one node), and each edge dict is shared by its two ends' lists.
    """
    keys: dict[str, str] = {}
    entries: dict[str, dict[str, Any]] = {}
    for nid, node in graph.nodes.items():
        d = node.data
        if d.get("redacted"):  # hidden from the caller: type kept, nothing else (security/guard.py)
            key, kind, data = nid, "DATASET_VERSION" if node.type == "version" else "RUN", {"redacted": True}
        elif node.type == "version":
            key, kind, data = f"dataset:{d['namespace']}:{d['name']}#{d['version']}", "DATASET_VERSION", dict(d)
        else:
            key, kind, data = f"run:{d['id']}", "RUN", dict(d)
        keys[nid] = key
        if key not in entries:
            entries[key] = {"id": key, "type": kind, "data": data, "inEdges": [], "outEdges": []}
    for origin, destination in sorted({(keys[s], keys[t]) for s, t in graph.edges if s in keys and t in keys}):
        if origin != destination:
            edge = {"origin": origin, "destination": destination}
            entries[origin]["outEdges"].append(edge)
            entries[destination]["inEdges"].append(edge)
    return {"graph": [entries[k] for k in sorted(entries)]}


def version_columns(columns: LineageColumns) -> dict[str, Any]:
    """``version_graph`` (so ``to_marquez(fold=False)``) straight from columns, in one pass.

    Each row's entry is made once, with the row's data dict itself (it was made for this answer); the
    entries and the edges are sorted by integers: a row stands for its rank among the sorted Marquez
    ids, an edge for ``rank(origin) * n + rank(destination)``, which sorts as the id pairs would.
    """
    keys: list[str] = []
    kinds: list[str] = []
    data = columns.data
    for nid, kind, d in zip(columns.ids, columns.types, data, strict=True):
        if d.get("redacted"):  # hidden from the caller: type kept, nothing else (security/guard.py)
            keys.append(nid)
        elif kind == "version":
            keys.append(f"dataset:{d['namespace']}:{d['name']}#{d['version']}")
        else:
            keys.append(f"run:{d['id']}")
        kinds.append("DATASET_VERSION" if kind == "version" else "RUN")
    if len(set(keys)) != len(keys):  # two rows, one Marquez id (never at version level): the reference way
        result = columns.result()
        return version_graph(Graph("", "both", 0, result.nodes, result.edges))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    entries: list[dict[str, Any]] = [
        {"id": key, "type": kind, "data": d, "inEdges": [], "outEdges": []}
        for key, kind, d in zip(keys, kinds, data, strict=True)
    ]
    n = len(keys)
    rank = [0] * n
    for i, row in enumerate(order):
        rank[row] = i
    for k in sorted({rank[o] * n + rank[d] for o, d in zip(columns.origins, columns.destinations, strict=True)}):
        origin, destination = order[k // n], order[k % n]
        if origin != destination:
            edge = {"origin": keys[origin], "destination": keys[destination]}
            entries[origin]["outEdges"].append(edge)
            entries[destination]["inEdges"].append(edge)
    return {"graph": [entries[row] for row in order]}


_KINDS = {"version": b',"type":"DATASET_VERSION","data":', "run": b',"type":"RUN","data":'}
_ESCAPED = re.compile(r'["\\\x00-\x1f]')  # what JSON writes escaped in a string


def _quoted(keys: list[str]) -> list[bytes]:
    """Each key as a JSON string, as orjson writes it: all at once when none needs an escape."""
    if _ESCAPED.search("".join(keys)) is None:
        try:
            return ('"' + '"\x00"'.join(keys) + '"').encode().split(b"\x00")
        except UnicodeEncodeError:  # a lone surrogate: orjson says what is wrong with it
            pass
    return [orjson.dumps(k) for k in keys]


def version_json(graph: LineageJson) -> bytes | None:
    """``version_columns``'s answer as the JSON bytes orjson would write, joined from each node's own
    JSON (kept between answers by the store): only the ids, their order and the edges are made here.

    A version's Marquez id ``dataset:<ns>:<name>#<n>`` is its node id ``version:<ns>:<name>@<n>``
    respelled; a run's is its node id; a hidden node's its opaque id. None when two rows would share
    a Marquez id (never at version level): the caller then takes the reference way.
    """
    keys: list[str] = []
    for nid, d in zip(graph.ids, graph.data, strict=True):
        if nid.startswith("version:") and d != REDACTED_JSON:
            head, _, number = nid.rpartition("@")
            keys.append(f"dataset:{head[8:]}#{number}")
        else:
            keys.append(nid)
    n = len(keys)
    if len(set(keys)) != n:
        return None
    quoted = _quoted(keys)
    order = sorted(range(n), key=keys.__getitem__)
    rank = [0] * n
    for i, row in enumerate(order):
        rank[row] = i
    # An edge's JSON is its origin's head and its destination's tail: one concatenation per edge.
    heads = [b'{"origin":' + q + b',"destination":' for q in quoted]
    tails = [q + b"}" for q in quoted]
    ins: list[list[bytes]] = [[] for _ in range(n)]
    outs: list[list[bytes]] = [[] for _ in range(n)]
    for k in sorted({rank[o] * n + rank[d] for o, d in zip(graph.origins, graph.destinations, strict=True)}):
        origin, destination = order[k // n], order[k % n]
        if origin != destination:
            edge = heads[origin] + tails[destination]
            outs[origin].append(edge)
            ins[destination].append(edge)
    kinds, data, types = _KINDS, graph.data, graph.types
    parts: list[bytes] = [b'{"graph":[']
    for row in order:  # one list of pieces, joined once: no copy of an entry but the last
        parts += (
            b'{"id":',
            quoted[row],
            kinds[types[row]],
            data[row],
            b',"inEdges":[',
            b",".join(ins[row]),
            b'],"outEdges":[',
            b",".join(outs[row]),
            b"]},",
        )
    if n:
        parts[-1] = b"]}]}"  # the last entry's comma: the list and the answer end
    else:
        parts.append(b"]}")
    return b"".join(parts)


def answer_json(graph: LineageJson) -> bytes | None:
    """:func:`version_json`, kept with ``graph`` for as long as the store keeps it (the same unredacted
    walk asked again is the same object; a redacted graph is made anew for each answer); for a kept
    walk whose few nodes' data changed, the answer before with those nodes' data replaced."""
    joined = graph.derived.get("marquez")
    if joined is None and graph.before:
        try:  # once: another answer on the same kept graph may have taken it meanwhile
            derived, changed = graph.before.pop()
        except IndexError:
            pass
        else:
            joined = _patched(graph, derived.get("marquez"), changed)
    if joined is None:
        joined = version_json(graph)
    if joined is not None:  # patched or joined anew: the next answer on this graph takes it as it is
        graph.derived["marquez"] = joined
    return joined


_MOST_PATCHED = 16  # more changed rows than this: the answer is joined anew


def _patched(graph: LineageJson, answer: bytes | None, changed: list[tuple[int, bytes]]) -> bytes | None:
    """The answer of ``graph`` from the ``answer`` of the same graph before the rows ``changed`` (each
    with its data then) had other data: each row's entry found by its head (its Marquez id and type,
    which must occur once) and its old data; None when anything is not as expected."""
    if answer is None or not changed or len(changed) > _MOST_PATCHED:
        return None
    spans: list[tuple[int, int, bytes]] = []
    for row, old in changed:
        nid = graph.ids[row]
        if nid.startswith("version:") and old != REDACTED_JSON:
            head, _, number = nid.rpartition("@")
            key = f"dataset:{head[8:]}#{number}"
        else:
            key = nid
        entry = b'{"id":' + _quoted([key])[0] + _KINDS[graph.types[row]]
        at = answer.find(entry)
        if at < 0 or answer.find(entry, at + 1) >= 0:
            return None
        start = at + len(entry)
        if answer[start : start + len(old)] != old:
            return None
        spans.append((start, start + len(old), graph.data[row]))
    spans.sort()
    pieces: list[bytes] = []
    done = 0
    for start, end, data in spans:
        pieces += (answer[done:start], data)
        done = end
    pieces.append(answer[done:])
    return b"".join(pieces)
