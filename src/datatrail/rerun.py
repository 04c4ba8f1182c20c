"""``datatrail reproduce RUN --exec``: restore a run's exact inputs in a scratch folder, run its command again
there, and compare the outputs' digests with the recorded ones.

The scratch folder mirrors the store's root: each input version is checked
out (verified, from the cache or a remote) at its path relative to the root,
the code is the recorded commit's tree (``git archive``) when the run was made
in a git repository at a known commit, else the files the command names, and
the command runs in the recorded working folder's place inside the scratch
folder. Each output is then hashed where the run wrote it and compared with
its recorded digest: ``same``, ``differs`` or ``missing``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.model import Run, Version
from datatrail.storage import Storage

SAME, DIFFERS, MISSING = "same", "differs", "missing"


@dataclass(frozen=True)
class OutputCheck:
    """One output of the run: its recorded digest and the one the re-run produced."""

    ref: str
    path: str
    status: str  # same, differs, missing
    recorded: str | None
    produced: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "path": self.path,
            "status": self.status,
            "recorded": self.recorded,
            "produced": self.produced,
        }


@dataclass(frozen=True)
class RerunReport:
    """What re-running a run gave: exit status and, per output, same or differs."""

    run: Run
    folder: Path
    exit_code: int
    outputs: tuple[OutputCheck, ...]
    code: str  # how the code got there: "git <commit>" or "copied files"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and all(o.status == SAME for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            "job": self.run.job,
            "command": self.run.command,
            "folder": os.fspath(self.folder),
            "exit_code": self.exit_code,
            "code": self.code,
            "ok": self.ok,
            "outputs": [o.to_dict() for o in self.outputs],
        }


def _local_path(version: Version) -> Path:
    uri = urlparse(version.uri or "")
    if uri.scheme != "file":
        msg = f"{version.ref} is not local data (uri {version.uri!r}); reproduce --exec restores local inputs only"
        raise InvalidInput(msg)
    return Path(unquote(uri.path))


def _relative(path: Path, bases: list[Path]) -> Path:
    for base in bases:
        try:
            return path.relative_to(base)
        except ValueError:
            continue
    msg = f"{os.fspath(path)!r} is outside the store's root and the run's folder; it cannot be placed in a scratch copy"
    raise InvalidInput(msg)


def rerun(storage: Storage, run_or_ref: str, *, into: Path | None = None, timeout: float | None = None) -> RerunReport:
    """Restore the inputs of a run (or of the run that produced a version), re-run its command, compare outputs."""
    catalog = storage.catalog
    try:
        run = catalog.get_run(run_or_ref)
    except (NotFound, InvalidInput):
        version = catalog.get(run_or_ref)
        if version.run_id is None:
            msg = f"{version.ref} was not produced by a recorded run; nothing to re-run"
            raise NotFound(msg) from None
        run = catalog.get_run(version.run_id)
    if not run.command:
        msg = f"run {run.id[:8]} ({run.job}) has no recorded command; record runs with `datatrail run -- CMD`"
        raise InvalidInput(msg)
    root = storage.location.root
    cwd = Path(run.cwd) if run.cwd else root
    bases = [cwd, root] if root in cwd.parents or cwd == root else [root, cwd]
    bases.sort(key=lambda p: len(p.parts))  # the shortest base first: it keeps most of the layout
    base = bases[0]

    folder = Path(into) if into is not None else Path(tempfile.mkdtemp(prefix=f"datatrail-reproduce-{run.job}-"))
    if into is not None:
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.iterdir()):
            msg = f"{os.fspath(folder)!r} is not empty; give an empty or new folder to reproduce in"
            raise InvalidInput(msg)
    code = _place_code(run, base, folder)
    for version in run.inputs:
        rel = _relative(_local_path(version), [base])
        storage.checkout(version, folder / rel, force=True)
    work = folder / _relative(cwd, [base]) if cwd != base else folder
    work.mkdir(parents=True, exist_ok=True)
    for version in run.outputs:  # the folders the run wrote into existed when it ran
        out = folder / _relative(_local_path(version), [base])
        (out if version.is_directory else out.parent).mkdir(parents=True, exist_ok=True)
    try:
        argv = shlex.split(run.command)
    except ValueError:
        msg = f"cannot parse the recorded command {run.command!r}"
        raise InvalidInput(msg) from None
    env = {k: v for k, v in os.environ.items() if k not in ("DATATRAIL_URI", "DATATRAIL_TOKEN")}
    try:
        proc = subprocess.run(argv, cwd=work, env=env, timeout=timeout, check=False)
    except FileNotFoundError:
        msg = f"cannot run {argv[0]!r}: not found on PATH"
        raise InvalidInput(msg) from None
    outputs = []
    for version in run.outputs:
        rel = _relative(_local_path(version), [base])
        where = folder / rel
        recorded = str(version.digest) if version.digest else None
        if not where.exists():
            outputs.append(OutputCheck(version.ref, rel.as_posix(), MISSING, recorded, None))
            continue
        produced = str(storage.recorder.hash(where, use_cache=False).digest)
        status = SAME if produced == recorded else DIFFERS
        outputs.append(OutputCheck(version.ref, rel.as_posix(), status, recorded, produced))
    return RerunReport(run, folder, proc.returncode, tuple(outputs), code)


def _place_code(run: Run, base: Path, folder: Path) -> str:
    """Put the run's code in ``folder``: the recorded commit's tree, else the files its command names."""
    commit = run.code.get("commit")
    git = shutil.which("git")
    if commit and git and not run.code.get("dirty"):
        top = subprocess.run(
            [git, "-C", os.fspath(base), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
        )
        if top.returncode == 0 and Path(top.stdout.strip()) == base.resolve():
            archive = subprocess.run([git, "-C", os.fspath(base), "archive", str(commit)], capture_output=True)
            if archive.returncode == 0:
                subprocess.run(["tar", "-x", "-C", os.fspath(folder)], input=archive.stdout, check=True)
                return f"git {str(commit)[:12]}"
    cwd = Path(run.cwd) if run.cwd else base
    copied = 0
    for word in shlex.split(run.command or ""):
        candidate = (cwd / word) if not os.path.isabs(word) else Path(word)
        if candidate.is_file():
            try:
                rel = candidate.resolve().relative_to(base.resolve())
            except ValueError:
                continue
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(candidate, folder / rel)
            copied += 1
    return f"copied {copied} file(s) the command names"


__all__ = ["DIFFERS", "MISSING", "SAME", "OutputCheck", "RerunReport", "rerun"]
