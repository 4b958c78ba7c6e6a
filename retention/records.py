"""Records inside objects (layout jsonl / csv, `.gz` transparently): parse, age, and write back.

Records are the object's lines split on b"\\n" only: U+2028, a lone \\r or a form feed inside a
record is data, not a line break. A record that stays is written back as its original bytes;
only transformed records are serialized again. A record that cannot be read (invalid UTF-8,
not JSON, not an object, nested too deep, a CSV row of the wrong width) is kept byte for byte
and reported with its reason (`Record.unreadable`). An object that cannot be read at all (a
corrupt or truncated .gz, one that inflates past MAX_BYTES or MAX_RATIO, a CSV field past the
csv module's limit) raises `Unreadable`: an error for that object alone, never its store.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from .transforms import parse_time

MAX_BYTES = 256 * 2**20  # an object is never inflated past this
MAX_RATIO = 100  # nor past this many times its compressed size ...
RATIO_FLOOR = 16 * 2**20  # ... once past this (small objects may compress very well)
_BIG = float(2**63)


class Unreadable(ValueError):
    """The object as a whole cannot be read as records; the reason names why."""


@dataclass(slots=True)
class Record:
    index: int
    raw: bytes  # the line (jsonl) or the row as written (csv, possibly several lines), without its final b"\n"
    fields: dict[str, Any] | None  # None when the record could not be read
    ts: datetime | None = None
    subject: str | None = None
    error: str | None = None
    tail: bytes = b""  # blank lines after it, kept as they were while the record stays

    @property
    def size(self) -> int:
        return len(self.raw) + 1

    @property
    def unreadable(self) -> bool:
        """Could not be parsed at all (as opposed to parsed but missing its timestamp)."""
        return self.fields is None

    @property
    def text(self) -> str:
        """For display and export only: the bytes as text (invalid UTF-8 replaced)."""
        return self.raw.decode("utf-8", errors="replace")


@dataclass
class Parsed:
    records: list[Record]
    header: bytes | None = None  # csv only: the header line as written
    columns: list[str] | None = None  # csv only
    gz: bool = False
    head: bytes = b""  # blank lines before the first record (jsonl), kept as they were
    final_newline: bool = True  # whether the content ended with b"\n"


def is_gz(key: str) -> bool:
    return key.endswith(".gz")


def gunzip(body: bytes) -> bytes:
    """Inflate every gzip member of `body`, refusing (Unreadable) past the size and ratio limits
    before the memory is spent: a 1 MiB bomb stops at MAX_RATIO MiB, not gigabytes."""
    limit = min(MAX_BYTES, max(RATIO_FLOOR, MAX_RATIO * len(body)))
    out, data = bytearray(), body
    try:
        while data:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = data
            while pending:
                out += inflater.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    raise Unreadable(f"gzip inflates past {limit // 2**20} MiB (from {len(body)} bytes); not read")
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if not inflater.eof:
                raise Unreadable("gzip data is truncated")
            data = inflater.unused_data
            if not data.strip(b"\x00"):  # padding after the last member
                break
    except zlib.error as exc:
        raise Unreadable(f"corrupt gzip data ({exc})") from None
    return bytes(out)


def parse(body: bytes, key: str, layout: str, timestamp_field: str | None, subject_field: str | None) -> Parsed:
    gz = is_gz(key)
    if gz:
        body = gunzip(body)
    if layout == "csv":
        parsed = _parse_csv(body)
    elif layout == "object":
        parsed = Parsed([_json_record(0, body.strip())])
    else:
        parsed = _parse_lines(body)
    parsed.gz = gz
    for record in parsed.records:
        _age(record, timestamp_field, subject_field)
    return parsed


def _lines(body: bytes) -> tuple[list[bytes], bool]:
    lines = body.split(b"\n")
    final_newline = lines[-1] == b""
    if final_newline:
        lines.pop()
    return lines, final_newline


def _parse_lines(body: bytes) -> Parsed:
    lines, final_newline = _lines(body)
    parsed = Parsed([], final_newline=final_newline)
    for line in lines:
        if not line.strip():
            if parsed.records:
                parsed.records[-1].tail += line + b"\n"
            else:
                parsed.head += line + b"\n"
            continue
        parsed.records.append(_json_record(len(parsed.records), line))
    return parsed


def _loads(line: bytes) -> Any:
    """orjson first (several times faster on the millions of lines a store holds), the standard
    library for what orjson refuses (NaN, Infinity, invalid UTF-8, nesting past 1,024 levels) or
    would change: it reads an integer past 64 bits as a float, so a record holding a float that is
    a whole number that large, or anything nested (not looked into), is read again exactly."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line.decode("utf-8"))
    if isinstance(value, dict):
        for item in value.values():
            kind = item.__class__
            if (kind is float and item.is_integer() and abs(item) >= _BIG) or kind is dict or kind is list:
                return json.loads(line.decode("utf-8"))
    return value


