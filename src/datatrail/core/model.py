"""Frozen value objects: what datatrail stores and returns.

Rows become these objects at the store boundary; nothing above the store sees a
database row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from datatrail.core.errors import InvalidInput
from datatrail.core.times import iso

_HEX = re.compile(r"[0-9a-f]+")
MAX_NAME_LENGTH = 1024
MAX_VERSION = 2**63 - 1  # what a database BIGINT holds: a larger number names no version
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest such as ``sha256:9f86d0…``.

    >>> d = Digest.parse("sha256:" + "ab" * 32)
    >>> d.short
    'sha256:abababababab'
    """

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, hexpart = text.partition(":")
        if not sep or algorithm != "sha256" or len(hexpart) != 64 or not _HEX.fullmatch(hexpart):
            msg = f"invalid digest {text!r}: expected 'sha256:' followed by 64 lowercase hex digits"
            raise InvalidInput(msg)
        return cls(algorithm, hexpart)

    @classmethod
    def sha256(cls, hexdigest: str) -> Digest:
        return cls("sha256", hexdigest)

    @property
    def short(self) -> str:
        return f"{self.algorithm}:{self.hex[:12]}"

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def validate_name(name: str, what: str = "dataset name") -> str:
    """Return ``name`` if it is acceptable as a dataset, job or alias name, else raise.

    Names are NFC-normalised text of 1..1024 characters without control or
    bidirectional-override characters; ``@`` and ``:`` separate the parts of a
    ref, so a dataset name holds neither (use ``--namespace`` for scheme-like
    prefixes such as ``s3://bucket``).
    """
    if not isinstance(name, str) or not name.strip():
        msg = f"invalid {what}: it is empty; give a non-empty name"
        raise InvalidInput(msg)
    if len(name) > MAX_NAME_LENGTH:
        msg = f"invalid {what}: {len(name)} characters, at most {MAX_NAME_LENGTH} allowed"
        raise InvalidInput(msg)
    # Printable ASCII (most names) holds no control or format character and is already NFC: the
    # per-character lookup, a few microseconds per name, runs for each name of every ingested event.
    plain = name.isascii() and name.isprintable()
    for ch in () if plain else name:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in "\u2028\u2029":
            msg = f"invalid {what} {name!r}: it contains the control or format character U+{ord(ch):04X}"
            raise InvalidInput(msg)
    if name != name.strip():
        msg = f"invalid {what} {name!r}: leading or trailing whitespace"
        raise InvalidInput(msg)
    if what == "dataset name" and ("@" in name or ":" in name):
        msg = f"invalid {what} {name!r}: '@' and ':' are reserved for refs (namespace:name@version)"
        raise InvalidInput(msg)
    if what == "dataset name" and ("\\" in name or any(part in (".", "..") for part in name.split("/"))):
        # Names read like relative paths (raw/penguins); one that climbs out of its tree is refused.
        msg = f"invalid {what} {name!r}: '.' and '..' segments and backslashes are not allowed; write a/b/c"
        raise InvalidInput(msg)
    if what in ("alias", "job name") and any(c in name for c in "@:/"):
        msg = f"invalid {what} {name!r}: use letters, digits, '-', '_' and '.'"
        raise InvalidInput(msg)
    if what == "alias" and name.isdigit():
        msg = f"invalid alias {name!r}: an alias cannot be a number (numbers select versions)"
        raise InvalidInput(msg)
    return name if plain else unicodedata.normalize("NFC", name)


def validate_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not namespace.strip():
        msg = "invalid namespace: it is empty"
        raise InvalidInput(msg)
    if len(namespace) > MAX_NAME_LENGTH:
        msg = f"invalid namespace: {len(namespace)} characters, at most {MAX_NAME_LENGTH} allowed"
        raise InvalidInput(msg)
    if namespace.isascii() and namespace.isprintable():  # as in validate_name: nothing to refuse or normalise
        return namespace
    for ch in namespace:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            msg = f"invalid namespace {namespace!r}: it contains the control character U+{ord(ch):04X}"
            raise InvalidInput(msg)
    return unicodedata.normalize("NFC", namespace)


