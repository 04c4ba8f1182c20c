"""Large fan-outs collapse into one group node, so that a hub with 200 readers stays readable."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Group:
    """Siblings of one node folded into a single box.

    ``direction`` is ``out`` for the nodes ``parent`` feeds, ``in`` for those
    that feed it; ``id`` is ``group:<direction>:<parent>``, stable across calls,
    so a caller can ask for it expanded (``layout_graph(..., expanded={id})``).
    """

    id: str
    parent: str
    direction: Literal["in", "out"]
    members: tuple[str, ...]
    member_type: str


@dataclass(frozen=True)
class Collapsed:
    """The graph as drawn: visible node ids (groups included) and deduplicated edges."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    groups: dict[str, Group]
    owner: dict[str, str]  # member id -> group id


def collapse(
    nodes: Sequence[str],
    edges: Sequence[tuple[str, str]],
    types: dict[str, str],
    *,
    over: int,
    keep: Collection[str] = (),
    expanded: Collection[str] = (),
) -> Collapsed:
    """Fold every set of more than ``over`` siblings of one node into a group.

    Hubs with the most neighbours are folded first; a node belongs to at most
    one group, a group's parent is never folded itself, and nodes in ``keep``
    (the root) always stay visible. Edges of the members become edges of the
    group. ``over`` < 1 turns collapsing off.
    """
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for s, t in edges:
        if s in succ and t in succ:
            succ[s].append(t)
            pred[t].append(s)
    groups: dict[str, Group] = {}
    owner: dict[str, str] = {}
    if over >= 1:
        hubs = sorted(
            (n for n in nodes if len(succ[n]) > over or len(pred[n]) > over),
            key=lambda n: (-max(len(succ[n]), len(pred[n])), n),
        )
        parents: set[str] = set()
        acyclic = bool(hubs) and _is_acyclic(nodes, edges, {})
        for hub in hubs:
            if hub in owner:
                continue
            for direction, around in (("out", succ[hub]), ("in", pred[hub])):
                gid = f"group:{direction}:{hub}"
                if gid in expanded:
                    continue
                # Siblings of one type only (in lineage they always are: runs or versions).
                by_type: dict[str, list[str]] = {}
                for n in dict.fromkeys(around):
                    if n not in owner and n not in parents and n not in keep and n != hub:
                        by_type.setdefault(types.get(n, ""), []).append(n)
                if not by_type:
                    continue
                member_type, members = max(by_type.items(), key=lambda kv: (len(kv[1]), kv[0]))
                if len(members) <= over:
                    continue
                # Siblings with a path between them would make the group a cycle: they stay out.
                members = _unrelated(members, succ)
                if len(members) <= over:
                    continue
                trial = dict(owner)
                gid_members = sorted(members)
                for m in gid_members:
                    trial[m] = gid
                if acyclic and not _is_acyclic(nodes, edges, trial):
                    continue
                owner = trial
                groups[gid] = Group(gid, hub, "out" if direction == "out" else "in", tuple(gid_members), member_type)
                parents.add(hub)
    visible = [n for n in nodes if n not in owner]
    visible.extend(groups)
    seen: dict[tuple[str, str], None] = {}
    for s, t in edges:
        if s not in succ or t not in succ:
            continue
        a, b = owner.get(s, s), owner.get(t, t)
        if a != b:
            seen[(a, b)] = None
    return Collapsed(tuple(visible), tuple(seen), groups, owner)


def _unrelated(members: list[str], succ: dict[str, list[str]]) -> list[str]:
    """The members no other member leads to (so no path runs between two of those kept)."""
    reached: set[str] = set()
    todo = [w for m in members for w in succ[m]]
    while todo:
        v = todo.pop()
        if v not in reached:
            reached.add(v)
            todo.extend(succ[v])
    return [m for m in members if m not in reached]


def _is_acyclic(nodes: Sequence[str], edges: Sequence[tuple[str, str]], owner: dict[str, str]) -> bool:
    """Whether the graph with each group contracted to one node has no cycle (Kahn's algorithm)."""
    succ: dict[str, set[str]] = {}
    indeg: dict[str, int] = {}
    for n in nodes:
        r = owner.get(n, n)
        succ.setdefault(r, set())
        indeg.setdefault(r, 0)
    known = set(nodes)
    for s, t in edges:
        if s not in known or t not in known:
            continue
        a, b = owner.get(s, s), owner.get(t, t)
        if a != b and b not in succ[a]:
            succ[a].add(b)
            indeg[b] += 1
    todo = [v for v, d in indeg.items() if d == 0]
    done = 0
    while todo:
        v = todo.pop()
        done += 1
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                todo.append(w)
    return done == len(indeg)
