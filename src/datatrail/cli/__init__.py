"""The ``datatrail`` command line."""

from __future__ import annotations

import gc
import os
import sys

# A command line answered by cli/fast.py (a plain push or read): its store is closed and its answer printed by
# the time main() ends, so the exit may skip the interpreter's teardown, as after an add.
_answered = False


def script() -> None:
    """The ``datatrail`` executable: :func:`main`; after an ``add``, an exit without the interpreter's teardown."""
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        return
    # Out of the except block: the traceback's frames are freed, and what they held closed, as at any exit.
    _leave(code)
    sys.exit(code)


def _leave(code: object) -> None:
    """Exit at once with ``code`` after an ``add`` or a command answered without typer (a push, a read): the exit
    handlers run and the output is flushed, but the interpreter does not free every module and object one by one
    (10-30 ms after the answer is printed; for a push with nothing to send, a sixth of its CPU).
    Only with no other thread alive (none is left writing) and a plain status; else the usual exit."""
    from datatrail.cli import prefetch  # imported already by main()

    code = 0 if code is None else code
    threading = sys.modules.get("threading")
    others = threading is not None and threading.active_count() > 1
    if not (prefetch.adding or _answered) or not isinstance(code, int) or others:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the usual exit reports it as usual
        return
    import atexit  # built in

    atexit._run_exitfuncs()  # logging's flush, concurrent.futures' join, weakref finalizers: as at any exit
    os._exit(code)


def main() -> None:
    """Entry point of the ``datatrail`` script."""
    thresholds = gc.get_threshold()
    try:
        # Before the heavy imports below: a big object to push starts copying now (before even hashlib's
        # import, which prefetch brings), a big file to add hashing.
        if sys.argv[1:2] == ["push"]:
            from datatrail.cli import prepush  # the standard library's small parts and sqlite3

            prepush.start_from_argv(sys.argv[1:])
        from datatrail.cli.prefetch import start_from_argv, started  # light, and first: see the next line

        start_from_argv(sys.argv[1:])
        # The imports and the store's opening take less CPU when the cyclic collector runs 70 times less
        # often: their objects live to the exit, and each collection only walked them again (10-20% of an
        # add's start-up while big files hash in children on the same cores; ~5% of a push's or a read's,
        # answered below). It still runs (a profile or checks of big tabular data make garbage of their
        # own); a typer command other than such an add runs with the usual thresholds (`serve` lives long).
        gc.set_threshold(50_000, 20, 100)
        from datatrail.cli.fast import answer  # the reads and push without typer: light (start-up)

        status = answer(sys.argv[1:])  # a plain `ls`, `show`, `push`… answered here; None for typer
        if status is None:
            from datatrail.cli.app import main as run  # typer and every command: only once hashing has started

            if not started():
                gc.set_threshold(*thresholds)
    except KeyboardInterrupt:
        # Ctrl-C while the CLI starts, before typer maps it (cli/app.py): the same line, the same status.
        from datatrail.cli.output import error  # light: json and unicodedata

        error("interrupted; nothing half-written was kept")
        sys.exit(130)
    if status is not None:
        global _answered
        _answered = True  # script() may leave without the teardown
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
        gc.set_threshold(*thresholds)  # as it was, for a caller of main() in its own process
