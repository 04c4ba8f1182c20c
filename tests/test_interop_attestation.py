"""in-toto Statement v1 / SLSA provenance v1 export, and verify-attestation against the store and the data."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import InvalidInput
from datatrail.interop.attestation import build_statement, load_statement, verify_statement
from tests.interop_pipeline import build_pipeline

runner = CliRunner()


def test_statement_names_the_subject_its_inputs_and_the_run(trail: datatrail.Trail, workdir: Path) -> None:
    v = build_pipeline(trail, workdir)
    s = build_statement(trail, "clean/penguins")
    assert s["_type"] == "https://in-toto.io/Statement/v1"
    assert s["predicateType"] == "https://slsa.dev/provenance/v1"
    assert s["subject"] == [
        {"name": "default:clean/penguins@1", "uri": v["clean"].uri, "digest": {"sha256": v["clean"].digest.hex}}  # type: ignore[union-attr]
    ]
    build = s["predicate"]["buildDefinition"]
    run = trail.get_run(str(v["clean"].run_id))
    assert build["externalParameters"] == {
        "job": {"namespace": "default", "name": "clean"},
        "params": {"dropna": True},
        "command": run.command,
    }
    assert build["resolvedDependencies"][0] == {
        "name": "default:raw/penguins@1",
        "uri": v["raw"].uri,
        "digest": {"sha256": v["raw"].digest.hex},  # type: ignore[union-attr]
    }
    assert s["predicate"]["runDetails"]["metadata"]["invocationId"] == f"run:{run.id}"
    assert verify_statement(trail, s).ok


def test_tampered_digests_and_data_are_named(trail: datatrail.Trail, workdir: Path) -> None:
    build_pipeline(trail, workdir)
    good = build_statement(trail, "features")
    bad = json.loads(json.dumps(good))
    bad["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"] = "0" * 64
    report = verify_statement(trail, bad)
    assert not report.ok and [c.name for c in report.failed] == ["default:clean/penguins@1"]
    assert "the statement says sha256:000000" in report.failed[0].detail
    (workdir / "data" / "features.csv").write_text("id,bill_ratio\n1,9.99\n")
    report = verify_statement(trail, good, use_cache=False)
    assert [c.name for c in report.failed] == ["default:features@1"] and "the data at" in report.failed[0].detail
    (workdir / "data" / "features.csv").unlink()
    assert verify_statement(trail, good).ok  # data not on disk: checked against the store only
    gone = json.loads(json.dumps(good))
    gone["subject"][0]["name"] = "default:nothing@1"
    assert [c.detail.split(" (")[0] for c in verify_statement(trail, gone).failed] == ["not in the store"]


def test_a_version_without_sha256_cannot_be_attested(trail: datatrail.Trail) -> None:
    event = {
        "eventTime": "2024-01-01T00:00:00Z",
        "producer": "https://example.com/p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {
            "namespace": "default",
            "name": "remote",
            "facets": {
                "version": {
                    "_producer": "https://example.com/p",
                    "_schemaURL": "https://example.com/s",
                    "datasetVersion": "v7",
                }
            },
        },
    }
    trail.ingest(event)
    with pytest.raises(InvalidInput, match="has no SHA-256 digest"):
        build_statement(trail, "remote")


def test_load_statement_accepts_dsse_and_refuses_other_documents(trail: datatrail.Trail, workdir: Path) -> None:
    build_pipeline(trail, workdir)
    s = build_statement(trail, "features")
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(json.dumps(s).encode()).decode(),
        "signatures": [],
    }
    assert load_statement(json.dumps(envelope)) == s
    for text, message in (
        ("{", "is not JSON"),
        ('{"_type": "x"}', "not an in-toto Statement v1"),
        (json.dumps({**s, "subject": []}), "has no subject"),
    ):
        with pytest.raises(InvalidInput, match=message):
            load_statement(text)


def test_cli_export_and_verify(trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    build_pipeline(trail, workdir)
    out = tmp_path / "features.intoto.json"
    result = runner.invoke(app, ["export", "attestation", "features", "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["verify-attestation", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("ok") == 2
    statement = json.loads(out.read_text())
    statement["subject"][0]["digest"]["sha256"] = "f" * 64
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(statement))
    result = runner.invoke(app, ["verify-attestation", str(tampered)])
    assert result.exit_code == 1
    assert "MISMATCH subject default:features@1" in result.stdout
    assert result.stderr == "error: 1 of 2 did not match: default:features@1\n"
    result = runner.invoke(app, ["verify-attestation", str(tampered), "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["ok"] is False
    result = runner.invoke(app, ["verify-attestation", str(tmp_path / "missing.json")])
    assert result.exit_code == 3 and result.stderr.count("\n") == 1
