"""The one timestamp format Vigil writes: ISO 8601 in UTC, whole seconds, with a Z."""
from __future__ import annotations

from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
COMPACT = "%Y%m%dT%H%M%SZ"


def iso_z(ts: datetime) -> str:
    """`2026-11-26T21:36:48Z`; a naive datetime is taken to be UTC already."""
    return (ts.astimezone(UTC) if ts.tzinfo else ts).strftime(FORMAT)


def compact_z(ts: datetime) -> str:
    """`20261126T213648Z`: the same instant for names (run ids, folders), no separators."""
    return (ts.astimezone(UTC) if ts.tzinfo else ts).strftime(COMPACT)


def parse_iso_z(text: str) -> datetime:
    return datetime.strptime(text, FORMAT).replace(tzinfo=UTC)
