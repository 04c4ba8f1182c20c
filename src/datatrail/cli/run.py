"""The `run` command: record any program as a run, with its inputs and outputs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import note
from datatrail.core.errors import InvalidInput


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
) -> None:
    """Run a command and record it as a run: inputs, outputs, exit status, duration.

    The command's output streams through and its exit status becomes datatrail's.
    A failing command is recorded as FAIL and registers no outputs; Ctrl-C is
    passed on to it and recorded as ABORT. A Python command run by this
    environment's interpreter has autolog on, so its own reads and writes join the run.

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
    for text in result.notes:
        note(f"datatrail: {text}")
    summary = f"datatrail: run:{result.run_id} {result.state.value} in {result.duration:.1f}s"
    note(f"{summary} ({result.error})" if result.error else summary)
    if result.exit_status:
        raise typer.Exit(result.exit_status)


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(run)