def _json_record(index: int, line: bytes) -> Record:
    try:
        value = _loads(line)
    except UnicodeDecodeError as exc:
        return Record(index, line, None, error=f"record {index + 1}: not UTF-8 ({exc.reason} at byte {exc.start})")
    except RecursionError:
        return Record(index, line, None, error=f"record {index + 1}: nested too deeply to read")
    except ValueError as exc:
        return Record(index, line, None, error=f"record {index + 1}: not JSON ({getattr(exc, 'msg', exc)})")
    if not isinstance(value, dict):
        return Record(index, line, None, error=f"record {index + 1}: not a JSON object")
    return Record(index, line, value)


def _parse_csv(body: bytes) -> Parsed:
    """Rows as the csv module reads them (a quoted field may hold line breaks), each kept as the
    exact bytes of the lines it spans."""
    lines, final_newline = _lines(body)
    try:
        text = [line.decode("utf-8") + "\n" for line in lines]
    except UnicodeDecodeError as exc:
        raise Unreadable(f"csv is not UTF-8 ({exc.reason})") from None
    reader = csv.reader(text)
    parsed = Parsed([], final_newline=final_newline)
    consumed = 0
    try:
        for row in reader:
            raw = b"\n".join(lines[consumed:reader.line_num])
            consumed = reader.line_num
            if parsed.columns is None:
                parsed.header, parsed.columns = raw, row
                continue
            if not row:
                if parsed.records:
                    parsed.records[-1].tail += raw + b"\n"
                else:
                    parsed.head += raw + b"\n"
                continue
            parsed.records.append(_csv_record(len(parsed.records), raw, row, parsed.columns))
    except csv.Error as exc:
        raise Unreadable(f"csv row {reader.line_num}: {exc}") from None
    return parsed


def _csv_record(index: int, raw: bytes, row: list[str], header: list[str]) -> Record:
    if len(row) != len(header):
        missing = header[len(row):] if len(row) < len(header) else []
        why = f"missing column {', '.join(missing)}" if missing else f"{len(row)} values for {len(header)} columns"
        return Record(index, raw, None, error=f"row {index + 2}: {why}")
    return Record(index, raw, dict(zip(header, row, strict=True)))


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


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in `value` (orjson would write them as null)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _dumps(record: dict[str, Any]) -> bytes:
    """orjson when it writes the values exactly; the standard library (which writes NaN, infinities
    and integers past 64 bits as they were read) when orjson refuses or would write a null."""
    try:
        out = orjson.dumps(record)
    except TypeError:  # an integer past 64 bits
        out = b""
    if out and (b"null" not in out or _finite(record)):
        return out
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the source JSON): only an escape writes it back
        return json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _csv_line(row: list[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue().encode("utf-8")


def render(record: Record | dict[str, Any], parsed: Parsed) -> bytes:
    """One output record with what follows it: a kept record verbatim (blank lines after it too),
    a new (anonymized) one serialized in the layout."""
    if isinstance(record, Record):
        return record.raw + b"\n" + record.tail
    if parsed.columns is not None:
        return _csv_line(["" if record.get(h) is None else record.get(h) for h in parsed.columns]) + b"\n"
    return _dumps(record) + b"\n"


def render_new(records: list[dict[str, Any]], parsed: Parsed) -> bytes:
    """`render` for many new (anonymized) records at once, with the same bytes."""
    if parsed.columns is not None or not records:
        return b"".join(render(record, parsed) for record in records)
    return b"\n".join(map(_dumps, records)) + b"\n"


def encode(pieces: list[bytes], parsed: Parsed, layout: str) -> bytes:
    if layout == "object":
        body = pieces[0].rstrip(b"\n") if pieces else b""
    else:
        head = parsed.header + b"\n" if parsed.header is not None else b""
        body = head + parsed.head + b"".join(pieces)
        if not parsed.final_newline and body.endswith(b"\n"):
            body = body[:-1]
    return gzip.compress(body, mtime=0) if parsed.gz else body
