"""Spark's analysed logical plan, read without running anything: the relations it reads and column lineage.

The plan comes over py4j once as JSON (``LogicalPlan.toJSON``, one call) and is
walked in Python. Every attribute in a Spark plan has an ``exprId``; a
``Project``, ``Aggregate`` or ``Window`` gives new ids to the expressions it
computes (``Alias``), so each output column leads back, id by id, to columns of
the relations at the leaves. Along the way each step is classified as the
OpenLineage ``columnLineage`` facet (spec 1.2) does: DIRECT ``IDENTITY`` (the
column as it was), ``TRANSFORMATION`` (computed from it, UDFs included: known
inputs, opaque function), ``AGGREGATION`` (inside an aggregate function); and
INDIRECT ``FILTER``, ``JOIN``, ``GROUP_BY``, ``SORT``, ``WINDOW`` and
``CONDITIONAL`` for the columns that decide which rows there are or which branch
is taken. Leaves (files, catalog tables, DataSource V2 tables) are identified by a
few py4j calls each (their JSON holds no location).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Node = dict[str, Any]
# (source exprId, type, subtype, masking, description)
Dep = tuple[int, str, str, bool, str]

RANK = {"IDENTITY": 0, "TRANSFORMATION": 1, "AGGREGATION": 2}
MASKING = frozenset({"Count", "Md5", "Sha1", "Sha2", "Crc32", "Murmur3Hash", "XxHash64", "HyperLogLogPlusPlus"})
UDFS = frozenset({"PythonUDF", "ScalaUDF", "HiveSimpleUDF", "HiveGenericUDF", "ScalaAggregator", "PythonUDAF"})
SUBQUERIES = frozenset({"ScalarSubquery", "ListQuery", "Exists", "LateralSubquery"})
RELATIONS = frozenset({"LogicalRelation", "HiveTableRelation", "DataSourceV2Relation", "DataSourceV2ScanRelation"})


@dataclass(frozen=True)
class Leaf:
    """What a relation at a leaf of the plan reads: file URIs, or a catalog table (with its location if known)."""

    paths: tuple[str, ...] = ()  # qualified URIs (file:/…, s3a://…)
    table: tuple[str, ...] = ()  # catalog, namespace…, table
    location: str | None = None  # a catalog table's location URI


@dataclass
class Relation:
    """One relation read by the plan, its columns as Spark sees them and their exprIds."""

    leaf: Leaf
    columns: list[tuple[str, str]]
    ids: list[int]


@dataclass(frozen=True)
class Source:
    """One input column that an output column (or the whole output) depends on, and how."""

    relation: int  # index into PlanLineage.relations
    column: str
    type: str  # DIRECT or INDIRECT
    subtype: str
    masking: bool = False
    description: str = ""


@dataclass
class PlanLineage:
    relations: list[Relation] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)  # the plan's output (name, type)
    fields: dict[str, list[Source]] = field(default_factory=dict)  # output column → its sources
    dataset: list[Source] = field(default_factory=list)  # INDIRECT sources of the whole output


def short(node: Node) -> str:
    return str(node.get("class", "")).rsplit(".", 1)[-1]


def tree(flat: list[Any]) -> Node:
    """A pre-order flattened tree (``num-children`` per node) as nested nodes with ``_children``."""

    def build(i: int) -> tuple[Node, int]:
        node = dict(flat[i])
        children = []
        j = i + 1
        for _ in range(int(node.get("num-children", 0))):
            child, j = build(j)
            children.append(child)
        node["_children"] = children
        return node, j

    return build(0)[0]


def expressions(value: Any) -> list[Node]:
    """The expression trees of a field: one (a flattened list) or a sequence of them (a list of lists)."""
    if not isinstance(value, list) or not value:
        return []
    if isinstance(value[0], dict) and "class" in value[0]:
        return [tree(value)]
    return [tree(v) for v in value if isinstance(v, list) and v and isinstance(v[0], dict)]


def type_name(value: Any) -> str:
    """A Spark data type as its SQL-ish name (``bigint``, ``array<string>``, ``struct<a:int>``)."""
    if isinstance(value, str):
        return {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}.get(value, value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "array":
            return f"array<{type_name(value.get('elementType'))}>"
        if kind == "map":
            return f"map<{type_name(value.get('keyType'))},{type_name(value.get('valueType'))}>"
        if kind == "struct":
            inner = ",".join(f"{f.get('name')}:{type_name(f.get('type'))}" for f in value.get("fields", []))
            return f"struct<{inner}>"
        if kind == "udt":
            return str(value.get("class", "udt"))
    return json.dumps(value)


def _id(node: Node) -> int | None:
    expr_id = node.get("exprId")
    return int(expr_id["id"]) if isinstance(expr_id, dict) and "id" in expr_id else None


class _Walk:
    def __init__(self, leaves: dict[int, Leaf]) -> None:
        self.leaves = leaves
        self.relations: list[Relation] = []
        self.sources: dict[int, tuple[int, str]] = {}  # leaf exprId → (relation, column)
        self.origin: dict[int, list[Dep]] = {}
        self.indirect: list[tuple[int, str]] = []
        self.memo: dict[int, list[Source]] = {}

    # ------------------------------------------------------------ outputs of plan nodes

    def output(self, node: Node) -> list[int]:
        cls, kids = short(node), node["_children"]
        if "projectList" in node:
            return self.named(node["projectList"])
        if cls == "Aggregate":
            return self.named(node.get("aggregateExpressions"))
        if cls == "Window":
            return self.output(kids[0]) + self.named(node.get("windowExpressions"))
        if cls == "Union" and kids:
            return self.output(kids[0])
        if cls == "Join" and len(kids) == 2:
            join_type = str((node.get("joinType") or {}).get("object", ""))
            left = self.output(kids[0])
            return left if ("LeftSemi" in join_type or "LeftAnti" in join_type) else left + self.output(kids[1])
        if cls == "Generate" and kids:
            return self.output(kids[0]) + self.named(node.get("generatorOutput"))
        if isinstance(node.get("output"), list):
            return self.named(node["output"])
        return [i for k in kids for i in self.output(k)]

    def named(self, value: Any) -> list[int]:
        return [i for e in expressions(value) if (i := _id(e)) is not None]

    # ------------------------------------------------------------ the walk

    def visit(self, node: Node) -> None:
        cls, kids = short(node), node["_children"]
        if cls in RELATIONS or (not kids and isinstance(node.get("output"), list)):
            self.relation(node)
        for key in ("projectList", "aggregateExpressions", "windowExpressions"):
            for named in expressions(node.get(key)):
                out = _id(named)
                if short(named) == "Alias" and out is not None:
                    self.origin.setdefault(out, []).extend(self.deps(named, "IDENTITY"))
        indirect = {"Filter": ("condition", "FILTER"), "Join": ("condition", "JOIN"), "Sort": ("order", "SORT")}
        if cls in indirect:
            key, subtype = indirect[cls]
            for expr in expressions(node.get(key)):
                self.indirect.extend((i, subtype) for i, *_ in self.deps(expr, "TRANSFORMATION"))
        if cls == "Aggregate":
            for expr in expressions(node.get("groupingExpressions")):
                self.indirect.extend((i, "GROUP_BY") for i, *_ in self.deps(expr, "TRANSFORMATION"))
        if cls == "Union" and kids:
            first = self.output(kids[0])
            for other in kids[1:]:
                for a, b in zip(first, self.output(other), strict=False):
                    if a != b:
                        self.origin.setdefault(a, []).append((b, "DIRECT", "IDENTITY", False, ""))
        if cls == "Generate":
            deps = [d for e in expressions(node.get("generator")) for d in self.deps(e, "TRANSFORMATION")]
            for out in self.named(node.get("generatorOutput")):
                self.origin.setdefault(out, []).extend(deps)
        if cls == "Expand" and kids:
            # ROLLUP/CUBE/GROUPING SETS: each output position is computed by one expression per projection.
            outputs = self.named(node.get("output"))
            for projection in node.get("projections") or []:
                for out, expr in zip(outputs, expressions(projection), strict=False):
                    if _id(expr) != out:
                        self.origin.setdefault(out, []).extend(self.deps(expr, "IDENTITY"))
        for kid in kids:
            self.visit(kid)

    def relation(self, node: Node) -> None:
        attrs = expressions(node.get("output"))
        ids = [i for a in attrs if (i := _id(a)) is not None]
        leaf = self.leaves.get(ids[0]) if ids else None
        if leaf is None:
            return  # in-memory data (a DataFrame made from Python objects, range()): no dataset to point at
        index = len(self.relations)
        columns = [(str(a.get("name")), type_name(a.get("dataType"))) for a in attrs]
        self.relations.append(Relation(leaf, columns, ids))
        for i, (name, _) in zip(ids, columns, strict=True):
            self.sources[i] = (index, name)

    def deps(self, expr: Node, subtype: str, masking: bool = False, description: str = "") -> Iterator[Dep]:
        """The attributes an expression reads, each with how the expression uses it."""
        cls, kids = short(expr), expr["_children"]
        if cls == "AttributeReference":
            expr_id = _id(expr)
            if expr_id is not None:
                yield expr_id, "DIRECT", subtype, masking, description
            return
        if cls in SUBQUERIES and isinstance(expr.get("plan"), list) and expr["plan"]:
            plan = tree(expr["plan"])
            self.visit(plan)
            inner = "TRANSFORMATION" if subtype == "IDENTITY" else subtype
            for i in self.output(plan):
                yield i, "DIRECT", inner, masking, description
        if cls in ("Alias", "OuterReference", "KnownNullable", "KnownNotNull", "KnownFloatingPointNormalized"):
            for kid in kids:
                yield from self.deps(kid, subtype, masking, description)
            return
        inner = "TRANSFORMATION" if subtype == "IDENTITY" else subtype
        if cls in ("AggregateExpression", "ScalaAggregator", "PythonUDAF"):
            inner = "AGGREGATION"
        if cls in MASKING:
            masking = True
        if cls in UDFS:
            description = description or f"UDF {expr.get('name') or expr.get('udfName') or cls}"
        conditions: set[int] = set()
        if cls == "WindowExpression" and len(kids) == 2:
            yield from self.deps(kids[0], inner, masking, description)
            for i, *_ in self.deps(kids[1], "TRANSFORMATION"):
                yield i, "INDIRECT", "WINDOW", False, ""
            return
        if cls == "CaseWhen":
            branches = expr.get("branches")
            count = len(branches) if isinstance(branches, list) else 0
            conditions = set(range(0, 2 * count, 2))
        elif cls == "If":
            conditions = {0}
        for n, kid in enumerate(kids):
            if n in conditions:
                for i, *_ in self.deps(kid, "TRANSFORMATION"):
                    yield i, "INDIRECT", "CONDITIONAL", False, ""
            else:
                yield from self.deps(kid, inner, masking, description)

    # ------------------------------------------------------------ back to the leaves

    def resolve(self, expr_id: int, stack: frozenset[int] = frozenset()) -> list[Source]:
        if expr_id in self.memo:
            return self.memo[expr_id]
        found: list[Source] = []
        if expr_id in self.sources:
            relation, column = self.sources[expr_id]
            found.append(Source(relation, column, "DIRECT", "IDENTITY"))
        for source, kind, subtype, masking, description in self.origin.get(expr_id, []):
            if source in stack or source == expr_id:
                continue
            for s in self.resolve(source, stack | {expr_id}):
                if kind == "INDIRECT":
                    s_type, s_sub = "INDIRECT", subtype
                elif s.type == "INDIRECT":
                    s_type, s_sub = "INDIRECT", s.subtype
                else:
                    s_type = "DIRECT"
                    s_sub = subtype if RANK.get(subtype, 1) >= RANK.get(s.subtype, 1) else s.subtype
                found.append(
                    Source(s.relation, s.column, s_type, s_sub, masking or s.masking, description or s.description)
                )
        unique = list(dict.fromkeys(found))
        self.memo[expr_id] = unique
        return unique


def analyse(plan_json: str, schema_json: str, leaves: dict[int, Leaf], names: list[str] | None = None) -> PlanLineage:
    """Relations and column lineage of an analysed plan (its ``toJSON()`` and ``schema().json()``).

    ``leaves`` maps the first exprId of each relation leaf to what it reads;
    ``names`` renames the output columns (an insert by position into a table).
    """
    walk = _Walk(leaves)
    root = tree(json.loads(plan_json))
    walk.visit(root)
    schema = json.loads(schema_json).get("fields", [])
    columns = [(str(f.get("name")), type_name(f.get("type"))) for f in schema]
    if names is not None and len(names) == len(columns):
        columns = [(n, t) for n, (_, t) in zip(names, columns, strict=True)]
    result = PlanLineage(walk.relations, columns)
    outputs = walk.output(root)
    if len(outputs) == len(columns):
        for (name, _), expr_id in zip(columns, outputs, strict=True):
            result.fields[name] = walk.resolve(expr_id)
    seen: set[Source] = set()
    for expr_id, subtype in walk.indirect:
        for s in walk.resolve(expr_id):
            source = Source(s.relation, s.column, "INDIRECT", subtype)
            if source not in seen:
                seen.add(source)
                result.dataset.append(source)
    return result


# ---------------------------------------------------------------- leaves, over py4j


def leaves_of(jplan: Any) -> dict[int, Leaf]:
    """The relation leaves of a JVM plan (subqueries included), keyed by their first output exprId."""
    found: dict[int, Leaf] = {}
    plans = [jplan]
    subqueries = jplan.subqueriesAll()
    plans.extend(subqueries.apply(i) for i in range(subqueries.size()))
    for plan in plans:
        leaves = plan.collectLeaves()
        for i in range(leaves.size()):
            node = leaves.apply(i)
            leaf = _leaf(node)
            output = node.output()
            if leaf is not None and output.size() > 0:
                found[int(output.apply(0).exprId().id())] = leaf
    return found


def _leaf(node: Any) -> Leaf | None:
    kind = node.getClass().getSimpleName()
    if kind == "LogicalRelation":
        table = node.catalogTable()
        if table.isDefined():
            return catalog_leaf(table.get())
        relation = node.relation()
        if relation.getClass().getSimpleName() == "HadoopFsRelation":
            roots = relation.location().rootPaths()
            return Leaf(paths=tuple(str(roots.apply(i).toString()) for i in range(roots.size())))
        return None
    if kind == "HiveTableRelation":
        return catalog_leaf(node.tableMeta())
    if kind in ("DataSourceV2Relation", "DataSourceV2ScanRelation"):
        relation = node if kind == "DataSourceV2Relation" else node.relation()
        catalog, ident = relation.catalog(), relation.identifier()
        if catalog.isDefined() and ident.isDefined():
            parts = [str(p) for p in ident.get().namespace()]
            return Leaf(table=(str(catalog.get().name()), *parts, str(ident.get().name())))
        return Leaf(table=(str(relation.table().name()),))
    return None


def catalog_leaf(table: Any) -> Leaf:
    """A session-catalog table (``CatalogTable``): ``spark_catalog.db.t`` and its location."""
    ident = table.identifier()
    catalog = ident.catalog()
    database = ident.database()
    parts = (
        str(catalog.get()) if catalog.isDefined() else "spark_catalog",
        str(database.get()) if database.isDefined() else "default",
        str(ident.table()),
    )
    location = table.storage().locationUri()
    return Leaf(table=parts, location=str(location.get().toString()) if location.isDefined() else None)


__all__ = ["Leaf", "PlanLineage", "Relation", "Source", "analyse", "catalog_leaf", "leaves_of", "type_name"]
