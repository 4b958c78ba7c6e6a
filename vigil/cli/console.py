"""How every command writes to the terminal: one width policy, no guessing highlighter, live progress.

* Width: a terminal's own width; anything else (a pipe, a file, CI logs) gets `$COLUMNS` or 200
  columns, so tables are not squeezed to rich's default 80 and cut.
* Identifier columns (ARNs, control ids, store names, regions) never wrap: `id_column`. Text
  columns wrap between words. Off a terminal, a table wider than that takes the width it needs
  (`print_table`): a log line may be long, an ARN is never cut.
* Rich's highlighter is off: it would colour parts of control ids and regions as numbers.
* Progress (phase, done/total where known, elapsed time) goes to stderr, only on a terminal and
  never with --quiet; it is drawn by rich and disappears when the work ends.
* --log-level turns on Python logging for vigil and the libraries at that level (default: off).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from vigil import progress

PIPED_WIDTH = 200
LEVELS = ("debug", "info", "warning", "error")


def width(stream=None) -> int | None:
    """None (rich measures the terminal) on a TTY; otherwise $COLUMNS or PIPED_WIDTH."""
    stream = stream or sys.stdout
    if stream.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


def make_console(stderr: bool = False) -> Console:
    return Console(width=width(sys.stderr if stderr else sys.stdout), highlight=False, stderr=stderr)


def print_table(out: Console, table: Table) -> None:
    """On a terminal, the terminal's width (text columns wrap between words). Elsewhere a table is
    never squeezed below what its identifier columns need: none is cut or split."""
    if out.is_terminal:
        out.print(table)
        return
    needed = Measurement.get(out, out.options.update_width(10**5), table).minimum  # every no-wrap column whole
    saved, out.width = out.width, max(out.width, needed)
    try:
        out.print(table)
    finally:
        out.width = saved


def id_column(table: Table, name: str, **options) -> None:
    """A column of identifiers: shown whole, on one line."""
    table.add_column(name, no_wrap=True, overflow="ignore", **options)


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress and no tables: only the totals and the files written")
    parser.add_argument("-v", "--verbose", action="store_true", help="also show passing findings and details")
    parser.add_argument("--log-level", choices=LEVELS, help="turn on Python logging at this level, on stderr (default: off; "
                                                             "warnings still print)")


def configure_logging(level: str | None) -> None:
    """Only when asked: otherwise Python's default stays (warnings, bare), and stderr keeps its own format (JSON logs)."""
    if level is None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level.upper())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())


class RichReporter:
    """vigil.progress reports drawn as one rich progress line per phase."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: TaskID | None = None

    def phase(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            self.bar.update(self.task, visible=False)
        self.task = self.bar.add_task(name, total=total)

    def advance(self, amount: int = 1, total: int | None = None) -> None:
        if self.task is not None:
            if total is None:
                self.bar.update(self.task, advance=amount)
            else:
                self.bar.update(self.task, advance=amount, total=total)


@contextmanager
def live_progress(quiet: bool = False) -> Iterator[None]:
    """Show progress for the work inside, when stderr is a terminal and --quiet was not given."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=make_console(stderr=True), transient=True)
    with bar, progress.reporting(RichReporter(bar)):
        yield
