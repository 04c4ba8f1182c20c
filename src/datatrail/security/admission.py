"""Admitting an event for one principal: every namespace it touches authorised before anything is written.

:func:`admit` is the one place that decides what an event may do as a principal.
It parses the event, lists what it touches (:func:`~datatrail.core.touches.touches`),
adds what only the store knows, and refuses the whole event (Forbidden, with an
audit entry) unless the principal may read every namespace it reads and write
every namespace it writes:

- the run as already stored: the store asks a :func:`checker`, inside its
  transaction, when an event names another job for a stored run — so it is
  authorised against that run's namespace (403), and otherwise refused because
  a run never changes job (409);
- an input in a namespace the principal may only read is a reference: facets
  describing that dataset (schema, ownership, tags…) are left out of the stored
  event, since a reader cannot change it; an alias, a check or a deployment of
  it needs a write; and what it names must exist (a reader cannot create it).

Names are compared as the store stores them (NFC), so no spelling escapes a grant.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from datatrail.core.changes import Changes, DatasetChange, Event
from datatrail.core.errors import Forbidden, NotFound
from datatrail.core.model import Ref, Version
from datatrail.core.touches import REFERENCE, Access, Check, Touch, is_reference, touches
from datatrail.events import parse_event
from datatrail.store.base import Reads

Allows = Callable[[Access, str], bool]
"""Whether the principal may (``read``/``write``) a namespace."""
Deny = Callable[[str], None]
"""Records a refusal (its audit target) before Forbidden is raised."""


def admit(event: Event, who: str, allows: Allows, store: Reads, deny: Deny) -> Event:
    """The event to store for ``who`` (read-only inputs reduced to references); Forbidden if it goes too far.

    What only the store knows (a run stored under another job) it asks, inside its
    transaction, of a :func:`checker` for the same principal."""
    changes = parse_event(event, who)
    reduced = _references(event, changes, allows)
    if reduced is not event:
        event, changes = reduced, parse_event(reduced, who)
    check = checker(who, allows, deny)

    for touch in touches(changes):
        check(touch)
    for change in changes.datasets:
        if change.role == "input" and not allows("write", change.namespace):
            _must_exist(store, change, who, deny)
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


def _must_exist(store: Reads, change: DatasetChange, who: str, deny: Deny) -> None:
    """A reader's input must name a dataset (and version) that exists: only a writer may create one."""
    key = change.version.key if change.version is not None else None
    found: Version | None
    try:
        found = (
            store.find_version(change.namespace, change.name, key)
            if key is not None
            else store.resolve(Ref(change.namespace, change.name))
        )
    except NotFound:
        found = None
    if found is None:
        what = f"{change.namespace}:{change.name}" + (f" version {key[:80]!r}" if key else "")
        deny(f"namespace:{change.namespace}")
        msg = (
            f"{who} reads {what}, which is not in the store, and may not create it in namespace "
            f"{change.namespace!r}: add it first, or ask an owner for an editor grant"
        )
        raise Forbidden(msg)


def checker(who: str, allows: Allows, deny: Deny) -> Check:
    """Refuses (audited, Forbidden) a touch the principal may not have."""

    def check(touch: Touch) -> None:
        if not allows(touch.access, touch.namespace):
            deny(f"namespace:{touch.namespace}")
            raise Forbidden(_refusal(who, touch, allows))

    return check


def _refusal(who: str, touch: Touch, allows: Allows) -> str:
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
