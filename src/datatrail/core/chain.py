"""The audit hash chain: how an entry is hashed, and verifying a whole chain.

Each entry's hash is ``sha256(prev_hash + canonical_json(entry))`` where the
entry holds its sequence number, time, actor, action, target, outcome and
details; the first entry's ``prev_hash`` is 64 zeros. Because the sequence
number is inside the hash, an entry moved to another place no longer matches,
and the entry it was moved from can be named.

A chain can be recomputed by whoever can write the table, so a *checkpoint*
(``SEQ:HASH`` of the head, kept outside the database) also detects a chain
that was truncated or rebuilt after a change.

>>> rows = [entry_row(1, "2026-01-01T00:00:00+00:00", "ann", "dataset.add", "raw@1", "allowed", {}, GENESIS)]
>>> verify_chain(rows).ok
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from datatrail.core.canonical import GENESIS, entry_content, entry_hash
from datatrail.core.errors import InvalidInput

_SHIFT = 8  # how far from its place a moved entry is looked for


def row_hash(row: Mapping[str, Any]) -> str:
    """The hash a chain row's content and ``prev_hash`` give: what its ``hash`` must be."""
    return entry_hash(row["prev_hash"], _content(row))


def entry_row(
    seq: int, time: str, actor: str, action: str, target: str | None, outcome: str, details: Any, prev: str
) -> dict[str, Any]:
    """A well-formed chain row (for tests and doctests): the content, ``prev_hash`` and ``hash``."""
    content = entry_content(seq, time, actor, action, target, outcome, details)
    return {**content, "prev_hash": prev, "hash": entry_hash(prev, content)}


@dataclass(frozen=True)
class Checkpoint:
    """The head of a chain at some moment: ``SEQ:HASH``."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        seq, sep, digest = (text or "").strip().partition(":")
        digest = digest.lower()
        if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            msg = f"invalid checkpoint {text!r}: give SEQ:HASH as printed by `datatrail audit checkpoint`"
            raise InvalidInput(msg)
        return cls(int(seq), digest)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the chain: the entry, what happened to it (changed, deleted, inserted,
    reordered, truncated, rebuilt), and a sentence saying so."""

    seq: int
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class ChainReport:
    """The outcome of :func:`verify_chain`; ``problems[0]`` is the first bad entry."""

    entries: int
    head: Checkpoint | None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": str(self.head) if self.head else None,
            "problems": [p.to_dict() for p in self.problems],
        }


def _moved_from(row: Mapping[str, Any]) -> int | None:
    """The sequence number this row's content was hashed under, if not its own (it was moved)."""
    seq = int(row["seq"])
    for delta in range(1, _SHIFT + 1):
        for s in (seq - delta, seq + delta):
            if s >= 1 and entry_hash(row["prev_hash"], {**_content(row), "seq": s}) == row["hash"]:
                return s
    return None


def _content(row: Mapping[str, Any]) -> dict[str, Any]:
    return entry_content(
        int(row["seq"]), row["time"], row["actor"], row["action"], row["target"], row["outcome"], row["details"]
    )


def verify_chain(
    rows: Iterable[Mapping[str, Any]], checkpoint: Checkpoint | None = None, start: Checkpoint | None = None
) -> ChainReport:
    """Recompute the chain from ``rows`` (in sequence order; ``time`` as ISO text) and name what is wrong.

    The first problem is the first entry that was changed, deleted, inserted or
    reordered; with a ``checkpoint``, a chain that ends before it (truncated) or
    differs at it (rebuilt) is reported too.
    """
    problems: list[Problem] = []
    prev, expected_seq, count = GENESIS, 1, 0
    if start is not None:  # verify a window of the chain: from the entry after ``start``
        prev, expected_seq = start.hash, start.seq + 1
    head: Checkpoint | None = None
    at_checkpoint: str | None = None
    last: Mapping[str, Any] | None = None
    it = iter(rows)
    row = next(it, None)
    while row is not None:
        following = next(it, None)
        count += 1
        seq = int(row["seq"])
        self_ok = row_hash(row) == row["hash"]
        link_ok = row["prev_hash"] == prev
        if seq != expected_seq and seq > expected_seq:
            gap = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq} to {seq - 1}"
            problems.append(
                Problem(expected_seq, "deleted", f"audit entry {gap} was deleted (the chain jumps to {seq})")
            )
        elif not self_ok and link_ok:
            problems.append(
                Problem(seq, "changed", f"audit entry {seq} was changed: its content does not match its hash")
            )
        elif self_ok and not link_ok and last is not None:
            was = int(last["seq"])
            problems.append(
                Problem(
                    was,
                    "changed",
                    f"audit entry {was} was changed and re-hashed: entry {seq} links to a different hash",
                )
            )
        elif not self_ok:
            origin = _moved_from(row)
            if origin is None:
                problems.append(
                    Problem(
                        seq,
                        "inserted",
                        f"audit entry {seq} was inserted or forged: neither its hash nor its link match",
                    )
                )
            elif origin == seq - 1:
                problems.append(
                    Problem(
                        seq - 1,
                        "inserted",
                        f"an audit entry was inserted at {seq - 1}: entry {seq} is the former entry {origin}",
                    )
                )
            elif origin == seq + 1 and not (following is not None and _moved_from(following) == seq):
                # (the next entry holding this one's former content means a swap, reported below)
                problems.append(
                    Problem(seq, "deleted", f"audit entry {seq} was deleted and the later entries renumbered")
                )
            else:
                problems.append(
                    Problem(
                        seq, "reordered", f"audit entries were reordered: entry {seq} holds the former entry {origin}"
                    )
                )
        elif seq < expected_seq:
            problems.append(Problem(seq, "inserted", f"audit entry {seq} appears twice"))
        if checkpoint is not None and seq == checkpoint.seq:
            at_checkpoint = row["hash"]
        prev, expected_seq, last = row["hash"], seq + 1, row
        head = Checkpoint(seq, row["hash"])
        row = following
    if checkpoint is not None:
        if at_checkpoint is None:
            end = head.seq if head else 0
            problems.append(
                Problem(
                    checkpoint.seq,
                    "truncated",
                    f"the chain ends at entry {end}, before the checkpoint's entry {checkpoint.seq}: "
                    "entries were deleted",
                )
            )
        elif at_checkpoint != checkpoint.hash:
            problems.append(
                Problem(
                    checkpoint.seq,
                    "rebuilt",
                    f"audit entry {checkpoint.seq} differs from the checkpoint: the chain was changed and rebuilt",
                )
            )
    problems.sort(key=lambda p: p.seq)
    return ChainReport(count, head, tuple(problems))


__all__ = [
    "GENESIS",
    "ChainReport",
    "Checkpoint",
    "Problem",
    "entry_content",
    "entry_hash",
    "entry_row",
    "row_hash",
    "verify_chain",
]
