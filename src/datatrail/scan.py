"""Reading tabular files and directories as record batches, from the local disk or a filesystem passed in.

:func:`scan_path` reads CSV/TSV (also gzip/zstd), Parquet, JSON Lines and
Arrow IPC/Feather files, and directories of them as one table, batch by batch,
and feeds the batches to a consumer (a profile, a rule evaluator, a drift
sample). The pyarrow filesystem to read from is an argument handed down to
every function that opens a file; None reads the local disk.

pyarrow is imported by this module, so import it only when data is to be read.

>>> from datatrail.scan import scan_path                                   # doctest: +SKIP
>>> scan_path("data/penguins.csv", "csv", RowCounter).rows                  # doctest: +SKIP
344
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from datatrail.core.errors import InvalidInput
from datatrail.formats import detect_format

BATCH_ROWS = 131_072
CSV_BLOCK_BYTES = 8 << 20

Filesystem = Any
"""A pyarrow FileSystem to read remote data from (``datatrail.remote``); None reads the local disk."""


def _input_stream(path: Path, fs: Filesystem) -> Any:
    """A sequential stream of ``path``, decompressed as its extension says."""
    if fs is None:
        return pa.input_stream(str(path), compression="detect")
    return fs.open_input_stream(path.as_posix(), compression="detect")


def _input_file(path: Path, local: Callable[[str], Any], fs: Filesystem) -> Any:
    """A random-access file: ``local(str(path))`` for a local path, else opened on the remote filesystem."""
    return local(str(path)) if fs is None else fs.open_input_file(path.as_posix())


def _csv_batches(
    path: Path, fmt: str, column_types: dict[str, pa.DataType], fs: Filesystem
) -> Iterator[pa.RecordBatch]:
    """The record batches of a CSV or TSV file, ``column_types`` forced."""
    import pyarrow.csv as pcsv

    delimiter = "\t" if fmt.startswith("tsv") else ","
    stream = _input_stream(path, fs)
    try:
        try:
            reader = pcsv.open_csv(
                stream,
                read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                parse_options=pcsv.ParseOptions(delimiter=delimiter),
                # An empty cell is missing, in text columns too (as pandas and DuckDB read it).
                convert_options=pcsv.ConvertOptions(column_types=column_types, strings_can_be_null=True),
            )
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" not in str(exc):
                raise
            # No data rows (a header alone, or nothing): a table of text columns with no rows.
            names = _csv_header(path, fmt, fs)
            yield pa.RecordBatch.from_arrays([pa.array([], pa.string()) for _ in names], names=names)
            return
        yield from reader
    finally:
        stream.close()


def _ragged_line(path: Path, fmt: str, fs: Filesystem) -> str:
    """Where a CSV file first has a different number of fields than its header (only on the error path)."""
    delimiter = "\t" if fmt.startswith("tsv") else ","
    with _input_stream(path, fs) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        width = None
        for row in reader:
            if width is None:
                width = len(row)
            elif row and len(row) != width:
                return f"line {reader.line_num} has {len(row)} fields, the header has {width}"
    return "a line is malformed"


def _jsonl_batches(path: Path, fs: Filesystem) -> Iterator[pa.RecordBatch]:
    """The record batches of a JSON Lines file."""
    import pyarrow.json as pj

    stream = _input_stream(path, fs)
    try:
        if hasattr(pj, "open_json"):  # pyarrow >= 19 streams JSON Lines
            yield from pj.open_json(stream, read_options=pj.ReadOptions(block_size=CSV_BLOCK_BYTES))
        else:  # pragma: no cover - older pyarrow reads the file whole
            yield from pj.read_json(stream).to_batches(BATCH_ROWS)
    finally:
        stream.close()


def _ipc_batches(path: Path, fs: Filesystem) -> Iterator[pa.RecordBatch]:
    """The record batches of an Arrow IPC file or stream (Feather v2)."""
    source = _input_file(path, pa.memory_map, fs)
    try:
        try:
            reader = pa.ipc.open_file(source)
        except pa.ArrowInvalid:
            source.seek(0)
            yield from pa.ipc.open_stream(source)
            return
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    finally:
        source.close()


def _parquet_batches(path: Path, fs: Filesystem) -> Iterator[pa.RecordBatch]:
    """The record batches of a Parquet file, never crossing a run of row groups."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(_input_file(path, str, fs)) as f:
        for segment in parquet_segments(f.metadata):
            yield from f.iter_batches(batch_size=BATCH_ROWS, row_groups=segment)


def parquet_segments(metadata: Any) -> list[list[int]]:
    """The row groups of a Parquet file in runs of at most BATCH_ROWS rows (a larger group alone).

    Batches never cross a run's end, so the batches of a file are the same
    whether it is read whole or run by run in several processes
    (:mod:`datatrail.profile_parallel`): the profile is then the same too.
    """
    out: list[list[int]] = []
    current: list[int] = []
    rows = 0
    for i in range(metadata.num_row_groups):
        n = metadata.row_group(i).num_rows
        if current and rows + n > BATCH_ROWS:
            out.append(current)
            current, rows = [], 0
        current.append(i)
        rows += n
    if current:
        out.append(current)
    return out


