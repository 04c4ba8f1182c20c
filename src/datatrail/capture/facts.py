"""Facts about who runs what, where: user, host, command line, git state, environment, workflow."""

from __future__ import annotations

import functools
import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrail.config import ENV_USER


def current_user(configured: str | None = None) -> str:
    """``$DATATRAIL_USER``, else the configured user, else the operating-system user."""
    env = os.environ.get(ENV_USER)
    if env:
        return env
    if configured:
        return configured
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def hostname() -> str:
    import socket  # start-up: only a run or a new version records the host

    return socket.gethostname()


def command_line(argv: list[str] | None = None, orig_argv: list[str] | None = None) -> str:
    """The command line as a user would retype it: ``python job.py --x``, ``python -m pkg``, ``datatrail run …``.

    A console script (``datatrail``, ``dvc``…) is recorded by its name; a script or
    module run by the interpreter keeps the interpreter's name and its flags.
    """
    import shlex  # start-up: only a run's command line needs it (a read imports this module for the user)

    argv = list(sys.argv if argv is None else argv)
    orig = list(getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv)
    if argv and argv[0] and _is_console_script(argv[0]):
        return shlex.join([os.path.basename(argv[0]), *argv[1:]])
    if orig:
        for i in range(1, len(orig) - 1):  # `datatrail run` started us through its bootstrap: hide it
            if orig[i] == "-m" and orig[i + 1] == "datatrail.capture.bootstrap":
                orig = [*orig[:i], *orig[i + 2 :]]
                break
        return shlex.join([os.path.basename(orig[0]) or "python", *orig[1:]])
    return shlex.join([os.path.basename(argv[0]) if argv and argv[0] else "python", *argv[1:]])


def _is_console_script(path: str) -> bool:
    """Whether ``path`` is an installed entry-point script (beside the interpreter), not the user's own script."""
    if path.endswith(".py") or path in ("-c", "-m", "-"):
        return False
    import sysconfig  # start-up: only a run's command line needs it

    p = Path(path)
    # Compare folders, not files: a venv's interpreter is a symlink to the base one.
    folders = {Path(sys.executable).parent.resolve(), Path(sysconfig.get_path("scripts")).resolve()}
    return p.is_file() and p.parent.resolve() in folders


def environment() -> dict[str, Any]:
    """Operating system, Python, and the versions of the distributions this process has imported."""
    import platform  # start-up: only a run records its environment

    return {
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": imported_packages(),
    }


def imported_packages() -> dict[str, str]:
    """``{distribution: version}`` for the top-level modules in ``sys.modules`` (the standard library left out)."""
    found: dict[str, str] = {}
    for module in list(sys.modules):
        if "." in module or module in sys.stdlib_module_names or module.startswith("_"):
            continue
        path = getattr(sys.modules.get(module), "__file__", None)
        if not path:  # built in, or a namespace package: no distribution to name
            continue
        # The user's own modules (`tests`, `utils`) are no installed distribution's.
        installed = "site-packages" in path or "dist-packages" in path
        owner = _owner(module, installed)
        if owner is not None:
            found[owner[0]] = owner[1]
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


@functools.cache
def _owner(module: str, installed: bool = True) -> tuple[str, str] | None:
    """The distribution (name, version) that installs top-level ``module``, if any.

    ``importlib.metadata.packages_distributions()`` parses every installed
    distribution's file list (half a second in a big environment); this asks
    the cheap questions first: a distribution named like the module, then
    ``top_level.txt``, and only then the raw ``RECORD`` text.
    """
    import importlib.metadata as md

    try:
        named = md.distribution(module)
        return named.metadata["Name"], named.version
    except (md.PackageNotFoundError, ValueError):
        pass
    if not installed:
        return None
    tops, records = _installed()
    dist = tops.get(module)
    if dist is None:
        dist = next((d for d, record in records if f"\n{module}/" in record or f"\n{module}." in record), None)
    if dist is None or not dist.metadata["Name"]:
        return None
    return str(dist.metadata["Name"]), str(dist.version)


@functools.cache
def _installed() -> tuple[dict[str, Any], list[tuple[Any, str]]]:
    """Installed distributions by their ``top_level.txt`` names, and the ``RECORD`` text of those without one.

    Only files are read here; a distribution's metadata is parsed once it is needed.
    """
    import importlib.metadata as md

    tops: dict[str, Any] = {}
    records: list[tuple[Any, str]] = []
    for dist in md.distributions():
        top = dist.read_text("top_level.txt")
        if top:
            for line in top.split():
                tops.setdefault(line.strip(), dist)
        else:
            records.append((dist, "\n" + (dist.read_text("RECORD") or "")))
    return tops, records


