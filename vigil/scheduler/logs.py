"""Structured event logs: one line per event, JSON or text, never personal data.

Callers pass only what they choose to log (job, stage, exit codes, counts, durations,
paths of run folders); nothing read from the data stores goes through here.
"""
from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")


class EventLog:
    def __init__(self, fmt: str = "text", stream: TextIO | None = None):
        if fmt not in LOG_FORMATS:
            raise ValueError(f"log format {fmt!r} is not one of {LOG_FORMATS}")
        self.fmt = fmt
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        # Resolved per event so a test's capture (or a redirected stderr) is honoured.
        return self._stream or sys.stderr

    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.fmt == "json":
            line = json.dumps({"ts": ts, "level": level, "event": name, **fields}, default=str, separators=(",", ":"))
        else:
            parts = " ".join(f"{key}={_text(value)}" for key, value in fields.items())
            line = f"{ts} {level.upper():5} {name} {parts}".rstrip()
        self.stream.write(line + "\n")
        self.stream.flush()


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, separators=(",", ":"))
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text
