"""Apache Atlas v2 bulk entity bodies: DataSet and Process entities whose references all resolve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.interop.atlas import export_atlas
from tests.interop_pipeline import build_pipeline

runner = CliRunner()


def check_body(body: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The structure Atlas's POST /api/atlas/v2/entity/bulk accepts; every reference defined in the body."""
    assert set(body) == {"entities"}
    defined: dict[str, dict[str, Any]] = {}
    guids = set()
    for e in body["entities"]:
        assert e["typeName"] in ("DataSet", "Process")
        assert e["guid"].startswith("-") and e["guid"] not in guids
        guids.add(e["guid"])
        attrs = e["attributes"]
        assert isinstance(attrs["qualifiedName"], str) and isinstance(attrs["name"], str)
        assert attrs["qualifiedName"] not in defined
        defined[attrs["qualifiedName"]] = e
        assert all(isinstance(v, str) for v in e.get("customAttributes", {}).values())
    processes = [e for e in body["entities"] if e["typeName"] == "Process"]
    for p in processes:
        for ref in p["attributes"]["inputs"] + p["attributes"]["outputs"]:
            assert set(ref) == {"typeName", "uniqueAttributes"}
            assert ref["typeName"] == "DataSet"
            assert defined[ref["uniqueAttributes"]["qualifiedName"]]["typeName"] == "DataSet"
    return defined, processes


def test_ref_exports_its_upstream(trail: datatrail.Trail, workdir: Path) -> None:
    v = build_pipeline(trail, workdir)
    defined, processes = check_body(export_atlas(trail, "features"))
    assert set(defined) == {
        "default:raw/penguins@1",
        "default:clean/penguins@1",
        "default:features@1",
        f"default:clean@{v['clean'].run_id}",
        f"default:features@{v['features'].run_id}",
    }
    clean = defined[f"default:clean@{v['clean'].run_id}"]["attributes"]
    assert [i["uniqueAttributes"]["qualifiedName"] for i in clean["inputs"]] == ["default:raw/penguins@1"]
    assert [o["uniqueAttributes"]["qualifiedName"] for o in clean["outputs"]] == ["default:clean/penguins@1"]
    raw = defined["default:raw/penguins@1"]
    assert raw["customAttributes"]["datatrail.digest"] == str(v["raw"].digest)
    assert len(processes) == 2


def test_all_exports_every_version_and_run(trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    build_pipeline(trail, workdir)
    (workdir / "data" / "raw.csv").write_text("id,bill_length_mm,bill_depth_mm\n9,1,2\n")
    trail.add(workdir / "data" / "raw.csv", name="raw/penguins")
    out = tmp_path / "atlas.json"
    result = runner.invoke(app, ["export", "atlas", "--all", "-o", str(out)])
    assert result.exit_code == 0, result.output
    defined, processes = check_body(json.loads(out.read_text()))
    assert "default:raw/penguins@2" in defined and len(processes) == 2
    assert len([e for e in defined.values() if e["typeName"] == "DataSet"]) == 4
    for args in (["export", "atlas"], ["export", "atlas", "features", "--all"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "either a REF or --all" in result.stderr