@dataclass(frozen=True)
class Ref:
    """A reference to a dataset version: ``[namespace:]name[@selector]``.

    The selector is a version number, ``latest``, an alias, or a digest prefix
    ``sha256:<at least 8 hex>`` after the last ``@``. The namespace is everything
    before the last ``:`` of the part before it (so ``s3://bucket:raw/data@3`` works).

    >>> Ref.parse("team-x:raw/penguins@3")
    Ref(namespace='team-x', name='raw/penguins', selector='3')
    """

    namespace: str
    name: str
    selector: str | None = None

    @classmethod
    def parse(cls, text: str, namespace: str | None = None) -> Ref:
        if not isinstance(text, str) or not text.strip():
            msg = "invalid ref: it is empty; write NAME, NAME@3, NAME@latest, NAME@ALIAS or NAME@sha256:PREFIX"
            raise InvalidInput(msg)
        # The selector follows the last '@': namespaces may hold one (postgres://user@host).
        base, at, selector = text.rpartition("@") if "@" in text else (text, "", "")
        if at and not selector:
            msg = f"invalid ref {text!r}: nothing after '@'; write NAME@3, NAME@latest or NAME@sha256:PREFIX"
            raise InvalidInput(msg)
        ns, colon, name = base.rpartition(":")
        if not colon:
            ns, name = namespace or DEFAULT_NAMESPACE, base
        elif namespace is not None and ns != namespace:
            msg = f"invalid ref {text!r}: it names namespace {ns!r} but {namespace!r} was given"
            raise InvalidInput(msg)
        name = validate_name(name)
        ns = validate_namespace(ns)
        if at:
            selector = cls.check_selector(text, selector)
        return cls(ns, name, selector or None)

    @staticmethod
    def check_selector(text: str, selector: str) -> str:
        """The selector, NFC-normalised when it is an alias; InvalidInput when malformed."""
        if selector.startswith("sha256:"):
            prefix = selector[len("sha256:") :]
            if len(prefix) < 8 or len(prefix) > 64 or not _HEX.fullmatch(prefix):
                msg = f"invalid ref {text!r}: a digest selector needs 8 to 64 lowercase hex digits after 'sha256:'"
                raise InvalidInput(msg)
        elif selector.isascii() and selector.isdigit():
            # Length first: int() of thousands of digits is slow, and refused past 4,300.
            if len(selector) > len(str(MAX_VERSION)) or int(selector) > MAX_VERSION:
                msg = f"invalid ref {text[:200]!r}: version numbers are at most {MAX_VERSION}"
                raise InvalidInput(msg)
            if int(selector) < 1:
                msg = f"invalid ref {text!r}: version numbers start at 1"
                raise InvalidInput(msg)
        else:
            return validate_name(selector, "alias")
        return selector

    def __str__(self) -> str:
        base = self.name if self.namespace == DEFAULT_NAMESPACE else f"{self.namespace}:{self.name}"
        return f"{base}@{self.selector}" if self.selector else base


