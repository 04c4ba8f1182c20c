"""Wrapping any command as a run: ``datatrail run --name JOB -i IN -o OUT -- COMMAND``.

The inputs are hashed before the command starts and the outputs after it
succeeds; the command's standard streams are the wrapper's own, so its output
streams through unchanged, and its exit status becomes the wrapper's. Like
``env``, ``timeout`` and ``nohup``, the wrapper keeps three statuses for itself:
125 when datatrail fails, 126 when the command cannot be executed, 127 when it
is not found.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from datatrail.capture import facts
from datatrail.capture.run import RunContext, RunFailed, source_ref
from datatrail.config import ENV_URI, ENV_USER
from datatrail.core.errors import WRAPPER_FAILED, CommandNotFound, InvalidInput
from datatrail.core.model import DEFAULT_NAMESPACE, RunState
from datatrail.remote import is_url, redact

if TYPE_CHECKING:
    from datatrail.service import Trail

ENV_AUTOLOG = "DATATRAIL_AUTOLOG"
BOOTSTRAP = "datatrail.capture.bootstrap"
_PYTHON = re.compile(r"python(\d+(\.\d+)*)?(\.exe)?")
# Interpreter flags that take no value and may come before the script (`python -u job.py`).
_PY_FLAGS = {"-u", "-O", "-OO", "-B", "-E", "-s", "-b", "-bb", "-q", "-v", "-d", "-R", "-P"}
CANNOT_EXECUTE = 126  # found but not runnable, as a shell reports it


@dataclass(frozen=True)
class CommandResult:
    """How a wrapped command ended."""

    run_id: str
    state: RunState
    exit_status: int  # what the wrapper should exit with
    duration: float
    error: str | None = None
    command_status: int | None = None  # the command's own: its exit status, or minus the signal that ended it
    source: str = "command"  # whose the exit status is: "command", or "datatrail" when the wrapper failed
    notes: tuple[str, ...] = ()  # how inputs and outputs given as paths found their datasets

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``datatrail run --json`` prints."""
        return {
            "source": self.source,
            "exit_code": self.exit_status,
            "command_status": self.command_status,
            "run_id": self.run_id,
            "state": self.state.value,
            "duration": round(self.duration, 3),
            "error": self.error,
            "notes": list(self.notes),
        }


def run_command(
    trail: Trail,
    command: Sequence[str],
    *,
    job: str,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    params: dict[str, Any] | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    workflow: str | None = None,
    autolog: bool = True,
) -> CommandResult:
    """Run ``command`` as a run of ``job``: inputs hashed first, outputs after success.

    A non-zero exit ends the run FAIL with the status and registers no outputs;
    an interrupt (SIGINT, SIGTERM) is passed on to the command and ends it ABORT.
    A command that succeeds without writing an output ends FAIL with status 125,
    one that cannot be executed with 126; one that is not found raises
    :class:`CommandNotFound` (127) and records nothing.
    """
    if not command:
        msg = "no command to run; put it after `--`, e.g. datatrail run --name job -- python job.py"
        raise InvalidInput(msg)
    if shutil.which(command[0]) is None:
        msg = f"command not found: {command[0]!r}; check the name or give its path"
        raise CommandNotFound(msg)
    output_paths = [o if is_url(o) else Path(o) for o in outputs]
    for p in output_paths:  # a bad output fails now, not after an hour of work
        if isinstance(p, str):
            continue  # a URL (s3://…) is named by its own namespace and key
        try:
            trail.default_name(p)
        except InvalidInput:
            msg = (
                f"the output {os.fspath(p)!r} is outside the store's root {os.fspath(trail.root)!r}; "
                "write it under the root, or register it afterwards with `datatrail add PATH --name NAME`"
            )
            raise InvalidInput(msg) from None
    for source in inputs:  # an input that is nothing fails before the run starts, leaving the store as it was
        if not is_url(source) and not os.path.exists(source):
            source_ref(trail.catalog, source)
    run = trail.run(job, params=params, namespace=namespace, workflow=workflow, job_type="command")
    run.command = shlex.join(command)
    started = time.monotonic()
    status = 0
    ran = False
    try:
        with run:
            for source in inputs:
                run.input(source)
            env = child_environment(trail, run, autolog=autolog)
            argv = with_bootstrap(list(command)) if autolog else list(command)
            started = time.monotonic()
            try:
                status, signalled = _spawn(argv, env)
            except OSError as exc:  # on PATH, but not a program this system can execute
                status = CANNOT_EXECUTE
                msg = f"cannot execute {command[0]!r}: {exc.strerror or exc}"
                raise RunFailed(msg) from None
            ran = True
            duration = time.monotonic() - started
            run.final_facts = {"exitStatus": status, "durationSeconds": round(duration, 3)}
            _finish(run, status, signalled, output_paths)
    except KeyboardInterrupt as exc:
        code = 128 - status if status < 0 else (status or 128 + signal.SIGINT)
        own = status if ran else None
        return CommandResult(
            run.id, RunState.ABORT, code, time.monotonic() - started, str(exc), own, notes=tuple(run.notes)
        )
    except RunFailed as exc:
        if status == 0:  # the command succeeded; the run failed on datatrail's side (an output not written)
            code, source = WRAPPER_FAILED, "datatrail"
        else:
            code, source = (status if status > 0 else 128 - status), "command"
        own = status if ran else None
        return CommandResult(
            run.id, RunState.FAIL, code, time.monotonic() - started, str(exc), own, source, tuple(run.notes)
        )
    return CommandResult(
        run.id, RunState.COMPLETE, 0, time.monotonic() - started, command_status=status, notes=tuple(run.notes)
    )


