"""Validation rules: loading (YAML and Python), evaluation against real data, storage, events, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import datatrail
from datatrail.check_data import evaluate_table
from datatrail.checks import RULES as RULE_PARAMETERS
from datatrail.checks import load_rules
from datatrail.core.errors import InvalidInput
from datatrail.events import build_check_event, parse_event
from tests.conftest import write
from tests.test_cli import assert_one_line_error, cli, ok, ok_json
from tests.test_events import validate_event
from tests.test_profiling import penguins, record_events, store_state

RULES = """\
checks:
  - {rule: not_null, column: species, severity: error}
  - {rule: between, column: mass_g, min: 2000, max: 7000}
  - {rule: in_set, column: species, values: [Adelie, Chinstrap, Gentoo]}
  - {rule: row_count_between, min: 300, max: 500}
  - {rule: max_duplicate_fraction, value: 0.01, severity: warn}
  - {rule: matches, column: species, pattern: "[A-Z][a-z]+"}
  - {rule: type_is, column: year, type: integer}
  - {rule: column_exists, column: bill_mm}
  - {rule: max_missing_fraction, value: 0.5}
"""


def by_rule(results: Any) -> dict[str, Any]:
    return {(r["rule"] if isinstance(r, dict) else r.rule): r for r in results}


def test_every_rule_on_real_data(tmp_path: Path) -> None:
    df = penguins()
    df.loc[3, "mass_g"] = 9000.0
    df.loc[5, "species"] = "adelie"
    df["id"] = range(len(df))
    rules = load_rules(
        [
            {"rule": "not_null", "column": "island"},
            {"rule": "not_null", "column": "species", "name": "species present"},
            {"rule": "unique", "column": "id"},
            {"rule": "unique", "column": "year", "severity": "warn"},
            {"rule": "between", "column": "mass_g", "min": 2000, "max": 7000},
            {"rule": "in_set", "column": "species", "values": ["Adelie", "Chinstrap", "Gentoo"]},
            {"rule": "matches", "column": "species", "pattern": "[A-Z][a-z]+"},
            {"rule": "row_count_between", "min": 1, "max": 10},
            {"rule": "max_missing_fraction", "column": "island", "value": 0.1},
            {"rule": "max_duplicate_fraction", "value": 0.01},
            {"rule": "column_exists", "column": "sex"},
            {"rule": "type_is", "column": "mass_g", "type": "float"},
            {"rule": "type_is", "column": "year", "type": "string"},
        ]
    )
    for data in (df, pl.from_pandas(df), pa.Table.from_pandas(df, preserve_index=False)):
        results = evaluate_table(rules, data)
        got = [(r["rule"], r["column"], r["success"], r["observed"]) for r in results]
        assert got == [
            ("not_null", "island", False, int(df.island.isna().sum())),
            ("not_null", "species", True, 0),
            ("unique", "id", True, 0),
            ("unique", "year", False, len(df) - 3),
            ("between", "mass_g", False, 1),
            ("in_set", "species", False, 1),
            ("matches", "species", False, 1),
            ("row_count_between", None, False, len(df)),
            ("max_missing_fraction", "island", False, pytest.approx(df.island.isna().mean())),
            ("max_duplicate_fraction", None, True, 0.0),  # the id column makes every row unique
            ("column_exists", "sex", False, False),
            ("type_is", "mass_g", True, "double"),
            ("type_is", "year", False, "int64"),
        ]
        assert results[1]["name"] == "species present"
        assert results[3]["severity"] == "warn"


def test_callable_rules_get_the_table(tmp_path: Path) -> None:
    def heavy_penguins(table: pa.Table) -> tuple[bool, float]:
        mean = table.to_pandas().mass_g.mean()
        return bool(mean > 5000), float(mean)

    rules = load_rules([heavy_penguins, {"rule": "custom", "fn": lambda t: t.num_rows > 0, "name": "rows"}])
    results = evaluate_table(rules, penguins())
    assert results[0]["rule"] == "custom" and results[0]["name"] == "heavy_penguins"
    assert results[0]["success"] is False and results[0]["observed"] == pytest.approx(penguins().mass_g.mean())
    assert results[1]["success"] is True
    bad = load_rules([lambda t: "yes"])
    with pytest.raises(InvalidInput, match="must return a bool"):
        evaluate_table(bad, penguins())


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("checks:\n  - {rule: not_nul, column: species}\n", ("rules.yaml: check 1", "unknown rule 'not_nul'")),
        ("checks:\n  - {rule: not_null, colum: species}\n", ("check 1 (not_null)", "unknown key 'colum'")),
        ("checks:\n  - {rule: between, column: mass_g}\n", ("check 1 (between)", "needs 'min', 'max'")),
        ("checks:\n  - {rule: in_set, column: species}\n", ("check 1 (in_set)", "needs 'values'")),
        ("checks:\n  - {rule: not_null, column: x, severity: fatal}\n", ("severity 'fatal'",)),
        ("checks:\n  - {rule: between, column: x, min: low}\n", ("'min' must be a number",)),
        ("checks:\n  - {rule: matches, column: x, pattern: '('}\n", ("not a regular expression",)),
        ("checks:\n  - {rule: not_null, column: [x}\n", ("rules.yaml: line 2",)),
        ("rules:\n  - {rule: not_null}\n", ("one key, 'checks'",)),
        ("checks:\n  - {rule: not_null, column: nope}\n", ("check 1 (not_null)", "no column 'nope'")),
    ],
)
def test_bad_rules_are_one_line_errors_and_store_nothing(
    trail: datatrail.Trail, workdir: Path, text: str, fragments: tuple[str, ...]
) -> None:
    penguins().to_csv(workdir / "p.csv", index=False)
    trail.add("p.csv")
    write(workdir / "rules.yaml", text)
    before = store_state(trail)
    with pytest.raises(InvalidInput) as info:
        trail.check("p.csv", "rules.yaml")
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    assert_one_line_error(cli("check", "p.csv", "--rules", "rules.yaml"), *fragments)
    penguins(50).to_csv(workdir / "q.csv", index=False)
    with pytest.raises(InvalidInput):
        trail.add("q.csv", checks="rules.yaml")
    assert store_state(trail) == before
    assert trail.check_results("p.csv") == []


def test_check_stores_results_with_who_and_when(
    trail: datatrail.Trail, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = penguins()
    df.to_csv(workdir / "p.csv", index=False)
    trail.add("p.csv", name="raw")
    write(workdir / "rules.yaml", RULES)
    sent = record_events(trail, monkeypatch)
    report = trail.check("raw", "rules.yaml")
    assert report.passed is True  # the duplicate rule fails, but it only warns
    assert [r.rule for r in report.failed] == ["max_duplicate_fraction"]
    stored = trail.check_results("raw@1")
    assert len(stored) == 9
    dup = by_rule(stored)["max_duplicate_fraction"]
    assert dup.success is False and dup.severity == "warn"
    assert dup.observed == pytest.approx(df.duplicated().mean())
    assert dup.checked_by == trail.user and dup.checked_at is not None
    assert by_rule(stored)["row_count_between"].observed == len(df)
    # Out as the standard dataQualityAssertions facet, valid against its schema.
    assert len(sent) == 1
    assert validate_event(sent[0]) >= 2
    assertions = sent[0]["dataset"]["facets"]["dataQualityAssertions"]["assertions"]
    assert {"assertion": "not_null", "success": True, "severity": "error", "column": "species"}.items() <= assertions[
        0
    ].items()


def test_add_with_checks_stores_them_in_the_same_event(trail: datatrail.Trail, workdir: Path) -> None:
    penguins().to_csv(workdir / "p.csv", index=False)
    audit_before = len(trail._store.audit_log(1000))
    v = trail.add("p.csv", checks=[{"rule": "row_count_between", "min": 1000}])
    assert len(trail._store.audit_log(1000)) == audit_before + 1
    [result] = trail.check_results(v)
    assert result.success is False and result.observed == len(penguins())
    # Unchanged content with checks: the version stays, new results are added.
    again = trail.add("p.csv", checks=[{"rule": "not_null", "column": "species"}])
    assert again == v and len(trail.check_results(v)) == 2


def test_check_refuses_changed_or_missing_data_and_non_tabular(trail: datatrail.Trail, workdir: Path) -> None:
    penguins().to_csv(workdir / "p.csv", index=False)
    trail.add("p.csv")
    write(workdir / "p.csv", "species\nx\n")
    rules = [{"rule": "not_null", "column": "species"}]
    with pytest.raises(InvalidInput, match=r"changed since p\.csv@1"):
        trail.check("p.csv@1", rules)
    (workdir / "p.csv").unlink()
    with pytest.raises(InvalidInput, match="is gone"):
        trail.check("p.csv@1", rules)
    write(workdir / "m.bin", b"\x00")
    trail.add("m.bin")
    with pytest.raises(InvalidInput, match="need tabular data"):
        trail.check("m.bin", rules)


def test_check_results_come_back_from_events() -> None:
    results = [
        {
            "rule": "between",
            "name": None,
            "column": "x",
            "severity": "warn",
            "success": False,
            "observed": 3,
            "expected": "0 values outside [0, 1]",
            "message": None,
            "checked_by": "ada",
        }
    ]
    event = json.loads(json.dumps(build_check_event("default", "raw", "sha256:" + "a" * 64, results)))
    validate_event(event)
    [ds] = parse_event(event, "ada").datasets
    assert ds.checks[0]["observed"] == 3 and ds.checks[0]["severity"] == "warn"
    # Another producer's dataQualityAssertions are kept too.
    event["dataset"]["facets"].pop("datatrail_checks")
    [ds] = parse_event(event, "ada").datasets
    assert ds.checks[0]["rule"] == "between" and ds.checks[0]["success"] is False


def test_check_cli_table_json_and_exit_status(trail: datatrail.Trail, workdir: Path) -> None:
    df = pd.DataFrame({"species": ["Adelie", "Gentoo", None], "mass": [3000, 9000, 4000]})
    df.to_csv(workdir / "p.csv", index=False)
    ok("add", "p.csv")
    write(workdir / "warn.yaml", "checks:\n  - {rule: not_null, column: species, severity: warn}\n")
    out = ok("check", "p.csv", "--rules", "warn.yaml")
    assert "1 check, 1 failed" in out and "FAIL" in out
    write(workdir / "err.yaml", "checks:\n  - {rule: between, column: mass, min: 2000, max: 7000}\n")
    result = cli("check", "p.csv", "--rules", "err.yaml")
    assert result.exit_code == 1
    assert "between" in result.stdout and "FAIL" in result.stdout
    # The same rules with the same results again: the stored evaluation, nothing stored twice.
    data = json.loads(cli("check", "p.csv", "--rules", "err.yaml", "--json").stdout)
    assert data["passed"] is False and data["results"][0]["observed"] == 1
    assert [c["rule"] for c in ok_json("show", "p.csv")["checks"]] == ["not_null", "between"]
    ok("check", "p.csv", "--rules", "warn.yaml")  # not the latest evaluation's rules: stored
    shown = ok_json("show", "p.csv")
    assert [c["rule"] for c in shown["checks"]] == ["not_null", "between", "not_null"]
    text = ok("show", "p.csv")
    assert "checks (the latest of 3 results" in text


def test_add_with_checks_on_the_cli(trail: datatrail.Trail, workdir: Path) -> None:
    pd.DataFrame({"species": ["Adelie", "Gentoo"], "mass": [3000, 9000]}).to_csv(workdir / "p.csv", index=False)
    write(workdir / "warn.yaml", "checks:\n  - {rule: not_null, column: species, severity: warn}\n")
    out = ok("add", "p.csv", "--checks", "warn.yaml")
    assert "p.csv@1" in out and "(new)" in out and "1 check, 0 failed" in out
    write(workdir / "err.yaml", "checks:\n  - {rule: between, column: mass, min: 2000, max: 7000}\n")
    result = cli("add", "p.csv", "--checks", "err.yaml", "--json")
    assert result.exit_code == 1  # the version is recorded, the failed rule is reported
    data = json.loads(result.stdout)
    assert data["status"] == "unchanged" and data["checks"]["passed"] is False
    assert data["checks"]["results"][0]["observed"] == 1
    assert [c["rule"] for c in ok_json("show", "p.csv")["checks"]] == ["not_null", "between"]
    write(workdir / "typo.yaml", "checks:\n  - {rule: not_nul, column: species}\n")
    pd.DataFrame({"species": ["x"], "mass": [1]}).to_csv(workdir / "p.csv", index=False)
    assert_one_line_error(cli("add", "p.csv", "--checks", "typo.yaml"), "unknown rule 'not_nul'")
    assert len(trail.versions("p.csv")) == 1  # a bad rules file stores nothing


def test_the_unknown_rule_message_names_only_rules_the_source_can_hold(tmp_path: Path) -> None:
    """A rules file cannot hold a Python callable: `custom` is not offered there, and naming it says why."""
    write(tmp_path / "rules.yaml", "checks:\n  - {rule: not_nul, column: x}\n")
    with pytest.raises(InvalidInput) as from_file:
        load_rules(tmp_path / "rules.yaml")
    assert "use one of between," in str(from_file.value) and "custom" not in str(from_file.value)
    write(tmp_path / "custom.yaml", "checks:\n  - {rule: custom, fn: heavy}\n")
    with pytest.raises(InvalidInput, match="a custom rule is a Python callable, which a rules file cannot hold"):
        load_rules(tmp_path / "custom.yaml")
    with pytest.raises(InvalidInput) as from_python:
        load_rules([{"rule": "not_nul", "column": "x"}])
    assert "or a callable (or {rule: custom, fn: callable})" in str(from_python.value)
    # What the message offers is documented, custom included.
    quality = (Path(__file__).resolve().parents[1] / "docs" / "quality.md").read_text()
    for rule in RULE_PARAMETERS:
        assert f"| `{rule}`" in quality, f"docs/quality.md does not document the rule {rule}"
