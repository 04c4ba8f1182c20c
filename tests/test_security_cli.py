"""The access-control commands through typer's runner, on an embedded store."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine
from typer.testing import CliRunner, Result

import datatrail
from datatrail.cli.app import app
from datatrail.core.changes import VersionInfo
from datatrail.core.tokens import parse_token
from datatrail.events import build_dataset_event
from datatrail.store.sql import tables as t
from tests.conftest import write

runner = CliRunner()


def dt(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "200", "DATATRAIL_USER": "ada"})


def test_users_tokens_grants_and_the_audit_log(workdir: Path) -> None:
    assert dt("init").exit_code == 0
    assert (
        dt("add", str(write(workdir / "people.csv", "email,age\na@x.org,3\nb@y.org,5\n")), "--name", "people").exit_code
        == 0
    )
    assert dt("user", "add", "ada", "--admin").stdout == "added user ada (admin)\n"
    assert dt("user", "add", "bob").exit_code == 0
    assert dt("grant", "bob", "viewer", "team-*").stdout == "bob is viewer on team-*\n"
    created = dt("token", "create", "--user", "bob", "--expires", "30d", "--label", "laptop")
    assert created.exit_code == 0
    secret = created.stdout.strip()
    assert parse_token(secret) is not None and "not shown again" in created.stderr
    listed = dt("token", "list", "--json")
    tokens = json.loads(listed.stdout)
    assert [(x["user"], x["label"], x["status"]) for x in tokens] == [("bob", "laptop", "active")]
    assert parse_token(secret)[1] not in listed.stdout  # type: ignore[index]
    users = json.loads(dt("user", "list", "--json").stdout)
    assert [(u["name"], u["admin"], u["grants"]) for u in users] == [
        ("ada", True, []),
        ("bob", False, [{"role": "viewer", "pattern": "team-*"}]),
    ]
    assert dt("token", "revoke", tokens[0]["id"]).exit_code == 0
    assert json.loads(dt("token", "list", "--json").stdout)[0]["status"] == "revoked"
    assert dt("revoke", "bob", "viewer", "team-*").exit_code == 0
    assert dt("show", "people").exit_code == 0
    log = json.loads(dt("audit", "log", "--json").stdout)
    assert [e["action"] for e in reversed(log)] == [
        "dataset.add",
        "user.add",
        "user.add",
        "grant.add",
        "token.create",
        "token.revoke",
        "grant.revoke",
        "dataset.read",
    ]
    assert {e["actor"] for e in log} == {"ada"}
    only = json.loads(dt("audit", "log", "--action", "token.*", "--json").stdout)
    assert [e["action"] for e in only] == ["token.revoke", "token.create"]
    access = json.loads(dt("show", "people", "--access", "--json").stdout)["access"]
    assert [e["action"] for e in access][-1] == "dataset.add" and access[0]["action"] == "dataset.read"
    text = dt("show", "people", "--access").stdout
    assert "access (newest first):" in text and "dataset.add" in text


def test_classify_marks_show_and_hides_values(workdir: Path) -> None:
    dt("init")
    dt("add", str(write(workdir / "people.csv", "email,age\nsecret@x.org,3\n")), "--name", "people")
    assert "secret@x.org" in dt("show", "people").stdout
    assert dt("classify", "people", "email", "pii").exit_code == 0
    shown = dt("show", "people").stdout
    assert "email [pii]" in shown and "secret@x.org" not in shown
    assert "secret@x.org" not in dt("show", "people", "--json").stdout
    bad = dt("classify", "people", "nope")
    assert bad.exit_code == 2 and "no column 'nope'" in bad.stderr and bad.stderr.count("\n") == 1


def test_audit_verify_and_checkpoint(workdir: Path) -> None:
    dt("init")
    for i in range(4):
        dt("add", str(write(workdir / f"{i}.csv", f"a\n{i}\n")), "--name", f"d{i}")
    checkpoint = dt("audit", "checkpoint").stdout.strip()
    assert checkpoint.startswith("4:") and len(checkpoint) == 66
    ok = dt("audit", "verify", "--checkpoint", checkpoint)
    assert ok.exit_code == 0 and ok.stdout.startswith("audit chain intact: 4 entries")
    engine = create_engine(f"sqlite:///{workdir / '.datatrail' / 'trail.db'}")
    with engine.begin() as conn:
        conn.execute(t.audit.update().where(t.audit.c.seq == 2).values(target="d9@1"))
    engine.dispose()
    bad = dt("audit", "verify")
    assert (
        bad.exit_code == 1
        and bad.stdout.splitlines()[0] == "audit entry 2 was changed: its content does not match its hash"
    )
    report = json.loads(dt("audit", "verify", "--json").stdout)
    assert report["ok"] is False and report["problems"][0] == {
        "seq": 2,
        "kind": "changed",
        "message": "audit entry 2 was changed: its content does not match its hash",
    }


def test_the_audit_log_shows_stored_text_escaped(workdir: Path) -> None:
    # Entries written before the server refused such actions (or by anyone who can open the file).
    dt("init")
    with datatrail.connect(f"sqlite:///{workdir / '.datatrail' / 'trail.db'}") as trail:
        event = build_dataset_event("default", "forged", VersionInfo(key="k"))
        trail.ingest(event, actor="mallory\x1b[2J", action="grant.add\n2  2026-01-01 00:00:00  root  grant.add")
    text = dt("audit", "log").stdout
    assert len(text.splitlines()) == 3  # header, rule, one entry: the newline did not make a second
    assert "grant.add\\n2  2026-01-01" in text and "mallory\\x1b[2J" in text and "\x1b" not in text
    entries = json.loads(dt("audit", "log", "--json").stdout)  # JSON keeps the text as stored
    assert entries[0]["action"].startswith("grant.add\n2") and entries[0]["actor"] == "mallory\x1b[2J"


def test_bad_uses_are_one_line_errors(workdir: Path) -> None:
    dt("init")
    for args, code, words in [
        (("user", "remove", "x"), 2, "unknown action 'remove'"),
        (("user", "add"), 2, "needs a NAME"),
        (("user", "list", "--admin"), 2, "--admin does not go with `list`"),
        (("token", "create"), 2, "needs --user"),
        (("token", "create", "--user", "ghost"), 3, "no user named 'ghost'"),
        (("token", "create", "--user", "ghost", "--expires", "soon"), 2, "invalid expiry"),
        (("token", "revoke"), 2, "needs the token's ID"),
        (("grant", "x", "king", "*"), 2, "unknown role 'king'"),
        (("audit", "verify", "--checkpoint", "nope"), 2, "invalid checkpoint"),
        (("audit", "log", "--since", "someday"), 2, "invalid time"),
        (("audit", "verify", "--user", "x"), 2, "--user does not go with `verify`"),
    ]:
        result = dt(*args)
        assert result.exit_code == code, (args, result.stderr)
        assert words in result.stderr and result.stderr.count("\n") == 1, (args, result.stderr)
