"""The typer application: global options, error mapping, and the command modules.

Every command is thin: parse, call one Trail method, print. Errors are mapped
to a one-line message and an exit code here and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import HAS_RICH, TyperGroup

from datatrail._version import __version__
from datatrail.cli.coerce import light
from datatrail.cli.context import failure
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


# The command modules, in `--help`'s order, with the commands each registers. A command's
# module is imported when that command runs (`datatrail ls` imports cli/data.py only, and
# typer reads the signatures of its six commands, not of all of them); `--help`, a name not
# listed here, and `.commands` load every module. tests/test_cli_startup.py checks this table.
LAZY_COMMANDS: dict[str, tuple[str, ...]] = {
    "data": ("init", "add", "ls", "show", "versions", "tag"),
    "runs": ("runs",),
    "lineage": ("lineage", "verify"),
    "server": ("serve",),
    "run": ("run",),
    "quality": ("diff", "check"),
    "backup": ("backup", "fsck"),
    "interop": ("import", "export", "verify-attestation"),
    "ml": ("deploy", "deployments", "impact", "drift", "reproduce", "demo"),
    "security": ("user", "token", "grant", "revoke", "audit", "classify"),
    "storage": ("checkout", "remote", "push", "fetch", "pull", "gc"),
}
_MODULE_OF = {name: module for module, names in LAZY_COMMANDS.items() for name in names}


class _Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rich = HAS_RICH and self.rich_markup_mode == "rich"
        tidy(self, rich=self._rich)  # `--help` as the code words it
        light(self.params)  # plain values skip pydantic (coerce.py)
        self._pending = list(LAZY_COMMANDS)  # after tidy: it walks the commands

    @property  # type: ignore[override]
    def commands(self) -> dict[str, Any]:
        """Every command, each module loaded (what click's Group keeps in ``commands``)."""
        if getattr(self, "_pending", None):
            self._load_all()
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, Any]) -> None:
        self._commands = value

    def _load(self, module: str) -> None:
        """Register the commands of ``datatrail.cli.MODULE`` as eagerly built ones would be."""
        import importlib  # start-up: only when a command's module is first needed

        sub = typer.Typer(
            rich_markup_mode=app.rich_markup_mode,
            pretty_exceptions_short=app.pretty_exceptions_short,
            suggest_commands=app.suggest_commands,
        )
        importlib.import_module(f"datatrail.cli.{module}").register(sub)
        for name, command in typer.main.get_group(sub).commands.items():
            tidy(command, rich=self._rich)
            self._commands[name] = command
        self._pending.remove(module)

    def _load_all(self) -> None:
        for module in list(self._pending):
            self._load(module)
        # `--help` lists the commands in LAZY_COMMANDS's order, then any registered on `app` itself.
        first = [n for names in LAZY_COMMANDS.values() for n in names if n in self._commands]
        self._commands = {n: self._commands[n] for n in [*first, *(n for n in self._commands if n not in first)]}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module = _MODULE_OF.get(cmd_name)
        if cmd_name not in self._commands and self._pending:
            if module in self._pending:
                self._load(module)
            if cmd_name not in self._commands:
                self._load_all()  # a command missing from LAZY_COMMANDS, or none: look everywhere
        command = self._commands.get(cmd_name)
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
        except (DatatrailError, KeyboardInterrupt) as exc:
            raise typer.Exit(failure(exc)) from None
        except BrokenPipeError:
            raise  # the reader went away (`datatrail ls | head`): handled quietly in datatrail.cli.main
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            raise typer.Exit(failure(exc)) from None  # raised again as it is with $DATATRAIL_DEBUG


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


def main() -> None:
    """Entry point of the ``datatrail`` script."""
    app(prog_name="datatrail")


if __name__ == "__main__":  # pragma: no cover
    main()
