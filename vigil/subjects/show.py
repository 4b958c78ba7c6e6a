"""What the subject commands print: one table per answer, held data said plainly."""
from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .model import Found
from .requests import Request


def size(n: int) -> str:
    """Bytes for people: 512 B, 3.4 KiB, ... GiB (retain and subject tables alike)."""
    scaled = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if scaled < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{scaled:.1f} {unit}"
        scaled /= 1024
    return str(n)


def print_found(found: Found, console: Console, title: str) -> None:
    table = Table(title=title)
    for column in ("store", "category", "current", "older", "replica", "records", "bytes", "erase", "kept"):
        # store and category names are identifiers: whole, on one line (the CLI's width policy, vigil/cli/console.py)
        table.add_column(column, justify="left" if column in ("store", "category", "erase") else "right",
                         no_wrap=column in ("store", "category"))
    for s in found.stores:
        if not s.copies:
            continue
        current = sum(1 for c in s.copies if c.latest and not c.replica)
        older = sum(1 for c in s.copies if not c.latest and not c.replica)
        replica = sum(1 for c in s.copies if c.replica)
        erase = f"{s.erasable} ({s.action})" if s.erasable else "0"
        table.add_row(s.store, s.category, str(current), str(older), str(replica), str(sum(c.records for c in s.copies)),
                      size(sum(c.bytes for c in s.copies)), erase, str(s.held))
    console.print(table)
    for s in found.stores:
        for h in s.holds():
            until = f"until {h['until']}" if h["until"] else "until released"
            console.print(f"  kept [cyan]{s.store}[/]: {h['count']} by {h['reason']} ({until})")
        if s.note:
            console.print(f"  [dim]{s.store}: not searched: {s.note}[/]")
        if s.unreadable:
            console.print(f"  [yellow]{s.store}[/]: {s.unreadable} record(s) could not be read; they may be the subject's")
        for error in s.errors:
            console.print(f"  [yellow]{s.store}[/]: {error}")
    for b in found.backups:
        when = f"expires from backups on {b.until}" if b.until else "kept in backups until deleted (no lifecycle)"
        console.print(f"  backup [cyan]{b.where}[/] ({b.region}): {when}" + (f"; {b.note}" if b.note else ""))
    console.print(f"{found.erasable} to erase, {found.held} kept, in {found.copies} copies")
    if found.incomplete:
        console.print(f"[red]incomplete[/]: {len(found.incomplete)} reason(s) the subject's data may be elsewhere too (see above)")


def requests_table(requests: list[Request], now: datetime) -> Table:
    """The request log as a table; the CLI prints it. No cell is ever cut or wrapped (ids are needed
    whole, to act on them): each column is at least as wide as its widest cell."""
    rows = []
    for r in requests:
        left = r.days_left(now)
        status = "done" if not r.open else ("[red]overdue[/]" if left < 0 else "open")
        rows.append((r.id, r.subject, r.kind, f"{r.received_at:%Y-%m-%d}", f"{r.deadline:%Y-%m-%d}",
                     "" if not r.open else str(left), status))
    table = Table(title=f"Subject requests as of {now:%Y-%m-%d %H:%M}Z")
    for index, column in enumerate(("id", "subject", "kind", "received", "deadline", "days left", "status")):
        widest = max([Text.from_markup(row[index]).cell_len for row in rows] + [len(column)])
        table.add_column(column, no_wrap=True, width=widest)
    for row in rows:
        table.add_row(*row)
    return table
