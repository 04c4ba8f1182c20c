"""Drift statistics checked against scipy.stats on known distributions, from data and from stored profiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from typer.testing import CliRunner

import datatrail
from datatrail import drift
from datatrail.cli.app import app
from datatrail.core.errors import InvalidInput

runner = CliRunner()


def write_table(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def sample(
    seed: int, n: int, mean: float = 0.0, scale: float = 1.0, colours: tuple[float, ...] = (0.2, 0.3, 0.5)
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(mean, scale, n),
            "u": rng.uniform(0, 10, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=list(colours)),
        }
    )


# ---------------------------------------------------------------- the statistics themselves


@pytest.mark.parametrize(("shift", "n", "m"), [(0.0, 500, 700), (0.3, 1000, 800), (1.0, 200, 3000)])
def test_ks_statistic_and_pvalue_match_scipy(shift: float, n: int, m: int) -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, n), rng.normal(shift, 1, m)
    d = drift.ks_statistic(drift.Numeric.from_values(a), drift.Numeric.from_values(b))
    assert d == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert drift.ks_pvalue(d, n, m) == pytest.approx(stats.kstwobign.sf(np.sqrt(n * m / (n + m)) * d), abs=1e-9)


@pytest.mark.parametrize(
    ("a", "b"),
    [([30, 50, 20], [10, 60, 40]), ([5, 5, 5, 5], [6, 4, 5, 5]), ([100, 1], [90, 11]), ([3, 0, 7], [0, 4, 6])],
)
def test_chi_square_and_jensen_shannon_match_scipy(a: list[int], b: list[int]) -> None:
    stat, dof, p = drift.chi_square(a, b)
    keep = [i for i in range(len(a)) if a[i] + b[i] > 0]
    expected = stats.chi2_contingency([[a[i] for i in keep], [b[i] for i in keep]], correction=False)
    assert (stat, dof) == (pytest.approx(expected.statistic), expected.dof)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)
    assert drift.js_distance(a, b) == pytest.approx(jensenshannon(a, b, base=2), abs=1e-12)


@pytest.mark.parametrize("dof", [1, 2, 5, 30, 200])
def test_chi_square_pvalues_match_scipy_over_the_range(dof: int) -> None:
    for x in np.linspace(0.01, 4 * dof + 40, 25):
        assert drift._gamma_q(dof / 2, x / 2) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_psi_follows_its_definition() -> None:
    e, a = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.25, 0.25, 0.25, 0.25])
    assert drift.psi(e, a) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert drift.psi(e, e) == 0.0
    # An empty bin is floored, not infinite.
    assert np.isfinite(drift.psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))


def test_psi_of_two_normals_approaches_its_closed_form() -> None:
    """PSI of N(0,1) vs N(mu,1) over fine bins tends to the symmetric KL divergence, mu^2."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 200_000), rng.normal(0.5, 1, 200_000)
    edges = np.linspace(-4, 4.5, 60)
    pa = np.histogram(a, np.concatenate([[-np.inf], edges, [np.inf]]))[0]
    pb = np.histogram(b, np.concatenate([[-np.inf], edges, [np.inf]]))[0]
    assert drift.psi(pa, pb) == pytest.approx(0.25, abs=0.01)


# ---------------------------------------------------------------- through the store


