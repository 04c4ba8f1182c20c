"""Numbers and counts in text for people: one way for every command, report and page.

Two kinds of number, printed two ways. A *count* of things (rows, checks,
bytes) groups its thousands and agrees with its noun: ``1 check``,
``12,000 rows``. A *value* from the data (a year, an id, a minimum, a median)
is printed as it is, never grouped, so a year reads ``2007`` in every column
of a profile, whether it is the minimum or the median.

>>> count(1, "check"), count(3, "check"), count(12000, "row"), count(2, "batch")
('1 check', '3 checks', '12,000 rows', '2 batches')
>>> value(2007), value(2008.0), value(0.81842), value(None)
('2007', '2008', '0.8184', '-')
"""

from __future__ import annotations

from typing import Any

_VOWELS = frozenset("aeiou")


def plural(noun: str) -> str:
    """The plural of a regular English noun, or of the last word of a phrase: batch → batches, entry → entries.

    >>> plural("node"), plural("batch"), plural("entry"), plural("new version"), plural("key")
    ('nodes', 'batches', 'entries', 'new versions', 'keys')
    """
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in _VOWELS:
        return noun[:-1] + "ies"
    return noun + "s"


def count(n: int, noun: str, plural_form: str | None = None) -> str:
    """``n`` things: the count with thousands grouped, the noun in the plural unless ``n`` is 1.

    >>> count(0, "row"), count(1, "node"), count(1234, "file"), count(2, "child", "children")
    ('0 rows', '1 node', '1,234 files', '2 children')
    """
    word = noun if n == 1 else (plural_form or plural(noun))
    return f"{quantity(n)} {word}"


def quantity(n: int | None) -> str:
    """A count of things on its own (a table cell, ``a -> b``): thousands grouped; None is ``-``.

    >>> quantity(344), quantity(15241), quantity(None)
    ('344', '15,241', '-')
    """
    return "-" if n is None else f"{n:,}"


def change(n: float) -> str:
    """A signed change of a count: ``+1,200``, ``-3``, ``+0``.

    >>> change(1200), change(-3), change(0)
    ('+1,200', '-3', '+0')
    """
    return f"{n:+,}" if isinstance(n, int) else f"{n:+.4g}"


def value(v: Any, width: int = 24) -> str:
    """A value from the data or a statistic of it, for a table cell.

    Integers as they are (``2007``, not ``2,007``: a year or an id is not a
    count), floats to 4 significant digits, booleans in lower case, None as
    ``-``, and text longer than ``width`` cut with an ellipsis.

    >>> value(6300), value(43.921929), value(True), value("Torgersen Island, Antarctica", 12)
    ('6300', '43.92', 'true', 'Torgersen I…')
    """
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    text = str(v)
    return text if len(text) <= width else text[: width - 1] + "…"


__all__ = ["change", "count", "plural", "quantity", "value"]
