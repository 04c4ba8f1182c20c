"""One error hierarchy for datatrail.

Every error carries a message that says what was wrong and what to do. The CLI
maps errors to exit codes in one place (``cli/app.py``), the server maps them to
HTTP statuses in one place; nothing else inspects these classes.
"""

from __future__ import annotations


class DatatrailError(Exception):
    """Base class of every error datatrail raises on purpose."""

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(DatatrailError):
    """A name, ref, path, event or option that datatrail cannot accept."""

    exit_code = 2
    http_status = 400


class GraphTooLarge(InvalidInput):
    """A lineage graph with more nodes than one answer may hold (``core/limits.py``, ``graph_limit``);
    the walk stopped where it passed the limit, and its message says which depth would fit."""

    http_status = 413

    def __init__(self, message: str, *, limit: int = 0, depth: int = 0, fits: int | None = None) -> None:
        super().__init__(message)
        self.limit, self.depth, self.fits = limit, depth, fits

    @classmethod
    def at(cls, limit: int, depth: int, fits: int | None, around: str = "its start") -> GraphTooLarge:
        """The error of a walk to ``depth`` that passed ``limit`` nodes, ``fits`` the largest depth known
        to stay within it (-1: not even depth 0; None: not known)."""
        advice = "lower depth"
        if fits is not None:
            advice = f"lower depth to {fits} or less" if fits >= 0 else "even depth 0 is more: ask about less at once"
        msg = f"the lineage graph around {around} has more than {limit:,} nodes at depth {depth}; {advice}"
        return cls(msg, limit=limit, depth=depth, fits=fits)

    def around(self, what: str) -> GraphTooLarge:
        """The same error naming where the graph starts (as the caller knows it); itself when it came
        without its numbers (from a remote store, whose message names the start already)."""
        return self if not self.limit else GraphTooLarge.at(self.limit, self.depth, self.fits, what)


class NotFound(DatatrailError):
    """A dataset, version, run or store that does not exist."""

    exit_code = 3
    http_status = 404


class StoreNotFound(NotFound):
    """No store was named and none was found walking up from the working directory."""


# `datatrail run`'s status when datatrail itself fails: the command owns the others, as with env(1) and timeout(1).
WRAPPER_FAILED = 125


class CommandNotFound(NotFound):
    """The program given to ``datatrail run`` is not on PATH or not executable: status 127, as in a shell."""

    exit_code = 127


class Conflict(DatatrailError):
    """The request contradicts what the store already holds."""

    exit_code = 4
    http_status = 409


class Forbidden(DatatrailError):
    """The actor may not do this."""

    exit_code = 5
    http_status = 403


class IntegrityError(DatatrailError):
    """Stored data or metadata does not match what it should be."""

    exit_code = 6
    http_status = 500


class StoreVersionError(DatatrailError):
    """The store's schema is newer than this datatrail understands."""

    exit_code = 7
    http_status = 500


class StoreUnavailable(DatatrailError):
    """The store cannot be reached now (database down, connection refused); retrying later may work."""

    exit_code = 3
    http_status = 503


class DiskFull(DatatrailError):
    """No space left on the device where bytes were being written; nothing half-written was kept."""

    exit_code = 8
    http_status = 507
