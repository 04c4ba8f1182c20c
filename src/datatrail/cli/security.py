"""Access-control commands: `user`, `token`, `grant`, `revoke`, `audit`, `classify`.

`user`, `token`, `grant` and `revoke` change the store's security tables, so
they run where the store is (an SQLite file or PostgreSQL), not through a
server; every change is an audit entry.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from datatrail.cli.context import get_trail
from datatrail.cli.output import emit_json, line, note, safe, table, when
from datatrail.core.errors import InvalidInput
from datatrail.core.results import AuditEntry
from datatrail.core.text import count

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]


def _trail(ctx: typer.Context) -> Any:

    return get_trail(ctx)


# ---------------------------------------------------------------- users and tokens


def _refuse(action: str, allowed: tuple[str, ...], given: dict[str, Any]) -> None:
    if action not in allowed:
        msg = f"unknown action {action!r}: use {', '.join(allowed)}"
        raise InvalidInput(msg)
    extra = [opt for opt, value in given.items() if value not in (None, False)]
    if extra:
        msg = f"{', '.join(extra)} does not go with `{action}`; see --help"
        raise InvalidInput(msg)


def user(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(metavar="ACTION", help="add (a user) or list (the users).")],
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="add: the user's name.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="add: the user may do everything, everywhere.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Add a user (`user add NAME [--admin]`) or list users with their grants (`user list`).

    Once a store has a user, its server asks every request for a token: give one
    with `datatrail token create --user NAME`, and roles with `datatrail grant`.
    """
    trail = _trail(ctx)
    if action == "add":
        _refuse(action, ("add", "list"), {"--json": json_out})
        if not name:
            msg = "`user add` needs a NAME: datatrail user add NAME [--admin]"
            raise InvalidInput(msg)
        info = trail.add_user(name, admin=admin)
        line(f"added user {info.name}{' (admin)' if info.admin else ''}")
        return
    _refuse(action, ("add", "list"), {"NAME": name, "--admin": admin})
    users = trail.users()
    if json_out:
        emit_json([u.to_dict() for u in users])
        return
    rows = [
        [
            u.name,
            "yes" if u.admin else "",
            ", ".join(f"{g.role}:{g.pattern}" for g in u.grants) or None,
            when(u.created_at),
        ]
        for u in users
    ]
    table(["user", "admin", "grants", "created"], rows)


