"""The bounds on what a caller may send, and pure helpers that apply them (docs/security.md, "Limits").

Depth counts nested JSON containers: a scalar is 0 deep, ``{}`` is 1, and
``{"run": {"facets": {}}}`` is 3. The helpers walk containers with a stack of
their own, never with recursion, so any depth a JSON parser produced is safe
to measure and to cut.

>>> nesting_depth({"run": {"facets": {"deep": [[1]]}}})
5
>>> bounded({"a": {"b": {"c": 1}}}, 2)
{'a': {'b': '<nested deeper than 2 levels: cut>'}}
"""

from __future__ import annotations

import os
from typing import Any

from datatrail.core.errors import InvalidInput
from datatrail.core.model import MAX_NAME_LENGTH, MAX_VERSION

MAX_EVENT_DEPTH = 64
"""Nesting depth of one event. The deepest events of the OpenLineage specification and of the
Spark, Hive and dbt integration tests are 11–12 deep; serializers give up a few hundred deep."""

MAX_RESPONSE_DEPTH = 2 * MAX_EVENT_DEPTH
"""What an answer may nest: an event within the answer's own envelope is never cut."""

MAX_ID_LENGTH = 4 * MAX_NAME_LENGTH
"""A nodeId, a ref, a version selector or key in a URL: a namespace and a name (1,024 each) and more."""

MAX_TIME_LENGTH = 64
"""An ISO 8601 time or a duration (``since``, ``asOf``)."""

MAX_INT = MAX_VERSION
"""The largest number any numeric parameter takes (2**63 - 1): what a database BIGINT holds."""

MAX_OFFSET = 1_000_000_000
"""How far into a listing ``offset`` may start."""

GRAPH_LIMIT_ENV = "DATATRAIL_LINEAGE_MAX_NODES"
MAX_GRAPH_NODES = 100_000
"""The most nodes (versions and runs, or columns) one lineage walk reaches before it stops with
GraphTooLarge: Marquez's folded graph of that many takes a few seconds to answer (docs/benchmarks.md,
"Marquez's graph, round nine"); without a bound, one request held a worker for minutes."""

_CONTAINERS = (dict, list, tuple)
_SCALARS = frozenset((str, int, float, bool, type(None)))


def megabytes_setting(env: str, default: float, zero: str) -> int:
    """The bytes ``$env`` allows, given in megabytes (``default`` when unset); InvalidInput, saying what
    0 means (``zero``), for anything but a number of 0 or more. For the store's memory bounds.

    >>> megabytes_setting("DATATRAIL_NOT_SET_ANYWHERE", 0.5, "0 keeps nothing")
    524288
    """
    text = os.environ.get(env, "").strip()
    try:
        mb = float(text) if text else default
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        msg = f"invalid {env}={text!r}: give megabytes, as in {default:g} ({zero})"
        raise InvalidInput(msg)
    return int(mb * 1024 * 1024)


def graph_limit() -> int:
    """The most nodes one lineage graph may hold: ``$DATATRAIL_LINEAGE_MAX_NODES``, else :data:`MAX_GRAPH_NODES`;
    InvalidInput for anything but a whole number of 1 or more. Read at each walk.

    >>> graph_limit() == MAX_GRAPH_NODES or bool(os.environ.get(GRAPH_LIMIT_ENV))
    True
    """
    text = os.environ.get(GRAPH_LIMIT_ENV, "").strip()
    if not text:
        return MAX_GRAPH_NODES
    try:
        most = int(text)
    except ValueError:
        most = 0
    if most < 1:
        msg = (
            f"invalid {GRAPH_LIMIT_ENV}={text!r}: give the most nodes a lineage graph may hold, as in {MAX_GRAPH_NODES}"
        )
        raise InvalidInput(msg)
    return most


def _is_container(value: Any) -> bool:
    kind = type(value)
    return kind in _CONTAINERS or (kind not in _SCALARS and isinstance(value, _CONTAINERS))


def cut_marker(limit: int) -> str:
    """What replaces a sub-tree deeper than ``limit``."""
    return f"<nested deeper than {limit} levels: cut>"


def exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (fast: on the ingest path of every event)."""
    if not _is_container(value):
        return False
    if limit < 1:
        return True
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        container, level = pop()
        for child in container.values() if isinstance(container, dict) else container:
            kind = type(child)  # inlined _is_container: this loop runs over every value of every event
            if kind in _CONTAINERS or (kind not in _SCALARS and isinstance(child, _CONTAINERS)):
                if level >= limit:
                    return True
                push((child, level + 1))
    return False


def too_deep(value: Any, limit: int) -> tuple[str | int, ...] | None:
    """The path (keys and indexes) to a container deeper than ``limit``, or None.

    >>> too_deep({"run": {"facets": {"x": {}}}}, 3)
    ('run', 'facets', 'x')
    """
    if not exceeds(value, limit):
        return None
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        container, path = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, child in items:
            if isinstance(child, _CONTAINERS):
                where = (*path, key)
                if len(where) >= limit:
                    return where
                stack.append((child, where))
    return ()


def nesting_depth(value: Any) -> int:
    """How many containers deep ``value`` nests (0 for a scalar)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, _CONTAINERS) else []
    while stack:
        container, level = stack.pop()
        deepest = max(deepest, level)
        children = container.values() if isinstance(container, dict) else container
        stack.extend((child, level + 1) for child in children if isinstance(child, _CONTAINERS))
    return deepest


def bounded(value: Any, limit: int, at: int = 1) -> Any:
    """``value`` itself when it nests at most ``limit`` deep, else a copy whose deeper sub-trees are a marker.

    For reading what was stored before a limit existed: an answer made of it
    stays serializable, and says where something was left out. ``at``: the
    level ``value`` sits at within an answer cut at ``limit`` (1: it is the
    answer); a part is cut as the whole answer's ``bounded`` cuts it there.

    >>> bounded({"b": {"c": 1}}, 2, at=2)
    {'b': '<nested deeper than 2 levels: cut>'}
    """
    if not exceeds(value, limit - at + 1):
        return value
    marker = cut_marker(limit)
    if limit - at + 1 < 1:
        return marker
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any, int]] = [(value, root, at)]
    while stack:
        source, target, level = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, child in items:
            copied = child
            if isinstance(child, _CONTAINERS):
                if level >= limit:
                    copied = marker
                else:
                    copied = {} if isinstance(child, dict) else []
                    stack.append((child, copied, level + 1))
            if isinstance(target, dict):
                target[key] = copied
            else:
                target.append(copied)
    return root


_SMALLEST_PLAIN = 1e-4  # below it Python's repr writes an exponent (1e-05) and orjson does not (0.00001)
_INT_RANGE = (-(2**63), 2**64)  # what a 64-bit encoder (orjson) writes; beyond, only the standard library


def plain_json(value: Any, limit: int) -> bool:
    """Whether ``value`` is a dict or list nesting at most ``limit`` deep of nothing but dicts with str keys,
    lists, str, bool, None, 64-bit ints and finite floats of 1e-4 or more (or 0): values that
    ``json.dumps`` and orjson write byte for byte alike, so an answer may take the fast encoder.

    >>> plain_json({"a": [1, 2.5, None, "x"]}, 2), plain_json({"a": [1e-05]}, 9), plain_json({1: 2}, 9)
    (True, False, False)
    """
    if type(value) not in (dict, list):
        return False
    low, high = _INT_RANGE
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        container, level = pop()
        if type(container) is dict:
            if any(type(key) is not str for key in container):
                return False
            children = container.values()
        else:
            children = container
        for child in children:
            kind = type(child)
            if kind is str or kind is bool or child is None:
                continue
            if kind is int:
                if not low <= child < high:
                    return False
            elif kind is float:
                if not (child == 0 or _SMALLEST_PLAIN <= abs(child) < float("inf")):
                    return False  # NaN fails both comparisons
            elif kind is dict or kind is list:
                if level >= limit:
                    return False
                push((child, level + 1))
            else:
                return False
    return True


def check_length(value: str, what: str, limit: int) -> str:
    """``value`` when it has at most ``limit`` characters; InvalidInput (400) naming ``what`` otherwise."""
    if len(value) > limit:
        msg = f"{what} is {len(value)} characters long; at most {limit} are accepted"
        raise InvalidInput(msg)
    return value


__all__ = [
    "GRAPH_LIMIT_ENV",
    "MAX_EVENT_DEPTH",
    "MAX_GRAPH_NODES",
    "MAX_ID_LENGTH",
    "MAX_INT",
    "MAX_OFFSET",
    "MAX_RESPONSE_DEPTH",
    "MAX_TIME_LENGTH",
    "bounded",
    "check_length",
    "cut_marker",
    "exceeds",
    "graph_limit",
    "nesting_depth",
    "plain_json",
    "too_deep",
]
