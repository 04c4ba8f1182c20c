"""What `push` does, and how a push, fetch or pull is reported, without typer.

The typer commands (cli/storage.py) declare the options and the help and call
these; so does the fast path (cli/fast.py), which answers a plain `datatrail
push` without building typer at all: a push of one big file is its start-up
plus one kernel copy, so the start-up is most of what it adds to a `cp`
(docs/benchmarks.md, "Round seven: one big file").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from datatrail.cli.output import emit_json, human_size, line, progress

if TYPE_CHECKING:
    from datatrail.service import Trail
    from datatrail.sync import SyncReport

Opener = Callable[[], "Trail"]


def push(trail: Opener, refs: Sequence[str] | None, remote: str | None, json_out: bool) -> None:
    """``datatrail push``: upload the bytes of versions that the remote lacks, and say what moved."""
    from datatrail.cli import prepush  # imported already when main() began copying

    started = prepush.take()  # copies datatrail.cli.main began for a plain push
    try:
        opened = trail()
        with progress("pushing") as advance:
            report = opened.storage.push(refs or (), remote=remote, progress=advance, started=started)
    finally:
        if started is not None:
            started.close()  # what the push did not take is removed (an error, Ctrl-C, a guess it did not make)
    print_sync("pushed", report, json_out)


def print_sync(verb: str, report: SyncReport, json_out: bool) -> None:
    """A push's, fetch's or pull's report: JSON, or a line of totals and one per version skipped or checked out."""
    if json_out:
        emit_json(report.to_dict())
        return
    line(
        f"{verb} {report.objects} objects ({human_size(report.bytes)}, {report.packs} packs) "
        f"{'to' if verb == 'pushed' else 'from'} {report.remote or 'no remote'} in {report.requests} requests; "
        f"{report.already} already there"
    )
    for ref in report.skipped:
        line(f"skipped {ref}: its bytes are not {'in the cache' if verb == 'pushed' else 'on the remote'}")
    for c in report.checkouts:
        line(f"{c.version.ref} -> {c.path}: {c.summary()}")
    for note in report.notes:
        line(f"note: {note}")
