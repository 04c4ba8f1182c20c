"""``python -m datatrail.capture.bootstrap job.py ARGS…``: run a script (or ``-m module``) with autolog on.

``datatrail run`` starts a Python command of its own environment this way, so
the script's pandas, polars, pyarrow and NumPy reads and writes join the
wrapper's run without any change to the script; like ``coverage run``, it
needs no ``sitecustomize`` or ``.pth`` file.
"""

from __future__ import annotations

import os
import runpy
import sys


def main(argv: list[str]) -> None:
    if not argv or (argv[0] == "-m" and len(argv) < 2):
        sys.stderr.write("usage: python -m datatrail.capture.bootstrap (SCRIPT | -m MODULE) [ARGS]...\n")
        raise SystemExit(2)
    try:
        from datatrail.capture.autolog import autolog  # inside the try: a broken install must not stop the command

        autolog()
    except Exception as exc:  # capture is secondary: the command still runs
        sys.stderr.write(f"datatrail: autolog is off in this process ({type(exc).__name__}: {exc})\n")
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))  # what `python job.py` puts first
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
