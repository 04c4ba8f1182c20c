"""The shape of the package: layers that import only downwards, and no import cycles.

Every module of ``src/datatrail`` belongs to one layer (docs/architecture.md, "Layers"):

    core < engines < store < services < integrations < edges

A module imports modules of its own layer or of lower ones, never of a higher
one; every import counts (at module level, inside functions, and for type
checking only), so a function-local or type-only import cannot hide an upward
dependency. Code outside the store reaches it only through its facade
(``datatrail.store``: ``open_store`` and the backup functions) and its contract
(``datatrail.store.base``) — the server's wire endpoints for the HTTP store
also use ``datatrail.store.wire``, the one documented exception. The graph of
all these imports has no cycle. Function-local imports of the project's own
modules carry a comment saying why (they keep start-up fast).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "datatrail"

# Most specific prefix wins; every module must match one.
LAYERS: dict[str, tuple[str, ...]] = {
    "core": ("datatrail.core", "datatrail._version", "datatrail.errors"),
    "engines": (
        "datatrail.config",
        "datatrail.files",
        "datatrail.bounded_yaml",
        "datatrail.hashing",
        "datatrail.scan",
        "datatrail.statcache",
        "datatrail.formats",
        "datatrail.frames",
        "datatrail.profiling",
        "datatrail.profile_parallel",
        "datatrail.profile_builder",
        "datatrail.sketches",
        "datatrail.checks",
        "datatrail.check_data",
        "datatrail.drift",
        "datatrail.diff",
        "datatrail.facets",
        "datatrail.events",
        "datatrail.lineage",
        "datatrail.viz",
        "datatrail.remote",
        "datatrail.content",
        "datatrail.capture.facts",
        "datatrail.ml.models",
        "datatrail.security.limiter",
    ),
    "store": ("datatrail.store",),
    "services": (
        "datatrail.catalog",
        "datatrail.recorder",
        "datatrail.workspace",
        "datatrail.verify",
        "datatrail.capture.run",
        "datatrail.ml.lifecycle",
        "datatrail.ml.reproduce",
        "datatrail.security",
        "datatrail.service",
        "datatrail.backup",
        "datatrail.storage",
        "datatrail.sync",
        "datatrail.rerun",
    ),
    "integrations": (
        "datatrail",
        "datatrail.capture",
        "datatrail.capture.spark",  # PySpark hooks (over py4j, with spark_plan and spark_names); never imports pyspark
        "datatrail.ml",
        "datatrail.interop",
    ),
    "edges": ("datatrail.cli", "datatrail.server", "datatrail.__main__"),
}
ORDER = list(LAYERS)
# The facade, the contract, and what a store wrapping another (the access guard, the HTTP store) answers with:
# walks written over the Store protocol alone (they import nothing of the store's insides; checked below).
STORE_FACADE = {"datatrail.store", "datatrail.store.base", "datatrail.store.connected", "datatrail.store.event_pages"}
WIRE_EXCEPTION = ("datatrail.server.routes", "datatrail.store.wire")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    line: int
    local: bool  # inside a function
    typing_only: bool  # under `if TYPE_CHECKING:`
    comment: str  # the text after '#' on the import's lines, or ''


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if "migrations" in parts:  # Alembic's scripts, loaded by Alembic itself
            continue
        found[".".join(parts)] = path
    return found


MODULES = modules()


def layer_of(module: str) -> str:
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS in tests/test_layers.py"
    return best[1]


def _resolve(name: str) -> str | None:
    """The project module an import names (a submodule when it is one, else its package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path) -> Iterator[Import]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(node: ast.AST, local: bool, typing_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner_local = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            inner_typing = typing_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import | ast.ImportFrom):
                names: list[str] = []
                if isinstance(child, ast.Import):
                    names = [alias.name for alias in child.names]
                else:
                    base = child.module or ""
                    if child.level:
                        parts = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                        base = ".".join([*parts, base] if base else parts)
                    # `from pkg import sub` imports the submodule; `from pkg import name`, the package.
                    names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in child.names]
                span = lines[child.lineno - 1 : (child.end_lineno or child.lineno)]
                comment = " ".join(s.partition("#")[2].strip() for s in span if "#" in s)
                if not comment and child.lineno >= 2:  # a comment on the line above also explains it
                    above = lines[child.lineno - 2].strip()
                    comment = above[1:].strip() if above.startswith("#") else ""
                for name in names:
                    target = _resolve(name) if name.startswith("datatrail") else None
                    if target is not None and target != module:
                        yield Import(module, target, child.lineno, local, typing_only, comment)
            yield from walk(child, inner_local, inner_typing)

    yield from walk(ast.parse(text), False, False)


IMPORTS = [imp for module, path in MODULES.items() for imp in imports_of(module, path)]


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_a_higher_layer() -> None:
    wrong = [
        f"{i.source} ({layer_of(i.source)}) imports {i.target} ({layer_of(i.target)}) at line {i.line}"
        for i in IMPORTS
        if ORDER.index(layer_of(i.target)) > ORDER.index(layer_of(i.source))
    ]
    assert not wrong, "imports from a lower layer to a higher one:\n" + "\n".join(wrong)


def test_the_store_is_reached_through_its_facade_and_contract() -> None:
    wrong = []
    for i in IMPORTS:
        inside = i.source == "datatrail.store" or i.source.startswith("datatrail.store.")
        if inside or not i.target.startswith("datatrail.store.") or i.target in STORE_FACADE:
            continue
        if i.source.startswith(WIRE_EXCEPTION[0]) and i.target == WIRE_EXCEPTION[1]:
            continue
        wrong.append(f"{i.source} imports {i.target} at line {i.line}")
    assert not wrong, "the store's insides reached from outside it:\n" + "\n".join(wrong)


def test_the_protocol_walks_use_only_the_contract() -> None:
    """The modules of the facade beyond the contract reach no other part of the store."""
    helpers = STORE_FACADE - {"datatrail.store", "datatrail.store.base"}
    wrong = [
        f"{i.source} imports {i.target} at line {i.line}"
        for i in IMPORTS
        if i.source in helpers and i.target.startswith("datatrail.store") and i.target != "datatrail.store.base"
    ]
    assert not wrong, "\n".join(wrong)


def test_the_import_graph_has_no_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in IMPORTS:
        graph[i.source].add(i.target)
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join([*c, c[0]]) for c in cycles)


def test_function_local_imports_say_why() -> None:
    silent = [f"{i.source}:{i.line} imports {i.target}" for i in IMPORTS if i.local and not i.comment]
    assert not silent, (
        "function-local imports of the project's own modules must say why (start-up speed) in a comment:\n"
        + "\n".join(silent)
    )


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.mark.parametrize(
    ("source", "target", "fails"),
    [
        ("datatrail.core.model", "datatrail.service", "test_no_module_imports_a_higher_layer"),
        ("datatrail.service", "datatrail.store.sql.store", "test_the_store_is_reached_through_its_facade_and_contract"),
    ],
)
def test_the_checks_catch_a_violation(source: str, target: str, fails: str) -> None:
    """The checks above fail on a planted violation (so they cannot pass vacuously)."""
    planted = Import(source, target, 1, False, False, "")
    if fails == "test_no_module_imports_a_higher_layer":
        assert ORDER.index(layer_of(planted.target)) > ORDER.index(layer_of(planted.source))
    else:
        assert planted.target.startswith("datatrail.store.") and planted.target not in STORE_FACADE
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
