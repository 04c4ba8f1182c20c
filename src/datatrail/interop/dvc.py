"""Import a DVC project: its ``.dvc`` files, ``dvc.yaml`` stages and ``dvc.lock``, read with PyYAML.

Each ``.dvc`` file's outputs become dataset versions; each stage recorded in
``dvc.lock`` becomes a job with one run (its command and parameters) whose
inputs and outputs are the stage's deps and outs. DVC's MD5 is kept as a second
digest (``properties["dvc"]``); when the file is in the workspace and still
matches that MD5, it is hashed too, so the version is keyed by its SHA-256 like
any ``datatrail add``. When the project has a DVC cache, its objects are
imported too (:mod:`datatrail.interop.dvc_cache`: MD5 re-hashed to SHA-256 once),
so an output missing from the workspace still gets its SHA-256 and
``datatrail checkout`` gives it back. Run ids derive from the lock entry, so importing again
after ``dvc repro`` adds only the stages and versions that changed. DVC itself
is never imported.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from datatrail.bounded_yaml import load_bounded
from datatrail.capture import facts
from datatrail.core.changes import Event, VersionInfo, canonical_json
from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.model import validate_name, validate_namespace
from datatrail.events import PRODUCER, SPEC, _facet, dataset_facets
from datatrail.files import inside, read_regular
from datatrail.formats import detect_format
from datatrail.interop.common import ImportSummary, ingest_all, iso, safe_job_name, stable_uuid
from datatrail.interop.dvc_cache import cache_dir, hash_from_cache, keep_from_workspace

if TYPE_CHECKING:
    from datatrail.service import Trail

SKIP_DIRS = {".dvc", ".git", ".venv", "node_modules", "__pycache__", ".datatrail"}
MAX_FILE = 32 << 20  # a dvc.yaml, dvc.lock, .dvc or metrics file: far above real ones


@dataclass
class _Context:
    trail: Trail
    root: Path
    namespace: str
    summary: ImportSummary
    md5s: dict[Path, str | None] = field(default_factory=dict)
    infos: dict[tuple[Path, str], VersionInfo] = field(default_factory=dict)


def _read_yaml(path: Path, root: Path) -> Any:
    """A YAML (or JSON) file of the project: a regular file inside it, of bounded size and expansion."""
    data = read_regular(path, within=root, limit=MAX_FILE)
    try:
        return load_bounded(data.decode("utf-8"), name=os.fspath(path))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = f"cannot read {os.fspath(path)!r}: {first}; is it a DVC file?"
        raise InvalidInput(msg) from None


def _project_files(root: Path, name: str) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        found += [Path(dirpath) / f for f in sorted(filenames) if (f == name if name else f.endswith(".dvc"))]
    return found


def file_md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def dvc_md5(path: Path) -> str | None:
    """DVC's MD5 of a workspace file, or of a directory (``<md5 of its JSON listing>.dir``); None if absent."""
    if path.is_file():
        return file_md5(path)
    if not path.is_dir():
        return None
    entries = [
        {"md5": file_md5(p), "relpath": p.relative_to(path).as_posix()}
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]
    entries.sort(key=lambda e: e["relpath"])
    listing = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(listing, usedforsecurity=False).hexdigest() + ".dir"


def _entry_digest(entry: dict[str, Any]) -> tuple[str, str] | None:
    for algorithm in ("md5", "etag", "checksum"):
        value = entry.get(algorithm)
        if isinstance(value, str) and value:
            return algorithm, value
    return None


