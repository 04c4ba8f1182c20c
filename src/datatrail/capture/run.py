"""The run context: ``with trail.run("clean") as run: ...``."""

from __future__ import annotations

import contextvars
import math
import os
import traceback
import uuid
from types import TracebackType
from typing import Any

from datatrail.capture import facts
from datatrail.catalog import Catalog
from datatrail.core.changes import VersionInfo
from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.model import (
    DEFAULT_NAMESPACE,
    EventType,
    Ref,
    RunState,
    Version,
    validate_name,
    validate_namespace,
)
from datatrail.core.results import IngestResult
from datatrail.events import build_run_event
from datatrail.recorder import Recorder
from datatrail.remote import is_url

NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_active: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("datatrail_run", default=None)


def active_run() -> RunContext | None:
    """The innermost run currently open in this thread or task, if any."""
    return _active.get()


def start_run(
    recorder: Recorder,
    catalog: Catalog,
    job: str,
    *,
    params: dict[str, Any] | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    workflow: str | None = None,
    job_type: str | None = None,
) -> RunContext:
    """A new run of ``job`` (not started: use it as a context manager), its names checked."""
    job = validate_name(job, "job name")
    return RunContext(recorder, catalog, job, params or {}, validate_namespace(namespace), workflow, job_type)


class RunFailed(Exception):
    """Raise inside a run to end it FAIL with exactly this message (``datatrail run`` does for an exit status)."""


