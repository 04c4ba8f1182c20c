"""YAML from files someone else wrote, with its aliases bounded.

PyYAML shares an anchored node among its aliases, so a 600-byte file of
nested anchors (a "billion laughs") parses into a small graph that expands to
billions of nodes as soon as anything walks it (hashing it as JSON, flattening
it). :func:`load_bounded` counts the nodes the document expands to before
building any Python object, and refuses recursive aliases.

>>> load_bounded("a: &x [1, 2]\\nb: *x\\n", name="dvc.lock")
{'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

from typing import Any

import yaml

from datatrail.core.errors import InvalidInput

MAX_NODES = 1_000_000  # far above any real dvc.lock, far below what exhausts memory


def load_bounded(text: str, *, name: str, max_nodes: int = MAX_NODES) -> Any:
    """The document in ``text`` (YAML's safe subset), refused if it expands to more than ``max_nodes`` nodes.

    Raises :class:`yaml.YAMLError` for text that is not YAML, and
    :class:`InvalidInput` naming ``name`` for one that expands too far, nests
    too deeply or refers to itself.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, name, max_nodes)
        return loader.construct_document(node)
    except RecursionError:
        msg = f"{name}: nested too deeply to read; is it a real file of this kind?"
        raise InvalidInput(msg) from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, name: str, limit: int) -> None:
    """Count every node as many times as aliases repeat it (memoized per shared node: linear time)."""
    sizes: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            ancestors.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > limit:
                msg = (
                    f"{name}: its YAML aliases expand to more than {limit} nodes "
                    "(an alias bomb?); datatrail does not read it"
                )
                raise InvalidInput(msg)
            continue
        if key in sizes:
            continue
        if key in ancestors:
            msg = f"{name}: a YAML alias refers to a node that contains it; datatrail does not read it"
            raise InvalidInput(msg)
        ancestors.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


__all__ = ["MAX_NODES", "load_bounded"]
