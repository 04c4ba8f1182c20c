"""Finding the store: ``--store``, ``DATATRAIL_URI``, or ``.datatrail/`` walking up like git."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from datatrail.core.errors import Conflict, InvalidInput, StoreNotFound

DIRNAME = ".datatrail"
CONFIG = "config.toml"
DB = "trail.db"
ENV_URI = "DATATRAIL_URI"
ENV_USER = "DATATRAIL_USER"


@dataclass(frozen=True)
class Location:
    """Where the store is and what the working tree around it is."""

    uri: str
    root: Path  # the folder holding .datatrail/, else the working directory
    config_dir: Path | None  # .datatrail/ when one was found
    user: str | None = None


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
    chosen = uri or os.environ.get(ENV_URI) or config_uri
    if not chosen and config_dir is not None:
        chosen = f"sqlite:///{config_dir / DB}"
    if not chosen:
        msg = "no datatrail store here or in any parent folder; run `datatrail init` (or pass --store URI)"
        raise StoreNotFound(msg)
    return Location(chosen, root, config_dir, user)


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
