"""Numbers and counts for people (datatrail.core.text): one way everywhere, and what the commands print with it."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import datatrail.core.text
from datatrail.core.text import change, count, plural, quantity, value
from tests.conftest import write
from tests.test_cli import ok


def test_the_examples_in_the_docstrings_hold() -> None:
    result = doctest.testmod(datatrail.core.text)
    assert result.attempted > 5 and result.failed == 0


@pytest.mark.parametrize(
    ("n", "noun", "expected"),
    [
        (0, "row", "0 rows"),
        (1, "check", "1 check"),
        (2, "check", "2 checks"),
        (1, "node", "1 node"),
        (1234567, "row", "1,234,567 rows"),
        (2, "batch", "2 batches"),
        (3, "entry", "3 entries"),
        (1, "entry", "1 entry"),
        (2, "day", "2 days"),
        (5, "more file", "5 more files"),
        (2, "index", "2 indexes"),
    ],
)
def test_count_agrees_with_its_noun(n: int, noun: str, expected: str) -> None:
    assert count(n, noun) == expected


def test_an_irregular_plural_is_given() -> None:
    assert count(2, "child", "children") == "2 children" and count(1, "child", "children") == "1 child"
    assert plural("process") == "processes" and plural("key") == "keys"


def test_values_from_the_data_are_never_grouped() -> None:
    assert [value(v) for v in (2007, 2008.0, 6300, 10452, -12000)] == ["2007", "2008", "6300", "10452", "-12000"]
    assert value(0.818417) == "0.8184" and value(None) == "-" and value(False) == "false"
    assert value("x" * 30, 10) == "x" * 9 + "…"


def test_counts_are_grouped_and_changes_signed() -> None:
    assert [quantity(n) for n in (0, 999, 1000, 15241)] == ["0", "999", "1,000", "15,241"]
    assert quantity(None) == "-"
    assert (change(1200), change(-3), change(0), change(0.25)) == ("+1,200", "-3", "+0", "+0.25")


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_a_value_reads_back_as_the_same_integer(n: int) -> None:
    assert int(value(n)) == n and int(quantity(n).replace(",", "")) == n


YEARS = "species,year,mass\n" + "".join(f"A,{2007 + i % 3},{3000 + 100 * i}\n" for i in range(30))
LATER = "species,year,mass\n" + "".join(f"A,{2008 + i % 3},{3000 + 100 * i}\n" for i in range(31))


def test_a_column_of_years_prints_as_years_in_profiles_and_diffs(workdir: Path) -> None:
    """`2007`, never `2,007`: the minimum, median and maximum of years read alike; counts still agree with nouns."""
    ok("init")
    write(workdir / "y.csv", YEARS)
    ok("add", "y.csv")
    shown = ok("show", "y.csv")
    (year,) = [row.split() for row in shown.splitlines() if row.startswith("year ")]
    assert year[1] == "int64" and year[5:8] == ["2007", "2008", "2009"], shown  # min, median, max
    assert "2,00" not in shown and "6,000" not in shown  # mass max 5900: a value, not a count
    assert "duplicates:  0 rows" in shown
    write(workdir / "y.csv", LATER)
    ok("add", "y.csv")
    diffed = ok("diff", "y.csv@1", "y.csv@2")
    assert "rows: 30 -> 31 (+1)" in diffed
    year_rows = [row.split() for row in diffed.splitlines() if row.startswith("year ")]
    assert ["year", "min", "2007", "2008", "1"] in year_rows, diffed
    assert "2,00" not in diffed


def test_one_check_is_one_check(workdir: Path) -> None:
    ok("init")
    write(workdir / "y.csv", YEARS)
    write(workdir / "rules.yaml", "checks:\n  - {rule: not_null, column: year}\n")
    out = ok("add", "y.csv", "--checks", "rules.yaml")
    assert "1 check, 0 failed" in out and "1 checks" not in out