class RunContext:
    """One run of a job: inputs, outputs, params and metrics, recorded as it goes.

    Entering sends START; each :meth:`input` and :meth:`output` sends RUNNING
    with that dataset (so a crash still leaves what was done); leaving sends
    COMPLETE, or FAIL with the error when the block raises (the exception
    propagates), or ABORT on Ctrl-C.
    """

    def __init__(
        self,
        recorder: Recorder,
        catalog: Catalog,
        job: str,
        params: dict[str, Any],
        namespace: str,
        workflow: str | None,
        job_type: str | None,
    ) -> None:
        self.recorder = recorder
        self.catalog = catalog
        self.job = job
        self.namespace = namespace
        self.params = dict(params)
        self.workflow = workflow
        self.job_type = job_type
        self.id = str(uuid.uuid4())
        self.metrics: dict[str, list[tuple[int, Any]]] = {}
        self.inputs: list[Version] = []
        self.outputs: list[Version] = []
        self.parent: RunContext | None = None
        self.parent_run: facts.ParentRun | None = None
        self.command: str | None = None  # default: this process's command line
        self.final_facts: dict[str, Any] = {}  # extra fields of the final event's datatrail_run facet
        # How paths given without a name found their datasets (`datatrail run` prints them).
        self.notes: list[str] = []
        self._token: contextvars.Token[RunContext | None] | None = None
        self._started = False
        self._attached = False
        self._git: dict[str, Any] = {}

    @classmethod
    def attach(cls, recorder: Recorder, catalog: Catalog, run_id: str, namespace: str, job: str) -> RunContext:
        """Join a run that another process started and will end (``datatrail run`` wraps this one).

        Inputs and outputs recorded here go into that run; entering sends no START
        and leaving no COMPLETE, because its owner does.
        """
        run = cls(recorder, catalog, job, {}, namespace, None, None)
        run.id = run_id
        run._attached = True
        return run

    def __repr__(self) -> str:
        return f"<Run {self.job} {self.id}>"

    @property
    def user(self) -> str:
        return self.recorder.user

    def _send(self, state: EventType | RunState, **kwargs: Any) -> IngestResult:
        p = self.parent_run
        parent = (p.run_id, p.namespace, p.job) if p is not None else None
        event = build_run_event(
            state, self.id, self.namespace, self.job, parent=parent, job_type=self.job_type, **kwargs
        )
        return self.recorder.store.ingest(event, self.recorder.user, f"run.{state.value.lower()}")

    def __enter__(self) -> RunContext:
        if self._started:
            msg = "this run was already started; make a new one with trail.run(...)"
            raise InvalidInput(msg)
        self._started = True
        if self._attached:
            self._token = _active.set(self)
            return self
        self.parent = active_run()
        if self.parent is not None:
            self.parent_run = facts.ParentRun(self.parent.id, self.parent.namespace, self.parent.job)
            if self.workflow is None:
                self.workflow = self.parent.workflow
        else:
            self.parent_run = facts.parent_from_env()
            if self.workflow is None:
                self.workflow = facts.workflow_from_env()
        self._git = facts.git_state()
        self._send(
            EventType.START,
            run_facts={
                "user": self.recorder.user,
                "host": self.recorder.host,
                "command": self.command if self.command is not None else facts.command_line(),
                "cwd": os.getcwd(),
                "params": _jsonable(self.params),
                "code": {**self._git, "environment": facts.environment()},
                "workflow": self.workflow,
                "pid": os.getpid(),
            },
        )
        self._token = _active.set(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            _active.reset(self._token)
            self._token = None
        if self._attached:
            return
        run_facts = {"params": _jsonable(self.params), **_jsonable(self.final_facts)}
        if exc is None:
            # Packages imported during the run count too (pandas is often imported inside it).
            run_facts["code"] = {**self._git, "environment": facts.environment()}
        extra = {"metrics": self.metrics or None, "run_facts": run_facts}
        if exc is None:
            self._send(RunState.COMPLETE, **extra)
        elif isinstance(exc, KeyboardInterrupt):
            self._send(RunState.ABORT, error=str(exc) or "interrupted (KeyboardInterrupt)", **extra)
        elif isinstance(exc, RunFailed):
            self._send(RunState.FAIL, error=str(exc), **extra)
        else:
            text = "".join(traceback.format_exception_only(exc_type, exc)).strip()
            self._send(RunState.FAIL, error=text, **extra)

    def _check_open(self) -> None:
        if self._token is None:
            msg = "the run is not open; use it inside `with trail.run(...) as run:`"
            raise InvalidInput(msg)

    def input(
        self,
        source: str | os.PathLike[str] | Version | Ref,
        *,
        name: str | None = None,
        fallback: tuple[str, str] | None = None,
    ) -> Version:
        """Record an input: a Version, a ref (``raw/penguins@2``), a path or a URL (hashed and added).

        A path without a ``name`` is the dataset already recorded at its location, else
        the version of the same content recorded elsewhere (said in :attr:`notes`), else a
        new dataset named by the path (or ``fallback``): see ``Recorder.identify``.
        """
        self._check_open()
        if isinstance(source, Version):
            version = source
        elif isinstance(source, Ref):
            version = self.catalog.get(source)
        elif is_url(source) or os.path.exists(os.fspath(source)):
            added = self.recorder.register(source, name=name, link_content=True, fallback=fallback)
            version = added.version
            if added.note:
                self.notes.append(added.note)
        else:
            version = self.catalog.get(source_ref(self.catalog, source))
        key = version.key or str(version.digest)
        self._send(RunState.RUNNING, inputs=[(version.namespace, version.name, key)])
        self.inputs.append(version)
        return version

    def output(
        self,
        path: str | os.PathLike[str] | Any,
        *,
        name: str | None = None,
        namespace: str | None = None,
        kind: str = "dataset",
        message: str | None = None,
        profile: bool = True,
        fallback: tuple[str, str] | None = None,
    ) -> Version:
        """Hash ``path`` and record it as an output version of this run (tabular data profiled unless told not).

        Without a ``name``, a path where a dataset's version was recorded is the next
        version of that dataset; a new location is named by its path (or ``fallback``).

        ``path`` may also be an object: a DataFrame, Arrow table or array (hashed in
        memory), or a model (scikit-learn, torch, ONNX) saved safely under
        ``.datatrail/objects/`` (see ``datatrail.ml.models``); objects need a ``name``.
        """
        self._check_open()
        if not isinstance(path, str | os.PathLike):
            where = DEFAULT_NAMESPACE if namespace is None else namespace
            return self._output_object(path, name=name, namespace=where, kind=kind, message=message)
        namespace, name, info = self.recorder.describe(
            path, name=name, namespace=namespace, kind=kind, message=message, profile=profile, fallback=fallback
        )
        return self.output_info(info, name=name, namespace=namespace)

    def _output_object(self, obj: Any, *, name: str | None, namespace: str, kind: str, message: str | None) -> Version:
        if name is None:
            msg = f"an output object ({type(obj).__name__}) needs a name: run.output(obj, name='models/penguins')"
            raise InvalidInput(msg)
        info = self.recorder.describe_object(obj, kind=kind, message=message)
        return self.output_info(info, name=name, namespace=namespace)

    def output_info(self, info: VersionInfo, *, name: str, namespace: str = DEFAULT_NAMESPACE) -> Version:
        """Record a version described by ``info`` (data hashed elsewhere, e.g. in memory) as an output."""
        self._check_open()
        namespace, name = validate_namespace(namespace), validate_name(name)
        result = self._send(RunState.RUNNING, outputs=[(namespace, name, info)])
        if result.versions:
            version: Version = result.versions[0][0]
        else:  # the same event was already ingested: the version exists
            version = self.catalog.get(Ref(namespace, name, info.key))
        self.outputs.append(version)
        return version

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record a metric; repeated calls without ``step`` make a series 0, 1, 2…"""
        if not isinstance(key, str) or not key:
            msg = "a metric needs a non-empty string key"
            raise InvalidInput(msg)
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"metric {key!r} must be a number, not {type(value).__name__}"
            raise InvalidInput(msg)
        self._check_not_ended()
        series = self.metrics.setdefault(key, [])
        # JSON has no NaN or infinity (PostgreSQL would refuse the event): a diverging
        # loss is recorded as the string "NaN", "Infinity" or "-Infinity" instead.
        recorded: Any = value if math.isfinite(value) else NON_FINITE[repr(float(value))]
        series.append((len(series) if step is None else int(step), recorded))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_param(self, key: str, value: Any) -> None:
        """Record a parameter (sent with the run's final event)."""
        self._check_not_ended()
        self.params[key] = value

    def _check_not_ended(self) -> None:
        # Params and metrics travel with the final event; after it they would be lost silently.
        if self._started and self._token is None:
            msg = "the run has ended; log params and metrics inside `with trail.run(...) as run:`"
            raise InvalidInput(msg)


def source_ref(catalog: Catalog, source: str | os.PathLike[str]) -> Ref:
    """The ref an input that is no existing path names; NotFound ``path not found`` when it names nothing.

    Text with ``@`` is a ref and keeps the catalog's own answer (``raw@9``: no version 9); other text
    is a path unless it is a dataset's name."""
    text = os.fspath(source)
    if isinstance(source, os.PathLike):
        raise _path_not_found(text)
    try:
        ref = Ref.parse(text)
        catalog.lookup(ref)
    except (NotFound, InvalidInput):
        if "@" in text:
            raise
        raise _path_not_found(text) from None
    return ref


def _path_not_found(text: str) -> NotFound:
    msg = f"path not found: {text}; give an existing file or folder, a URL, or a dataset ref (NAME@VERSION)"
    return NotFound(msg)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


__all__ = ["RunContext", "RunFailed", "active_run", "source_ref", "start_run"]
