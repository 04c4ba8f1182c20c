"""A store with two teams' namespaces and four users, shared by the tests/test_security_*.py files.

team-a: ``a/raw`` (email is classified pii) → run ``clean`` → ``a/clean``; then run
``mix`` reads ``a/clean`` and team-b's ``b/secret`` and writes ``a/report``, so
lineage from ``a/report`` reaches a dataset only team-b may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datatrail

ROLES = ("anonymous", "viewer", "editor", "other_owner", "admin")


@dataclass
class Scene:
    uri: str
    tokens: dict[str, str]  # role -> secret token text
    clean_run: str
    mix_run: str


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def build(folder: Path, uri: str | None = None) -> Scene:
    """Datasets, runs, users and tokens; ``uri`` defaults to an SQLite file in ``folder``."""
    uri = uri or f"sqlite:///{folder / 'trail.db'}"
    trail = datatrail.init(folder, uri)
    try:
        raw = trail.add(
            write(folder / "raw.csv", "email,score\nann@x.org,3\nbob@y.org,5\n"), name="a/raw", namespace="team-a"
        )
        trail.classify(raw, "email", "pii")
        trail.add(write(folder / "secret.csv", "salary\n100\n200\n"), name="b/secret", namespace="team-b")
        with trail.run("clean", namespace="team-a") as run:
            run.input("team-a:a/raw@1")
            run.output(write(folder / "clean.csv", "email,score\nann@x.org,3\n"), name="a/clean", namespace="team-a")
        clean_run = run.id
        with trail.run("mix", namespace="team-a") as run:
            run.input("team-a:a/clean@1")
            run.input("team-b:b/secret@1")
            run.output(write(folder / "report.csv", "n\n1\n"), name="a/report", namespace="team-a")
        mix_run = run.id
        trail.add_user("vera")
        trail.grant("vera", "viewer", "team-a")
        trail.add_user("ed")
        trail.grant("ed", "editor", "team-*")
        trail.grant("ed", "viewer", "team-a")
        trail.revoke("ed", "viewer", "team-a")
        trail.add_user("olga")
        trail.grant("olga", "owner", "team-b")
        trail.add_user("root", admin=True)
        tokens = {
            "viewer": trail.create_token("vera", expires="1d")[1],
            "editor": trail.create_token("ed", expires="1d")[1],
            "other_owner": trail.create_token("olga", expires="1d")[1],
            "admin": trail.create_token("root", expires="never")[1],
        }
    finally:
        trail.close()
    return Scene(uri, tokens, clean_run, mix_run)
