"""Finding the store (``--store``, ``DATATRAIL_URI``, or ``.datatrail/`` walking up like git) and its token.

A token is bound to the server it was issued for: ``DATATRAIL_TOKEN`` (or a
``token=`` argument) goes only to a store the user named, and a store named by
a repository's ``.datatrail/config.toml`` gets only the token the user's own
``tokens.toml`` gives its origin, as ``~/.netrc`` does for hosts.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from datatrail.core.errors import Conflict, InvalidInput, StoreNotFound

DIRNAME = ".datatrail"
CONFIG = "config.toml"
DB = "trail.db"
ENV_URI = "DATATRAIL_URI"
ENV_USER = "DATATRAIL_USER"
ENV_TOKEN = "DATATRAIL_TOKEN"
TOKENS = "tokens.toml"

# Who named the store: the caller (``uri=``/``--store``), ``$DATATRAIL_URI``, the ``[store] uri`` of
# a config.toml found walking up (which a cloned repository may hold), or nobody (.datatrail/trail.db).
Source = Literal["argument", "environment", "config", "default"]


@dataclass(frozen=True)
class Location:
    """Where the store is, who named it, and what the working tree around it is."""

    uri: str
    root: Path  # the folder holding .datatrail/, else the working directory
    config_dir: Path | None  # .datatrail/ when one was found
    user: str | None = None
    source: Source = "argument"


def find_config_dir(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DIRNAME
        if (candidate / CONFIG).is_file():
            return candidate
    return None


def read_config(config_dir: Path) -> dict[str, object]:
    path = config_dir / CONFIG
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        msg = f"invalid config file {os.fspath(path)!r}: {exc}; fix or remove it"
        raise InvalidInput(msg) from None


def locate(uri: str | None = None, start: Path | None = None) -> Location:
    """The store to use, by precedence: ``uri``, ``$DATATRAIL_URI``, ``.datatrail/`` walking up."""
    config_dir = find_config_dir(start)
    user = None
    config_uri = None
    if config_dir is not None:
        cfg = read_config(config_dir)
        store = cfg.get("store")
        if isinstance(store, dict) and isinstance(store.get("uri"), str):
            config_uri = _anchor(store["uri"], config_dir)
        user_section = cfg.get("user")
        if isinstance(user_section, dict) and isinstance(user_section.get("name"), str):
            user = user_section["name"]
    root = config_dir.parent if config_dir is not None else (start or Path.cwd()).resolve()
    named: list[tuple[str | None, Source]] = [(uri, "argument"), (os.environ.get(ENV_URI), "environment")]
    named.append((config_uri, "config"))
    if config_dir is not None:
        named.append((f"sqlite:///{config_dir / DB}", "default"))
    for chosen, source in named:
        if chosen:
            return Location(chosen, root, config_dir, user, source)
    msg = "no datatrail store here or in any parent folder; run `datatrail init` (or pass --store URI)"
    raise StoreNotFound(msg)


def origin(uri: str) -> str | None:
    """The origin (``scheme://host:port``) of a server's URI, the unit a token is bound to; None for others.

    >>> origin("HTTPS://Trail.example.com/api"), origin("http://[::1]:8000"), origin("sqlite:///t.db")
    ('https://trail.example.com:443', 'http://[::1]:8000', None)
    """
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port}"


def tokens_file() -> Path:
    """The user's own token file: ``$XDG_CONFIG_HOME/datatrail/tokens.toml`` (``~/.config/…`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "datatrail" / TOKENS


def configured_token(uri: str) -> str | None:
    """The token ``tokens.toml`` gives the origin of ``uri`` (``[tokens]`` maps origins to tokens)."""
    site = origin(uri)
    path = tokens_file()
    if site is None or not path.is_file():
        return None
    st = path.stat()
    if os.name == "posix" and (st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or st.st_uid != os.getuid()):
        msg = f"{os.fspath(path)} holds tokens but others may read or own it; run `chmod 600 {os.fspath(path)}`"
        raise InvalidInput(msg)
    try:
        with path.open("rb") as f:
            tokens = tomllib.load(f).get("tokens")
    except tomllib.TOMLDecodeError as exc:
        msg = f'invalid token file {os.fspath(path)!r}: {exc}; fix it (a [tokens] table of "origin" = "token")'
        raise InvalidInput(msg) from None
    if not isinstance(tokens, dict):
        return None
    for key, value in tokens.items():
        if isinstance(value, str) and value and origin(str(key)) == site:
            return value
    return None


def token_for(location: Location, token: str | None = None) -> str | None:
    """The token to send to the location's store, or None (local stores take none).

    ``token``, else ``$DATATRAIL_TOKEN``, goes to a store the user named
    (``uri=``, ``--store``, ``$DATATRAIL_URI``); else, and for a store named by
    a config.toml, the token ``tokens.toml`` gives the store's origin. A
    repository cannot send your token to a server of its choosing.
    """
    if origin(location.uri) is None:
        return None
    if location.source in ("argument", "environment"):
        chosen = token or os.environ.get(ENV_TOKEN)
        if chosen:
            return chosen
    elif token:
        where = os.fspath(location.config_dir / CONFIG) if location.config_dir else "a config file"
        msg = (
            f"the store {_bare(location.uri)} is named by {where}, not by you; not sending it the token: "
            f"pass its URI with the token, or map its origin to a token in {os.fspath(tokens_file())}"
        )
        raise InvalidInput(msg)
    return configured_token(location.uri)


def remote_notice(location: Location) -> str | None:
    """One line saying which server a command talks to, when a config.toml (not the user) named it."""
    site = origin(location.uri)
    if location.source != "config" or site is None:
        return None
    where = os.fspath(location.config_dir / CONFIG) if location.config_dir else "a config file"
    if configured_token(location.uri):
        auth = f" with the token {os.fspath(tokens_file())} gives {site}"
    else:
        auth = f" without a token (none for {site} in {os.fspath(tokens_file())})"
    return f"datatrail: using the remote store {_bare(location.uri)} named by {where}{auth}"


def _bare(uri: str) -> str:
    """``uri`` without ``user:password@``."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _anchor(uri: str, config_dir: Path) -> str:
    """A relative ``sqlite:///file.db`` in the config file is relative to ``.datatrail/``.

    Relative to the working directory it would name a different file from every
    subfolder, defeating the walk up.
    """
    prefix = "sqlite:///"
    rest = uri[len(prefix) :]
    if uri.startswith(prefix) and rest and not Path(rest).is_absolute() and not rest.startswith(":memory:"):
        return f"{prefix}{config_dir / rest}"
    return uri


def init_config(folder: Path, uri: str | None = None) -> Location:
    """Create ``folder/.datatrail/`` with a config naming the store."""
    config_dir = folder.resolve() / DIRNAME
    config_dir.mkdir(parents=True, exist_ok=True)
    if uri:
        # A relative path typed on the command line means the working directory.
        uri = _anchor(uri, Path.cwd())
    path = config_dir / CONFIG
    if path.exists() and uri:
        store = read_config(config_dir).get("store")
        named = store.get("uri") if isinstance(store, dict) else None
        existing = _anchor(named, config_dir) if isinstance(named, str) else f"sqlite:///{config_dir / DB}"
        if existing != uri:
            msg = (
                f"{os.fspath(config_dir)} already names the store {existing}; "
                f"edit {os.fspath(path)} to point it elsewhere"
            )
            raise Conflict(msg)
    if not path.exists():
        lines = ["# datatrail configuration", "[store]"]
        lines.append(f"uri = {_toml_str(uri)}" if uri else f'# uri = "sqlite:///{DB}"  (default: .datatrail/{DB})')
        lines += ["", "[user]", '# name = "you@example.com"  (default: the operating-system user)', ""]
        path.write_text("\n".join(lines), encoding="utf-8")
        (config_dir / ".gitignore").write_text("trail.db*\nstatcache.db*\n", encoding="utf-8")
    return locate(uri, folder)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
