"""W3C PROV export, loaded back with the prov package."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from prov.model import (
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvAttribution,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvUsage,
)
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import InvalidInput
from datatrail.interop.prov import export_prov
from tests.interop_pipeline import build_pipeline

runner = CliRunner()


def ent(ref: str) -> str:
    return "version:" + quote(f"default:{ref}", safe="")


def pairs(doc: ProvDocument, kind: type) -> set[tuple[str, ...]]:
    return {tuple(str(a) for a in r.args[:2]) for r in doc.get_records(kind)}


def test_prov_json_loads_back_with_every_relation(trail: datatrail.Trail, workdir: Path) -> None:
    v = build_pipeline(trail, workdir)
    doc = ProvDocument.deserialize(content=export_prov(trail, "features", "json"), format="json")
    clean_run = trail.get_run(str(v["clean"].run_id))
    features_run = trail.get_run(str(v["features"].run_id))
    c_act, f_act = f"run:{clean_run.id}", f"run:{features_run.id}"
    entities = {str(r.identifier) for r in doc.get_records(ProvEntity)}
    assert entities == {ent("raw/penguins@1"), ent("clean/penguins@1"), ent("features@1")}
    assert {str(r.identifier) for r in doc.get_records(ProvActivity)} == {c_act, f_act}
    assert {str(r.identifier) for r in doc.get_records(ProvAgent)} == {f"user:{trail.user}", "user:ada"}
    assert pairs(doc, ProvUsage) == {(c_act, ent("raw/penguins@1")), (f_act, ent("clean/penguins@1"))}
    assert pairs(doc, ProvGeneration) == {(ent("clean/penguins@1"), c_act), (ent("features@1"), f_act)}
    assert pairs(doc, ProvDerivation) == {
        (ent("clean/penguins@1"), ent("raw/penguins@1")),
        (ent("features@1"), ent("clean/penguins@1")),
    }
    assert pairs(doc, ProvAssociation) == {(c_act, f"user:{trail.user}"), (f_act, "user:ada")}
    assert (ent("raw/penguins@1"), f"user:{trail.user}") in pairs(doc, ProvAttribution)
    raw = next(r for r in doc.get_records(ProvEntity) if str(r.identifier) == ent("raw/penguins@1"))
    digests = {str(v) for k, v in raw.attributes if str(k) == "dt:digest"}
    assert digests == {str(v["raw"].digest)}


def test_prov_of_a_source_has_no_activity(trail: datatrail.Trail, workdir: Path) -> None:
    build_pipeline(trail, workdir)
    doc = ProvDocument.deserialize(content=export_prov(trail, "raw/penguins", "json"), format="json")
    assert [str(r.identifier) for r in doc.get_records(ProvEntity)] == [ent("raw/penguins@1")]
    assert list(doc.get_records(ProvActivity)) == []


def test_provn_and_cli(trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    build_pipeline(trail, workdir)
    text = export_prov(trail, "features@1", "provn")
    assert text.startswith("document") and "wasDerivedFrom(" in text and "used(" in text
    out = tmp_path / "features.provn"
    result = runner.invoke(app, ["export", "prov", "features@1", "--format", "provn", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == text
    result = runner.invoke(app, ["export", "prov", "features"])
    assert result.exit_code == 0
    ProvDocument.deserialize(content=result.stdout, format="json")
    result = runner.invoke(app, ["export", "prov"])
    assert result.exit_code == 2 and "give the version to export" in result.stderr
    result = runner.invoke(app, ["export", "prov", "nope", "-o", str(tmp_path / "nope.json")])
    assert result.exit_code == 3 and result.stderr.count("\n") == 1
    assert not (tmp_path / "nope.json").exists()
    with pytest.raises(InvalidInput, match="invalid PROV format"):
        export_prov(trail, "features", "ttl")
