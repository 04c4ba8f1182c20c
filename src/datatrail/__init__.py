"""datatrail: versioned datasets, runs and lineage in one metadata store.

>>> import datatrail                                          # doctest: +SKIP
>>> trail = datatrail.connect()                               # doctest: +SKIP
>>> v = trail.add("data/raw.csv", name="raw/penguins")        # doctest: +SKIP
>>> with trail.run("clean", params={"dropna": True}) as run:  # doctest: +SKIP
...     run.input(v)
...     run.output("data/clean.csv", name="clean/penguins")

The names below are imported on first use (PEP 562), so that ``datatrail add``
can start hashing before the rest of the package has loaded.
"""

from __future__ import annotations

import importlib

from datatrail._version import __version__

# Not typing's TYPE_CHECKING: importing typing (with re and enum) would delay the CLI's first byte hashed.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from datatrail.capture.autolog import autolog
    from datatrail.capture.step import step
    from datatrail.core.errors import Conflict, DatatrailError, Forbidden, IntegrityError, InvalidInput, NotFound
    from datatrail.core.model import Dataset, Digest, FileEntry, Ref, Run, RunState, Version
    from datatrail.service import AddResult, Trail, connect, init

_WHERE = {
    "Conflict": "core.errors",
    "DatatrailError": "core.errors",
    "Forbidden": "core.errors",
    "IntegrityError": "core.errors",
    "InvalidInput": "core.errors",
    "NotFound": "core.errors",
    "Dataset": "core.model",
    "Digest": "core.model",
    "FileEntry": "core.model",
    "Ref": "core.model",
    "Run": "core.model",
    "RunState": "core.model",
    "Version": "core.model",
    "AddResult": "service",
    "Trail": "service",
    "connect": "service",
    "init": "service",
    "autolog": "capture.autolog",
    "step": "capture.step",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'datatrail' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"datatrail.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "AddResult",
    "Conflict",
    "Dataset",
    "DatatrailError",
    "Digest",
    "FileEntry",
    "Forbidden",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "Ref",
    "Run",
    "RunState",
    "Trail",
    "Version",
    "__version__",
    "autolog",
    "connect",
    "init",
    "step",
]
