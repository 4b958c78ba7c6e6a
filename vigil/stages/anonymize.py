"""The anonymize stage: one category's transforms and k-anonymity applied to a local file or stream.

Nothing is read from or written to AWS (only a KMS-held pseudonymize key is decrypted). An
output file is written beside its final name and renamed into place when the whole input was
read, so bad input (exit 2) never leaves a half-written file behind.
"""
from __future__ import annotations

import gzip
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from vigil import safe_write
from vigil.aws import Aws
from vigil.errors import UsageError
from vigil.policy import load_policy
from vigil.retention.keys import read_key
from vigil.retention.records import Unreadable
from vigil.retention.stream import DEFAULT_BATCH, StreamAnonymizer, StreamCounts, inflate, lines, read_chunks
from vigil.retention.transforms import Anonymizer

STDIO = "-"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class AnonymizeOptions:
    category: str
    policy: str | Path = "policy.yaml"
    format: str | None = None  # jsonl | csv; None: csv for a .csv / .csv.gz input, else jsonl
    batch: int = DEFAULT_BATCH  # records judged together for k
    input: str = STDIO  # a file, or "-" for stdin
    output: str = STDIO  # a file, or "-" for stdout


@dataclass(frozen=True)
class AnonymizeOutcome:
    counts: StreamCounts
    format: str

    @property
    def exit_code(self) -> int:
        """1 when some record read was neither written nor suppressed for k (unreadable, or its batch refused)."""
        return 0 if self.counts.complete else 1


def _format(options: AnonymizeOptions) -> str:
    if options.format is not None:
        if options.format not in ("jsonl", "csv"):
            raise UsageError(f"--format {options.format!r}: jsonl or csv")
        return options.format
    name = options.input.removesuffix(".gz")
    return "csv" if name.endswith(".csv") else "jsonl"


def anonymizer_of(options: AnonymizeOptions) -> Anonymizer:
    policy = load_policy(options.policy)
    category = policy.categories.get(options.category)
    if category is None:
        raise UsageError(f"--category {options.category}: not in {options.policy} (known: {', '.join(sorted(policy.categories))})")
    if not category.anonymize:
        raise UsageError(f"--category {options.category}: the category has no anonymize transforms")
    key = None
    if any(t.name == "pseudonymize" for t in category.anonymize.values()):
        if policy.keys.pseudonymize is None:
            raise UsageError(f"--category {options.category} uses pseudonymize but the policy has no keys.pseudonymize")
        source = policy.keys.pseudonymize
        key = read_key(source, policy, Aws() if source.source == "kms" else None, "pseudonymize")
    return Anonymizer(category, key)


def anonymize(options: AnonymizeOptions) -> AnonymizeOutcome:
    if options.batch < 1:
        raise UsageError("--batch must be at least 1")
    fmt = _format(options)
    anonymizer = anonymizer_of(options)  # exit 2 before any output exists
    source = sys.stdin.buffer if options.input == STDIO else _open_input(options.input)
    try:
        with _Output(options.output) as sink:
            counts = _run(anonymizer, source, sink, fmt, options)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    return AnonymizeOutcome(counts, fmt)


def _open_input(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise safe_write.failure(exc, path, "read") from None


def _run(anonymizer: Anonymizer, source: IO[bytes], sink: IO[bytes], fmt: str, options: AnonymizeOptions) -> StreamCounts:
    chunks = read_chunks(source)
    first = next(chunks, b"")
    compressed = options.input.endswith(".gz") or first.startswith(GZIP_MAGIC)

    def body():
        yield first
        yield from chunks
    data = inflate(body()) if compressed else body()
    engine = StreamAnonymizer(anonymizer, sink, options.batch)
    try:
        return engine.csv(lines(data)) if fmt == "csv" else engine.jsonl(lines(data))
    except Unreadable as exc:
        where = "stdin" if options.input == STDIO else options.input
        raise UsageError(f"{where}: {exc}; {_partial(options)}") from None


def _partial(options: AnonymizeOptions) -> str:
    return "no output file was written" if options.output != STDIO else "stdout holds only the batches before it"


class _Output:
    """stdout, or a temporary file beside OUT renamed into place on success (gzip when OUT ends in .gz)."""

    def __init__(self, path: str):
        self.path = path
        self.tmp: str | None = None

    def __enter__(self) -> IO[bytes]:
        if self.path == STDIO:
            self.raw: IO[bytes] = sys.stdout.buffer
        else:
            target = Path(self.path)
            safe_write.refuse_link(target)
            try:
                fd, self.tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            except OSError as exc:
                raise safe_write.failure(exc, target, "write") from None
            self.raw = os.fdopen(fd, "wb")
        gz = gzip.GzipFile(fileobj=self.raw, mode="wb", mtime=0, filename="") if self.path.endswith(".gz") else None
        self.sink: IO[bytes] = cast(IO[bytes], gz) if gz is not None else self.raw  # GzipFile is a binary stream
        return self.sink

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if self.sink is not self.raw:
                self.sink.close()
            if self.tmp is None:
                self.raw.flush()
                return
            self.raw.close()
            if kind is None:
                os.replace(self.tmp, self.path)
                self.tmp = None
        except OSError as error:
            raise safe_write.failure(error, self.path) from None
        finally:
            if self.tmp is not None:
                Path(self.tmp).unlink(missing_ok=True)
