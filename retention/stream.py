"""`vigil anonymize`'s engine: a local JSONL or CSV stream anonymized in batches, k judged per batch.

Every record goes through retention's own parser (records._json_record / _csv_record), its
Anonymizer and its serializer (records.render), so a record comes out with the very bytes
retention's rewrite of an object writes for it. The input is read as it comes (memory grows
with the batch, not the file); `.gz` is inflated with retention's gzip-bomb limits.
"""
from __future__ import annotations

import csv
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from .kanon import judge
from .records import MAX_RATIO, RATIO_FLOOR, Parsed, Unreadable, _csv_record, _json_record, _loads, render_new
from .transforms import Anonymizer

DEFAULT_BATCH = 100_000
CHUNK = 1 << 20
WRITE = 256  # records serialized per write: each piece stays under glibc's mmap threshold, so its memory is reused
SHOWN = 20  # problems listed one by one; past this, only counted


@dataclass
class StreamCounts:
    """What `vigil anonymize` reports on stderr: counts and reasons, never the data."""

    records_in: int = 0
    records_out: int = 0
    suppressed: int = 0
    unreadable: int = 0  # records that could not be read: not written, each reported
    batches: int = 0
    refused_batches: int = 0
    refused_records: int = 0  # records of refused batches: not written
    unnamed: dict[str, int] = field(default_factory=dict)  # dropped field -> records it was dropped from
    generalized: dict[str, int] = field(default_factory=dict)  # ladder rung climbed -> batches published at it
    problems: list[str] = field(default_factory=list)  # the first SHOWN reasons (record numbers, never values)

    def problem(self, text: str) -> None:
        if len(self.problems) < SHOWN:
            self.problems.append(text)

    @property
    def complete(self) -> bool:
        """Every record read was either written or suppressed for k."""
        return not self.unreadable and not self.refused_batches


def inflate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Every gzip member of a stream, inflated as it comes; past retention's limit (MAX_RATIO
    times what was read so far, once past RATIO_FLOOR) it stops with Unreadable: a bomb is
    refused before its memory or disk is spent."""
    consumed = produced = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    started = False
    try:
        for chunk in chunks:
            consumed += len(chunk)
            data = chunk
            while data:
                if inflater.eof:  # a new member follows (or zero padding)
                    if not data.strip(b"\x00"):
                        break
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                started = True
                limit = max(RATIO_FLOOR, MAX_RATIO * consumed)
                out = inflater.decompress(data, limit + 1 - produced)
                produced += len(out)
                if produced > limit:
                    raise Unreadable(f"gzip inflates past {MAX_RATIO} times its size ({produced} bytes from {consumed}); not read")
                if out:
                    yield out
                data = inflater.unconsumed_tail or (inflater.unused_data if inflater.eof else b"")
    except zlib.error as exc:
        raise Unreadable(f"corrupt gzip data ({exc})") from None
    if started and not inflater.eof:
        raise Unreadable("gzip data is truncated")


def read_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The stream's lines split on b"\\n" only (as retention splits an object), without the break."""
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


class StreamAnonymizer:
    """Anonymizes one stream into `sink`: records judged for k in batches of `batch`."""

    def __init__(self, anonymizer: Anonymizer, sink: IO[bytes], batch: int = DEFAULT_BATCH):
        self.anonymizer = anonymizer
        self.sink = sink
        self.batch = batch
        self.counts = StreamCounts()

    def jsonl(self, source: Iterable[bytes]) -> StreamCounts:
        parsed = Parsed([])
        pending: list[dict[str, Any]] = []
        counts, batch = self.counts, self.batch
        for line in source:
            if not line or line.isspace():  # blank lines are no records (retention keeps them; here nothing is kept)
                continue
            counts.records_in += 1
            try:  # the parser's own fast path; the full parse below only for what it refuses, to name why
                fields = _loads(line)
            except (ValueError, RecursionError):
                fields = None
            if type(fields) is not dict:
                record = _json_record(counts.records_in - 1, line)
                if record.fields is None:
                    self._unreadable(record.error)
                    continue
                fields = record.fields
            pending.append(fields)
            if len(pending) >= batch:
                self._judge(pending, parsed)
                pending = []
        if pending:
            self._judge(pending, parsed)
        return counts

    def csv(self, source: Iterable[bytes]) -> StreamCounts:
        held: list[bytes] = []  # the header's raw lines, written as they were (as retention does)

        def text() -> Iterator[str]:
            for number, line in enumerate(source, 1):
                if len(held) < 64:
                    held.append(line)
                try:
                    yield line.decode("utf-8") + "\n"
                except UnicodeDecodeError as exc:
                    raise Unreadable(f"csv line {number} is not UTF-8 ({exc.reason})") from None

        reader = csv.reader(text())
        parsed: Parsed | None = None
        pending: list[dict[str, Any]] = []
        try:
            for row in reader:
                if parsed is None:
                    parsed = Parsed([], header=b"\n".join(held[:reader.line_num]), columns=row)
                    self.sink.write((parsed.header or b"") + b"\n")
                    continue
                if not row:
                    continue
                record = _csv_record(self.counts.records_in, b"", row, parsed.columns or [])
                self.counts.records_in += 1
                if record.fields is None:
                    self._unreadable(record.error)
                    continue
                pending.append(record.fields)
                if len(pending) >= self.batch:
                    self._judge(pending, parsed)
                    pending = []
        except csv.Error as exc:
            raise Unreadable(f"csv row {reader.line_num}: {exc}") from None
        if pending and parsed is not None:
            self._judge(pending, parsed)
        return self.counts

    def _unreadable(self, reason: str | None) -> None:
        self.counts.unreadable += 1
        self.counts.problem(f"{reason or 'unreadable record'}; not written")

    def _judge(self, records: list[dict[str, Any]], parsed: Parsed) -> None:
        counts, anonymizer = self.counts, self.anonymizer
        counts.batches += 1
        transformed = list(map(anonymizer.record, records))
        anonymizer.unnamed_all(records, counts.unnamed)
        judged = judge(anonymizer, transformed)
        if judged.refused is not None:
            counts.refused_batches += 1
            counts.refused_records += len(records)
            counts.problem(f"batch {counts.batches} ({len(records)} records) refused, not written: {judged.refused}")
            return
        if judged.label is not None:
            counts.generalized[judged.label] = counts.generalized.get(judged.label, 0) + 1
        suppressed, transformed = judged.suppressed, judged.records
        counts.suppressed += len(suppressed)
        counts.records_out += len(transformed) - len(suppressed)
        kept = [t for i, t in enumerate(transformed) if i not in suppressed] if suppressed else transformed
        for start in range(0, len(kept), WRITE):  # serialized a slice at a time: the bytes are freed and their memory reused
            self.sink.write(render_new(kept[start:start + WRITE], parsed))
