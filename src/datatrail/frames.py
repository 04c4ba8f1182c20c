"""Data held in memory as versions: DataFrames, Arrow tables and NumPy arrays hashed in a canonical form.

A table is hashed as the Arrow IPC stream of one canonical spelling of it (so
the same data hashes the same whether pandas, polars or pyarrow held it), an
array as its ``.npy`` bytes. Nothing heavy is imported until a value is hashed.
"""

from __future__ import annotations

import hashlib
import io
import sys
from typing import Any

from datatrail.core.changes import VersionInfo
from datatrail.core.errors import InvalidInput
from datatrail.core.model import Digest


def is_data(value: Any) -> bool:
    """Whether ``value`` is a DataFrame (pandas, polars), Arrow table or batch, or NumPy array."""
    return _library(value) is not None


def _library(value: Any) -> str | None:
    """Which data library ``value`` belongs to, looked up without importing any."""
    checks = (
        ("pandas", ("DataFrame", "Series")),
        ("polars", ("DataFrame",)),
        ("pyarrow", ("Table", "RecordBatch")),
        ("numpy", ("ndarray",)),
    )
    for module_name, classes in checks:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(value, tuple(getattr(module, c) for c in classes)):
            return module_name
    return None


def data_info(value: Any, created_by: str | None = None, host: str | None = None) -> VersionInfo:
    """The version of an in-memory object: tables hashed as a canonical Arrow IPC stream, arrays as ``.npy``."""
    return encode_data(value, created_by, host)[1]


def encode_data(value: Any, created_by: str | None = None, host: str | None = None) -> tuple[bytes, VersionInfo]:
    """The canonical bytes of an in-memory object (the bytes its digest is the SHA-256 of) and its version."""
    library = _library(value)
    if library == "numpy":
        import numpy as np  # numpy and pyarrow: only for data held in memory, never at start-up

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        payload, fmt = buffer.getvalue(), "npy"
    elif library is not None:
        import pyarrow as pa

        if library == "pandas":
            frame = value.to_frame() if value.ndim == 1 else value
            table = pa.Table.from_pandas(frame)
        elif library == "polars":
            table = value.to_arrow()
        else:
            table = pa.Table.from_batches([value]) if isinstance(value, pa.RecordBatch) else value
        table = canonical(table)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        payload, fmt = sink.getvalue().to_pybytes(), "arrow"
    else:
        msg = f"cannot hash a {type(value).__name__}: pass a path, DataFrame, Arrow table or NumPy array"
        raise InvalidInput(msg)
    digest = Digest.sha256(hashlib.sha256(payload).hexdigest())
    info = VersionInfo(key=str(digest), digest=digest, size=len(payload), format=fmt, created_by=created_by, host=host)
    return payload, info


def canonical(table: Any) -> Any:
    """One spelling of a table: plain string and binary types, one chunk, no schema metadata.

    pandas and polars hand the same strings to Arrow as ``large_string`` or
    ``string_view``, and metadata names library versions; the same data must
    hash the same whichever library held it.
    """
    import pyarrow as pa

    plain = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    if hasattr(pa, "string_view"):
        plain[pa.string_view()] = pa.string()
        plain[pa.binary_view()] = pa.binary()
    fields = [pa.field(f.name, plain.get(f.type, f.type), f.nullable) for f in table.schema]
    return table.cast(pa.schema(fields)).combine_chunks()


__all__ = ["canonical", "data_info", "encode_data", "is_data"]