def _file_batches(
    path: Path, fmt: str, column_types: dict[str, pa.DataType], fs: Filesystem
) -> Iterator[pa.RecordBatch]:
    """The record batches of one file of format ``fmt``."""
    base = fmt.partition("+")[0]
    if base in ("csv", "tsv"):
        return _csv_batches(path, fmt, column_types, fs)
    if base == "parquet":
        return _parquet_batches(path, fs)
    if base == "jsonl":
        return _jsonl_batches(path, fs)
    return _ipc_batches(path, fs)


def _files(path: Path, fmt: str, fs: Filesystem) -> list[tuple[Path, str]]:
    """The files (and each one's format) that make up the table at ``path``: itself, or a directory's data files."""
    if not fmt.endswith("-dir"):
        return [(path, fmt)]
    want = fmt.removesuffix("-dir").partition("+")[0]
    out = []
    if fs is not None:  # a remote prefix: the same files a local walk would take
        from pyarrow.fs import FileSelector, FileType

        base = path.as_posix().rstrip("/") + "/"
        for info in sorted(fs.get_file_info(FileSelector(path.as_posix(), recursive=True)), key=lambda i: i.path):
            *dirs, n = info.path.removeprefix(base).split("/")
            f = detect_format(n)
            hidden = any(d.startswith(".") for d in dirs) or n.startswith((".", "_"))
            if info.type == FileType.File and f and f.partition("+")[0] == want and not hidden:
                out.append((Path(info.path), f))
        return out
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not (root == str(path) and d == ".datatrail") and not d.startswith("."))
        for n in sorted(names):
            f = detect_format(n)
            if f and f.partition("+")[0] == want and not n.startswith((".", "_")):
                out.append((Path(root) / n, f))
    return out


def _batches(
    path: Path, fmt: str, column_types: dict[str, pa.DataType], fs: Filesystem
) -> Iterator[tuple[Path, pa.RecordBatch]]:
    """Every record batch of a file or directory, cast to the first file's schema, with the file it came from."""
    first: pa.Schema | None = None
    for file, file_fmt in _files(path, fmt, fs):
        for batch in _file_batches(file, file_fmt, column_types, fs):
            if first is None:
                first = batch.schema
            elif batch.schema != first:
                if batch.schema.names != first.names:
                    raise _NotOneTable
                try:
                    batch = batch.cast(first)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    if fmt.partition("+")[0] in ("csv-dir", "tsv-dir") and not column_types:
                        # Types guessed differently per file (int in one, text in another): read all as text.
                        raise _Restart({n: pa.string() for n in first.names}) from None
                    msg = f"cannot profile {os.fspath(file)!r}: its column types differ from the first file's"
                    raise InvalidInput(msg) from None
            yield file, batch


class _NotOneTable(Exception):
    """The files of a directory have different columns: they are not one table."""


class _Restart(Exception):
    """Start reading again with these column types (control flow inside this module)."""

    def __init__(self, column_types: dict[str, pa.DataType]) -> None:
        self.column_types = column_types


class BatchConsumer(Protocol):
    def add(self, batch: pa.RecordBatch) -> None: ...


Consumer = TypeVar("Consumer", bound=BatchConsumer)


def scan_path(
    path: str | os.PathLike[str], fmt: str, make: Callable[[], Consumer], filesystem: Filesystem = None
) -> Consumer | None:
    """Feed every record batch of a tabular file or directory to a consumer ``make()`` returns.

    Reading starts again with a fresh consumer when a CSV column turns out to
    hold text after a first block of numbers. None when a directory's files
    are not one table; InvalidInput (naming file and line) when unreadable.
    ``filesystem`` (a pyarrow FileSystem) reads ``path`` from it instead of the local disk.
    """
    p = Path(path)
    column_types: dict[str, pa.DataType] = {}
    for _ in range(1000):
        current = p
        names: list[str] = []
        try:
            consumer = make()
            for item in _batches(p, fmt, column_types, filesystem):
                current = item[0]
                names = names or list(item[1].schema.names)
                consumer.add(item[1])
            return consumer
        except _NotOneTable:
            return None
        except _Restart as again:
            column_types = {**column_types, **again.column_types}
        except pa.ArrowInvalid as exc:
            text = str(exc)
            base = fmt.partition("+")[0].removesuffix("-dir")
            if base in ("csv", "tsv") and text.startswith("In CSV column #"):
                # pyarrow guesses a column's type from the first block; a later
                # value that does not fit makes it text, and we start again.
                index = int(text[len("In CSV column #") :].split(":", 1)[0])
                names = names or _csv_header(current, fmt, filesystem)
                if 0 <= index < len(names) and names[index] not in column_types:
                    column_types = {**column_types, names[index]: pa.string()}
                    continue
            where = _ragged_line(current, fmt, filesystem) if "Expected" in text and base in ("csv", "tsv") else text
            msg = f"cannot profile {os.fspath(current)!r} as {fmt}: {' '.join(where.split())[:300]}"
            raise InvalidInput(msg) from None
        except (OSError, pa.ArrowException) as exc:
            msg = f"cannot profile {os.fspath(current)!r} as {fmt}: {' '.join(str(exc).split())[:300]}"
            raise InvalidInput(msg) from None
    msg = f"cannot profile {os.fspath(p)!r}: column types keep changing"  # pragma: no cover
    raise InvalidInput(msg)  # pragma: no cover


def _csv_header(path: Path, fmt: str, fs: Filesystem) -> list[str]:
    """The field names on the first line of a CSV or TSV file."""
    with _input_stream(path, fs) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        return next(csv.reader(text, delimiter="\t" if fmt.startswith("tsv") else ","), [])
