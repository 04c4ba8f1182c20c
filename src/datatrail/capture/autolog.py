"""``datatrail.autolog()``: reads and writes of files through pandas, polars, pyarrow and NumPy, recorded in runs.

PySpark is captured too (:mod:`datatrail.capture.spark`): each Spark write is a run of its own.

Nothing is patched until :func:`autolog` is called, and ``autolog(disable=True)``
puts back exactly the functions that were there. autolog imports no library: one
already imported is patched at once, one imported later when its import ends. Files named by a path
(``str`` or ``os.PathLike``) or a URL (``s3://…``, hashed remotely by :mod:`datatrail.remote`) are
recorded; buffers and open file objects are not. A function imported by name before ``autolog()`` ran
(``from pandas import read_csv``) keeps the original and is not captured.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from datatrail.capture import facts
from datatrail.capture import spark as spark_capture
from datatrail.capture.run import RunContext, active_run
from datatrail.core.errors import DatatrailError, InvalidInput
from datatrail.core.model import Version
from datatrail.recorder import Recorder
from datatrail.remote import is_url, redact
from datatrail.service import Trail, connect

Locate = Callable[[tuple[Any, ...], dict[str, Any]], list[str]]

# (module, attribute, role, position of the path argument, its keyword name)
# Methods count `self` as position 0. An attribute ending in `*` is every method of that prefix whose
# first argument is one of the library's path arguments (_WRITER_ARGS), found when the library is
# imported: a writer a new release adds is captured too.
_TARGETS: dict[str, list[tuple[str, str, str, int, str]]] = {
    "pandas": [
        *[("pandas", f, "input", 0, a) for f, a in (
            ("read_csv", "filepath_or_buffer"), ("read_parquet", "path"),
            ("read_json", "path_or_buf"), ("read_feather", "path"),
        )],
        *[(f"pandas:{cls}", "to_*", "output", 1, "") for cls in ("DataFrame", "Series", "Index")],
    ],
    "polars": [
        *[("polars", f"read_{k}", "input", 0, "source") for k in ("csv", "parquet", "json", "ndjson", "ipc", "avro")],
        *[("polars", f"scan_{k}", "scan", 0, "source") for k in ("csv", "parquet", "ndjson", "ipc")],
        ("polars:DataFrame", "write_*", "output", 1, ""),
        ("polars:Series", "write_*", "output", 1, ""),
        ("polars:LazyFrame", "sink_*", "output", 1, ""),
        ("polars:LazyFrame", "collect", "collect", -1, ""),
    ],
    "pyarrow": [
        ("pyarrow.parquet", "read_table", "input", 0, "source"),
        ("pyarrow.parquet", "write_table", "output", 1, "where"),
        ("pyarrow.csv", "read_csv", "input", 0, "input_file"),
        ("pyarrow.csv", "write_csv", "output", 1, "output_file"),
        ("pyarrow.feather", "read_table", "input", 0, "source"),
        ("pyarrow.feather", "read_feather", "input", 0, "source"),
        ("pyarrow.feather", "write_feather", "output", 1, "dest"),
        ("pyarrow.dataset", "dataset", "input", 0, "source"),
    ],
    "numpy": [
        ("numpy", "load", "input", 0, "file"),
        ("numpy", "loadtxt", "input", 0, "fname"),
        ("numpy", "genfromtxt", "input", 0, "fname"),
        ("numpy", "save", "output", 0, "file"),
        ("numpy", "savez", "output", 0, "file"),
        ("numpy", "savez_compressed", "output", 0, "file"),
        ("numpy", "savetxt", "output", 0, "fname"),
    ],
    "pyspark": spark_capture.TARGETS,
}  # fmt: skip
LIBRARIES = tuple(_TARGETS)
# The first argument of a method that writes a file (`df.to_csv(path_or_buf)`, `df.write_excel(workbook)`).
_WRITER_ARGS = {
    "pandas": ("path_or_buf", "path", "path_or_buffer", "buf", "excel_writer"),
    "polars": ("file", "path", "workbook", "target"),
}
# Writers whose target is a table in a catalog, not a file.
_NOT_FILES = frozenset({"to_iceberg", "write_iceberg", "sink_iceberg"})
# NumPy adds these suffixes to a path that lacks them.
_SUFFIX = {"save": ".npy", "savez": ".npz", "savez_compressed": ".npz"}


@dataclass
class _Seen:
    """What one run has recorded, so each file is hashed once per run."""

    inputs: set[str] = field(default_factory=set)
    outputs: set[str] = field(default_factory=set)
    scanned: list[str] = field(default_factory=list)  # polars scans, recorded when a query is collected


@dataclass
class _State:
    on: bool = False
    patches: list[tuple[Any, str, Any, bool]] = field(default_factory=list)  # owner, name, original, own attribute
    pending: dict[str, list[tuple[str, str, str, int, str]]] = field(default_factory=dict)  # not imported yet
    trail: Trail | None = None
    own_trail: bool = False
    background: RunContext | None = None  # the attached or implicit run
    implicit: bool = False
    previous_hook: Any = None


_state = _State()
_lock = threading.RLock()
_local = threading.local()
_seen: weakref.WeakKeyDictionary[RunContext, _Seen] = weakref.WeakKeyDictionary()


def autolog(
    *,
    disable: bool = False,
    trail: Trail | None = None,
    implicit_run: bool = False,
    job: str | None = None,
    libraries: Iterable[str] = LIBRARIES,
    spark: bool = True,
) -> None:
    """Record file reads and writes of pandas, polars, pyarrow and NumPy as inputs and outputs of the active run.

    >>> datatrail.autolog()                                   # doctest: +SKIP
    >>> with trail.run("clean") as run:                       # doctest: +SKIP
    ...     df = pd.read_csv("data/raw.csv")                  # an input of the run
    ...     df.dropna().to_parquet("data/clean.parquet")      # an output of the run

    Outside a run nothing is recorded, unless ``implicit_run=True`` starts one
    run (named ``job``, default the script's name) that ends when the process
    does. Under ``datatrail run`` the reads and writes join the wrapper's run.
    ``autolog(disable=True)`` restores every patched function. PySpark writes are
    runs of their own, children of the active run (``spark=False`` leaves Spark alone).
    """
    with _lock:
        if disable:
            _disable()
            return
        libraries = [name for name in libraries if spark or name != "pyspark"]
        unknown = set(libraries) - set(LIBRARIES)
        if unknown:
            msg = f"autolog cannot capture {sorted(unknown)}; choose from {', '.join(LIBRARIES)}"
            raise InvalidInput(msg)
        if trail is not None:
            _state.trail = trail
        if not _state.on:
            _state.on = True
            _patch_libraries(libraries)
        if _state.background is None and active_run() is None:
            parent = facts.parent_from_env()
            if parent is not None and os.environ.get(facts.ENV_RUN_ID) == parent.run_id:
                trail = _trail()
                run = RunContext.attach(trail.recorder, trail.catalog, parent.run_id, parent.namespace, parent.job)
                run.workflow = facts.workflow_from_env()
                _state.background = run.__enter__()
            elif implicit_run:
                name = job or Path(sys.argv[0] if sys.argv and sys.argv[0] else "python").stem or "python"
                _state.background = _trail().run(name).__enter__()
                _state.implicit = True
                _state.previous_hook = sys.excepthook
                sys.excepthook = _excepthook
                atexit.register(_end_background)


def patched() -> list[tuple[Any, str]]:
    """The (owner, attribute) pairs autolog has replaced; empty when it is off."""
    return [(owner, name) for owner, name, _, _ in _state.patches]


def _trail() -> Trail:
    if _state.trail is None:
        _state.trail = connect()
        _state.own_trail = True
    return _state.trail


def _patch_libraries(libraries: Iterable[str]) -> None:
    """Patch what is imported now; the rest when it is imported (autolog imports no library itself)."""
    for library in libraries:
        for target in _TARGETS[library]:
            module_name = target[0].partition(":")[0]
            _state.pending.setdefault(module_name, []).append(target)
    for module_name in list(_state.pending):
        if module_name in sys.modules:
            _patch_module(sys.modules[module_name])
    if _state.pending and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def _patch_module(module: Any) -> None:
    targets = [t for target in _state.pending.pop(module.__name__, []) for t in _expand(module, target)]
    for where, name, role, position, keyword in targets:
        _, _, cls_name = where.partition(":")
        owner = getattr(module, cls_name, None) if cls_name else module
        original = getattr(owner, name, None) if owner is not None else None
        if original is None or any(o is owner and n == name for o, n, _, _ in _state.patches):
            continue
        own = name in vars(owner)
        suffix = _SUFFIX.get(name) if module.__name__ == "numpy" else None
        if role == "spark":
            wrapper = spark_capture.wrap(original, cls_name, name, current_run, _trail)
        else:
            wrapper = _wrap(original, role, _locator(position, keyword, suffix))
        setattr(owner, name, wrapper)
        _state.patches.append((owner, name, original, own))


def _expand(module: Any, target: tuple[str, str, str, int, str]) -> list[tuple[str, str, str, int, str]]:
    """A target, or for ``prefix*`` every method of that prefix whose first argument names a file."""
    where, name, role, position, _ = target
    if not name.endswith("*"):
        return [target]
    owner = getattr(module, where.partition(":")[2], None)
    arguments = _WRITER_ARGS.get(module.__name__, ())
    found = []
    for attr in sorted(dir(owner)) if owner is not None else ():
        if attr.startswith(name[:-1]) and attr not in _NOT_FILES:
            first = _first_argument(getattr(owner, attr, None))
            if first in arguments:
                found.append((where, attr, role, position, first))
    return found


def _first_argument(method: Any) -> str | None:
    """The name of a method's first argument after ``self``, if it has one."""
    if not callable(method):
        return None
    try:
        names = list(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return None
    return names[1] if len(names) > 1 and names[0] == "self" else None


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches a library the moment its module has been executed by an import."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _state.pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        with _lock:
            if module.__name__ in _state.pending:
                _patch_module(module)
            if not _state.pending and _finder in sys.meta_path:
                sys.meta_path.remove(_finder)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package…: the real loader's
        return getattr(self.inner, name)


_finder = _PatchOnImport()


def _disable() -> None:
    _state.on = False
    _state.pending.clear()
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for owner, name, original, own in reversed(_state.patches):
        if own:
            setattr(owner, name, original)
        else:  # it was inherited: remove ours and the base class's shows through again
            delattr(owner, name)
    _state.patches.clear()
    _end_background()
    if _state.own_trail and _state.trail is not None:
        _state.trail.close()
    _state.trail = None
    _state.own_trail = False


def _end_background(exc: BaseException | None = None) -> None:
    run = _state.background
    if run is None:
        return
    _state.background = None
    if _state.implicit:
        _state.implicit = False
        if sys.excepthook is _excepthook:
            sys.excepthook = _state.previous_hook
        atexit.unregister(_end_background)
    run.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    hook = _state.previous_hook or sys.__excepthook__
    try:
        _end_background(exc)
    finally:
        hook(exc_type, exc, tb)


def _locator(position: int, keyword: str, suffix: str | None) -> Locate:
    def locate(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
        if position < 0:
            return []
        value = kwargs.get(keyword) if keyword in kwargs else (args[position] if len(args) > position else None)
        values = value if isinstance(value, list | tuple) else [value]
        paths = []
        for v in values:
            if not isinstance(v, str | os.PathLike):
                continue
            text = os.fspath(v)
            if not isinstance(text, str):
                continue
            if "://" in text:
                if not text.startswith("file://"):
                    if is_url(text):
                        paths.append(text)  # remote data (s3://…): hashed remotely when recorded
                    continue
                text = text.removeprefix("file://")
            if suffix and not text.endswith(suffix):
                text += suffix
            paths.append(text)
        return paths

    return locate


def _wrap(original: Callable[..., Any], role: str, locate: Locate) -> Callable[..., Any]:
    @functools.wraps(original)
    def capture(*args: Any, **kwargs: Any) -> Any:
        # A library calling another patched one (pandas → pyarrow) is one read, recorded once.
        if getattr(_local, "depth", 0):
            return original(*args, **kwargs)
        paths = locate(args, kwargs)
        _local.depth = 1
        try:
            result = original(*args, **kwargs)
        finally:
            _local.depth = 0
        if paths or role == "collect":
            _record(role, paths)
        return result

    capture.__datatrail_original__ = original  # type: ignore[attr-defined]
    return capture


def current_run() -> RunContext | None:
    """The run autolog records into: the active one, else the attached or implicit one."""
    return active_run() or _state.background


def _record(role: str, paths: list[str]) -> None:
    run = current_run()
    if run is None:
        return
    try:
        with _lock:
            seen = _seen.setdefault(run, _Seen())
            if role == "scan":
                seen.scanned.extend(paths)
                return
            if role == "collect":
                paths, seen.scanned = seen.scanned, []
                role = "input"
            for path in paths:
                _record_one(run, seen, role, path)
    except DatatrailError as exc:
        # Losing a lineage record must not stop the pipeline that is being recorded.
        warnings.warn(f"datatrail autolog could not record {role} {paths}: {exc.message}", stacklevel=3)


def _record_one(run: RunContext, seen: _Seen, role: str, path: str) -> Version | None:
    if is_url(path):
        return _record_url(run, seen, role, path)
    if not os.path.exists(path):
        return None
    key = os.path.realpath(path)
    # A new location is named by its path; a known one (or, read, known content) is its dataset.
    fallback = _name(run.recorder, Path(path))
    if role == "input":
        if key in seen.inputs or key in seen.outputs:  # read twice, or written earlier in this run
            return None
        seen.inputs.add(key)
        return run.input(path, fallback=fallback)
    seen.outputs.add(key)
    return run.output(path, fallback=fallback)


def _record_url(run: RunContext, seen: _Seen, role: str, url: str) -> Version | None:
    """A remote read or write, named as OpenLineage names it (namespace ``s3://bucket``, name the key)."""
    key = redact(url)
    if role == "input":
        if key in seen.inputs or key in seen.outputs:
            return None
        seen.inputs.add(key)
        return run.input(url)
    seen.outputs.add(key)
    return run.output(url)


def _name(recorder: Recorder, path: Path) -> tuple[str, str]:
    """(namespace, name) of a new location: under the store's root as `datatrail add` names it; others by
    absolute path."""
    try:
        return "default", recorder.workspace.default_name(path)
    except InvalidInput:
        return f"file://{recorder.host}", path.resolve().as_posix()


__all__ = ["LIBRARIES", "autolog", "current_run", "patched"]
