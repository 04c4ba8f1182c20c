"""The pure parts of access control: authorization decisions, grants, tokens, the chain, redaction, the limiter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datatrail.core.chain import GENESIS, Checkpoint, entry_row, verify_chain
from datatrail.core.errors import InvalidInput
from datatrail.core.privacy import classified_columns, labels_from_tag, redact_profile
from datatrail.core.roles import Grant, Principal, authorize, may_grant
from datatrail.core.tokens import new_token, parse_expiry, parse_token
from datatrail.security.limiter import BadTokenLimiter, fingerprint

VIEWER = Principal("v", grants=(Grant("viewer", "team-*"),))
EDITOR = Principal("e", grants=(Grant("editor", "team-a"), Grant("viewer", "ops")))
OWNER = Principal("o", grants=(Grant("owner", "s3://lake/*"),))
ADMIN = Principal("a", admin=True)
LOCAL = Principal("me", unrestricted=True)


@pytest.mark.parametrize(
    ("principal", "action", "namespace", "allowed"),
    [
        (None, "read", "team-a", False),
        (VIEWER, "read", "team-a", True),
        (VIEWER, "read", "team-", True),
        (VIEWER, "read", "TEAM-a", False),  # case matters: namespaces are exact
        (VIEWER, "write", "team-a", False),
        (VIEWER, "read", "ops", False),
        (EDITOR, "read", "team-a", True),
        (EDITOR, "write", "team-a", True),
        (EDITOR, "grant", "team-a", False),
        (EDITOR, "read", "ops", True),
        (EDITOR, "write", "ops", False),
        (EDITOR, "read", "team-b", False),
        (OWNER, "grant", "s3://lake/raw", True),
        (OWNER, "write", "s3://lake/raw", True),
        (OWNER, "read", "s3://lakehouse", False),
        (ADMIN, "grant", "anything", True),
        (LOCAL, "write", "anything", True),
    ],
)
def test_authorize(principal: Principal | None, action: Any, namespace: str, allowed: bool) -> None:
    assert authorize(principal, action, namespace) is allowed


def test_may_grant_only_inside_owned_namespaces() -> None:
    owner = Principal("o", grants=(Grant("owner", "team-*"), Grant("owner", "ops"), Grant("editor", "x-*")))
    assert may_grant(owner, "team-a") and may_grant(owner, "team-*") and may_grant(owner, "team-a-*")
    assert may_grant(owner, "ops")
    assert not may_grant(owner, "*") and not may_grant(owner, "ops-*") and not may_grant(owner, "x-1")
    assert not may_grant(None, "team-a") and may_grant(ADMIN, "*")
    assert (
        VIEWER.role_on("team-x") == "viewer" and EDITOR.role_on("team-a") == "editor" and VIEWER.role_on("ops") is None
    )


def test_tokens_and_expiry() -> None:
    token = new_token()
    assert parse_token(token.text) == (token.id, token.secret)
    assert token.secret not in repr(token)
    assert len(token.secret_hash) == 64 and token.secret_hash != token.secret
    assert parse_token(token.text + "x") is None and parse_token("dtk_tok_1_" + token.secret) is None
    assert new_token().secret != token.secret
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry("30d", now) == now + timedelta(days=30)
    assert parse_expiry("12h", now) == now + timedelta(hours=12)
    assert parse_expiry("never", now) is None and parse_expiry(None, now) is None
    for bad in ("0d", "30", "d", "-1d", "1y"):
        with pytest.raises(InvalidInput):
            parse_expiry(bad, now)


def chain(n: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        row = entry_row(
            seq, f"2026-01-01T00:00:{seq:02d}+00:00", "ann", "dataset.read", f"d@{seq}", "allowed", {}, prev
        )
        rows.append(row)
        prev = row["hash"]
    return rows


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=12),
    at=st.integers(min_value=0, max_value=11),
    kind=st.sampled_from(["change", "delete", "swap"]),
    value=st.text(min_size=1, max_size=8),
)
def test_any_single_tampering_is_found_at_its_entry(n: int, at: int, kind: str, value: str) -> None:
    rows = chain(n)
    at = at % (n - 1)  # the last entry can always be changed; it is checked below too
    if kind == "change":
        if rows[at]["actor"] == value:
            value += "x"
        rows[at] = {**rows[at], "actor": value}
        expected = (at + 1, "changed")
    elif kind == "delete":
        del rows[at]
        expected = (at + 1, "deleted")
    else:  # swap the contents of two neighbours, keeping the sequence numbers in place
        a, b = rows[at], rows[at + 1]
        rows[at], rows[at + 1] = {**b, "seq": a["seq"]}, {**a, "seq": b["seq"]}
        expected = (at + 1, "reordered")
    report = verify_chain(rows)
    if kind == "delete" and at == 0:
        expected = (1, "deleted")
    assert not report.ok and (report.problems[0].seq, report.problems[0].kind) == expected


def test_checkpoints() -> None:
    rows = chain(5)
    head = verify_chain(rows).head
    assert head == Checkpoint(5, rows[-1]["hash"]) and Checkpoint.parse(str(head)) == head
    assert verify_chain(rows, head).ok and verify_chain(chain(7), head).ok
    window = verify_chain(rows[2:], start=Checkpoint(2, rows[1]["hash"]))  # the newest entries only
    assert window.ok and window.entries == 3
    assert not verify_chain(rows[2:]).ok  # without its start, the window looks like entries 1-2 deleted
    truncated = verify_chain(rows[:3], head)
    assert [p.kind for p in truncated.problems] == ["truncated"]
    with pytest.raises(InvalidInput):
        Checkpoint.parse("5:xyz")


def test_tags_name_classifications() -> None:
    assert labels_from_tag({"key": "pii", "value": "true"}) == "pii"
    assert labels_from_tag({"key": "PII", "value": "false"}) is None
    assert labels_from_tag({"key": "classification", "value": "PHI"}) == "phi"
    assert labels_from_tag({"key": "domain", "value": "sales"}) is None
    facets = {
        "tags": {"tags": [{"key": "classification", "value": "confidential"}, {"key": "pii", "field": "email"}]},
        "schema": {"fields": [{"name": "addr", "fields": [{"name": "zip", "tags": [{"key": "pii", "value": "yes"}]}]}]},
    }
    assert classified_columns(facets) == {"*": {"confidential"}, "email": {"pii"}, "addr.zip": {"pii"}}


def test_redaction_keeps_counts_only() -> None:
    column = {
        "name": "email",
        "type": "string",
        "null_count": 1,
        "distinct_count": 2,
        "min": "a",
        "max": "z",
        "top_values": [{"value": "a", "count": 2}],
        "length": {"min": 1, "max": 9, "mean": 3},
    }
    profile = {"row_count": 3, "columns": [column, {**column, "name": "other"}]}
    redacted = redact_profile(profile, {"email": {"pii"}})
    assert redacted is not None and redacted["row_count"] == 3
    assert redacted["columns"][0] == {
        "name": "email",
        "type": "string",
        "null_count": 1,
        "distinct_count": 2,
        "classified": ["pii"],
        "redacted": True,
    }
    assert redacted["columns"][1] == {**column, "name": "other"}
    everything = redact_profile(profile, {"*": {"phi"}})
    assert everything is not None and all(c["redacted"] for c in everything["columns"])
    assert redact_profile(None, {"*": {"pii"}}) is None


def test_limiter_per_client_and_window() -> None:
    limiter = BadTokenLimiter(allowed=3, window=10.0, allowed_overall=100, max_clients=2)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after("a", now=t) == 0
        assert limiter.failed("a", f"token-{t}", now=t)
    assert limiter.retry_after("a", now=3.0) == 7 and limiter.retry_after("b", now=3.0) == 0
    assert limiter.retry_after("a", now=10.5) == 0  # the first failure left the window
    limiter.failed("b", "x", now=4.0)
    limiter.failed("c", "y", now=5.0)  # a third client: the stalest one is forgotten (bounded memory)
    assert len(limiter._clients) == 2 and "a" not in limiter._clients


def test_limiter_counts_distinct_tokens_so_one_misconfigured_client_limits_no_one() -> None:
    limiter = BadTokenLimiter(allowed=3, window=60.0, allowed_overall=100)
    news = [limiter.failed("proxy", "same-bad-token", now=float(t)) for t in range(1000)]
    assert news[0] and not any(news[1:])  # audited once, not a thousand times
    assert limiter.retry_after("proxy", now=1000.0) == 0
    # A guesser behind the same address tries different tokens: the address is limited.
    for i in range(2):
        limiter.failed("proxy", f"guess-{i}", now=1000.0)
    assert limiter.retry_after("proxy", now=1001.0) == 58  # until the oldest of the three leaves


def test_a_guesser_gets_its_allowance_per_window_and_no_more() -> None:
    limiter = BadTokenLimiter(allowed=10, window=60.0, allowed_overall=1000)
    tries = 0
    for tenth in range(6000):  # ten minutes, a guess every 0.1 s whenever not refused
        now = tenth / 10
        if limiter.retry_after("10.1.2.3", now=now) == 0:
            limiter.failed("10.1.2.3", f"guess-{tenth}", now=now)
            tries += 1
    assert tries <= 10 * 11


def test_limiter_overall_bound_limits_every_client() -> None:
    limiter = BadTokenLimiter(allowed=10, window=60.0, allowed_overall=5)
    for i in range(5):  # a distributed guess: one token each from five addresses
        limiter.failed(f"10.0.0.{i}", f"guess-{i}", now=0.0)
    assert limiter.retry_after("10.9.9.9", now=1.0) == 59  # an address that never failed waits too
    assert limiter.retry_after("10.9.9.9", now=60.0) == 0


def test_fingerprints_tell_tokens_apart_without_keeping_them() -> None:
    assert fingerprint("s3cret") == fingerprint("s3cret") != fingerprint("s3cret!")
    assert "s3cret" not in fingerprint("s3cret") and len(fingerprint("\udc80")) == 32
