"""The scheduler's small state file: last run per job (for catch-up), a heartbeat, what runs now.

Times are naive UTC, like the scheduler's clock. Written atomically (temp file + rename).
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil.timestamps import iso_z as _iso


def _parse(text: Any) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


class State:
    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}  # first start, or a damaged file: nothing to catch up on
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.data.setdefault("last_run", {})

    def last_run(self, kind: str) -> datetime | None:
        return _parse(self.data["last_run"].get(kind))

    def heartbeat(self) -> datetime | None:
        return _parse(self.data.get("heartbeat"))

    def running(self) -> tuple[str, datetime] | None:
        running = self.data.get("running")
        since = _parse(running.get("since")) if isinstance(running, dict) else None
        return (str(running["kind"]), since) if since and isinstance(running, dict) else None

    def beat(self, now: datetime) -> None:
        self.data["heartbeat"] = _iso(now)
        self.save()

    def started(self, kind: str, now: datetime) -> None:
        self.data["running"] = {"kind": kind, "since": _iso(now)}
        self.data["heartbeat"] = _iso(now)
        self.save()

    def clear_running(self) -> None:
        if self.data.get("running"):
            self.data["running"] = None
            self.save()

    def finished(self, kind: str, started: datetime, now: datetime) -> None:
        """A run counts as done (no catch-up) once it finished, whatever its exit code."""
        self.data["last_run"][kind] = _iso(started)
        self.data["running"] = None
        self.data["heartbeat"] = _iso(now)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.path)
