"""`--help` shows what the code says: brackets are words, and parameters are shown by name.

typer renders help text as Rich markup, so a bracketed word such as ``[pii]``
in a docstring vanished ("classified columns are marked ."); and typer 0.20+
prints a Python type beside every parameter (``--upstream <bool>``,
``REF <str>``) and braces around required arguments in the usage line
(``Usage: datatrail show [OPTIONS] {REF}``). :func:`tidy` fixes the whole
command tree once, where ``cli/app.py`` builds it: help text is escaped for
Rich, an option shows its metavar (or its name in capitals, or nothing for a
flag) and an argument its name, ``REF`` or ``[LABEL]``, as click and most
command lines do.
"""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperOption

from datatrail.cli.coerce import light

# What rich.markup.escape escapes: an opening bracket that starts a tag, such as [pii] or [bold].
_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape_markup(text: str) -> str:
    r"""``text`` for Rich markup that prints as written: ``marked [pii]`` → ``marked \[pii]``.

    >>> escape_markup("classified columns are marked [pii]; [default: pii]")
    'classified columns are marked \\[pii]; \\[default: pii]'
    """
    return _TAG.sub(r"\1\1\\\2", text)


def _name(param: Any) -> str:
    return str(param.metavar or (param.name or "value").upper())


class Argument(TyperArgument):
    """An argument shown by its name alone: ``REF`` when required, ``[LABEL]`` when not, ``PATH...`` for many."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = _name(self)
        if not self.required:
            name = f"[{name}]"
        return [f"{name}..." if self.nargs != 1 else name]


class Option(TyperOption):
    """An option shown with its metavar, or its name in capitals (``--port PORT``); a flag with nothing."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return str(self.metavar)
        if self.is_flag or self.count:
            return None
        choices = getattr(getattr(self, "type_descriptor", None), "choices", None)
        if choices:
            return "|".join(str(getattr(c, "value", c)) for c in choices)
        return _name(self)


def tidy_param(param: Any) -> Any:
    """``param`` shown as above; the same object, with the same state (typer offers no hook to choose its classes)."""
    if type(param) is TyperArgument:
        param.__class__ = Argument
    elif type(param) is TyperOption:
        param.__class__ = Option
    return param


class Command(TyperCommand):
    """A command whose ``-h``/``--help`` option is shown as a flag too (click makes it when help is first asked)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = tidy_param(super().get_help_option(ctx))
        light([option] if option is not None else [])  # an absent --help skips pydantic too (coerce.py)
        return option


def tidy(command: Any, *, rich: bool) -> None:
    """Give ``command`` and every command under it the parameters above; escape their help for Rich if ``rich``."""
    if type(command) is TyperCommand:
        command.__class__ = Command
    for param in command.params:
        tidy_param(param)
        if rich and getattr(param, "help", None):
            param.help = escape_markup(param.help)
    if rich:
        for attr in ("help", "short_help", "epilog"):
            text = getattr(command, attr, None)
            if text:
                setattr(command, attr, escape_markup(text))
    for sub in (getattr(command, "commands", None) or {}).values():
        tidy(sub, rich=rich)


__all__ = ["Argument", "Command", "Option", "escape_markup", "tidy", "tidy_param"]
