"""Admitting an event for one principal: every namespace it touches authorised before anything is written.

:func:`admit` is the one place that decides what an event may do as a principal.
It parses the event, lists what it touches (:func:`~datatrail.core.touches.touches`),
adds what only the store knows, and refuses the whole event (Forbidden, with an
audit entry) unless the principal may read every namespace it reads and write
every namespace it writes:

- the run as already stored: the store asks a :class:`Checker`, inside its
  transaction, when an event names another job for a stored run — so it is
  authorised against that run's namespace (403), and otherwise refused because
  a run never changes job (409);
- an input in a namespace the principal may only read is a reference: facets
  describing that dataset (schema, ownership, tags…) are left out of the stored
  event, since a reader cannot change it; an alias, a check or a deployment of
  it needs a write; and what it names must exist: the store refuses, through the
  same :class:`Checker`, to create a dataset or version for it.

Names are compared as the store stores them (NFC), so no spelling escapes a grant.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import NoReturn

from datatrail.core.changes import Changes, Event
from datatrail.core.errors import Forbidden
from datatrail.core.touches import REFERENCE, Access, Check, Touch, is_reference, touches
from datatrail.events import parse_event

Allows = Callable[[Access, str], bool]
"""Whether the principal may (``read``/``write``) a namespace."""
Deny = Callable[[str], None]
"""Records a refusal (its audit target) before Forbidden is raised."""


def admit(event: Event, who: str, allows: Allows, deny: Deny) -> Event:
    """The event to store for ``who`` (read-only inputs reduced to references); Forbidden if it goes too far.

    What only the store knows (a run stored under another job, an input it would
    have to create) it asks, inside its transaction, of a :class:`Checker` for the
    same principal."""
    changes = parse_event(event, who)
    reduced = _references(event, changes, allows)
    if reduced is not event:
        event, changes = reduced, parse_event(reduced, who)
    checker = Checker(who, allows, deny)
    for touch in touches(changes):
        checker.check(touch)
    return event


def _references(event: Event, changes: Changes, allows: Allows) -> Event:
    """The event with each input the principal may only read reduced to a reference (its version facet)."""
    inputs = event.get("inputs")
    reduce = [
        i
        for i, change in enumerate(c for c in changes.datasets if c.role == "input")
        if allows("read", change.namespace)
        and not allows("write", change.namespace)
        and not change.aliases
        and not change.checks
        and not is_reference(change)
    ]
    if not reduce or not isinstance(inputs, list):
        return event
    out = copy.copy(event)
    out["inputs"] = list(inputs)
    for i in reduce:
        item = dict(inputs[i])
        facets = item.get("facets")
        kept = {k: v for k, v in facets.items() if k in REFERENCE} if isinstance(facets, dict) else {}
        item["facets"] = kept
        item.pop("inputFacets", None)
        out["inputs"][i] = item
    return out


class Checker:
    """A principal's :class:`~datatrail.core.touches.Check`: its grants decide, its refusals are recorded."""

    def __init__(self, who: str, allows: Allows, deny: Deny) -> None:
        self.who = who
        self._allows = allows
        self._deny = deny

    def allows(self, access: Access, namespace: str) -> bool:
        return self._allows(access, namespace)

    def refuse(self, touch: Touch) -> NoReturn:
        self._deny(f"namespace:{touch.namespace}")
        raise Forbidden(_refusal(self.who, touch, self._allows))

    def check(self, touch: Touch) -> None:
        """Refuse ``touch`` unless the principal may have it."""
        if not self._allows(touch.access, touch.namespace):
            self.refuse(touch)


class Both:
    """Two checks that must both allow (the guard's and its caller's)."""

    def __init__(self, first: Check, second: Check) -> None:
        self.first, self.second = first, second

    def allows(self, access: Access, namespace: str) -> bool:
        return self.first.allows(access, namespace) and self.second.allows(access, namespace)

    def refuse(self, touch: Touch) -> NoReturn:
        if not self.first.allows(touch.access, touch.namespace):
            self.first.refuse(touch)
        self.second.refuse(touch)


def _refusal(who: str, touch: Touch, allows: Allows) -> str:
    if touch.where.startswith("inputs (not stored"):
        return (
            f"{who} reads a dataset or version of namespace {touch.namespace!r} that is not in the store, and may"
            " not create it there: add it first, or ask an owner for an editor grant"
        )
    if touch.where.endswith(", as stored"):  # a run (`run ID, as stored`) the store found under another job
        # Say whose run it is only to someone who may see that namespace.
        whose = f"namespace {touch.namespace!r}" if allows("read", touch.namespace) else "a namespace you may not write"
        run = touch.where.removesuffix(", as stored")
        return f"{who} may not change {run}: it belongs to {whose}; send events for your own runs"
    if touch.access == "read":
        return f"{who} may not read namespace {touch.namespace!r}, which this event reads from ({touch.where})"
    return (
        f"{who} may not write to namespace {touch.namespace!r} (named by the event's {touch.where});"
        " ask an owner for an editor grant"
    )


__all__ = ["Allows", "Deny", "admit"]
