"""The ``datatrail`` command line."""

from __future__ import annotations

import gc
import os
import sys


def main() -> None:
    """Entry point of the ``datatrail`` script."""
    try:
        from datatrail.cli.prefetch import start_from_argv  # light, and first: see the next line

        # Before the heavy imports below: a big file to add starts hashing now.
        start_from_argv(sys.argv[1:])
        from datatrail.cli.fast import answer  # the reads without typer: light (start-up)

        status = answer(sys.argv[1:])  # a plain `ls`, `show`… answered here; None for typer
        if status is None:
            from datatrail.cli.app import main as run  # typer and every command: only once hashing has started
    except KeyboardInterrupt:
        # Ctrl-C while the CLI starts, before typer maps it (cli/app.py): the same line, the same status.
        from datatrail.cli.output import error  # light: json and unicodedata

        error("interrupted; nothing half-written was kept")
        sys.exit(130)
    if status is not None:
        gc.freeze()  # as below
        sys.exit(status)
    try:
        run()
    except BrokenPipeError:
        # Like other Unix tools, stop quietly when the pipe's reader exits early.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)
    finally:
        # Nothing needs collecting on the way out: freezing spares the interpreter's
        # final collection over everything imported (~40 ms of every command).
        gc.freeze()
