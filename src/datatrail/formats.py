"""Detecting a file's format from its name (and a directory's from its files)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".arrow": "arrow",
    ".feather": "feather",
    ".ipc": "arrow",
    ".npy": "npy",
    ".npz": "npz",
    ".avro": "avro",
    ".orc": "orc",
    ".xlsx": "xlsx",
    ".txt": "text",
    ".md": "text",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".skops": "skops",
    ".onnx": "onnx",
    ".pt": "torch",
    ".pth": "torch",
    ".safetensors": "safetensors",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".zip": "zip",
    ".tar": "tar",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".gif": "gif",
    ".db": "sqlite",
    ".sqlite": "sqlite",
    ".duckdb": "duckdb",
}
_COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2", ".xz": "xz"}


def detect_format(filename: str) -> str | None:
    """``'csv'``, ``'csv+gzip'``, ``'parquet'``… or None when unknown.

    >>> detect_format("train.csv.gz")
    'csv+gzip'
    """
    lower = filename.lower()
    compression = None
    for suffix, name in _COMPRESSIONS.items():
        if lower.endswith(suffix):
            compression, lower = name, lower[: -len(suffix)]
            break
    if lower.endswith(".tar"):
        return "tar" + (f"+{compression}" if compression else "")
    dot = lower.rfind(".")
    base = _SUFFIXES.get(lower[dot:]) if dot >= 0 else None
    if base is None:
        return compression
    return f"{base}+{compression}" if compression else base


def detect_directory_format(paths: Iterable[str]) -> str:
    """``'parquet-dir'`` when most files share one tabular format, else ``'directory'``."""
    counts = Counter(f for f in (detect_format(p.rsplit("/", 1)[-1]) for p in paths) if f)
    if counts:
        top, _ = counts.most_common(1)[0]
        if top.split("+")[0] in ("parquet", "csv", "tsv", "jsonl", "arrow", "feather"):
            return f"{top}-dir"
    return "directory"


TABULAR = ("csv", "tsv", "parquet", "jsonl", "arrow", "feather")


def is_tabular(fmt: str | None) -> bool:
    """Whether a detected format (``csv+gzip``, ``parquet-dir``…) can be profiled.

    >>> is_tabular("csv+gzip"), is_tabular("parquet-dir"), is_tabular("png")
    (True, True, False)
    """
    if not fmt:
        return False
    base, _, rest = fmt.removesuffix("-dir").partition("+")
    return base in TABULAR and rest in ("", "gzip", "zstd")
