"""The errors datatrail raises, under their public name (defined in :mod:`datatrail.core.errors`).

>>> from datatrail.errors import NotFound
>>> issubclass(NotFound, DatatrailError)
True
"""

from __future__ import annotations

from datatrail.core.errors import (
    CommandNotFound,
    Conflict,
    DatatrailError,
    DiskFull,
    Forbidden,
    GraphTooLarge,
    IntegrityError,
    InvalidInput,
    NotFound,
    StoreNotFound,
    StoreUnavailable,
    StoreVersionError,
)

__all__ = [
    "CommandNotFound",
    "Conflict",
    "DatatrailError",
    "DiskFull",
    "Forbidden",
    "GraphTooLarge",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "StoreNotFound",
    "StoreUnavailable",
    "StoreVersionError",
]
