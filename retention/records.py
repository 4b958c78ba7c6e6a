"""Records inside objects (layout jsonl / csv, `.gz` transparently): parse, age, and write back.

Lines that cannot be read are kept byte for byte and reported: a malformed record is never
lost and never crashes a run.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from .transforms import parse_time


@dataclass
class Record:
    index: int
    raw: str  # the line (jsonl) or the row as written (csv), without its newline
    fields: dict[str, Any] | None  # None when the line could not be parsed
    ts: datetime | None = None
    subject: str | None = None
    error: str | None = None

    @property
    def size(self) -> int:
        return len(self.raw.encode("utf-8")) + 1


@dataclass
class Parsed:
    records: list[Record]
    header: list[str] | None = None  # csv only
    gz: bool = False


def is_gz(key: str) -> bool:
    return key.endswith(".gz")


def parse(body: bytes, key: str, layout: str, timestamp_field: str | None, subject_field: str | None) -> Parsed:
    gz = is_gz(key)
    if gz:
        body = gzip.decompress(body)
    text = body.decode("utf-8", errors="replace")
    if layout == "csv":
        parsed = _parse_csv(text)
    elif layout == "object":
        parsed = Parsed([_json_record(0, text.strip())])
    else:
        parsed = Parsed([_json_record(i, line) for i, line in enumerate(text.splitlines()) if line.strip()])
    parsed.gz = gz
    for record in parsed.records:
        _age(record, timestamp_field, subject_field)
    return parsed


def _loads(line: str) -> Any:
    """orjson first (several times faster on the millions of lines a store holds), the standard
    library for what orjson refuses but Python's json reads (NaN, Infinity, huge integers)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def _dumps(record: dict[str, Any]) -> str:
    try:
        return orjson.dumps(record).decode("utf-8")
    except TypeError:  # a value orjson will not write (an integer beyond 64 bits, NaN kept as is)
        return _dumps(record)


def _json_record(index: int, line: str) -> Record:
    try:
        value = _loads(line)
    except ValueError as exc:
        return Record(index, line, None, error=f"record {index + 1}: not JSON ({getattr(exc, 'msg', exc)})")
    if not isinstance(value, dict):
        return Record(index, line, None, error=f"record {index + 1}: not a JSON object")
    return Record(index, line, value)


def _parse_csv(text: str) -> Parsed:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None) or []
    records = []
    for index, row in enumerate(rows):
        if not row:
            continue
        raw = _csv_line(row)
        if len(row) != len(header):
            missing = header[len(row):] if len(row) < len(header) else []
            why = f"missing column {', '.join(missing)}" if missing else f"{len(row)} values for {len(header)} columns"
            records.append(Record(index, raw, None, error=f"row {index + 2}: {why}"))
            continue
        records.append(Record(index, raw, dict(zip(header, row, strict=False))))
    return Parsed(records, header=header)


def _csv_line(row: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def _age(record: Record, timestamp_field: str | None, subject_field: str | None) -> None:
    if record.fields is None:
        return
    if subject_field:
        value = record.fields.get(subject_field)
        record.subject = None if value in (None, "") else str(value)
    if timestamp_field:
        record.ts = parse_time(record.fields.get(timestamp_field))
        if record.ts is None:
            record.error = f"record {record.index + 1}: missing or unreadable timestamp '{timestamp_field}'"


def render(record: Record | dict[str, Any], parsed: Parsed) -> str:
    """One output line: a kept record verbatim, a new (anonymized) one serialized in the layout."""
    if isinstance(record, Record):
        return record.raw
    if parsed.header is not None:
        return _csv_line(["" if record.get(h) is None else record.get(h) for h in parsed.header])
    return _dumps(record)


def encode(lines: list[str], parsed: Parsed, layout: str) -> bytes:
    if layout == "object":
        text = lines[0] if lines else ""
    else:
        head = [_csv_line(parsed.header)] if parsed.header is not None else []
        text = "".join(line + "\n" for line in head + lines)
    body = text.encode("utf-8")
    return gzip.compress(body, mtime=0) if parsed.gz else body
