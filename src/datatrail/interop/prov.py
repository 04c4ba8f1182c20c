"""W3C PROV for a version and everything upstream of it, with the ``prov`` package.

Versions are entities, runs are activities, the people who ran and added
things are agents; ``used``, ``wasGeneratedBy``, ``wasAssociatedWith``,
``wasDerivedFrom`` (each output from each input of its run) and
``wasAttributedTo`` (a version to who created it) link them. Identifiers are
percent-encoded refs in the ``version:``, ``run:`` and ``user:`` namespaces;
``prov:label`` carries the readable ref.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from datatrail.core.errors import DatatrailError, InvalidInput
from datatrail.core.model import Ref, Run, Version
from datatrail.interop.common import version_id, walk_upstream

if TYPE_CHECKING:
    from prov.model import ProvDocument

    from datatrail.service import Trail

DT = "https://github.com/datatrail/datatrail/blob/main/docs/interop.md#"
FORMATS = ("json", "provn", "xml", "rdf")


def _id(kind: str, text: str) -> str:
    return f"{kind}:{quote(text, safe='')}"


def _attrs(pairs: dict[str, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in pairs.items():
        if value is None or value == {} or value == "":
            continue
        out[key] = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
    return out


def build_document(trail: Trail, ref: str | Ref | Version) -> ProvDocument:
    """A ProvDocument of ``ref`` and its upstream lineage."""
    try:
        from prov.model import PROV, PROV_LABEL, PROV_TYPE, ProvDocument
    except ImportError:
        msg = "PROV export needs the prov package: pip install 'datatrail[prov]'"
        raise DatatrailError(msg) from None
    up = walk_upstream(trail, ref)
    doc = ProvDocument()
    dt = doc.add_namespace("dt", DT)
    doc.add_namespace("version", "urn:datatrail:version:")
    doc.add_namespace("run", "urn:datatrail:run:")
    doc.add_namespace("user", "urn:datatrail:user:")
    agents: set[str] = set()

    def agent(name: str | None) -> str | None:
        if not name:
            return None
        ident = _id("user", name)
        if ident not in agents:
            agents.add(ident)
            doc.agent(ident, {PROV_TYPE: PROV["Person"], PROV_LABEL: name})
        return ident

    for key, v in up.versions.items():
        doc.entity(
            _id("version", key),
            {
                PROV_TYPE: dt["Model"] if v.kind == "model" else dt["Dataset"],
                PROV_LABEL: v.ref if v.namespace == "default" else key,
                **_attrs(
                    {
                        "dt:namespace": v.namespace,
                        "dt:name": v.name,
                        "dt:number": v.number,
                        "dt:digest": str(v.digest) if v.digest else None,
                        "dt:size": v.size,
                        "dt:uri": v.uri,
                        "dt:format": v.format,
                        "dt:createdAt": v.created_at.isoformat(),
                    }
                ),
            },
        )
        who = agent(v.created_by)
        if who is not None:
            doc.wasAttributedTo(_id("version", key), who)
    for run in up.runs.values():
        _add_run(doc, run, agent, dt["Run"])
    return doc


def _add_run(doc: ProvDocument, run: Run, agent: Any, run_type: Any) -> None:
    from prov.model import PROV_LABEL, PROV_TYPE

    act = _id("run", run.id)
    doc.activity(
        act,
        run.started_at,
        run.ended_at,
        {
            PROV_TYPE: run_type,
            PROV_LABEL: f"{run.job} {run.id}",
            **_attrs(
                {
                    "dt:job": run.job,
                    "dt:namespace": run.namespace,
                    "dt:state": run.state.value,
                    "dt:command": run.command,
                    "dt:host": run.host,
                    "dt:params": run.params,
                    "dt:commit": run.code.get("commit"),
                }
            ),
        },
    )
    who = agent(run.user)
    if who is not None:
        doc.wasAssociatedWith(act, who)
    for v in run.inputs:
        doc.used(act, _id("version", version_id(v)))
    for out in run.outputs:
        doc.wasGeneratedBy(_id("version", version_id(out)), act, run.ended_at)
        for v in run.inputs:
            doc.wasDerivedFrom(_id("version", version_id(out)), _id("version", version_id(v)), act)


def export_prov(trail: Trail, ref: str | Ref | Version, fmt: str = "json") -> str:
    """PROV of ``ref`` and its upstream lineage as PROV-JSON (``json``), PROV-N (``provn``), PROV-XML or RDF.

    >>> text = export_prov(trail, "clean/penguins@2", "provn")  # doctest: +SKIP
    """
    if fmt not in FORMATS:
        msg = f"invalid PROV format {fmt!r}: use {', '.join(FORMATS)}"
        raise InvalidInput(msg)
    doc = build_document(trail, ref)
    if fmt == "provn":
        return str(doc.get_provn()) + "\n"
    text = doc.serialize(format=fmt, indent=2) if fmt == "json" else doc.serialize(format=fmt)
    return str(text) + ("" if str(text).endswith("\n") else "\n")
