"""The rows of a verified S3 Inventory report, grouped by key in bounded memory.

AWS documents no row order, and a report can hold billions of rows, so grouping is an external
sort: rows become compact tuples, a bounded buffer of them is sorted and spilled as a run (gzip'd
orjson lines, mode 0600) to the run's private scratch directory, and a `heapq.merge` of the runs
streams them back in key order. Memory stays flat as the report grows: one buffer while reading,
one line per run while merging.

Every row is read (and a bad one refuses the report, naming file:line:column) before the first
object is yielded, so a report that fails half-way plans nothing.
"""
from __future__ import annotations

import csv
import gzip
import heapq
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import orjson

from .model import ObjectEntry, Version

# The columns read, in the order a Row carries them (canonical CSV names; ORC and Parquet name
# them in snake case).
COLUMNS = ("Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ObjectLockMode",
           "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus")
TIME_COLUMNS = ("LastModifiedDate", "ObjectLockRetainUntilDate")

# (key, 0 latest | 1 older, -last modified in µs, version id, delete marker 0|1, size, lock mode or "",
#  lock retain-until in µs or -1, legal hold 0|1): tuples sort as a listing yields versions (key order,
# then the latest, then newest first; the version id breaks ties), and every field compares with its peers.
Row = tuple[str, int, int, str, int, int, str, int, int]

SPILL_ROWS = 200_000  # rows held before a sorted run is spilled (~70 MB of tuples)
CHUNK_ROWS = 512  # rows per line of a run file (a merge holds one line per run)
FAN_IN = 64  # runs merged at once; more are first merged into bigger runs (open files stay bounded)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)


class RowError(ValueError):
    """One value of one row is unusable (the message names the column)."""


def micros(value: Any, column: str) -> int:
    """An ISO 8601 text (naive means UTC) or a datetime, as µs since the epoch."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)  # Python 3.11 reads a trailing Z as UTC
        except ValueError:
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise RowError(f"{column}: {value!r} is not an ISO 8601 time") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise RowError(f"{column}: {value!r} is not a time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MICRO


def _flag(value: Any) -> int:
    if value == "true" or value is True:
        return 1
    return 1 if isinstance(value, str) and value != "false" and value.strip().lower() == "true" else 0


def _row(key: str, version_id: Any, latest: Any, marker: Any, size: Any, modified: Any, mode: Any, until: Any,
         hold: Any) -> Row:
    if modified is None or modified == "":
        raise RowError("LastModifiedDate: empty")
    stamp = modified if isinstance(modified, int) else micros(modified, "LastModifiedDate")
    try:
        length = int(size) if size else 0
    except ValueError:
        raise RowError(f"Size: {size!r} is not a number") from None
    return (key, 0 if _flag(latest) else 1, -stamp, version_id or "null", _flag(marker), length, mode or "",
            (until if isinstance(until, int) else micros(until, "ObjectLockRetainUntilDate")) if until not in (None, "") else -1,
            1 if hold is not None and str(hold).upper() == "ON" else 0)


def csv_rows(path: Path, label: str, columns: tuple[str, ...], prefix: str, newest: int) -> Iterator[Row]:
    """Rows of one gzip CSV data file under `prefix` and not modified after `newest` (µs); keys URL-decoded."""
    index = {name: i for i, name in enumerate(columns)}
    pick = itemgetter(*(index[name] for name in COLUMNS))
    fromiso = datetime.fromisoformat
    width = len(columns)
    reader: Any = None
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            for values in reader:
                if len(values) != width:
                    raise RowError(f"{len(values)} columns, the manifest's schema has {width}")
                key, version_id, latest, marker, size, modified, mode, until, hold = pick(values)
                if "%" in key or "+" in key:  # CSV reports URL-encode keys (a space as '+')
                    key = unquote_plus(key)
                if not key.startswith(prefix):
                    continue
                try:  # AWS's own spelling, inline (the hot loop); anything else takes _row's exact path
                    if until or (latest != "true" and latest != "false") or (marker != "true" and marker != "false") \
                            or (hold != "ON" and hold != "OFF" and hold != ""):
                        raise ValueError
                    stamp = (fromiso(modified) - EPOCH) // MICRO  # a naive time raises TypeError: _row takes it
                    row = (key, 0 if latest == "true" else 1, -stamp, version_id or "null", 1 if marker == "true" else 0,
                           int(size) if size else 0, mode, -1, 1 if hold == "ON" else 0)
                except (ValueError, TypeError):
                    row = _row(key, version_id, latest, marker, size, modified, mode, until, hold)
                if -row[2] <= newest:
                    yield row
    except RowError as exc:
        raise RowError(f"{label}:{reader.line_num}: {exc}") from None
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        line = reader.line_num + 1 if reader is not None else 1
        raise RowError(f"{label}:{line}: unreadable: {type(exc).__name__}: {exc}") from None


def arrow_rows(batches: Iterable[Any], names: list[str], label: str, prefix: str, newest: int) -> Iterator[Row]:
    """Rows of Arrow record batches (Parquet or ORC: keys as written, times as timestamps); `names` are
    the file's names of COLUMNS, in that order."""
    import pyarrow as pa  # only reached with the inventory extra installed

    offset = 0
    for batch in batches:
        lists = []
        for name, in_file in zip(COLUMNS, names, strict=True):
            column = batch.column(in_file)
            if name in TIME_COLUMNS and pa.types.is_timestamp(column.type):
                column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            lists.append(column.to_pylist())
        for number, values in enumerate(zip(*lists, strict=True), offset + 1):
            key = values[0]
            if key is None or not key.startswith(prefix):
                continue
            try:
                row = _row(*values)
            except RowError as exc:
                raise RowError(f"{label}: row {number}: {exc}") from None
            if -row[2] <= newest:
                yield row
        offset += batch.num_rows