def test_exact_drift_matches_scipy_and_profiles_approximate_it(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    ref = sqlite_trail.add(write_table(workdir / "ref.csv", sample(1, 2000)), name="ref")
    cur = sqlite_trail.add(
        write_table(workdir / "cur.csv", sample(2, 1500, mean=0.6, colours=(0.4, 0.3, 0.3))), name="cur"
    )
    a, b = pd.read_csv(workdir / "ref.csv"), pd.read_csv(workdir / "cur.csv")
    exact = sqlite_trail.drift(ref, cur, exact=True)
    approx = sqlite_trail.drift(ref, cur)
    assert exact.method == "data" and approx.method == "profile"
    truth = stats.ks_2samp(a["x"], b["x"]).statistic
    assert exact.column("x")["ks"] == pytest.approx(truth, abs=1e-12)
    assert approx.column("x")["ks"] == pytest.approx(truth, abs=0.03)
    assert approx.column("x")["psi"] == pytest.approx(exact.column("x")["psi"], abs=0.05)
    counts_a = a["colour"].value_counts().reindex(["blue", "green", "red"]).to_numpy()
    counts_b = b["colour"].value_counts().reindex(["blue", "green", "red"]).to_numpy()
    chi = stats.chi2_contingency([counts_a, counts_b], correction=False)
    for report in (exact, approx):  # three categories: the top values are all of them
        assert report.column("colour")["chi2"] == pytest.approx(chi.statistic)
        assert report.column("colour")["chi2_pvalue"] == pytest.approx(chi.pvalue, rel=1e-6)
        assert report.column("colour")["js"] == pytest.approx(jensenshannon(counts_a, counts_b, base=2))
        assert {c["name"] for c in report.drifted_columns} == {"x", "colour"}
        assert not report.column("u")["drifted"]


def test_no_drift_between_samples_of_one_distribution(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    ref = sqlite_trail.add(write_table(workdir / "a.csv", sample(11, 3000)), name="a")
    cur = sqlite_trail.add(write_table(workdir / "b.csv", sample(12, 3000)), name="b")
    report = sqlite_trail.drift(ref, cur)
    assert not report.drifted, report.to_dict()
    assert all(c["psi"] < 0.05 for c in report.columns if c["kind"] == "numeric")


def test_schema_and_missing_value_drift(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    base = sample(5, 500)
    ref = sqlite_trail.add(write_table(workdir / "a.csv", base), name="a")
    changed = base.drop(columns=["u"]).assign(extra=1)
    changed.loc[: len(changed) // 5, "x"] = None
    cur = sqlite_trail.add(write_table(workdir / "b.csv", changed), name="b")
    report = sqlite_trail.drift(ref, cur)
    assert report.drifted
    assert [c["name"] for c in report.schema["removed"]] == ["u"]
    assert [c["name"] for c in report.schema["added"]] == ["extra"]
    x = report.column("x")
    assert x["missing"]["reference"] == 0.0 and x["missing"]["current"] == pytest.approx(101 / 500)
    assert any(r.startswith("missing") for r in x["reasons"])


def test_thresholds_are_checked(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    ref = sqlite_trail.add(write_table(workdir / "a.csv", sample(1, 300)), name="a")
    cur = sqlite_trail.add(write_table(workdir / "b.csv", sample(2, 300, mean=0.4)), name="b")
    loose = sqlite_trail.drift(ref, cur, thresholds={"psi": 50, "ks": 1, "js": 1, "missing": 1})
    assert not loose.drifted and loose.thresholds["psi"] == 50
    for bad in ({"psi": -1}, {"pvalue": 0.05}, {"ks": float("nan")}):
        with pytest.raises(InvalidInput, match="threshold"):
            sqlite_trail.drift(ref, cur, thresholds=bad)
    text = workdir / "notes.txt"
    text.write_text("not a table\n")
    notes = sqlite_trail.add(text, name="notes")
    with pytest.raises(InvalidInput, match="no profile"):
        sqlite_trail.drift(ref, notes)


def test_drift_command_exits_1_on_drift(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    sqlite_trail.add(write_table(workdir / "a.csv", sample(1, 1000)), name="a")
    sqlite_trail.add(write_table(workdir / "b.csv", sample(2, 1000)), name="b")
    sqlite_trail.add(write_table(workdir / "c.csv", sample(3, 1000, mean=1.0)), name="c")
    calm = runner.invoke(app, ["drift", "a", "b"])
    assert calm.exit_code == 0, calm.output
    assert "result: no drift" in calm.stdout
    alarm = runner.invoke(app, ["drift", "a", "c", "--json"])
    assert alarm.exit_code == 1
    body = json.loads(alarm.stdout)
    assert body["drifted"] and body["drifted_columns"] == ["x"]
    loose = runner.invoke(app, ["drift", "a", "c", "--threshold", "psi=100,ks=1", "-t", "missing=1"])
    assert loose.exit_code == 0, loose.output
    bad = runner.invoke(app, ["drift", "a", "c", "--threshold", "psi=high"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: invalid --threshold")
    exact = runner.invoke(app, ["drift", "a", "c", "--exact"])
    assert exact.exit_code == 1 and "from the data" in exact.stdout
    missing = runner.invoke(app, ["drift", "a"])
    assert missing.exit_code == 2 and "REFERENCE and CURRENT" in missing.stderr
