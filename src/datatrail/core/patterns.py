"""Marquez's search patterns (``%`` any text, ``_`` one character), and their SQL LIKE prefilter."""

from __future__ import annotations


def matches(q: str, text: str) -> bool:
    """Whether ``text`` contains Marquez's pattern ``q``: ``%`` matches any text, ``_`` one character,
    anything else itself, case-insensitively. Greedy with one backtrack point, so O(len(q) * len(text)).

    >>> matches("ord%s", "public.Orders"), matches("o_ders", "orders"), matches("x", "orders")
    (True, True, False)
    """
    p, t = "%" + q.casefold() + "%", text.casefold()
    i = j = 0
    star, mark = -1, 0
    while j < len(t):
        if i < len(p) and p[i] != "%" and (p[i] == "_" or p[i] == t[j]):
            i, j = i + 1, j + 1
        elif i < len(p) and p[i] == "%":
            star, mark, i = i, j, i + 1
        elif star >= 0:
            mark += 1
            i, j = star + 1, mark
        else:
            return False
    return all(c == "%" for c in p[i:])


def like_prefilter(q: str) -> str | None:
    """A case-insensitive LIKE pattern (backslash escapes) every text :func:`matches` accepts also matches;
    None when there is no such cheap pattern: ``q`` is not ASCII, or case folding outside ASCII could
    turn a name into one that matches (ß → ss, ﬁ → fi, K → k…), which SQL's lower() does not do.

    >>> like_prefilter("d99_9"), like_prefilter("a\\\\b"), like_prefilter("été")
    ('%d99_9%', '%a\\\\\\\\b%', None)
    """
    if not q.isascii():
        return None
    return "%" + q.replace("\\", "\\\\") + "%"
