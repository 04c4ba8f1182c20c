"""Printing for the CLI: JSON for scripts, plain text and tables for people."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # controls, format (bidi, zero-width), surrogates, separators
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def safe(text: str) -> str:
    r"""``text`` with every control and format character written as an escape, fit for a terminal.

    Stored strings come from whoever wrote the events: an ESC or BEL in them
    would retitle the window or clear the screen, a CR or line break would fake
    a line of output, U+202E would reverse what follows. They become ``\x1b``,
    ``\r``, ``\u202e``; everything else is unchanged.

    >>> print(safe("train.py\x1b]0;pwned\x07\rresult: ok \u202etxt"))
    train.py\x1b]0;pwned\x07\rresult: ok \u202etxt
    """
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE else c for c in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def emit_json(data: Any) -> None:
    """JSON for scripts, unescaped: JSON writes control characters as ``\\u001b`` itself."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def document(text: str) -> None:
    """A document for another program (JSON, PROV, an export), written exactly as it is."""
    sys.stdout.write(text)


def line(text: str = "") -> None:
    """One line for people on stdout; stored text in it is escaped (:func:`safe`), so it stays one line."""
    sys.stdout.write(safe(text) + "\n")


def block(text: str) -> None:
    """Several lines (a graph in DOT or Mermaid): each line escaped like :func:`line`."""
    for row in text.split("\n"):
        line(row)


def error(text: str, *, prefix: str = "error: ") -> None:
    """One line on stderr, even for a message with line breaks (a database driver's, say)."""
    sys.stderr.write(f"{prefix}{safe(' '.join(text.split()))}\n")


def note(text: str) -> None:
    """A line for people on stderr, leaving stdout to data (``datatrail run`` leaves it to the command)."""
    sys.stderr.write(safe(text) + "\n")


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
    cells = [[safe(str(h)) for h in headers], *[["-" if c is None else safe(str(c)) for c in r] for r in rows]]
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