def _version(ctx: _Context, base: Path, entry: Any, where: str) -> tuple[str, VersionInfo] | None:
    """The dataset name and version of one dep or out entry (``{path, md5, size, nfiles}``)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        msg = f"{where}: each dep and out needs a 'path'"
        raise InvalidInput(msg)
    path = (base / entry["path"]).resolve()
    try:
        name = validate_name(path.relative_to(ctx.root).as_posix())
    except ValueError:
        ctx.summary.skipped.append(f"{where}: {entry['path']} is outside the project")
        return None
    found = _entry_digest(entry)
    if found is None:
        ctx.summary.skipped.append(f"{where}: {name} has no recorded hash")
        return None
    algorithm, value = found
    cached = ctx.infos.get((path, value))
    if cached is not None:
        return name, cached
    dvc = {"path": name, algorithm: value, "hash": entry.get("hash", algorithm)}
    dvc.update({k: entry[k] for k in ("size", "nfiles") if isinstance(entry.get(k), int)})
    if path not in ctx.md5s:
        ctx.md5s[path] = dvc_md5(path) if algorithm == "md5" else None
    from_cache = None
    if ctx.md5s[path] is not None and ctx.md5s[path] == value:
        hashed = ctx.trail.hash(path)
        if cache_dir(ctx.root) is not None:  # the user moves the project's data too: keep it once
            keep_from_workspace(ctx.trail, path, hashed)
        info = ctx.trail.version_info(path, hashed, profile=False)
        info = replace(info, properties={"dvc": dvc})
    elif algorithm == "md5" and (from_cache := hash_from_cache(ctx.trail, ctx.root, value)) is not None:
        # Not in the workspace (or changed there), but in DVC's cache: re-hashed once, its bytes kept.
        info = ctx.trail.version_info(path, from_cache, profile=False)
        info = replace(info, properties={"dvc": dvc})
    else:
        if path.exists():
            ctx.summary.skipped.append(f"{name}: the workspace differs from DVC's record; kept by its {algorithm} only")
        size = entry.get("size") if isinstance(entry.get("size"), int) else None
        info = VersionInfo(
            key=f"{algorithm}:{value}",
            size=size,
            uri=path.as_uri(),
            format=detect_format(path.name),
            created_by=ctx.trail.user,
            properties={"dvc": dvc},
        )
    ctx.infos[(path, value)] = info
    return name, info


def _dataset(ctx: _Context, name: str, info: VersionInfo) -> dict[str, Any]:
    return {"namespace": ctx.namespace, "name": name, "facets": dataset_facets(info)}


def _import_dvc_file(ctx: _Context, path: Path) -> list[Event]:
    rel = path.relative_to(ctx.root).as_posix()
    doc = _read_yaml(path, ctx.root)
    outs = doc.get("outs") if isinstance(doc, dict) else None
    if not isinstance(outs, list):
        ctx.summary.skipped.append(f"{rel}: no outs")
        return []
    events = []
    for i, entry in enumerate(outs):
        found = _version(ctx, path.parent, entry, f"{rel} outs[{i}]")
        if found is None:
            continue
        name, info = found
        if ctx.trail.catalog.find_key(ctx.namespace, name, info.key) is not None:
            continue
        events.append(
            {
                "eventTime": iso(path.stat().st_mtime),
                "producer": PRODUCER,
                "schemaURL": f"{SPEC}#/$defs/DatasetEvent",
                "dataset": _dataset(ctx, name, info),
            }
        )
    return events


def _flatten(value: Any, prefix: str, out: dict[str, list[list[Any]]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and prefix:
        out[prefix] = [[0, value]]


def _metrics(ctx: _Context, base: Path, defined: Any, entry: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """The numbers in a stage's metrics files (``metrics:`` in dvc.yaml) that still match dvc.lock."""
    declared = defined.get("metrics") if isinstance(defined, dict) else None
    names = [m if isinstance(m, str) else next(iter(m), None) for m in declared or [] if isinstance(m, str | dict)]
    recorded = {o.get("path"): o.get("md5") for o in entry.get("outs") or [] if isinstance(o, dict)}
    out: dict[str, list[list[Any]]] = {}
    for name in names:
        if not isinstance(name, str) or name not in recorded:
            continue
        path = (base / name).resolve()
        if path.suffix.lower() not in (".json", ".yaml", ".yml"):
            continue
        if not inside(path, ctx.root):
            ctx.summary.skipped.append(f"metrics file {name}: outside the project, not read")
            continue
        if recorded[name] is None or ctx.md5s.get(path) != recorded[name]:
            continue  # missing, or changed since the stage ran: its numbers are not this run's
        try:
            values = _read_yaml(path, ctx.root)  # JSON is YAML
        except (InvalidInput, NotFound) as exc:
            ctx.summary.skipped.append(f"metrics file {name}: {exc.message}")
            continue
        _flatten(values, "", out)
    return out


