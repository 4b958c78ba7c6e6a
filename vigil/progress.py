"""Progress of long work (check, retain, subject find, run), reported without knowing who listens.

The code doing the work calls `phase("listing S3 buckets", total)` and `advance()`, from any
thread; the command line installs a reporter that draws them (vigil/cli/console.py) only on a
terminal. With nobody listening (tests, the scheduler, Lambda) a call is one global read.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Reporter(Protocol):
    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1, total: int | None = None) -> None: ...


# One process runs one command: a process-wide reporter reaches worker threads too (a
# context variable would not: pool threads do not inherit it).
_current: Reporter | None = None
_lock = threading.Lock()


def phase(name: str, total: int | None = None) -> None:
    reporter = _current
    if reporter is not None:
        with _lock:
            reporter.phase(name, total)


def advance(amount: int = 1, total: int | None = None) -> None:
    reporter = _current
    if reporter is not None:
        with _lock:
            reporter.advance(amount, total)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    global _current
    previous, _current = _current, reporter
    try:
        yield reporter
    finally:
        _current = previous