def _finish(run: RunContext, status: int, signalled: str | None, outputs: list[Path | str]) -> None:
    """Register the outputs of a command that succeeded; raise what ends the run otherwise."""
    if signalled is not None:
        msg = f"interrupted by {signalled}; the command ended with {_describe(status)}"
        raise KeyboardInterrupt(msg)
    if status != 0:
        msg = f"the command ended with {_describe(status)}"
        raise RunFailed(msg)
    for p in outputs:
        if isinstance(p, str):
            from datatrail.remote.data import exists  # fsspec: only for URLs

            if not exists(p):
                msg = f"the command succeeded but did not write the output {redact(p)!r}"
                raise RunFailed(msg)
        elif not p.exists():
            msg = f"the command succeeded but did not write the output {os.fspath(p)!r}"
            raise RunFailed(msg)
        before = run.recorder.workspace.default_name(p) if isinstance(p, Path) else None
        version = run.output(p)
        if before is not None and version.name != before:
            run.notes.append(f"{os.fspath(p)} is {version.ref} (its location)")


def child_environment(trail: Trail, run: RunContext, *, autolog: bool = True) -> dict[str, str]:
    """The wrapper's environment plus what lets a datatrail-aware child join the run."""
    env = dict(os.environ)
    env[facts.ENV_RUN_ID] = run.id
    env[facts.ENV_RUN_JOB] = run.job
    env[facts.ENV_RUN_NAMESPACE] = run.namespace
    env[ENV_URI] = trail.location.uri
    env[ENV_USER] = trail.user
    if run.workflow:
        env[facts.ENV_WORKFLOW] = run.workflow
    if autolog:
        env[ENV_AUTOLOG] = "1"
    else:
        env.pop(ENV_AUTOLOG, None)
    return env


def with_bootstrap(command: list[str]) -> list[str]:
    """``python [flags] job.py …`` → ``python [flags] -m datatrail.capture.bootstrap job.py …``.

    Only for the interpreter of this environment (one that can import datatrail),
    running a script or ``-m module``; anything else is left exactly as given.
    """
    exe = shutil.which(command[0])
    if exe is None or not _PYTHON.fullmatch(Path(command[0]).name):
        return command
    if Path(exe).parent.resolve() != Path(sys.executable).parent.resolve():
        return command
    i = 1
    while i < len(command) and command[i] in _PY_FLAGS:
        i += 1
    if i >= len(command):
        return command
    target = command[i]
    if target == "-m" and i + 1 < len(command):
        return [*command[:i], "-m", BOOTSTRAP, *command[i:]]
    if target.startswith("-"):  # -c CODE, -X opt, -W arg…: run as given
        return command
    return [*command[:i], "-m", BOOTSTRAP, *command[i:]]


def _spawn(argv: list[str], env: dict[str, str]) -> tuple[int, str | None]:
    """Run ``argv`` with our standard streams; returns its status and the signal that interrupted us, if any."""
    received: list[str] = []
    started: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        # Ctrl-C at a terminal reaches the whole foreground process group, the
        # command included; forwarding it again would interrupt the command twice.
        if signum == signal.SIGINT and _terminal_signals_group():
            return
        if started:
            started[0].send_signal(signum)

    # The handlers are in place before the command starts: an interrupt that arrives
    # while it is being started is passed on as soon as it runs, never lost.
    # A signal we were started ignoring (a background job's SIGINT) stays ignored, for the command too.
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) != signal.SIG_IGN:
                previous[sig] = signal.signal(sig, forward)
    except ValueError:  # not the main thread: signals stay with their default handlers
        pass
    try:
        proc = subprocess.Popen(argv, env=env)
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    started.append(proc)
    for name in received:
        if not (name == "SIGINT" and _terminal_signals_group()):
            proc.send_signal(signal.Signals[name])
    try:
        while True:
            try:
                status = proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover  (only without our handler)
                received.append("SIGINT")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status, (received[0] if received else None)


def _terminal_signals_group() -> bool:
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


def _describe(status: int) -> str:
    if status < 0:
        try:
            return f"signal {signal.Signals(-status).name}"
        except ValueError:
            return f"signal {-status}"
    return f"exit status {status}"


__all__ = ["CANNOT_EXECUTE", "CommandResult", "child_environment", "run_command", "with_bootstrap"]
