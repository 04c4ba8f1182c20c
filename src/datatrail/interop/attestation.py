"""Supply-chain provenance: an in-toto Statement v1 with a SLSA provenance v1 predicate, and its check.

The subject is a version (``namespace:name@number``) with its SHA-256; the
build definition is the run that produced it (job, parameters, command), its
resolved dependencies the run's input versions with their digests and the
code commit. :func:`verify_statement` checks each subject and dependency
against the store and, where the data is on disk at its uri, against the data.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.model import Ref, Run, Version
from datatrail.events import PRODUCER
from datatrail.interop.common import version_id

if TYPE_CHECKING:
    from datatrail.service import Trail

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://github.com/datatrail/datatrail/blob/main/docs/interop.md#attestation-run-v1"
DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _descriptor(v: Version) -> dict[str, Any]:
    out: dict[str, Any] = {"name": version_id(v)}
    if v.uri:
        out["uri"] = v.uri
    if v.digest is not None:
        out["digest"] = {v.digest.algorithm: v.digest.hex}
    else:
        out["annotations"] = {"versionKey": v.key}
    return out


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def build_statement(trail: Trail, ref: str | Ref | Version) -> dict[str, Any]:
    """The in-toto Statement (SLSA provenance v1) of one version.

    >>> statement = build_statement(trail, "clean/penguins@2")  # doctest: +SKIP
    >>> statement["subject"][0]["digest"]["sha256"][:12]          # doctest: +SKIP
    '9f86d081884c'
    """
    version = trail.get(ref)
    if version.digest is None:
        msg = f"{version.ref} has no SHA-256 digest (it is known by reference only); add its data to attest it"
        raise InvalidInput(msg)
    run: Run | None = trail.get_run(version.run_id) if version.run_id else None
    external: dict[str, Any] = {}
    internal: dict[str, Any] = {}
    deps: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    if run is not None:
        external = {"job": {"namespace": run.namespace, "name": run.job}, "params": run.params, "command": run.command}
        internal = {
            k: v
            for k, v in {
                "user": run.user,
                "host": run.host,
                "cwd": run.cwd,
                "state": run.state.value,
                "workflow": run.workflow,
            }.items()
            if v is not None
        }
        deps = [_descriptor(v) for v in run.inputs]
        commit = run.code.get("commit")
        if isinstance(commit, str) and commit:
            source: dict[str, Any] = {"name": "source", "digest": {"gitCommit": commit}}
            if run.code.get("remote"):
                source["uri"] = f"git+{run.code['remote']}@{commit}"
            deps.append(source)
        metadata = {
            "invocationId": f"run:{run.id}",
            "startedOn": _iso(run.started_at),
            "finishedOn": _iso(run.ended_at),
        }
    else:
        external = {"added": {"uri": version.uri, "by": version.created_by}}
    byproducts = [_descriptor(v) for v in (run.outputs if run else ()) if version_id(v) != version_id(version)]
    run_details: dict[str, Any] = {"builder": {"id": PRODUCER}, "metadata": {k: v for k, v in metadata.items() if v}}
    if byproducts:
        run_details["byproducts"] = byproducts
    return {
        "_type": STATEMENT_TYPE,
        "subject": [_descriptor(version)],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": internal,
                "resolvedDependencies": deps,
            },
            "runDetails": run_details,
        },
    }


@dataclass(frozen=True)
class Check:
    """One subject or dependency of a statement, checked."""

    role: str  # "subject" or "dependency"
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class AttestationReport:
    """The checks of one statement; ``ok`` when nothing failed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}


def load_statement(text: str, source: str = "the attestation") -> dict[str, Any]:
    """A statement from JSON: a bare in-toto Statement or a DSSE envelope holding one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = (
            f"{source} is not JSON ({exc.msg} at line {exc.lineno}); give the file `datatrail export attestation` wrote"
        )
        raise InvalidInput(msg) from None
    if isinstance(doc, dict) and doc.get("payloadType") == DSSE_PAYLOAD_TYPE and isinstance(doc.get("payload"), str):
        try:
            doc = json.loads(base64.b64decode(doc["payload"]))
        except ValueError:
            msg = f"{source}: the DSSE payload is not base64-encoded JSON"
            raise InvalidInput(msg) from None
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") != PREDICATE_TYPE:
        msg = f"{source} is not an in-toto Statement v1 ({STATEMENT_TYPE}) with a SLSA provenance v1 predicate"
        raise InvalidInput(msg)
    if not isinstance(doc.get("subject"), list) or not doc["subject"]:
        msg = f"{source} has no subject"
        raise InvalidInput(msg)
    return doc


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _local(uri: str | None) -> Path | None:
    parsed = urlparse(uri or "")
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _check(trail: Trail, role: str, item: Any, use_cache: bool) -> Check | None:
    if not isinstance(item, dict):
        return Check(role, repr(item), False, "not a resource descriptor (an object with name and digest)")
    name = item.get("name")
    digest = _obj(item.get("digest"))
    expected = digest.get("sha256")
    if role == "dependency" and expected is None:
        return None  # the source commit, or an input known by reference only: nothing to compare
    if not isinstance(name, str) or not isinstance(expected, str):
        return Check(role, str(name), False, "needs a name and a sha256 digest")
    try:
        version = trail.get(Ref.parse(name))
    except (NotFound, InvalidInput) as exc:
        return Check(role, name, False, f"not in the store ({exc.message})")
    if version.digest is None or version.digest.hex != expected:
        stored = str(version.digest) if version.digest else "no digest"
        return Check(role, name, False, f"the store has {stored}, the statement says sha256:{expected}")
    path = _local(version.uri)
    if path is None or not path.exists():
        return Check(role, name, True, "matches the store (data not on disk here)")
    actual = trail.hash(path, use_cache=use_cache).digest
    if actual.hex != expected:
        return Check(
            role, name, False, f"the data at {os.fspath(path)} is {actual}, the statement says sha256:{expected}"
        )
    return Check(role, name, True, "matches the store and the data")


def verify_statement(trail: Trail, statement: dict[str, Any], *, use_cache: bool = True) -> AttestationReport:
    """Check every subject and sha256 dependency of a statement against the store and the data on disk."""
    report = AttestationReport()
    for item in statement["subject"]:
        found = _check(trail, "subject", item, use_cache)
        if found is not None:
            report.checks.append(found)
    build = _obj(_obj(statement.get("predicate")).get("buildDefinition"))
    deps = build.get("resolvedDependencies")
    deps = deps if isinstance(deps, list) else []
    for item in deps:
        found = _check(trail, "dependency", item, use_cache)
        if found is not None:
            report.checks.append(found)
    return report