class RunState(str, Enum):
    """The state of a run: RUNNING until an event ends it COMPLETE, FAIL or ABORT."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    ABORT = "ABORT"

    @property
    def finished(self) -> bool:
        return self in (RunState.COMPLETE, RunState.FAIL, RunState.ABORT)

    @classmethod
    def stored(cls, text: str) -> RunState:
        """The state of a stored text; ``START`` (what stores before revision 0006 kept) is RUNNING."""
        return cls.RUNNING if text == "START" else cls(text)


class EventType(str, Enum):
    """The ``eventType`` of an OpenLineage RunEvent; START, RUNNING and OTHER leave a run RUNNING.

    >>> EventType.START.state
    <RunState.RUNNING: 'RUNNING'>
    """

    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    ABORT = "ABORT"
    OTHER = "OTHER"

    @property
    def state(self) -> RunState:
        """The state a run is in after this event (before any later one)."""
        return RunState.RUNNING if self in (EventType.START, EventType.OTHER) else RunState(self.value)


def short_ids(ids: Iterable[str], min_length: int = 8) -> dict[str, str]:
    """The shortest prefix of each id, at least ``min_length`` long, that no other id of ``ids`` shares.

    >>> short_ids(["0193a24e-4812-71", "0193a24e-4812-72", "5f0c99aa-0000"])
    {'0193a24e-4812-71': '0193a24e-4812-71', '0193a24e-4812-72': '0193a24e-4812-72', '5f0c99aa-0000': '5f0c99aa'}
    """
    unique = sorted(set(ids))
    out: dict[str, str] = {}
    for i, one in enumerate(unique):
        # In sorted order the id sharing the longest prefix with this one is a neighbour.
        shared = max((_common(one, unique[j]) for j in (i - 1, i + 1) if 0 <= j < len(unique)), default=0)
        out[one] = one[: max(min_length, shared + 1)]
    return out


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class FileEntry:
    """One file of a directory version's manifest."""

    path: str
    size: int
    digest: Digest


@dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str
    kind: str = "dataset"
    description: str | None = None
    created_at: datetime | None = None
    version_count: int = 0
    latest: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "created_at": iso(self.created_at),
            "version_count": self.version_count,
            "latest": self.latest,
        }


@dataclass(frozen=True)
class Version:
    """One immutable version of a dataset."""

    namespace: str
    name: str
    number: int
    digest: Digest | None
    size: int | None
    uri: str | None
    format: str | None
    created_at: datetime
    created_by: str | None
    host: str | None = None
    message: str | None = None
    kind: str = "dataset"
    file_count: int | None = None
    run_id: str | None = None
    aliases: tuple[str, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    id: int | None = field(default=None, compare=False)
    key: str | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        return str(Ref(self.namespace, self.name, str(self.number)))

    @property
    def is_directory(self) -> bool:
        return self.file_count is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.number,
            "ref": self.ref,
            "kind": self.kind,
            "digest": str(self.digest) if self.digest else None,
            "size": self.size,
            "uri": self.uri,
            "format": self.format,
            "file_count": self.file_count,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "host": self.host,
            "message": self.message,
            "run_id": self.run_id,
            "aliases": list(self.aliases),
            "properties": self.properties,
        }


@dataclass(frozen=True)
class Run:
    """One execution of a job."""

    id: str
    namespace: str
    job: str
    state: RunState
    started_at: datetime | None
    ended_at: datetime | None
    user: str | None = None
    host: str | None = None
    command: str | None = None
    cwd: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    code: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    parent_run_id: str | None = None
    workflow: str | None = None
    inputs: tuple[Version, ...] = ()
    outputs: tuple[Version, ...] = ()
    # Standard and custom OpenLineage run facets (nominalTime, processing_engine…), each {"time", "value"}.
    facets: dict[str, Any] = field(default_factory=dict)
    # Outputs the run named (in a START, RUNNING, FAIL or ABORT event) that no version of it holds: (namespace, name).
    planned_outputs: tuple[tuple[str, str], ...] = ()
    # The runs whose parent run facet names this run (a DAG run's task runs), by id.
    children: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "job": self.job,
            "state": self.state.value,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "user": self.user,
            "host": self.host,
            "command": self.command,
            "cwd": self.cwd,
            "params": self.params,
            "metrics": self.metrics,
            "code": self.code,
            "error": self.error,
            "parent_run_id": self.parent_run_id,
            "workflow": self.workflow,
            "inputs": [v.to_dict() for v in self.inputs],
            "outputs": [v.to_dict() for v in self.outputs],
            "facets": self.facets,
            "planned_outputs": [{"namespace": ns, "name": name} for ns, name in self.planned_outputs],
            "children": list(self.children),
        }
