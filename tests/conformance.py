"""Where the conformance data is: the official OpenLineage schemas and events, kept beside the project.

The data is not in the repository. ``DATATRAIL_CONFORMANCE_DIR`` names a folder
holding ``openlineage-spec/`` (and ``marquez-spec/``); ``scripts/test`` sets it to
``../shared`` when that folder exists. Without it, the tests that need the data
skip with a one-line reason and everything else runs. With
``DATATRAIL_REQUIRE_CONFORMANCE=1`` (what ``.ci/run`` sets) a missing folder
stops the run instead, so CI can never skip them silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV = "DATATRAIL_CONFORMANCE_DIR"
REQUIRE = "DATATRAIL_REQUIRE_CONFORMANCE"
MISSING = f"conformance data not found: set {ENV} to a folder holding openlineage-spec/ (scripts/test uses ../shared)"


def spec_dir(name: str = "openlineage-spec") -> Path | None:
    """The folder ``name`` of the conformance data, or None when it is not available."""
    base = os.environ.get(ENV)
    found = Path(base) / name if base else None
    return found if found is not None and found.is_dir() else None


def openlineage_spec() -> Path:
    """The OpenLineage spec folder; skips the calling test (with the reason) when it is not available."""
    found = spec_dir()
    if found is None:
        pytest.skip(MISSING)
    return found


needs_openlineage_spec = pytest.mark.skipif(spec_dir() is None, reason=MISSING)


def check_required() -> None:
    """Stop the run when the data is required (CI) but missing."""
    if os.environ.get(REQUIRE) == "1" and spec_dir() is None:
        raise pytest.UsageError(f"{REQUIRE}=1 but {MISSING}")
    if os.environ.get(REQUIRE) == "1" and spec_dir("marquez-spec") is None:
        raise pytest.UsageError(f"{REQUIRE}=1 but {ENV} holds no marquez-spec/ (tests/test_marquez.py needs it)")
