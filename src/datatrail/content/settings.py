"""Content settings in ``.datatrail/config.toml``: whether ``add`` keeps bytes, and the remotes.

.. code-block:: toml

    [content]
    store = true          # datatrail add keeps the bytes of new files (as --store-content)
    remote = "origin"     # the default remote

    [remotes.origin]
    url = "s3://bucket/datatrail"

Only names and URLs are written here, never credentials: a URL with
``user:password@`` is refused (credentials come from the store's usual
environment, as for remote datasets).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from datatrail.config import CONFIG
from datatrail.core.errors import Conflict, InvalidInput, NotFound
from datatrail.remote import is_url, redact, secrets_of

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_OURS = re.compile(r"^\s*\[(content|remotes\.[^\]]+)\]\s*$")
_TABLE = re.compile(r"^\s*\[")


@dataclass(frozen=True)
class RemoteConfig:
    """A named remote: where objects are pushed to and pulled from."""

    name: str
    url: str
    default: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "url": self.url, "default": self.default}


@dataclass(frozen=True)
class ContentSettings:
    """What ``[content]`` and ``[remotes.*]`` say."""

    store: bool = False
    default_remote: str | None = None
    remotes: tuple[RemoteConfig, ...] = ()

    def remote(self, name: str | None) -> RemoteConfig:
        """The remote called ``name``, or the default one."""
        chosen = name or self.default_remote
        if chosen is None:
            if len(self.remotes) == 1:
                return self.remotes[0]
            if not self.remotes:
                msg = "no remote configured; add one with `datatrail remote add NAME URL --default`"
                raise NotFound(msg)
            msg = "several remotes and no default; pass --remote NAME or run `datatrail remote default NAME`"
            raise InvalidInput(msg)
        for r in self.remotes:
            if r.name == chosen:
                return r
        msg = f"no remote named {chosen!r}; `datatrail remote list` shows them"
        raise NotFound(msg)


def read_settings(config_dir: Path | None) -> ContentSettings:
    if config_dir is None or not (config_dir / CONFIG).is_file():
        return ContentSettings()
    try:
        with (config_dir / CONFIG).open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        msg = f"invalid config file {os.fspath(config_dir / CONFIG)!r}: {exc}; fix or remove it"
        raise InvalidInput(msg) from None
    content = data.get("content") if isinstance(data.get("content"), dict) else {}
    assert isinstance(content, dict)
    default = content.get("remote") if isinstance(content.get("remote"), str) else None
    remotes = []
    section = data.get("remotes")
    if isinstance(section, dict):
        for name, value in section.items():
            if isinstance(value, dict) and isinstance(value.get("url"), str):
                remotes.append(RemoteConfig(name, _anchor(value["url"], config_dir), name == default))
    return ContentSettings(bool(content.get("store", False)), default, tuple(remotes))


def _anchor(url: str, config_dir: Path) -> str:
    """A relative folder in the config file is relative to the folder holding ``.datatrail/``."""
    if is_url(url) or os.path.isabs(url):
        return url
    return os.fspath((config_dir.parent / url).resolve())


def check_remote(name: str, url: str) -> tuple[str, str]:
    """A remote's name and URL as they may be written to the config, or a one-line refusal."""
    if not _NAME.fullmatch(name):
        msg = f"invalid remote name {name!r}: use letters, digits, '-', '_' and '.' (at most 64)"
        raise InvalidInput(msg)
    if not url.strip():
        msg = "the remote's URL is empty; give a folder or a URL such as s3://bucket/datatrail"
        raise InvalidInput(msg)
    if secrets_of(url) or redact(url) != url:
        msg = (
            f"the URL {redact(url)!r} holds credentials; they never go into the config: "
            "give the URL without them and set them in the store's environment (AWS_PROFILE, …)"
        )
        raise InvalidInput(msg)
    if not is_url(url):
        url = os.fspath(Path(url).expanduser().resolve())
    return name, url


def write_settings(config_dir: Path, settings: ContentSettings) -> None:
    """Rewrite ``[content]`` and ``[remotes.*]`` of the config file, leaving every other line as it is."""
    path = config_dir / CONFIG
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept: list[str] = []
    skipping = False
    for row in lines:
        if _TABLE.match(row):
            skipping = bool(_OURS.match(row))
        if not skipping:
            kept.append(row)
    while kept and not kept[-1].strip():
        kept.pop()
    out = [*kept, "", "[content]", f"store = {'true' if settings.store else 'false'}"]
    if settings.default_remote:
        out.append(f"remote = {_toml(settings.default_remote)}")
    for r in settings.remotes:
        out += ["", f"[remotes.{_toml(r.name)}]", f"url = {_toml(r.url)}"]
    tmp = path.with_name(f".{CONFIG}.tmp")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def add_remote(config_dir: Path, name: str, url: str, *, default: bool = False, replace: bool = False) -> RemoteConfig:
    name, url = check_remote(name, url)
    current = read_settings(config_dir)
    others = tuple(r for r in current.remotes if r.name != name)
    if len(others) != len(current.remotes) and not replace:
        msg = f"a remote named {name!r} exists; remove it first or pass --replace"
        raise Conflict(msg)
    chosen = name if default or (current.default_remote is None and not current.remotes) else current.default_remote
    remotes = (*others, RemoteConfig(name, url))
    write_settings(config_dir, ContentSettings(current.store, chosen, remotes))
    return RemoteConfig(name, url, chosen == name)


def remove_remote(config_dir: Path, name: str) -> None:
    current = read_settings(config_dir)
    current.remote(name)  # NotFound when unknown
    remotes = tuple(r for r in current.remotes if r.name != name)
    default = None if current.default_remote == name else current.default_remote
    write_settings(config_dir, ContentSettings(current.store, default, remotes))


def set_default_remote(config_dir: Path, name: str) -> None:
    current = read_settings(config_dir)
    current.remote(name)
    write_settings(config_dir, ContentSettings(current.store, name, current.remotes))


def set_store_content(config_dir: Path, store: bool) -> None:
    current = read_settings(config_dir)
    write_settings(config_dir, ContentSettings(store, current.default_remote, current.remotes))


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = [
    "ContentSettings",
    "RemoteConfig",
    "add_remote",
    "check_remote",
    "read_settings",
    "remove_remote",
    "set_default_remote",
    "set_store_content",
    "write_settings",
]
