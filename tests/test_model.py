"""Refs, digests and names: parsing, validation, normalisation."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datatrail.core.errors import InvalidInput
from datatrail.core.model import MAX_NAME_LENGTH, Digest, Ref, Version, validate_name, validate_namespace

HEX64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


# ---------------------------------------------------------------- Ref.parse: good refs


@pytest.mark.parametrize(
    ("text", "namespace", "name", "selector"),
    [
        ("raw", "default", "raw", None),
        ("raw/penguins.csv", "default", "raw/penguins.csv", None),
        ("raw@3", "default", "raw", "3"),
        ("raw@latest", "default", "raw", "latest"),
        ("raw@production", "default", "raw", "production"),
        ("raw@candidate-2.b_x", "default", "raw", "candidate-2.b_x"),
        ("raw@sha256:9f86d081", "default", "raw", "sha256:9f86d081"),
        (f"raw@sha256:{HEX64}", "default", "raw", f"sha256:{HEX64}"),
        ("team-x:raw/penguins@3", "team-x", "raw/penguins", "3"),
        ("team-x:raw", "team-x", "raw", None),
        ("s3://bucket:data/x@2", "s3://bucket", "data/x", "2"),
        ("postgres://db:5432:public.orders@latest", "postgres://db:5432", "public.orders", "latest"),
        ("duckdb://shop.duckdb:main.sales", "duckdb://shop.duckdb", "main.sales", None),
        ("default:raw@1", "default", "raw", "1"),
        ("raw@9223372036854775807", "default", "raw", "9223372036854775807"),  # the largest: 2**63 - 1
    ],
)
def test_ref_parse_valid(text: str, namespace: str, name: str, selector: str | None) -> None:
    ref = Ref.parse(text)
    assert (ref.namespace, ref.name, ref.selector) == (namespace, name, selector)


def test_ref_parse_uses_given_namespace() -> None:
    assert Ref.parse("raw@2", namespace="team-x") == Ref("team-x", "raw", "2")
    assert Ref.parse("team-x:raw@2", namespace="team-x") == Ref("team-x", "raw", "2")
    with pytest.raises(InvalidInput, match="names namespace 'other' but 'team-x' was given"):
        Ref.parse("other:raw@2", namespace="team-x")


def test_ref_parse_namespace_with_at_sign() -> None:
    # OpenLineage namespaces may carry a user (postgres://user@host:5432); the
    # selector is what follows the *last* '@'.
    ref = Ref.parse("postgres://me@db:5432:public.orders@3")
    assert (ref.namespace, ref.name, ref.selector) == ("postgres://me@db:5432", "public.orders", "3")
    assert Ref.parse(str(ref)) == ref


def test_ref_str() -> None:
    assert str(Ref("default", "raw", None)) == "raw"
    assert str(Ref("default", "raw", "3")) == "raw@3"
    assert str(Ref("s3://bucket", "data/x", "latest")) == "s3://bucket:data/x@latest"


# ---------------------------------------------------------------- Ref.parse: bad refs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("@", "nothing after '@'"),
        ("name@", "nothing after '@'"),
        ("@3", "dataset name: it is empty"),
        ("team-x:@3", "dataset name: it is empty"),
        (":raw", "namespace: it is empty"),
        ("name@0", "version numbers start at 1"),
        ("name@000", "version numbers start at 1"),
        ("raw@9223372036854775808", "version numbers are at most 9223372036854775807"),
        ("raw@12345678901234567890", "version numbers are at most"),
        ("raw@" + "9" * 5000, "version numbers are at most"),
        ("raw@0000000000000000000001", "version numbers are at most"),
        ("name@sha256:", "8 to 64 lowercase hex"),
        ("name@sha256:9f86d08", "8 to 64 lowercase hex"),
        ("name@sha256:9F86D081", "8 to 64 lowercase hex"),
        ("name@sha256:9f86d08g", "8 to 64 lowercase hex"),
        ("name@sha256:" + HEX64 + "0", "8 to 64 lowercase hex"),
        ("name@sha256:9f86 d081", "8 to 64 lowercase hex"),
        ("na\x07me", "control or format character U+0007"),
        ("na\nme@1", "control or format character U+000A"),
        ("name\x00", "control or format character U+0000"),
        ("evil\u202etxt.exe", "control or format character U+202E"),
        ("name@prod\u202e", "control or format character U+202E"),
        ("name@prod\x00", "U+0000"),
        ("name@pro/d", "invalid alias"),
        ("name@a:b", "invalid alias"),
        (" name", "leading or trailing whitespace"),
        ("name@²", "invalid alias"),
        ("name@٣", "invalid alias"),
        ("x" * 10_000, "10000 characters, at most 1024"),
        ("x@" + "a" * 10_000, "10000 characters, at most 1024"),
        ("n" * 10_000 + ":x", "10000 characters, at most 1024"),
    ],
)
def test_ref_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="invalid") as info:
        Ref.parse(text)
    assert message in str(info.value)
    # One line, so the CLI can print it as is.
    assert "\n" not in str(info.value).replace("\\n", "")


def test_ref_parse_rejects_non_strings() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        Ref.parse(None)  # type: ignore[arg-type]


def test_ref_parse_name_length_limit() -> None:
    assert Ref.parse("x" * MAX_NAME_LENGTH).name == "x" * MAX_NAME_LENGTH
    with pytest.raises(InvalidInput, match="1025 characters"):
        Ref.parse("x" * (MAX_NAME_LENGTH + 1))


# ---------------------------------------------------------------- names


def test_names_are_nfc_normalised() -> None:
    decomposed = "cafe\u0301/data"  # 'e' + combining acute
    composed = "caf\u00e9/data"
    assert unicodedata.normalize("NFC", decomposed) == composed
    assert validate_name(decomposed) == composed
    assert Ref.parse(decomposed).name == composed
    assert Ref.parse(decomposed) == Ref.parse(composed)
    assert validate_namespace("te\u0301am") == "t\u00e9am"
    assert Ref.parse("te\u0301am:x").namespace == "t\u00e9am"


def test_alias_selector_is_nfc_normalised() -> None:
    # An alias is stored NFC-normalised, so the selector that names it must be too.
    assert Ref.parse("x@cafe\u0301").selector == "caf\u00e9"
    assert validate_name("cafe\u0301", "alias") == "caf\u00e9"


@pytest.mark.parametrize(
    ("name", "what", "message"),
    [
        ("a@b", "dataset name", "reserved for refs"),
        ("a:b", "dataset name", "reserved for refs"),
        ("a/b", "alias", "use letters, digits"),
        ("a/b", "job name", "use letters, digits"),
        ("12", "alias", "cannot be a number"),
        ("", "alias", "it is empty"),
        ("a\u2028b", "dataset name", "U+2028"),
        ("a\ud800b", "dataset name", "U+D800"),
    ],
)
def test_validate_name_rejects(name: str, what: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=f"invalid {what}") as info:
        validate_name(name, what)
    assert message in str(info.value)


def test_validate_name_accepts_unicode_and_punctuation() -> None:
    assert validate_name("données/2024 Q1.parquet") == "données/2024 Q1.parquet"
    assert validate_name("v1.2_rc-3", "alias") == "v1.2_rc-3"


def _refused_character(text: str) -> str | None:
    """The first character the name checks refuse, found one character at a time (the reference)."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in "\u2028\u2029":
            return f"U+{ord(ch):04X}"
    return None


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=12) | st.text(max_size=12))
def test_names_checked_as_one_character_at_a_time(text: str) -> None:
    # Printable ASCII skips the per-character lookup and the normalisation: the same outcome as without.
    for what in ("dataset name", "alias", "job name"):
        try:
            got: str | None = validate_name(text, what)
        except InvalidInput as exc:
            got = None
            refused = _refused_character(text)
            assert refused is None or text.strip() == "" or refused in str(exc)
        if got is not None:
            assert _refused_character(text) is None
            assert got == unicodedata.normalize("NFC", text)
    try:
        assert validate_namespace(text) == unicodedata.normalize("NFC", text)
        assert _refused_character(text.replace("\u2028", "").replace("\u2029", "")) is None
    except InvalidInput:
        assert text.strip() == "" or _refused_character(text) is not None


