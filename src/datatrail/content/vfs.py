"""A directory version as a read-only fsspec filesystem over the object cache.

``trail.open("images@3")`` returns one: ``fs.ls("")``, ``fs.open("train/a.png")``,
``fs.find("")``, and anything built on fsspec (pandas, pyarrow through
``PyFileSystem(FSSpecHandler(fs))``) read the version's files by their paths
in its manifest, each from the object named by its digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

from datatrail.content.objects import ObjectStore


class VersionFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """The files of one version (relative path → (hex digest, size)), read from ``objects``."""

    protocol = "datatrail"
    cachable = False
    root_marker = ""

    def __init__(self, files: Mapping[str, tuple[str, int]], objects: ObjectStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files = dict(files)
        self.objects = objects
        dirs = {""}
        for rel in self.files:
            parts = rel.split("/")
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
        self.dirs = dirs

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        if text.startswith("datatrail://"):
            text = text[len("datatrail://") :]
        text = text.strip("/")
        return "" if text == "." else text.removeprefix("./")

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        p = self._strip_protocol(path)
        if p in self.files:
            hexd, size = self.files[p]
            return {"name": p, "size": size, "type": "file", "sha256": hexd}
        if p in self.dirs:
            return {"name": p, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        p = self._strip_protocol(path)
        if p in self.files:
            entries = [self.info(p)]
        elif p in self.dirs:
            prefix = f"{p}/" if p else ""
            names = {
                prefix + rel[len(prefix) :].split("/", 1)[0] for rel in self.files if rel.startswith(prefix) and rel
            }
            entries = [self.info(n) for n in sorted(names)]
        else:
            raise FileNotFoundError(path)
        return entries if detail else [e["name"] for e in entries]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "r" not in mode or "+" in mode:
            msg = "a version is read-only; open its files with mode 'rb'"
            raise PermissionError(msg)
        p = self._strip_protocol(path)
        if p not in self.files:
            raise FileNotFoundError(path)
        return self.objects.open(self.files[p][0])


__all__ = ["VersionFileSystem"]