def _params(lock_params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(lock_params, dict):
        for file, values in lock_params.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    out[str(key) if file == "params.yaml" else f"{file}:{key}"] = value
    return out


def _import_stages(ctx: _Context, dvc_yaml: Path) -> list[Event]:
    rel_dir = dvc_yaml.parent.relative_to(ctx.root).as_posix()
    where_yaml = dvc_yaml.relative_to(ctx.root).as_posix()
    spec = _read_yaml(dvc_yaml, ctx.root) or {}
    stages = spec.get("stages") if isinstance(spec, dict) else None
    stages = stages if isinstance(stages, dict) else {}
    lock_path = dvc_yaml.with_name("dvc.lock")
    lock = _read_yaml(lock_path, ctx.root) if os.path.lexists(lock_path) else {}
    locked = lock.get("stages") if isinstance(lock, dict) else None
    locked = locked if isinstance(locked, dict) else {}
    for name in stages:
        if not any(s == name or s.startswith(f"{name}@") for s in locked):
            ctx.summary.skipped.append(f"{where_yaml}: stage {name!r} has not run yet (no dvc.lock entry)")
    git = facts.git_state(ctx.root)
    events = []
    for stage, entry in locked.items():
        where = f"{lock_path.relative_to(ctx.root).as_posix()} stage {stage!r}"
        if not isinstance(entry, dict):
            msg = f"{where}: expected a mapping with cmd, deps and outs"
            raise InvalidInput(msg)
        run_id = stable_uuid("dvc", ctx.namespace, where_yaml, str(stage), canonical_json(entry))
        try:
            ctx.trail.get_run(run_id)
            continue  # imported before: the lock entry has not changed
        except NotFound:
            pass
        defined = stages.get(str(stage).split("@")[0])
        wdir = defined.get("wdir", ".") if isinstance(defined, dict) else "."
        base = (dvc_yaml.parent / str(wdir)).resolve()
        cmd = entry.get("cmd")
        command = " && ".join(map(str, cmd)) if isinstance(cmd, list) else (str(cmd) if cmd is not None else None)
        inputs: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        for key, target in (("deps", inputs), ("outs", outputs)):
            items = entry.get(key) or []
            for i, item in enumerate(items if isinstance(items, list) else []):
                found = _version(ctx, base, item, f"{where} {key}[{i}]")
                if found is not None:
                    target.append(_dataset(ctx, *found))
        out_paths = [(base / o["path"]) for o in entry.get("outs") or [] if isinstance(o, dict) and "path" in o]
        times = [p.stat().st_mtime for p in out_paths if p.exists() and inside(p, ctx.root)]
        times = times or [lock_path.stat().st_mtime]
        job = safe_job_name(str(stage) if rel_dir == "." else f"{rel_dir}/{stage}")
        run_facts: dict[str, Any] = {
            "user": ctx.trail.user,
            "host": ctx.trail.host,
            "command": command,
            "cwd": os.fspath(base),
            "params": _params(entry.get("params")),
            "code": git,
        }
        run_facets = {"datatrail_run": _facet("datatrail_run", "DatatrailRunFacet", **run_facts)}
        metrics = _metrics(ctx, base, defined, entry)
        if metrics:
            run_facets["datatrail_metrics"] = _facet("datatrail_metrics", "DatatrailMetricsFacet", metrics=metrics)
        events.append(
            {
                "eventType": "COMPLETE",
                "eventTime": iso(max(times)),
                "producer": PRODUCER,
                "schemaURL": f"{SPEC}#/$defs/RunEvent",
                "run": {"runId": run_id, "facets": run_facets},
                "job": {
                    "namespace": ctx.namespace,
                    "name": job,
                    "facets": {
                        "jobType": _facet(
                            "jobType",
                            "JobTypeJobFacet",
                            True,
                            processingType="BATCH",
                            integration="DVC",
                            jobType="STAGE",
                        )
                    },
                },
                "inputs": inputs,
                "outputs": outputs,
            }
        )
    return events


def import_dvc(trail: Trail, repo: str | os.PathLike[str] = ".", *, namespace: str = "default") -> ImportSummary:
    """Record a DVC project's tracked data and pipeline runs; importing again adds only what changed.

    Dataset names are paths relative to the project root (``data/clean.csv``), so
    ``datatrail lineage data/clean.csv`` shows the DVC pipeline.

    >>> summary = import_dvc(trail, "path/to/repo")  # doctest: +SKIP
    >>> summary.new_versions                          # doctest: +SKIP
    ['data/raw.csv@1', 'data/clean.csv@1', 'model.pkl@1']
    """
    root = Path(repo).resolve()
    if not root.is_dir():
        msg = f"no such folder {os.fspath(repo)!r}; give the DVC project's folder"
        raise NotFound(msg)
    dvc_yamls = _project_files(root, "dvc.yaml")
    dvc_files = _project_files(root, "")
    if not (root / ".dvc").is_dir() and not dvc_yamls and not dvc_files:
        msg = f"{os.fspath(root)!r} is not a DVC project: no .dvc/ folder, dvc.yaml or .dvc file (run `dvc init` there)"
        raise InvalidInput(msg)
    ctx = _Context(trail, root, validate_namespace(namespace), ImportSummary(source=f"dvc:{root.as_posix()}"))
    events: list[Event] = []
    for path in dvc_files:
        events += _import_dvc_file(ctx, path)
    for path in dvc_yamls:
        events += _import_stages(ctx, path)
    return ingest_all(trail, events, ctx.summary, "import.dvc")