# ---------------------------------------------------------------- Digest


def test_digest_parse() -> None:
    d = Digest.parse(f"sha256:{HEX64}")
    assert d == Digest("sha256", HEX64)
    assert str(d) == f"sha256:{HEX64}"
    assert d.short == "sha256:9f86d081884c"
    assert Digest.sha256(HEX64) == d


@pytest.mark.parametrize(
    "text",
    [
        "",
        HEX64,
        f"md5:{HEX64}",
        f"SHA256:{HEX64}",
        f"sha256:{HEX64.upper()}",
        f"sha256:{HEX64[:-1]}",
        f"sha256:{HEX64}0",
        f"sha256:{HEX64[:-1]}g",
        f"sha256: {HEX64[1:]}",
        f"sha256:{HEX64}\n",
    ],
)
def test_digest_parse_invalid(text: str) -> None:
    with pytest.raises(InvalidInput, match="64 lowercase hex digits"):
        Digest.parse(text)


# ---------------------------------------------------------------- Hypothesis round-trips

_name_chars = st.characters(
    codec="utf-8",
    categories=("L", "N", "P", "S", "Zs"),
    exclude_characters="@:\\\u2028\u2029",  # backslashes are refused in dataset names
)
names = (
    st.text(_name_chars, min_size=1, max_size=40)
    .map(lambda s: unicodedata.normalize("NFC", s).strip())
    .filter(lambda s: 0 < len(s) <= MAX_NAME_LENGTH)
    .filter(lambda s: not {".", ".."} & set(s.split("/")))  # so are "." and ".." segments
)
namespaces = st.one_of(
    st.just("default"),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
    st.from_regex(r"(s3|gs|postgres|duckdb)://[a-z0-9.-]{1,12}(:[0-9]{2,5})?", fullmatch=True),
)
aliases = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
selectors = st.one_of(
    st.none(),
    st.integers(min_value=1, max_value=10**9).map(str),
    st.just("latest"),
    aliases,
    st.text("0123456789abcdef", min_size=8, max_size=64).map(lambda h: f"sha256:{h}"),
)


