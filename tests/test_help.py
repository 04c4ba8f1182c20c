"""`--help` shows what the code says: bracketed words survive Rich, parameters are shown by name, not Python type."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import datatrail.cli.helptext
from datatrail.cli.app import app

COMMANDS: dict[str, Any] = dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
TYPE_HINT = re.compile(r"<(bool|str|int|float|path|int range|float range|list\[[^]]*\])>")

runner = CliRunner()


def help_of(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_bracketed_words_survive_in_a_real_process() -> None:
    """The case from the issue: `show --help` said "classified columns are marked ." """
    out = subprocess.run(
        [sys.executable, "-m", "datatrail", "show", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    ).stdout
    assert "classified columns are marked [pii]." in out
    assert "Usage: datatrail show [OPTIONS] REF" in out
    for odd in ("<bool>", "<str>", "{"):
        assert odd not in out, odd


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_names_parameters_not_python_types(name: str) -> None:
    text = help_of(name)
    assert TYPE_HINT.search(text) is None, TYPE_HINT.search(text)
    usage = next(row for row in text.splitlines() if "Usage:" in row)
    assert "{" not in usage and "}" not in usage, usage
    # Every bracket in the command's own words is printed.
    command = COMMANDS[name]
    for source in [command.help or "", *(p.help or "" for p in command.params)]:
        for word in re.findall(r"\[[a-z][^]\\]*\]", source.replace("\\[", "[")):
            assert word in text, (name, word)


def test_the_top_level_help_too() -> None:
    text = help_of()
    assert TYPE_HINT.search(text) is None
    assert "--store" in text and "URI" in text and "[pii]" in text  # `show`'s one-line summary


def test_markup_escaping_is_rich_markup_escaping() -> None:
    from rich.markup import escape
    from rich.text import Text

    from datatrail.cli.helptext import escape_markup

    for text in ("marked [pii]", "a [bold]b[/bold] c", "[default: x]", "PATH [x>=1] \\[y]", "no brackets", "[1, 2]"):
        assert escape_markup(text) == escape(text)
        assert Text.from_markup(escape_markup(text)).plain == text
    assert doctest.testmod(datatrail.cli.helptext).failed == 0


def _leaves(prefix: tuple[str, ...], command: Any) -> list[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        return [prefix]
    return [leaf for name, sub in sorted(subcommands.items()) for leaf in _leaves((*prefix, name), sub)]


@pytest.mark.parametrize(
    "path", [leaf for name, c in sorted(COMMANDS.items()) for leaf in _leaves((name,), c)], ids=" ".join
)
def test_option_names_are_never_cut_in_an_80_column_terminal(path: tuple[str, ...]) -> None:
    """Rich ellipsizes what does not fit: an option's name must always fit, whole, in a terminal of 80 columns."""
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for row in result.stdout.splitlines():
        names = re.match(r"│\s*(?:\*\s+)?((?:--?[\w-]+[\s,]*)+)", row)
        assert names is None or "…" not in names.group(1), (path, row)
        assert not re.search(r"--[\w-]+…", row), (path, row)
