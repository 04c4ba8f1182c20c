"""``datatrail reproduce REF --check``: is everything a version was made from still there, unchanged?

The whole upstream provenance is walked; each step (a run) lists its inputs,
each re-hashed at its uri (through the stat cache) and compared with the
recorded digest, and the code commit, parameters and command that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datatrail.catalog import Catalog
from datatrail.core.model import Run, Version
from datatrail.recorder import Recorder
from datatrail.verify import verify_versions

PROBLEMS = ("missing", "changed", "unreadable", "added")


@dataclass(frozen=True)
class InputCheck:
    """One version in the provenance and what re-hashing its data found."""

    ref: str
    kind: str
    status: str  # ok, missing, changed, unreadable, not-local
    uri: str | None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "kind": self.kind, "status": self.status, "uri": self.uri, "detail": self.detail}


@dataclass(frozen=True)
class Step:
    """One run of the provenance: what it read and wrote, and the code, params and command behind it."""

    run: Run
    inputs: tuple[InputCheck, ...]
    outputs: tuple[InputCheck, ...]

    @property
    def job(self) -> str:
        return self.run.job

    @property
    def ok(self) -> bool:
        return all(c.status not in PROBLEMS for c in (*self.inputs, *self.outputs))

    def to_dict(self) -> dict[str, Any]:
        code = self.run.code
        return {
            "run_id": self.run.id,
            "job": self.run.job,
            "state": self.run.state.value,
            "started_at": self.run.started_at.isoformat() if self.run.started_at else None,
            "user": self.run.user,
            "command": self.run.command,
            "params": self.run.params,
            "commit": code.get("commit"),
            "branch": code.get("branch"),
            "dirty": code.get("dirty"),
            "ok": self.ok,
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
        }


@dataclass(frozen=True)
class ReproduceReport:
    """The provenance of ``target``, step by step from the sources; ``ok`` when nothing is missing or changed."""

    target: Version
    steps: tuple[Step, ...]
    sources: tuple[InputCheck, ...]
    checks: dict[str, InputCheck] = field(default_factory=dict)

    @property
    def problems(self) -> list[InputCheck]:
        return [c for c in self.checks.values() if c.status in PROBLEMS]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.ref,
            "ok": self.ok,
            "problems": [c.to_dict() for c in self.problems],
            "sources": [c.to_dict() for c in self.sources],
            "steps": [s.to_dict() for s in self.steps],
        }


def check_provenance(
    catalog: Catalog, recorder: Recorder, target: Version, *, use_cache: bool = True
) -> ReproduceReport:
    """Walk the provenance of ``target`` (each version's producing run, then its inputs) and re-hash every version."""
    versions: dict[str, Version] = {target.ref: target}
    runs: dict[str, tuple[int, Run]] = {}
    frontier, depth = [target], 0
    while frontier:
        depth += 1
        reached: list[Version] = []
        for v in frontier:
            if v.run_id is None or v.run_id in runs:
                continue
            run = catalog.get_run(v.run_id)
            runs[run.id] = (depth, run)
            for item in run.inputs:
                if item.ref not in versions:
                    versions[item.ref] = item
                    reached.append(item)
        frontier = reached
    verified = verify_versions(recorder, catalog.manifest, list(versions.values()), use_cache=use_cache)
    found: dict[str, list[str]] = {}
    for p in verified.problems:
        found.setdefault(p.ref, []).append(f"{p.kind} {p.path}")
    skipped = {v.ref for v, _ in verified.skipped}
    checks: dict[str, InputCheck] = {}
    for v in versions.values():
        if v.ref in found:
            status = next((k for k in PROBLEMS if any(x.startswith(k) for x in found[v.ref])), "changed")
            detail: str | None = "; ".join(found[v.ref])
        elif v.ref in skipped:
            status, detail = "not-local", "no local data recorded; not re-hashed"
        else:
            status, detail = "ok", None
        checks[v.ref] = InputCheck(v.ref, v.kind, status, v.uri, detail)
    # The deepest runs first: the order the pipeline ran in.
    ordered = sorted(runs.values(), key=lambda item: (-item[0], item[1].started_at or target.created_at, item[1].id))
    steps = tuple(
        Step(
            run,
            tuple(checks[v.ref] for v in run.inputs if v.ref in checks),
            tuple(checks[v.ref] for v in run.outputs if v.ref in checks),
        )
        for _, run in ordered
    )
    produced = {c.ref for s in steps for c in s.outputs}
    sources = tuple(c for ref, c in sorted(checks.items()) if ref not in produced)
    return ReproduceReport(target, steps, sources, checks)


__all__ = ["InputCheck", "ReproduceReport", "Step", "check_provenance"]
