"""The typer application: global options, error mapping, and the command modules.

Every command is thin: parse, call one Trail method, print. Errors are mapped
to a one-line message and an exit code here and nowhere else.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from typer.core import HAS_RICH, TyperGroup

from datatrail._version import __version__
from datatrail.cli.coerce import light
from datatrail.cli.helptext import tidy, tidy_param
from datatrail.cli.output import error
from datatrail.core.errors import DatatrailError

try:  # typer >= 0.20 vendors click as typer._click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[no-redef,import-not-found,assignment,unused-ignore]


def _usage_error(exc: UsageError) -> typer.Exit:
    """A usage error as one line (click draws a usage block and a box), exit status 2."""
    text = " ".join(exc.format_message().split()).rstrip(".")
    where = exc.ctx.command_path if exc.ctx is not None else "datatrail"
    error(f"{text}; see `{where} -h`")
    return typer.Exit(2)


class _Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy(self, rich=HAS_RICH and self.rich_markup_mode == "rich")  # `--help` as the code words it
        light(self.params)  # plain values skip pydantic (coerce.py)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            light(command.params)
        return command

    def get_help_option(self, ctx: Any) -> Any:
        option = tidy_param(super().get_help_option(ctx))
        light([option] if option is not None else [])
        return option

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise _usage_error(exc) from None

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise _usage_error(exc) from None
        except DatatrailError as exc:
            error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            error("interrupted; nothing half-written was kept")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            raise  # the reader went away (`datatrail ls | head`): handled quietly in datatrail.cli.main
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            if os.environ.get("DATATRAIL_DEBUG"):
                raise
            error(f"unexpected {type(exc).__name__}: {exc} (set DATATRAIL_DEBUG=1 for a traceback)")
            raise typer.Exit(70) from None


app = typer.Typer(
    cls=_Group,
    name="datatrail",
    help="Versioned datasets, runs and lineage: what your data is, where it came from, what depends on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"datatrail {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URI",
            envvar="DATATRAIL_URI",
            help="Store URI: sqlite:///path/trail.db, postgresql://user@host:port/db or http://host:port. "
            "Default: the .datatrail/ found walking up from here.",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Versioned datasets, runs and lineage: what your data is, where it came from, what depends on it."""
    ctx.obj = {"store": store}


from datatrail.cli import data, lineage, runs, server  # noqa: E402  (commands register on `app`)

data.register(app)
runs.register(app)
lineage.register(app)
server.register(app)

from datatrail.cli import run as run_command  # noqa: E402

run_command.register(app)

from datatrail.cli import quality  # noqa: E402

quality.register(app)

from datatrail.cli import backup  # noqa: E402

backup.register(app)

from datatrail.cli import interop  # noqa: E402

interop.register(app)

from datatrail.cli import ml  # noqa: E402

ml.register(app)

from datatrail.cli import security  # noqa: E402

security.register(app)

from datatrail.cli import storage  # noqa: E402

storage.register(app)


def main() -> None:
    """Entry point of the ``datatrail`` script."""
    app(prog_name="datatrail")


if __name__ == "__main__":  # pragma: no cover
    main()
