"""``@datatrail.step``: each call of a function is a run, its data arguments inputs and its results outputs."""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from datatrail.capture.run import RunContext, active_run
from datatrail.core.changes import VersionInfo
from datatrail.core.errors import InvalidInput
from datatrail.core.model import DEFAULT_NAMESPACE, Digest, Version
from datatrail.events import build_dataset_event

if TYPE_CHECKING:
    from datatrail.service import Trail

F = TypeVar("F", bound=Callable[..., Any])
SCALARS = (bool, int, float, str, type(None))


@overload
def step(fn: F) -> F: ...


@overload
def step(
    fn: None = None, *, name: str | None = None, trail: Trail | None = None, outputs: str | Sequence[str] | None = None
) -> Callable[[F], F]: ...


def step(
    fn: F | None = None,
    *,
    name: str | None = None,
    trail: Trail | None = None,
    outputs: str | Sequence[str] | None = None,
) -> F | Callable[[F], F]:
    """Record every call of the decorated function as a run of the job ``name`` (default: the function's name).

    Arguments that are file paths, DataFrames (pandas, polars), Arrow tables or
    NumPy arrays become inputs; scalar arguments become params; a returned path
    or data object (or a tuple of them) becomes the outputs, named by
    ``outputs`` or after the function. An exception ends the run FAIL and propagates.

    >>> @datatrail.step(outputs="clean/penguins")                # doctest: +SKIP
    ... def clean(raw: str, dropna: bool = True) -> pd.DataFrame:
    ...     return pd.read_csv(raw).dropna()
    >>> clean("data/raw.csv")        # a run of `clean`: input data/raw.csv, param dropna, output clean/penguins
    """

    def decorate(func: F) -> F:
        job = name or func.__name__
        signature = inspect.signature(func)
        names = [outputs] if isinstance(outputs, str) else list(outputs) if outputs is not None else None
        opened: list[Trail] = []

        def get_trail() -> Trail:
            if trail is not None:
                return trail
            parent = active_run()
            if parent is not None:
                return parent.trail
            if not opened:
                from datatrail.service import connect

                opened.append(connect())
            return opened[0]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            t = get_trail()
            params: dict[str, Any] = {}
            data: list[tuple[str, Any]] = []
            for arg, value in bound.arguments.items():
                kind = signature.parameters[arg].kind
                items = value.items() if kind is inspect.Parameter.VAR_KEYWORD else [(arg, value)]
                if kind is inspect.Parameter.VAR_POSITIONAL:
                    items = [(f"{arg}{i}", v) for i, v in enumerate(value)]
                for key, v in items:
                    if _is_path(v) or _is_data(v):
                        data.append((key, v))
                    elif isinstance(v, SCALARS):
                        params[key] = v
            with t.run(job, params=params) as run:
                for key, v in data:
                    if _is_path(v):
                        run.input(os.fspath(v))
                    else:
                        run.input(_register_data(t, f"{job}/{key}", v))
                result = func(*args, **kwargs)
                _record_outputs(run, job, result, names)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate


def _is_path(value: Any) -> bool:
    if isinstance(value, os.PathLike):
        return os.path.exists(os.fspath(value))
    return isinstance(value, str) and bool(value) and "\n" not in value and os.path.exists(value)


def _is_data(value: Any) -> bool:
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
    library = _library(value)
    if library == "numpy":
        import numpy as np

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
        table = _canonical(table)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        payload, fmt = sink.getvalue().to_pybytes(), "arrow"
    else:
        msg = f"cannot hash a {type(value).__name__}: pass a path, DataFrame, Arrow table or NumPy array"
        raise InvalidInput(msg)
    digest = Digest.sha256(hashlib.sha256(payload).hexdigest())
    return VersionInfo(key=str(digest), digest=digest, size=len(payload), format=fmt, created_by=created_by, host=host)


def _canonical(table: Any) -> Any:
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


def _register_data(trail: Trail, name: str, value: Any, namespace: str = DEFAULT_NAMESPACE) -> Version:
    info = data_info(value, trail.user, trail.host)
    existing = trail.store.find_version(namespace, name, info.key)
    if existing is not None:
        return existing
    result = trail.store.ingest(build_dataset_event(namespace, name, info), trail.user, "dataset.add")
    version: Version = result.versions[0][0]
    return version


def _record_outputs(run: RunContext, job: str, result: Any, names: list[str] | None) -> None:
    items = list(result) if isinstance(result, tuple) else [result]
    recordable = [(i, v) for i, v in enumerate(items) if _is_path(v) or _is_data(v)]
    if names is not None and len(names) != len(recordable):
        msg = f"step {job!r} names {len(names)} output(s) but returned {len(recordable)} path(s) or data object(s)"
        raise InvalidInput(msg)
    for n, (i, value) in enumerate(recordable):
        given = names[n] if names is not None else None
        if _is_path(value):
            run.output(Path(os.fspath(value)), name=given)
        else:
            default = job if len(items) == 1 else f"{job}/{i}"
            run.output_info(data_info(value, run.trail.user, run.trail.host), name=given or default)


__all__ = ["data_info", "step"]