def token(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(metavar="ACTION", help="create, list or revoke.")],
    token_id: Annotated[str | None, typer.Argument(metavar="ID", help="revoke: the token's id (tok_…).")] = None,
    user_name: Annotated[str | None, typer.Option("--user", help="create: the user the token acts as.")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="create: lifetime (30d, 12h, 2w, 90m or never; default 90d).")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="create: what the token is for.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a token (its secret is printed once; only a hash is stored), list tokens, or revoke one.

    `token create --user NAME [--expires 30d] [--label TEXT]`, `token list` (never a
    secret or its hash), `token revoke ID` (refused from the very next request).
    """
    trail = _trail(ctx)
    if action == "create":
        _refuse(action, ("create", "list", "revoke"), {"ID": token_id})
        if not user_name:
            msg = "`token create` needs --user NAME"
            raise InvalidInput(msg)
        info, secret = trail.create_token(user_name, expires=expires or "90d", label=label)
        if json_out:
            emit_json({**info.to_dict(), "token": secret})
            return
        line(secret)
        expiry = when(info.expires_at) if info.expires_at else "never"
        note(f"token {info.id} for {info.user}, expires {expiry}: store the secret now, it is not shown again")
        return
    if action == "revoke":
        _refuse(action, ("create", "list", "revoke"), {"--user": user_name, "--expires": expires, "--label": label})
        if not token_id:
            msg = "`token revoke` needs the token's ID (`datatrail token list` shows it)"
            raise InvalidInput(msg)
        revoked = trail.revoke_token(token_id)
        if json_out:
            emit_json(revoked.to_dict())
        else:
            line(f"revoked {revoked.id} of {revoked.user}")
        return
    given = {"ID": token_id, "--user": user_name, "--expires": expires, "--label": label}
    _refuse(action, ("create", "list", "revoke"), given)
    tokens = trail.tokens()
    if json_out:
        emit_json([tok.to_dict() for tok in tokens])
        return
    rows = []
    for tok in tokens:
        status = tok.to_dict()["status"]
        expiry = when(tok.expires_at) if tok.expires_at else "never"
        rows.append([tok.id, tok.user, tok.label, when(tok.created_at), expiry, status])
    table(["id", "user", "label", "created", "expires", "status"], rows)


# ---------------------------------------------------------------- grants


def grant(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(metavar="USER", help="The user to grant to.")],
    role: Annotated[
        str, typer.Argument(metavar="ROLE", help="viewer (reads), editor (also writes), owner (also grants).")
    ],
    pattern: Annotated[str, typer.Argument(metavar="PATTERN", help="A namespace or a glob: team-x, 'team-*', '*'.")],
) -> None:
    """Give USER a ROLE on every namespace matching PATTERN.

    Examples: `datatrail grant bob viewer '*'`, `datatrail grant carol owner 'team-*'`.
    Quote globs so the shell leaves them alone.
    """
    added = _trail(ctx).grant(user, role, pattern)
    line(f"{user} is {role} on {pattern}" if added else f"{user} was already {role} on {pattern}")


def revoke(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(metavar="USER", help="The user.")],
    role: Annotated[str, typer.Argument(metavar="ROLE", help="The role, as granted.")],
    pattern: Annotated[str, typer.Argument(metavar="PATTERN", help="The pattern, exactly as granted.")],
) -> None:
    """Take back a grant (`datatrail user list` shows them). Example: `datatrail revoke bob viewer '*'`."""
    _trail(ctx).revoke(user, role, pattern)
    line(f"{user} is no longer {role} on {pattern}")


# ---------------------------------------------------------------- classification


def classify(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="The dataset (any of its refs).")],
    column: Annotated[str, typer.Argument(metavar="COLUMN", help="The column, or '*' for every column.")],
    label: Annotated[str, typer.Argument(metavar="LABEL", help="pii, phi, confidential…")] = "pii",
) -> None:
    """Classify a column; its profile, and that of columns derived from it downstream, keep only counts.

    Example: `datatrail classify raw/customers email pii`. `datatrail show` marks
    classified columns. Producers can classify too, with an OpenLineage `tags` facet.
    """
    trail = _trail(ctx)
    trail.classify(ref, column, label)
    line(f"classified {column} of {ref} as {label}")


# ---------------------------------------------------------------- audit


def print_entries(entries: list[Any]) -> None:
    """The entries as a table; what clients stored in them is escaped (an actor with a newline stays one line)."""
    rows = [
        [
            e.seq,
            when(e.time),
            *(
                None if v is None else safe(str(v))
                for v in (e.actor, e.action, e.target, e.outcome, (e.details or {}).get("origin", "local"))
            ),
        ]
        for e in entries
    ]
    table(["seq", "time", "actor", "action", "target", "outcome", "origin"], rows)


def entry_dict(e: AuditEntry) -> dict[str, Any]:
    return e.to_dict()


def audit(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(metavar="ACTION", help="log, verify or checkpoint.")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="log: entries naming this dataset.")] = None,
    user_name: Annotated[str | None, typer.Option("--user", help="log: entries of this actor.")] = None,
    action_name: Annotated[
        str | None, typer.Option("--action", help="log: an action (dataset.read) or a prefix with * (token.*).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="log: from a time (2026-11-01) or a duration ago (7d).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="log: at most this many entries.")] = 100,
    checkpoint: Annotated[
        str | None, typer.Option("--checkpoint", help="verify: SEQ:HASH from `audit checkpoint`, kept elsewhere.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The tamper-evident audit log: `audit log`, `audit verify [--checkpoint SEQ:HASH]`, `audit checkpoint`.

    `log` lists entries newest first (who did or was refused what, when, from where);
    `verify` recomputes the hash chain and exits 1 naming the first entry changed,
    deleted, inserted or reordered; `checkpoint` prints the head (SEQ:HASH) to keep
    outside the database, so `verify --checkpoint` also catches a truncated or rebuilt chain.
    """
    trail = _trail(ctx)
    filters = {"--dataset": dataset, "--user": user_name, "--action": action_name, "--since": since}
    if action == "log":
        _refuse(action, ACTIONS, {"--checkpoint": checkpoint})
        entries = trail.audit_entries(dataset=dataset, user=user_name, action=action_name, since=since, limit=limit)
        if json_out:
            emit_json([entry_dict(e) for e in entries])
        else:
            print_entries(entries)
        return
    if action == "verify":
        _refuse(action, ACTIONS, filters)
        report = trail.verify_audit(checkpoint)
        if json_out:
            emit_json(report.to_dict())
        elif report.ok:
            line(f"audit chain intact: {count(report.entries, 'entry')}, head {report.head or 'none'}")
        else:
            for problem in report.problems:
                line(safe(str(problem.message)))
        if not report.ok:
            raise typer.Exit(1)
        return
    _refuse(action, ACTIONS, {**filters, "--checkpoint": checkpoint})
    head = trail.audit_checkpoint()
    if json_out:
        emit_json({"checkpoint": str(head) if head else None, "seq": head.seq if head else None})
        return
    line(str(head) if head else "0:" + "0" * 64)


ACTIONS = ("log", "verify", "checkpoint")


def print_access(entries: list[Any]) -> None:
    """``show --access``: who accessed the dataset, and when."""
    line("")
    line("access (newest first):")
    print_entries(entries)


def register(app: typer.Typer) -> None:
    for command in (user, token, grant, revoke, audit, classify):
        app.command()(command)
