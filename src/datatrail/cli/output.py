"""Printing for the CLI: JSON for scripts, plain text and tables for people."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

_ESCAPED = ("Cc", "Cf", "Cs", "Zl", "Zp")  # controls, format (bidi overrides), surrogates, line breaks


def terminal_text(value: Any) -> str:
    r"""Stored text made safe to print: control and format characters become visible escapes.

    What a client stored (an actor, a target, a name) cannot start a new line,
    move the cursor, recolour the terminal or reorder text with bidi overrides.

    >>> print(terminal_text("grant.add\n2  2026-01-01  root"))
    grant.add\n2  2026-01-01  root
    >>> print(terminal_text("\x1b[2J\u202eok"))
    \x1b[2J\u202eok
    """
    text = str(value)
    if text.isprintable():
        return text
    # ascii() spells a character as Python would: \n, \x1b, \u202e.
    return "".join(ascii(ch)[1:-1] if unicodedata.category(ch) in _ESCAPED else ch for ch in text)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def line(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def error(text: str) -> None:
    """One line on stderr, even for a message with line breaks (a database driver's, say)."""
    sys.stderr.write(f"error: {' '.join(text.split())}\n")


def note(text: str) -> None:
    """A line for people on stderr, leaving stdout to data (``datatrail run`` leaves it to the command)."""
    sys.stderr.write(text + "\n")


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table (no colours: it must read well in logs and pipes too)."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for i, r in enumerate(cells):
        line("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            line("  ".join("-" * w for w in widths))


@contextmanager
def progress(description: str, total_bytes: int | None = None) -> Iterator[Any]:
    """A progress callback (files, bytes) that draws a bar only on an interactive terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[files]} files"),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total_bytes, files=0)
        count = 0

        def advance(files: int, nbytes: int) -> None:
            nonlocal count
            count += files
            bar.update(task, advance=nbytes, files=count)

        yield advance