def _spill(rows: Iterable[Any], path: Path) -> Path:
    """Sorted rows to a new private run file: gzip (level 1: sorted keys share prefixes) of orjson lines,
    each line an array of up to CHUNK_ROWS rows (one call per chunk, not per row, each way)."""
    chunk: list[Any] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as out:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                out.write(orjson.dumps(chunk) + b"\n")
                chunk.clear()
        if chunk:
            out.write(orjson.dumps(chunk) + b"\n")
    return path


def _run(path: Path) -> Iterator[list[Any]]:
    with gzip.open(path, "rb") as handle:
        for line in handle:
            yield from orjson.loads(line)


def sorted_rows(rows: Iterable[Row], scratch: Path, limit: int | None = None) -> Iterator[Any]:
    """Every row, in order, with at most `limit` (default SPILL_ROWS) rows in memory. Eager: reads every
    row (so any error is raised) before it returns; the iterator it returns streams the merge."""
    limit = limit or SPILL_ROWS
    buffer: list[Any] = []
    runs: list[Path] = []
    for row in rows:
        buffer.append(row)
        if len(buffer) >= limit:
            buffer.sort()
            runs.append(_spill(buffer, scratch / f"run-{len(runs):06d}"))
            buffer.clear()
    buffer.sort()
    if not runs:
        return iter(buffer)
    if buffer:
        runs.append(_spill(buffer, scratch / f"run-{len(runs):06d}"))
    del buffer
    merged = 0
    while len(runs) > FAN_IN:  # bounded open files and merge heap: merge the oldest runs into one
        head, runs = runs[:FAN_IN], runs[FAN_IN:]
        runs.append(_spill(heapq.merge(*map(_run, head)), scratch / f"merge-{merged:06d}"))
        merged += 1
        for path in head:
            path.unlink()
    return heapq.merge(*map(_run, runs))


def grouped(rows: Iterator[Any]) -> Iterator[ObjectEntry]:
    """Sorted rows as objects: keys in order, versions latest first then newest first (as S3 lists them)."""
    key: str | None = None
    versions: list[Version] = []
    for k, rank, stamp, version_id, marker, size, mode, until, hold in rows:
        if k != key:
            if versions:
                yield ObjectEntry(key, versions)  # type: ignore[arg-type]  # set with the first version
            key, versions = k, []
        versions.append(Version(k, version_id, rank == 0, marker == 1, EPOCH + MICRO * -stamp, size, mode or None,
                                EPOCH + MICRO * until if until >= 0 else None, hold == 1))
    if versions:
        yield ObjectEntry(key, versions)  # type: ignore[arg-type]