@given(namespace=namespaces, name=names, selector=selectors)
def test_ref_round_trip(namespace: str, name: str, selector: str | None) -> None:
    text = name if namespace == "default" else f"{namespace}:{name}"
    if selector is not None:
        text = f"{text}@{selector}"
    ref = Ref.parse(text)
    assert ref == Ref(namespace, name, selector)
    assert str(ref) == text
    assert Ref.parse(str(ref)) == ref


_tricky = st.sampled_from(list("@:/.-_ 0123456789abcdefsh²٣\x00\t\u202e\u0301é"))


@given(st.one_of(st.text(max_size=30), st.text(_tricky, max_size=30)))
def test_ref_parse_never_crashes(text: str) -> None:
    # Anything either parses to a ref that round-trips, or is refused with InvalidInput.
    try:
        ref = Ref.parse(text)
    except InvalidInput as exc:
        assert str(exc).startswith("invalid")
    else:
        assert Ref.parse(str(ref)) == ref


def test_version_ref_and_dict() -> None:
    from datetime import UTC, datetime

    v = Version(
        namespace="s3://bucket",
        name="data/x",
        number=2,
        digest=Digest.sha256(HEX64),
        size=3,
        uri=None,
        format="csv",
        created_at=datetime(2024, 1, 2, tzinfo=UTC),
        created_by="ann",
    )
    assert v.ref == "s3://bucket:data/x@2"
    d = v.to_dict()
    assert d["digest"] == f"sha256:{HEX64}"
    assert d["version"] == 2
    assert d["created_at"] == "2024-01-02T00:00:00+00:00"
    assert not v.is_directory
