"""The datatrail quickstart: a real pipeline on the embedded store.

It creates a store, registers a raw dataset, runs two transformations that
record their inputs, outputs, parameters and metrics, tags a version, and
prints what datatrail now knows: datasets, a run, the lineage, a verification.

Run it with ``python examples/quickstart.py [FOLDER]`` (default: a new
temporary folder); it needs nothing but datatrail. ``scripts/demo`` runs the
bigger ML pipeline, ``datatrail demo``.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import datatrail

SPECIES = {"Adelie": (38.8, 18.3, 190, 3700), "Chinstrap": (48.8, 18.4, 196, 3733), "Gentoo": (47.5, 15.0, 217, 5076)}
COLUMNS = ["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


def make_raw(path: Path, rows: int = 344, seed: int = 7) -> None:
    """A penguins-like table with a few missing values, the same every run."""
    rng = random.Random(seed)
    islands = {"Adelie": ["Torgersen", "Biscoe", "Dream"], "Chinstrap": ["Dream"], "Gentoo": ["Biscoe"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for _ in range(rows):
            sp = rng.choice(list(SPECIES))
            bl, bd, fl, bm = SPECIES[sp]
            row = [
                sp,
                rng.choice(islands[sp]),
                round(rng.gauss(bl, 2.5), 1),
                round(rng.gauss(bd, 1.0), 1),
                round(rng.gauss(fl, 6)),
                round(rng.gauss(bm, 400), -1),
                rng.choice(["male", "female"]),
            ]
            if rng.random() < 0.03:
                row[rng.randrange(2, 7)] = ""
            out.writerow(row)


def clean(src: Path, dst: Path) -> int:
    """Drop rows with a missing value; return how many were dropped."""
    with src.open(newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if all(r[c] for c in COLUMNS)]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=COLUMNS)
        out.writeheader()
        out.writerows(kept)
    return len(rows) - len(kept)


def features(src: Path, folder: Path) -> dict[str, int]:
    """One file per species with the body-mass-to-flipper ratio; return rows per species."""
    with src.open(newline="") as f:
        rows = list(csv.DictReader(f))
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for sp in SPECIES:
        part = [r for r in rows if r["species"] == sp]
        counts[sp] = len(part)
        with (folder / f"{sp.lower()}.csv").open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["bill_length_mm", "mass_per_flipper_mm"])
            for r in part:
                out.writerow([r["bill_length_mm"], round(float(r["body_mass_g"]) / float(r["flipper_length_mm"]), 3)])
    return counts


def cli(*args: str) -> None:
    """Show a datatrail command and its output, as a user would type it."""
    print(f"\n$ datatrail {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "datatrail", *args], check=False)


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    print(f"datatrail quickstart in {folder}")
    with datatrail.init(".") as trail:
        make_raw(Path("data/raw/penguins.csv"))
        raw = trail.add("data/raw/penguins.csv", name="raw/penguins", message="field measurements")
        print(f"added {raw.ref} {raw.digest.short if raw.digest else ''}")

        with trail.run("clean", params={"dropna": True}, job_type="transform") as run:
            run.input("raw/penguins@latest")
            dropped = clean(Path("data/raw/penguins.csv"), Path("data/clean/penguins.csv"))
            cleaned = run.output("data/clean/penguins.csv", name="clean/penguins")
            run.log_metric("rows_dropped", dropped)
        print(f"run clean {run.id[:8]}: {cleaned.ref}, dropped {dropped} rows")

        with trail.run("features", params={"by": "species"}, job_type="transform") as run:
            run.input(cleaned)
            counts = features(Path("data/clean/penguins.csv"), Path("data/features"))
            feats = run.output("data/features", name="features/penguins")
            run.log_metrics({f"rows_{k.lower()}": v for k, v in counts.items()})
        trail.tag(feats.ref, "production")
        print(f"run features {run.id[:8]}: {feats.ref} ({feats.file_count} files), tagged production")

    cli("ls")
    cli("show", f"run:{run.id}")
    cli("lineage", "features/penguins@production", "--upstream")
    cli("verify")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="datatrail-demo-"))
    main(target.resolve())
