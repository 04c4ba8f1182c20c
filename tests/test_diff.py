"""datatrail diff: schema, rows, column statistics and files between two versions, on every store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import datatrail
from datatrail.core.errors import NotFound
from tests.conftest import write
from tests.test_cli import assert_one_line_error, cli, ok, ok_json
from tests.test_profiling import penguins


def test_diff_of_two_tabular_versions(trail: datatrail.Trail, workdir: Path) -> None:
    df = penguins()
    df.to_csv(workdir / "p.csv", index=False)
    trail.add("p.csv", name="raw")
    changed = df.drop(columns=["year"]).assign(sex="male", mass_g=df.mass_g.fillna(0).astype("int64")).iloc[:300]
    changed.to_csv(workdir / "p.csv", index=False)
    trail.add("p.csv", name="raw")
    d = trail.diff("raw@1", "raw@2")
    assert d["same_content"] is False and d["profiled"] is True
    assert d["schema"]["added"] == [{"name": "sex", "type": "string"}]
    assert d["schema"]["removed"] == [{"name": "year", "type": "int64"}]
    assert d["schema"]["retyped"] == [{"name": "mass_g", "a": "double", "b": "int64"}]
    rows = d["table"]["row_count"]
    assert (rows["a"], rows["b"], rows["change"]) == (len(df), 300, 300 - len(df))
    changes = {c["name"]: c["changes"] for c in d["columns"]}
    assert changes["mass_g"]["null_count"] == {
        "a": int(df.mass_g.isna().sum()),
        "b": 0,
        "change": -int(df.mass_g.isna().sum()),
        "relative": -1.0,
    }
    assert "island" in changes and not changes.get("species")  # same nulls, distinct, min and max
    assert "year" not in changes and "sex" not in changes
    assert d["files"] is None
    same = trail.diff("raw@2", "raw@latest")
    assert (
        same["same_content"] is True
        and same["columns"] == []
        and same["schema"]
        == {
            "added": [],
            "removed": [],
            "retyped": [],
        }
    )


def test_diff_of_directory_versions_lists_files(trail: datatrail.Trail, workdir: Path) -> None:
    (workdir / "parts").mkdir()
    for i in range(3):
        pd.DataFrame({"x": [i, i + 1]}).to_csv(workdir / "parts" / f"p{i}.csv", index=False)
    trail.add("parts")
    pd.DataFrame({"x": [9, 9, 9]}).to_csv(workdir / "parts" / "p1.csv", index=False)
    (workdir / "parts" / "p2.csv").unlink()
    pd.DataFrame({"x": [7]}).to_csv(workdir / "parts" / "p3.csv", index=False)
    trail.add("parts")
    d = trail.diff("parts@1", "parts@2")
    assert d["files"] == {"added": ["p3.csv"], "removed": ["p2.csv"], "changed": ["p1.csv"], "unchanged": 1}
    assert d["table"]["row_count"] == {"a": 6, "b": 6, "change": 0, "relative": 0.0}
    assert {c["name"] for c in d["columns"]} == {"x"}


def test_diff_without_profiles_compares_what_it_can(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "m.bin", b"\x00")
    trail.add("m.bin")
    write(workdir / "m.bin", b"\x00\x01")
    trail.add("m.bin")
    d = trail.diff("m.bin@1", "m.bin@2")
    assert d["profiled"] is False and d["schema"] is None and d["size"]["change"] == 1
    with pytest.raises(NotFound):
        trail.diff("m.bin@1", "m.bin@3")


def test_diff_cli_text_and_json(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "t.csv", "a,b\n1,x\n2,y\n")
    ok("add", "t.csv")
    write(workdir / "t.csv", "a,c\n1,5\n2,6\n3,7\n")
    ok("add", "t.csv")
    text = ok("diff", "t.csv@1", "t.csv@2")
    assert "rows: 2 -> 3 (+1)" in text
    assert "+ column c (int64)" in text and "- column b (string)" in text
    assert any(line.split()[:2] == ["a", "max"] for line in text.splitlines())
    data = ok_json("diff", "t.csv@1", "t.csv@2")
    assert data["table"]["row_count"]["change"] == 1
    assert data["a"]["ref"] == "t.csv@1" and data["b"]["ref"] == "t.csv@2"
    assert_one_line_error(cli("diff", "t.csv@1", "t.csv@9"), "has no version '9'")
    assert "same content" in ok("diff", "t.csv@2", "t.csv@latest")


def test_diff_compares_top_values_and_histograms(trail: datatrail.Trail, workdir: Path) -> None:
    before = pd.DataFrame({"species": ["Adelie"] * 60 + ["Gentoo"] * 40, "mass": [float(i) for i in range(100)]})
    after = pd.DataFrame({"species": ["Adelie"] * 30 + ["Chinstrap"] * 70, "mass": [float(i) + 50 for i in range(100)]})
    before.to_csv(workdir / "m.csv", index=False)
    trail.add("m.csv", name="m")
    after.to_csv(workdir / "m.csv", index=False)
    trail.add("m.csv", name="m")
    cols = {c["name"]: c for c in trail.diff("m@1", "m@2")["columns"]}
    top = cols["species"]["top_values"]
    assert top["added"] == [{"value": "Chinstrap", "count": 70}]
    assert top["removed"] == [{"value": "Gentoo", "count": 40}]
    assert top["changed"] == [{"value": "Adelie", "a": 60, "b": 30}]
    hist = cols["mass"]["histogram"]
    assert hist["distance"] == pytest.approx(0.5, abs=0.02)  # half of the mass moved out of the old range
    assert "top_values" not in cols["mass"]  # every value unique: no top values to compare
    text = ok("diff", "m@1", "m@2")
    assert "species top values: +Chinstrap (70), -Gentoo (40), Adelie 60 -> 30" in text
    assert "mass histogram moved: distance 0.5" in text


def test_histogram_distance() -> None:
    from datatrail.diff import histogram_distance

    same = {"edges": [0.0, 1.0, 2.0], "counts": [5, 5]}
    assert histogram_distance(same, {"edges": [0.0, 1.0, 2.0], "counts": [50, 50]}) == 0.0
    assert histogram_distance(same, {"edges": [10.0, 11.0], "counts": [3]}) == 1.0
    assert histogram_distance(same, {"edges": [0.0, 1.0], "counts": [4]}) == 0.5
    assert histogram_distance(same, {"edges": [], "counts": []}) is None
