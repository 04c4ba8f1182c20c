"""datatrail: versioned datasets, runs and lineage in one metadata store.

>>> import datatrail                                          # doctest: +SKIP
>>> trail = datatrail.connect()                               # doctest: +SKIP
>>> v = trail.add("data/raw.csv", name="raw/penguins")        # doctest: +SKIP
>>> with trail.run("clean", params={"dropna": True}) as run:  # doctest: +SKIP
...     run.input(v)
...     run.output("data/clean.csv", name="clean/penguins")
"""

from __future__ import annotations

from datatrail._version import __version__
from datatrail.errors import Conflict, DatatrailError, Forbidden, IntegrityError, InvalidInput, NotFound
from datatrail.model import Dataset, Digest, FileEntry, Ref, Run, RunState, Version
from datatrail.service import AddResult, Trail, connect, init

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
    "connect",
    "init",
]
