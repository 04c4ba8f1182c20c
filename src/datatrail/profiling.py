"""Profiles of tabular data: schema, statistics and quality metrics, streamed batch by batch.

:func:`profile_path` reads CSV/TSV (also gzip/zstd), Parquet, JSON Lines and
Arrow IPC/Feather files, and directories of them as one table (through
:func:`datatrail.scan.scan_path`; a large local Parquet file on every core,
through :mod:`datatrail.profile_parallel`); :func:`profile_table` takes a pyarrow
Table, a pandas or a polars DataFrame. The statistics are built by
:class:`~datatrail.profile_builder.ProfileBuilder`.

pyarrow and numpy are imported by this module, so import it only when a
profile is due (``datatrail add`` of unchanged content must stay fast).

>>> from datatrail.profiling import profile_path     # doctest: +SKIP
>>> profile_path("data/penguins.csv", "csv")["row_count"]  # doctest: +SKIP
344
"""

from __future__ import annotations

import os
from typing import Any

from datatrail.profile_builder import ProfileBuilder, to_arrow
from datatrail.profile_parallel import profile_parquet
from datatrail.scan import BATCH_ROWS, Filesystem, scan_path


def profile_path(path: str | os.PathLike[str], fmt: str, filesystem: Filesystem = None) -> dict[str, Any] | None:
    """The profile of a tabular file or directory; InvalidInput (naming file and line) if unreadable.

    None for a directory whose files have different columns (they are not one table).
    ``filesystem`` (a pyarrow FileSystem) reads ``path`` from it instead of the local disk;
    Parquet is then read column chunk by column chunk, never fetched whole.
    """
    if filesystem is None and fmt == "parquet":
        parallel = profile_parquet(path, fmt)  # None when one process is the better choice
        if parallel is not None:
            return parallel.result(fmt)
    builder = scan_path(path, fmt, ProfileBuilder, filesystem)
    return builder.result(fmt) if builder is not None else None


def profile_table(data: Any) -> dict[str, Any]:
    """The profile of a pyarrow Table or RecordBatch, a pandas DataFrame or a polars DataFrame.

    >>> import pandas as pd                                              # doctest: +SKIP
    >>> profile_table(pd.DataFrame({"x": [1, 2, 2]}))["columns"][0]["distinct_count"]  # doctest: +SKIP
    2
    """
    table = to_arrow(data)
    builder = ProfileBuilder()
    for batch in table.to_batches(BATCH_ROWS):
        builder.add(batch)
    if table.num_rows == 0:
        builder.start(table.schema)
    return builder.result("arrow-table")


__all__ = ["profile_path", "profile_table"]
