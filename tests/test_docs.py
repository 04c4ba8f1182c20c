"""The documentation cannot drift: docs/cli.md is checked against the commands,
and the examples of docs/python-api.md are run."""

from __future__ import annotations

import doctest
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from datatrail.cli.app import app

DOCS = Path(__file__).resolve().parent.parent / "docs"
CLI_MD = DOCS / "cli.md"
API_MD = DOCS / "python-api.md"
GLOBAL = "Global options"

ROOT = typer.main.get_command(app)
COMMANDS: dict[str, Any] = dict(ROOT.commands)  # type: ignore[attr-defined]
HELP_OPTS = {"-h", "--help"}
LONG_OPT = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SHORT_OPT = re.compile(r"(?<![\w-])-[a-zA-Z](?![\w-])")

runner = CliRunner()


def sections(text: str) -> dict[str, str]:
    """Level-2 headings of a markdown file and the text under each."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


CLI_SECTIONS = sections(CLI_MD.read_text(encoding="utf-8"))


def options(command: Any) -> set[str]:
    return {o for p in command.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)}


def usage(name: str | None, command: Any) -> str:
    """The usage line as `--help` prints it."""
    ctx = typer.Context(ROOT, info_name="datatrail")
    if name is not None:
        ctx = typer.Context(command, info_name=name, parent=ctx)
    return " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])


def help_text(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def documented(section: str) -> set[str]:
    return set(LONG_OPT.findall(section)) | set(SHORT_OPT.findall(section))


def mentions(section: str, token: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", section) is not None


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_option_is_documented(name: str) -> None:
    heading = f"datatrail {name}"
    assert heading in CLI_SECTIONS, f"docs/cli.md has no '## {heading}' section"
    section = CLI_SECTIONS[heading]
    command = COMMANDS[name]
    assert f"Usage: `{usage(name, command)}`" in section
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    for opt in options(command):
        assert mentions(table, opt), f"the table of '## {heading}' in docs/cli.md does not document {opt}"
    for param in command.params:
        if param.param_type_name == "argument":
            assert mentions(table, param.metavar or param.name.upper()), (heading, param.name)
    assert "```console" in section, f"'## {heading}' has no example"
    # The section starts with what the command is for.
    assert section.strip().split("\n\n")[0], heading


def test_global_options_are_documented() -> None:
    section = CLI_SECTIONS[GLOBAL]
    assert f"Usage: `{usage(None, ROOT)}`" in section
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    for opt in options(ROOT) | HELP_OPTS:
        assert mentions(table, opt), f"'## {GLOBAL}' does not document {opt}"
    assert "DATATRAIL_URI" in section


def test_nothing_documented_is_missing_from_help() -> None:
    commands = {h.removeprefix("datatrail ") for h in CLI_SECTIONS if h.startswith("datatrail ")}
    assert commands == set(COMMANDS), "docs/cli.md documents commands the CLI does not have (or misses some)"
    root_help = help_text()
    for name in COMMANDS:
        assert re.search(rf"^\W*{name}\s", root_help, re.MULTILINE), f"{name} not in `datatrail --help`"
    allowed_global = options(ROOT) | HELP_OPTS
    for opt in documented(CLI_SECTIONS[GLOBAL]) - HELP_OPTS:
        assert opt in options(ROOT) and opt in root_help, f"'## {GLOBAL}' documents {opt}, unknown to --help"
    for name in COMMANDS:
        section = CLI_SECTIONS[f"datatrail {name}"]
        command_help = help_text(name)
        for opt in documented(section) - allowed_global:
            assert opt in options(COMMANDS[name]), f"'## datatrail {name}' documents {opt}, not an option of {name}"
            assert mentions(command_help, opt), f"{opt} is not in `datatrail {name} --help`"


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_contents_list_links_every_command() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    contents = text.split("\nContents:", 1)[1].split("\n\n", 1)[0]
    links = re.findall(r"\[([^]]+)\]\(#([^)]+)\)", contents)
    headings = {anchor(line[3:]) for line in text.splitlines() if line.startswith("## ")}
    for label, target in links:
        assert target in headings, f"the contents of docs/cli.md link {label} to #{target}, which no heading has"
    linked = {target.removeprefix("datatrail-") for _, target in links if target.startswith("datatrail-")}
    assert linked == set(COMMANDS), f"the contents of docs/cli.md miss {set(COMMANDS) - linked}"
    # In the order of the sections, so the list reads like the page.
    order = [anchor(line[3:]) for line in text.splitlines() if line.startswith("## ")]
    assert [t for _, t in links] == [t for t in order if t in {t for _, t in links}]


def example_commands() -> list[list[str]]:
    """The arguments of every `$ datatrail …` line of docs/cli.md (up to a pipe or redirection)."""
    found = []
    for line in CLI_MD.read_text(encoding="utf-8").splitlines():
        if not line.startswith("$ "):
            continue
        words = shlex.split(line[2:])
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=value prefixes
            words.pop(0)
        assert words and words[0] == "datatrail", line
        for i, word in enumerate(words):
            if word in ("|", ">", ">>", "&&", ";"):
                words = words[:i]
                break
        found.append(words[1:])
    return found


def test_cli_examples_use_real_commands_and_options() -> None:
    examples = example_commands()
    assert {e[0] for e in examples if not e[0].startswith("-")} == set(COMMANDS)
    for args in examples:
        if args == ["--version"]:
            continue
        # --help exits once every option is known, before the command runs; after
        # `--` (`datatrail run … -- CMD`) it would be the command's, so it goes before.
        cut = args.index("--") if "--" in args else len(args)
        result = runner.invoke(app, [*args[:cut], "--help"])
        assert result.exit_code == 0, (args, result.stderr)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_python_api_examples_run(workdir: Path) -> None:
    """Run the ```python blocks of docs/python-api.md in order in an empty folder.

    Blocks with ``>>>`` prompts are doctests (their output is checked); the
    others are plain code, run unless they connect to a server.
    """
    text = API_MD.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert len(blocks) >= 8
    globs: dict[str, Any] = {"__name__": "docs_python_api"}
    parser = doctest.DocTestParser()
    doctest_runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    ran = 0
    for i, block in enumerate(blocks):
        if ">>>" in block:
            test = parser.get_doctest(block, globs, f"python-api.md block {i}", str(API_MD), 0)
            result = doctest_runner.run(test, clear_globs=False)
            globs.update(test.globs)  # the DocTest worked on a copy; later blocks need its names
            assert result.failed == 0, f"docs/python-api.md block {i} failed (see the output above)"
            ran += result.attempted
        elif "postgresql://" not in block and "/srv/" not in block:
            exec(compile(block, f"python-api.md block {i}", "exec"), globs)
    assert ran >= 40


def test_python_api_documents_the_public_api() -> None:
    text = API_MD.read_text(encoding="utf-8")
    for name in (
        "datatrail.connect",
        "datatrail.init",
        "trail.add",
        "trail.register",
        "trail.get",
        "trail.tag",
        "trail.versions",
        "trail.datasets",
        "trail.run",
        "trail.runs",
        "trail.get_run",
        "trail.lineage",
        "trail.verify",
        "run.input",
        "run.output",
        "run.log_metric",
        "run.log_metrics",
        "run.log_param",
        "to_json",
        "to_dot",
        "to_mermaid",
        "to_tree",
        "DatatrailError",
        "InvalidInput",
        "NotFound",
        "Conflict",
        "Forbidden",
        "IntegrityError",
    ):
        assert name in text, f"docs/python-api.md does not mention {name}"