@dataclass(frozen=True)
class ParentRun:
    """A run in another process (or another system) that a new run belongs to."""

    run_id: str
    namespace: str
    job: str


# Set by `datatrail run` for the command it wraps (see capture/wrap.py).
ENV_RUN_ID = "DATATRAIL_RUN_ID"
ENV_RUN_NAMESPACE = "DATATRAIL_RUN_NAMESPACE"
ENV_RUN_JOB = "DATATRAIL_RUN_JOB"
ENV_WORKFLOW = "DATATRAIL_WORKFLOW"


def _uuid(text: str | None) -> str | None:
    if not text:
        return None
    import uuid  # start-up: only a run's parent from the environment needs it

    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def parent_from_env(env: dict[str, str] | None = None) -> ParentRun | None:
    """The parent run named by the environment, for a run with no parent in this process.

    In order: ``DATATRAIL_RUN_ID`` (+ ``_NAMESPACE``, ``_JOB``) set by ``datatrail run``;
    OpenLineage's ``OPENLINEAGE_PARENT_RUN_ID`` with ``OPENLINEAGE_PARENT_JOB_NAMESPACE``
    and ``OPENLINEAGE_PARENT_JOB_NAME``; then ``OPENLINEAGE_PARENT_ID`` as
    ``namespace/job/run_id`` (what dbt-ol and Airflow's ``lineage_parent_id`` macro pass).
    A value that is not a UUID is ignored rather than recorded wrong.
    """
    e = os.environ if env is None else env
    run_id = _uuid(e.get(ENV_RUN_ID))
    if run_id and e.get(ENV_RUN_JOB):
        return ParentRun(run_id, e.get(ENV_RUN_NAMESPACE) or "default", e[ENV_RUN_JOB])
    run_id = _uuid(e.get("OPENLINEAGE_PARENT_RUN_ID"))
    if run_id and e.get("OPENLINEAGE_PARENT_JOB_NAME"):
        namespace = e.get("OPENLINEAGE_PARENT_JOB_NAMESPACE") or "default"
        return ParentRun(run_id, namespace, e["OPENLINEAGE_PARENT_JOB_NAME"])
    combined = e.get("OPENLINEAGE_PARENT_ID")
    if combined and combined.count("/") >= 2:
        # The namespace may hold slashes (`airflow://host`); the job name and run id do not.
        namespace, job, raw_id = combined.rsplit("/", 2)
        run_id = _uuid(raw_id)
        if run_id and namespace and job:
            return ParentRun(run_id, namespace, job)
    return None


def workflow_from_env(env: dict[str, str] | None = None) -> str | None:
    """The workflow execution the environment names: ``DATATRAIL_WORKFLOW``, else an Airflow DAG run.

    Airflow exports ``AIRFLOW_CTX_DAG_ID`` and ``AIRFLOW_CTX_DAG_RUN_ID`` to the tasks it
    runs; every task of one DAG run then shares the workflow ``airflow:DAG/RUN``.
    """
    e = os.environ if env is None else env
    if e.get(ENV_WORKFLOW):
        return e[ENV_WORKFLOW]
    dag, dag_run = e.get("AIRFLOW_CTX_DAG_ID"), e.get("AIRFLOW_CTX_DAG_RUN_ID")
    if dag and dag_run:
        return f"airflow:{dag}/{dag_run}"
    return None


def _git(args: list[str], cwd: Path) -> str | None:
    import subprocess  # start-up: only a run asks git (a read imports this module for the user)

    try:
        # A repository's own config must not run commands here (core.fsmonitor names a program to start).
        command = ["git", "-c", "core.fsmonitor=false", *args]
        out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit, branch, dirty flag and remote of the git work tree at ``cwd``; {} outside one."""
    where = cwd or Path.cwd()
    commit = _git(["rev-parse", "HEAD"], where)
    if not commit:
        return {}
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    state: dict[str, Any] = {
        "type": "git",
        "commit": commit,
        "branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], where),
        "dirty": bool(status),
    }
    remote = _git(["config", "--get", "remote.origin.url"], where)
    if remote:
        state["url"] = strip_credentials(remote)
    return state


def strip_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part, so no secret is ever recorded."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
    return f"{scheme}://{netloc}{slash}{path}"
