"""Everything an event touches, as (namespace, action) pairs: the one answer ingest authorises.

An OpenLineage event names namespaces in many places, and the store acts on each
of them: the job's (its runs are written), a DatasetEvent's dataset, the outputs
(new versions), the inputs (read), and identifiers inside facets —
``lifecycleStateChange.previousIdentifier`` (the previous dataset is marked
renamed), ``symlinks`` (other names of the dataset), ``columnLineage`` input
fields (columns read), and the ``parent`` run facet (a run the event attaches
to, which a store may create). An input is a read only while it just names the
version read: facets describing it (schema, tags, aliases, checks…) would change
that dataset, and deploying it moves its alias, so those need a write.
:func:`touches` lists them all from the parsed event; what only the store knows
— the namespace of a run already stored, whether an input exists — it asks a
:class:`Check` inside its transaction. Names are NFC-normalised exactly as the
store will store them, so a decision is taken on the name that is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, Protocol

from datatrail.core.changes import Changes, DatasetChange
from datatrail.core.errors import InvalidInput
from datatrail.core.model import validate_namespace

Access = Literal["read", "write"]
DEPLOYMENT = "datatrail_deployment"  # a run facet: the inputs are deployed (their alias moves)
REFERENCE = frozenset({"version"})  # the facets of an input that only say which version was read


@dataclass(frozen=True, order=True)
class Touch:
    """One namespace an event touches, how, and where in the event it is named (for messages)."""

    namespace: str
    access: Access
    where: str


def touches(changes: Changes) -> tuple[Touch, ...]:
    """Every namespace the event's changes touch, sorted, each with the strongest access it needs.

    >>> from datetime import datetime, UTC
    >>> c = Changes("START", datetime.now(UTC), "ann", None, (DatasetChange("team-b", "x", "input"),))
    >>> touches(c)
    (Touch(namespace='team-b', access='read', where='inputs'),)
    """
    found: dict[str, Touch] = {}
    for touch in _all(changes):
        known = found.get(touch.namespace)
        if known is None or (known.access == "read" and touch.access == "write"):
            found[touch.namespace] = touch
    return tuple(sorted(found.values()))


def _all(changes: Changes) -> Iterator[Touch]:
    run = changes.run
    deploys = False
    if run is not None:
        yield Touch(run.namespace, "write", "job")
        parent = run.run_facets.get("parent")
        if isinstance(parent, dict):
            job = parent.get("job")
            if isinstance(job, dict):
                yield from _named(job.get("namespace"), "write", "run.facets.parent.job")
        deploys = DEPLOYMENT in run.run_facets
    for dataset in changes.datasets:
        if dataset.role == "input":
            yield _input(dataset, deploys)
        else:
            yield Touch(dataset.namespace, "write", "outputs" if dataset.role == "output" else "dataset")
        yield from _identifiers(dataset)


def is_reference(change: DatasetChange) -> bool:
    """Whether an input only names what it read: no facet the store applies to that dataset but its version."""
    return not change.aliases and not change.checks and not change.io_facets and set(change.facets) <= REFERENCE


def _input(change: DatasetChange, deploys: bool) -> Touch:
    """An input is read when it only names what was read; describing, tagging or deploying it writes it."""
    if deploys:
        return Touch(change.namespace, "write", "inputs of a deployment")
    if not is_reference(change):
        return Touch(change.namespace, "write", "inputs (facets that describe the dataset)")
    return Touch(change.namespace, "read", "inputs")


def _identifiers(change: DatasetChange) -> Iterator[Touch]:
    facets = change.facets
    lifecycle = facets.get("lifecycleStateChange")
    if isinstance(lifecycle, dict):
        previous = lifecycle.get("previousIdentifier")
        if isinstance(previous, dict):
            yield from _named(previous.get("namespace"), "write", "lifecycleStateChange.previousIdentifier")
    symlinks = facets.get("symlinks")
    if isinstance(symlinks, dict):
        for item in _dicts(symlinks.get("identifiers")):
            yield from _named(item.get("namespace"), "write", "symlinks.identifiers")
    lineage = facets.get("columnLineage")
    if isinstance(lineage, dict):
        fields = lineage.get("fields")
        for spec in fields.values() if isinstance(fields, dict) else ():
            if isinstance(spec, dict):
                for item in _dicts(spec.get("inputFields")):
                    yield from _named(item.get("namespace"), "read", "columnLineage.inputFields")
        for item in _dicts(lineage.get("dataset")):
            yield from _named(item.get("namespace"), "read", "columnLineage.dataset")


def _dicts(value: Any) -> Iterable[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _named(namespace: Any, access: Access, where: str) -> Iterator[Touch]:
    """A namespace named inside a facet, as the store would store it; a malformed one is refused."""
    if namespace is None:
        return
    if not isinstance(namespace, str):
        msg = f"invalid event: {where} namespace must be a string, not {type(namespace).__name__}"
        raise InvalidInput(msg)
    yield Touch(validate_namespace(namespace), access, where)


class Check(Protocol):
    """What a store asks, inside its transaction, about what only it knows: a run stored under another
    job, an input it would have to create. ``allows`` answers; ``refuse`` raises Forbidden (and records it)."""

    def allows(self, access: Access, namespace: str) -> bool: ...

    def refuse(self, touch: Touch) -> NoReturn: ...


__all__ = ["Access", "Check", "Touch", "is_reference", "touches"]
