"""Commands answered without typer: the reads `ls`, `show`, `versions`, `runs`, `lineage`, and `push`, in plain forms.

Importing typer (with its click) and building a command's parameters costs about
as much as the whole read on the embedded store (issue 22: a read in < 0.15 s
cold). :func:`answer` reads the command line itself when it has a plain form:

    datatrail [--store URI] COMMAND [ARGUMENT…] [--flag] [--option VALUE]…

with each option spelled as ``--help`` lists it (``--depth 3``, ``-d 3``,
``--depth=3``), given at most once, a value that does not start with ``-``, and a
number within the option's bounds; it then calls the command's work in
cli/reads.py (`push`: cli/transfer.py), the code the typer command calls, and maps its errors as the
typer application does (:func:`datatrail.cli.context.failure`). For anything
else (``--help``, a misspelt or repeated option, a value typer would refuse
or convert, ``--``, a missing or extra argument, shell completion) it returns
None and the typer application answers, as before; so every message about a
bad command line stays typer's. tests/test_cli_fast.py checks that both paths
print the same bytes and exit with the same status, and that the table below
has each option of the typer commands with its spelling, default and bounds.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from datatrail.cli.context import failure, open_trail

if TYPE_CHECKING:
    from datatrail.service import Trail

# What an option takes: FLAG (no value), TEXT (a string), or (low, high) for a whole number in that range.
FLAG = "flag"
TEXT = "text"
Kind = str | tuple[int, int]

# command -> (its options: spelling -> (parameter, kind); its arguments, the required first;
#             how many arguments are required; the default of every parameter not given)
COMMANDS: dict[str, tuple[dict[str, tuple[str, Kind]], tuple[str, ...], int, dict[str, Any]]] = {
    "ls": (
        {"--namespace": ("namespace", TEXT), "--json": ("json_out", FLAG)},
        (),
        0,
        {"namespace": None, "json_out": False},
    ),
    "show": (
        {"--files": ("files", FLAG), "--access": ("access", FLAG), "--json": ("json_out", FLAG)},
        ("ref",),
        1,
        {"files": False, "access": False, "json_out": False},
    ),
    "versions": ({"--json": ("json_out", FLAG)}, ("name",), 1, {"json_out": False}),
    "runs": (
        {"--job": ("job", TEXT), "--limit": ("limit", (1, 100000)), "--json": ("json_out", FLAG)},
        (),
        0,
        {"job": None, "limit": 50, "json_out": False},
    ),
    "lineage": (
        {
            "--upstream": ("upstream", FLAG),
            "--downstream": ("downstream", FLAG),
            "--both": ("both", FLAG),
            "--depth": ("depth", (0, 1000)),
            "-d": ("depth", (0, 1000)),
            "--format": ("fmt", TEXT),
            "-f": ("fmt", TEXT),
            "--output": ("output", TEXT),
            "-o": ("output", TEXT),
            "--level": ("level", TEXT),
            "--json": ("json_out", FLAG),
            "--force": ("force", FLAG),
            "--columns": ("columns", FLAG),
        },
        ("ref", "column"),
        1,
        {
            "column": None,
            "upstream": False,
            "downstream": False,
            "both": False,
            "depth": 10,
            "fmt": "tree",
            "output": None,
            "level": "version",
            "json_out": False,
            "force": False,
            "columns": False,
        },
    ),
    "push": (
        {"--remote": ("remote", TEXT), "-r": ("remote", TEXT), "--json": ("json_out", FLAG)},
        ("refs",),
        0,
        {"refs": None, "remote": None, "json_out": False},
    ),
}
# Commands whose last argument takes every argument left (``push REF…``): a list, None when none is given.
VARIADIC = frozenset({"push"})
STORE_ENV = "DATATRAIL_URI"  # what `--store` falls back to (cli/app.py)


def parse(argv: list[str]) -> tuple[str | None, str, dict[str, Any]] | None:
    """``(store, command, parameters)`` for a plain read command line; None for anything else."""
    if os.environ.get("_DATATRAIL_COMPLETE"):
        return None  # a shell asking typer to complete a word
    store: str | None = None
    at = 0
    if argv[:1] == ["--store"] and len(argv) > 1 and _plain(argv[1]):
        store, at = argv[1], 2
    elif argv[:1] and argv[0].startswith("--store=") and argv[0] != "--store=":
        store, at = argv[0].removeprefix("--store="), 1
    if at >= len(argv) or argv[at] not in COMMANDS:
        return None
    command = argv[at]
    options, arguments, required, defaults = COMMANDS[command]
    given: dict[str, Any] = {}
    positional: list[str] = []
    rest = argv[at + 1 :]
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if _plain(token):
            positional.append(token)
            continue
        spelling, equals, attached = token.partition("=")
        found = options.get(spelling)
        if found is None or (equals and (not spelling.startswith("--") or not attached)):
            return None
        parameter, kind = found
        if parameter in given:
            return None
        if kind == FLAG:
            if equals:
                return None
            given[parameter] = True
            continue
        if equals:
            raw = attached
        elif i < len(rest) and _plain(rest[i]):
            raw = rest[i]
            i += 1
        else:
            return None
        if isinstance(kind, tuple):
            low, high = kind
            if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
                return None
            given[parameter] = int(raw)
        else:
            given[parameter] = raw
    if command in VARIADIC:
        if len(positional) < required:
            return None
        *single, rest_name = arguments
        if positional[len(single) :]:
            given[rest_name] = positional[len(single) :]
        positional = positional[: len(single)]
    elif not required <= len(positional) <= len(arguments):
        return None
    if store is None:
        store = os.environ.get(STORE_ENV) or None
    return store, command, {**defaults, **dict(zip(arguments, positional, strict=False)), **given}


def _plain(token: str) -> bool:
    """An argument or an option's value, as click would take it here: not empty and not like an option."""
    return bool(token) and not token.startswith("-")


class _Opener:
    """Opens the store on first call (after the command has checked its options), closes it at the end."""

    def __init__(self, store: str | None) -> None:
        self.store = store
        self.trail: Trail | None = None

    def __call__(self) -> Trail:
        if self.trail is None:
            self.trail = open_trail(self.store)
        return self.trail

    def close(self) -> None:
        if self.trail is not None:
            self.trail.close()


def answer(argv: list[str]) -> int | None:
    """Run a plain read command line and return its exit status; None when typer should answer it."""
    parsed = parse(argv)
    if parsed is None:
        return None
    store, command, parameters = parsed
    opener = _Opener(store)
    try:
        try:
            if command == "push":
                from datatrail.cli import transfer  # start-up: only a push loads its work (and its report)

                transfer.push(opener, **parameters)
            else:
                from datatrail.cli import reads  # start-up: a push needs none of the reads (nor their model)

                getattr(reads, command)(opener, **parameters)
        except BrokenPipeError:
            # The reader went away (`datatrail ls | head`): as typer does, quietly, status 1.
            try:  # typer >= 0.20 vendors click as typer._click
                from typer._click.utils import PacifyFlushWrapper
            except ImportError:  # pragma: no cover
                from click.utils import PacifyFlushWrapper  # type: ignore[no-redef,import-not-found,unused-ignore]

            sys.stdout = PacifyFlushWrapper(sys.stdout)
            sys.stderr = PacifyFlushWrapper(sys.stderr)
            return 1
        except (Exception, KeyboardInterrupt) as exc:
            return failure(exc)
    finally:
        opener.close()
    return 0
