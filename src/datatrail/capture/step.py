"""``@datatrail.step``: each call of a function is a run, its data arguments inputs and its results outputs."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from datatrail.capture.run import RunContext, active_run, start_run
from datatrail.catalog import Catalog
from datatrail.core.errors import InvalidInput
from datatrail.frames import data_info, is_data
from datatrail.recorder import Recorder
from datatrail.service import Trail, connect

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

        def parts() -> tuple[Recorder, Catalog]:
            if trail is not None:
                return trail.recorder, trail.catalog
            parent = active_run()
            if parent is not None:
                return parent.recorder, parent.catalog
            if not opened:
                opened.append(connect())
            return opened[0].recorder, opened[0].catalog

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            recorder, catalog = parts()
            params: dict[str, Any] = {}
            data: list[tuple[str, Any]] = []
            for arg, value in bound.arguments.items():
                kind = signature.parameters[arg].kind
                items = value.items() if kind is inspect.Parameter.VAR_KEYWORD else [(arg, value)]
                if kind is inspect.Parameter.VAR_POSITIONAL:
                    items = [(f"{arg}{i}", v) for i, v in enumerate(value)]
                for key, v in items:
                    if _is_path(v) or is_data(v):
                        data.append((key, v))
                    elif isinstance(v, SCALARS):
                        params[key] = v
            with start_run(recorder, catalog, job, params=params) as run:
                for key, v in data:
                    if _is_path(v):
                        run.input(os.fspath(v))
                    else:
                        run.input(recorder.record_data(f"{job}/{key}", v))
                result = func(*args, **kwargs)
                _record_outputs(run, job, result, names)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate


def _is_path(value: Any) -> bool:
    if isinstance(value, os.PathLike):
        return os.path.exists(os.fspath(value))
    return isinstance(value, str) and bool(value) and "\n" not in value and os.path.exists(value)


def _record_outputs(run: RunContext, job: str, result: Any, names: list[str] | None) -> None:
    items = list(result) if isinstance(result, tuple) else [result]
    recordable = [(i, v) for i, v in enumerate(items) if _is_path(v) or is_data(v)]
    if names is not None and len(names) != len(recordable):
        msg = f"step {job!r} names {len(names)} output(s) but returned {len(recordable)} path(s) or data object(s)"
        raise InvalidInput(msg)
    for n, (i, value) in enumerate(recordable):
        given = names[n] if names is not None else None
        if _is_path(value):
            run.output(Path(os.fspath(value)), name=given)
        else:
            default = job if len(items) == 1 else f"{job}/{i}"
            run.output_info(data_info(value, run.recorder.user, run.recorder.host), name=given or default)


__all__ = ["data_info", "step"]
