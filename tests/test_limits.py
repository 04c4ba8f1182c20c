"""The pure limit helpers (core/limits.py): depth measured and cut without recursion, lengths checked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datatrail.core.errors import InvalidInput
from datatrail.core.limits import bounded, check_length, cut_marker, exceeds, nesting_depth, too_deep

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30,
)


def nest(levels: int, leaf: Any = "x") -> Any:
    value = leaf
    for i in range(levels):
        value = {"a": value} if i % 2 else [value]
    return value


@given(JSON, st.integers(min_value=1, max_value=8))
def test_bounded_never_nests_deeper_than_the_limit_and_keeps_what_fits(value: Any, limit: int) -> None:
    cut = bounded(value, limit)
    assert nesting_depth(cut) <= limit
    assert exceeds(value, limit) == (nesting_depth(value) > limit) == (too_deep(value, limit) is not None)
    if nesting_depth(value) <= limit:
        assert cut is value  # nothing copied when nothing is cut
    json.dumps(cut)


def test_depths_far_beyond_the_recursion_limit_are_measured_and_cut() -> None:
    deep = nest(100_000)
    assert nesting_depth(deep) == 100_000 and exceeds(deep, 64)
    cut = bounded(deep, 3)
    assert cut == {"a": [{"a": cut_marker(3)}]}
    assert nesting_depth(bounded(deep, 64)) == 64
    with pytest.raises(RecursionError):
        json.dumps(deep)  # what a reader of the stored event would have met


def test_too_deep_names_the_path_to_the_first_container_past_the_limit() -> None:
    event = {"run": {"facets": {"deep": {"a": {"b": [1]}}}}, "job": {}}
    assert too_deep(event, 5) == ("run", "facets", "deep", "a", "b")
    assert too_deep(event, 6) is None and too_deep("scalar", 0) is None


def test_check_length() -> None:
    assert check_length("abc", "nodeId", 3) == "abc"
    with pytest.raises(InvalidInput, match="nodeId is 4 characters long; at most 3 are accepted"):
        check_length("abcd", "nodeId", 3)
