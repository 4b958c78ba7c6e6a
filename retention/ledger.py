"""ledger.jsonl: one line per intent and per outcome, each carrying the SHA-256 of the line before.

Every line is flushed to the OS as it is written, and an intent is also on disk (fsync)
before the action it announces runs, so neither a killed process nor a power cut leaves an
action without its intent; the next run appends to the same chain and resolves intents that
have no outcome yet (see resume.py). Intents written by concurrent workers share one fsync
(group commit); an outcome needs none, since a lost one only leaves its intent to resolve.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil import safe_write
from vigil.errors import UsageError

GENESIS = "0" * 64


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The complete lines of a ledger (a torn last line, from a kill mid-write, is ignored)."""
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return
            yield json.loads(raw)


def chain_ok(path: Path) -> bool:
    prev = GENESIS
    with path.open("rb") as handle:
        for seq, raw in enumerate(handle):
            line = raw.rstrip(b"\n")
            entry = json.loads(line)
            if entry.get("prev") != prev or entry.get("seq") != seq:
                return False
            prev = hashlib.sha256(line).hexdigest()
    return True


def dangling(path: Path) -> dict[str, dict[str, Any]]:
    """action_id -> intent line, for intents that have no outcome yet."""
    open_intents: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return open_intents
    for entry in read_lines(path):
        if entry.get("phase") == "intent":
            open_intents[entry["action_id"]] = entry
        elif entry.get("phase") == "outcome":
            open_intents.pop(str(entry.get("action_id")), None)
    return open_intents


def owner(policy_sha256: str | None, key_fingerprint: str | None) -> dict[str, str | None]:
    """What every line of a ledger carries: the policy it planned under and the key its hashes use."""
    return {"policy_sha256": policy_sha256, "key": key_fingerprint}


def check_owner(path: Path, policy_sha256: str | None, key_fingerprint: str | None) -> None:
    """Refuse (exit 2, before anything changes) to continue a ledger written under another policy
    or evidence key: its intents would be judged against the wrong stores or the wrong hashes."""
    if not path.exists():
        return
    first = next(read_lines(path), None)
    if first is None:
        return
    mine = owner(policy_sha256, key_fingerprint)
    theirs = {name: first.get(name) for name in mine}
    if theirs != mine:
        changed = " and ".join(name.replace("_sha256", "").replace("key", "evidence key") for name in mine if theirs[name] != mine[name])
        raise UsageError(f"{path} was written under another {changed}; a ledger is continued only by runs of the same "
                         f"policy and key. Use a new --output folder; nothing was changed")


class Ledger:
    """Append-only, hash-chained, thread-safe. Continues the chain of an existing file (of the same
    policy and key: `check_owner`)."""

    def __init__(self, path: Path, run_id: str, policy_sha256: str | None = None, key_fingerprint: str | None = None,
                 engine: str = "local"):
        safe_write.refuse_link(path)  # before reading it: a link is never followed, for reading or writing
        check_owner(path, policy_sha256, key_fingerprint)
        self.path = path
        self.run_id = run_id
        self.engine = engine  # named in every line: which engine did (or resolved) the work
        self.owner = owner(policy_sha256, key_fingerprint)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one fsync at a time; it covers every line written before it
        self.seq, self.prev = 0, GENESIS
        if path.exists():
            self._truncate_torn_tail()
            with path.open("rb") as handle:
                for raw in handle:
                    self.seq += 1
                    self.prev = hashlib.sha256(raw.rstrip(b"\n")).hexdigest()
        self._synced = self.seq  # lines known to be on disk (those already in the file count)
        self._handle = safe_write.open_stream(path, "ab")

    def _truncate_torn_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            safe_write.write_bytes(self.path, data[: data.rfind(b"\n") + 1])

    def write(self, phase: str, action: dict[str, Any], target: dict[str, Any], outcome: str | None = None,
              detail: Any = None, sync: bool = True) -> None:
        """An intent (or a cluster job line: phase "job") is on disk when this returns, unless `sync`
        is False: then the caller calls `sync()` before the actions it announces can start."""
        with self._lock:
            entry: dict[str, Any] = {
                "seq": self.seq, "ts": _now(), "run_id": self.run_id, **self.owner, "phase": phase,
                "action_id": action["action_id"], "action": action["action"], "store": action["store"],
                "engine": self.engine,
                "target": target,
            }
            if phase == "outcome":
                entry["outcome"] = outcome
            entry["detail"] = detail
            entry["prev"] = self.prev
            line = json.dumps(entry, separators=(",", ":"), sort_keys=False, default=str).encode("utf-8")
            self._handle.write(line + b"\n")
            self._handle.flush()
            self.prev = hashlib.sha256(line).hexdigest()
            self.seq += 1
            written = self.seq
        if phase != "outcome" and sync:
            self._sync(written)

    def sync(self) -> None:
        """Every line written so far is on disk (one fsync for a whole batch of intents)."""
        with self._lock:
            upto = self.seq
        self._sync(upto)

    def _sync(self, upto: int) -> None:
        """Return once the first `upto` lines are on disk; one fsync serves every waiting writer."""
        with self._sync_lock:
            if self._synced >= upto:
                return
            with self._lock:
                covered = self.seq
            os.fsync(self._handle.fileno())
            self._synced = covered

    def close(self) -> None:
        with self._lock:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
