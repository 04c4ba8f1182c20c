"""What the CLI's reads import (issue 22, item 4): their work (cli/reads.py) and the catalog, nothing else.

``datatrail ls`` and the other reads on the embedded store run in a fresh
interpreter; the modules it holds at the end are compared with a list of
heavy ones that no read needs (typer, the command modules, hashing and
recording, the ML lifecycle, the server, Rich, dataframe libraries, HTTP
clients). The table that tells cli/app.py which module registers which
command is checked against the modules themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import datatrail
from datatrail.cli.app import LAZY_COMMANDS, app

# Imported by none of the reads below: each prefix matches the module and its submodules. A plain
# read is answered without typer (cli/fast.py), so neither typer nor any typer command module loads.
HEAVY = (
    "typer",
    "click",
    "datatrail.cli.app",
    "datatrail.cli.data",
    "datatrail.cli.runs",
    "datatrail.cli.quality",
    "datatrail.cli.backup",
    "datatrail.cli.interop",
    "datatrail.cli.lineage",
    "datatrail.cli.ml",
    "datatrail.cli.run",
    "datatrail.cli.security",
    "datatrail.cli.server",
    "datatrail.cli.storage",
    "datatrail.server",
    "datatrail.recorder",
    "datatrail.hashing",
    "datatrail.storage",
    "datatrail.content",
    "datatrail.capture.run",
    "datatrail.ml",
    "datatrail.security.guard",
    "datatrail.security.service",
    "datatrail.interop",
    "datatrail.diff",
    "datatrail.events",
    "rich",
    "pandas",
    "pyarrow",
    "polars",
    "numpy",
    "httpx",
    "fastapi",
    "sqlalchemy",
    "pydantic",
    "alembic",
    "concurrent.futures",
    "socket",
)
# Run as `python -m datatrail ARGS`, then list every module the process holds.
PROBE = """
import json, runpy, sys
sys.argv = ["datatrail", *sys.argv[1:]]
try:
    runpy.run_module("datatrail", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _imported(cwd: Path, *argv: str) -> tuple[str, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, set(json.loads(proc.stderr.strip().splitlines()[-1]))


def _heavy(modules: set[str], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY) and not any(m == a for a in allowed)
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store with two versions of a file, a directory and a run that read one and wrote another."""
    folder = tmp_path_factory.mktemp("startup")
    (folder / "raw.csv").write_text("a,b\n1,2\n")
    (folder / "images").mkdir()
    (folder / "images" / "0.bin").write_bytes(b"\x00\x01")
    with datatrail.init(folder) as trail:
        trail.add(folder / "raw.csv", name="raw")
        (folder / "raw.csv").write_text("a,b\n1,2\n3,4\n")
        trail.add(folder / "raw.csv", name="raw")
        trail.add(folder / "images", name="images")
        with trail.run("clean") as run:
            run.input("raw")
            (folder / "clean.csv").write_text("a,b\n1,2\n")
            run.output(folder / "clean.csv", name="clean")
        run_id = trail.runs()[0].id
    return folder, run_id


@pytest.mark.parametrize(
    ("argv", "allowed", "shows"),
    [
        (["ls"], (), "images"),
        (["show", "raw"], (), "raw@2"),
        (["show", "images"], (), "0.bin"),
        (["versions", "raw"], (), "sha256:"),
        (["runs"], (), "clean"),
        (["lineage", "clean", "--both"], (), "raw@2"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_a_read_imports_nothing_heavy(
    store: tuple[Path, str], argv: list[str], allowed: tuple[str, ...], shows: str
) -> None:
    folder, _ = store
    out, modules = _imported(folder, *argv)
    assert shows in out
    assert "datatrail.store.sql.quick" in modules  # the embedded store answered
    assert _heavy(modules, allowed) == []


def test_show_of_a_run_imports_nothing_heavy(store: tuple[Path, str]) -> None:
    folder, run_id = store
    out, modules = _imported(folder, "show", f"run:{run_id}")
    assert run_id in out
    assert _heavy(modules) == []


def test_push_of_a_big_file_to_a_folder_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    """A push (issue 18: one big file at >= 0.8x of `cp`) is answered without typer; it loads the content engine
    and the storage service, but neither recording nor hashing's machinery, fsspec, SQLAlchemy or a thread pool."""
    with datatrail.init(tmp_path) as trail:
        (tmp_path / "big.bin").write_bytes(b"\x01" * (2 << 20))  # an object of its own on the remote
        trail.add(tmp_path / "big.bin", store_content=True)
        trail.storage.add_remote("origin", str(tmp_path / "remote"), default=True)
    out, modules = _imported(tmp_path, "push")
    assert out.startswith("pushed 1 objects (2.0 MiB, 0 packs) to origin")
    assert {"datatrail.store.sql.quick", "datatrail.storage", "datatrail.content.remotes"} <= modules
    allowed = tuple(m for m in modules if m == "datatrail.storage" or m.startswith("datatrail.content."))
    assert _heavy(modules, ("datatrail.content", *allowed)) == []
    assert not [m for m in modules if m == "fsspec" or m.startswith("fsspec.")]
    assert "datatrail.cli.reads" not in modules  # the reads' work is loaded by a read only


def test_help_still_lists_every_command_and_imports_no_store(store: tuple[Path, str]) -> None:
    folder, _ = store
    out, modules = _imported(folder, "--help")
    for names in LAZY_COMMANDS.values():
        for name in names:
            assert f" {name} " in out
    assert not [m for m in modules if m.startswith(("datatrail.store", "datatrail.service", "sqlalchemy"))]


def test_the_lazy_table_names_what_each_module_registers() -> None:
    """cli/app.py imports a command's module by this table: it must match what the modules register."""
    expected: list[str] = []
    for module, names in LAZY_COMMANDS.items():
        sub = typer.Typer()
        __import__(f"datatrail.cli.{module}", fromlist=["register"]).register(sub)
        assert tuple(typer.main.get_group(sub).commands) == names, module
        expected.extend(names)
    # Every command of the application, in `--help`'s order, each from its table entry.
    assert list(typer.main.get_command(app).commands) == expected  # type: ignore[attr-defined]


def test_a_command_loads_only_its_module() -> None:
    """The root group loads a command's module when asked for it, and all of them for `.commands`."""
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    before = dict(root._commands)  # type: ignore[attr-defined]
    assert "ls" not in before and root._pending == list(LAZY_COMMANDS)  # type: ignore[attr-defined]
    assert root.get_command(ctx, "ls").name == "ls"  # type: ignore[attr-defined]
    assert set(root._commands) == set(LAZY_COMMANDS["data"])  # type: ignore[attr-defined]
    assert root.get_command(ctx, "no-such-command") is None  # type: ignore[attr-defined]
    assert root._pending == []  # type: ignore[attr-defined]
    assert root.list_commands(ctx) == [n for names in LAZY_COMMANDS.values() for n in names]  # type: ignore[attr-defined]


def test_add_without_a_list_or_path_option_builds_no_converter(tmp_path: Path) -> None:
    """An absent `--tag` (a list) or `--checks` (a path) needs no pydantic adapter; given, typer converts them."""
    datatrail.init(tmp_path).close()
    (tmp_path / "a.bin").write_bytes(b"a")
    out, modules = _imported(tmp_path, "add", "a.bin", "--name", "a", "--json")
    assert (json.loads(out)["ref"], json.loads(out)["aliases"]) == ("a@1", [])
    assert not [m for m in modules if m == "pydantic" or m.startswith("pydantic.")]
    (tmp_path / "b.bin").write_bytes(b"b")
    out, modules = _imported(tmp_path, "add", "b.bin", "--name", "b", "--tag", "candidate", "--json")
    assert "candidate" in json.loads(out)["aliases"]
    assert "pydantic" in modules
