"""The `run` command: record any program as a run, with its inputs and outputs.

Its exit status is the command's, so datatrail keeps out of the command's
statuses as ``env``, ``timeout`` and ``nohup`` do: 125 when datatrail itself
fails (a bad option, no store, an output not written), 126 when the command
cannot be executed, 127 when it is not found. Those failures say
``datatrail: error: …`` on standard error, and ``--json`` names the source.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.helptext import Command
from datatrail.cli.output import error, note
from datatrail.core.errors import WRAPPER_FAILED, CommandNotFound, DatatrailError, InvalidInput

try:  # typer >= 0.20 vendors click as typer._click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError  # type: ignore[no-redef,import-not-found,assignment,unused-ignore]


def own_failure(message: str, code: int, *, as_json: bool) -> typer.Exit:
    """datatrail's own failure inside `datatrail run`: one line on stderr, text or JSON, and its status."""
    if as_json:
        doc = {"source": "datatrail", "exit_code": code, "command_status": None, "run_id": None, "error": message}
        note(json.dumps(doc, ensure_ascii=False))
    else:
        error(message, prefix="datatrail: error: ")
    return typer.Exit(code)


def _wants_json(args: list[str]) -> bool:
    return "--json" in (args[: args.index("--")] if "--" in args else args)


class WrapperCommand(Command):
    """`datatrail run`: the command owns the exit statuses, so datatrail's own errors exit 125 (127: not found)."""

    def make_context(self, info_name: str | None, args: list[str], *rest: Any, **kwargs: Any) -> Any:
        as_json = _wants_json(args)  # now: parsing consumes ``args``
        try:
            return super().make_context(info_name, args, *rest, **kwargs)
        except UsageError as exc:
            text = " ".join(exc.format_message().split()).rstrip(".")
            msg = f"{text}; see `datatrail run -h`"
            raise own_failure(msg, WRAPPER_FAILED, as_json=as_json) from None

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        as_json = bool(ctx.params.get("json_out"))
        try:
            return super().invoke(ctx)
        except DatatrailError as exc:
            code = exc.exit_code if isinstance(exc, CommandNotFound) else WRAPPER_FAILED
            raise own_failure(exc.message, code, as_json=as_json) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:
            if os.environ.get("DATATRAIL_DEBUG"):
                raise
            msg = f"unexpected {type(exc).__name__}: {exc} (set DATATRAIL_DEBUG=1 for a traceback)"
            raise own_failure(msg, WRAPPER_FAILED, as_json=as_json) from None


def parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that reads as JSON (``0.1``, ``true``, ``[1,2]``) keeps its type."""

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            msg = f"invalid parameter {item!r}: use KEY=VALUE, e.g. -p lr=0.1"
            raise InvalidInput(msg)
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Job name the run is recorded under.")],
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="COMMAND [ARGS]", help="The program to run and its arguments, after `--`."),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", metavar="PATH|URL|REF", help="An input: a path or URL (hashed) or a ref (repeatable)."
        ),
    ] = None,
    outputs: Annotated[
        list[str] | None,
        typer.Option("--output", "-o", metavar="PATH|URL", help="An output, hashed after success (repeatable)."),
    ] = None,
    params: Annotated[
        list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE", help="A parameter (repeatable).")
    ] = None,
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace of the job.")] = "default",
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="Group this run with the other steps of one pipeline execution.")
    ] = None,
    no_autolog: Annotated[
        bool, typer.Option("--no-autolog", help="Do not turn on autolog in a Python command.")
    ] = False,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="End with one JSON object on stderr (stdout is the command's): the run, the exit code, "
            'and its source, "command" or "datatrail".',
        ),
    ] = False,
) -> None:
    """Run a command and record it as a run: inputs, outputs, exit status, duration.

    The command's output streams through and its exit status becomes datatrail's.
    A failing command is recorded as FAIL and registers no outputs; Ctrl-C is
    passed on to it and recorded as ABORT. A Python command run by this
    environment's interpreter has autolog on, so its own reads and writes join the run.

    datatrail's own failures exit 125 (126: the command cannot be executed,
    127: not found) and say `datatrail: error: …` on stderr, so a command's
    own status, 3 say, is never mistaken for datatrail's.

    Example: datatrail run --name clean -i data/raw.csv -o data/clean.csv -- python clean.py
    """
    from datatrail.capture.wrap import run_command  # the service and its store: not on --help (start-up)

    parsed = parse_params(params or [])
    if not command:  # before opening the store: a usage error needs none
        msg = "no command to run; put it after `--`, e.g. datatrail run --name job -- python job.py"
        raise InvalidInput(msg)
    trail = get_trail(ctx)
    result = run_command(
        trail,
        command or [],
        job=name,
        inputs=inputs or [],
        outputs=outputs or [],
        params=parsed,
        namespace=namespace,
        workflow=workflow,
        autolog=not no_autolog,
    )
    if json_out:
        note(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        for text in result.notes:
            note(f"datatrail: {text}")
        if result.source == "datatrail":
            error(result.error or "the run failed", prefix="datatrail: error: ")
        summary = f"datatrail: run:{result.run_id} {result.state.value} in {result.duration:.1f}s"
        note(f"{summary} ({result.error})" if result.error else summary)
    if result.exit_status:
        raise typer.Exit(result.exit_status)


def register(app: typer.Typer) -> None:
    app.command(cls=WrapperCommand, context_settings={"allow_interspersed_args": False})(run)
