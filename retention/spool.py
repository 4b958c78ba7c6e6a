"""The planned actions between plan and apply: real keys in a private spool, keyed hashes in
the evidence file (retention-plan.actions.jsonl).

The spool lives in the run folder (mode 0600, created exclusively, never through a link), and
every line is sealed with AES-GCM under a key that exists only in this process's memory: a
spool left behind by a kill holds no readable object or item key, wherever it ends up (even in
a signed pack). The next run in the folder removes a stale one before it plans.
"""
from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vigil import safe_write

SPOOL_FILE = ".retention-plan.spool"


class Spool:
    def __init__(self, directory: Path, public_name: str, hashed: Callable[[dict[str, Any]], dict[str, Any]]):
        self.path = directory / SPOOL_FILE
        self.path.unlink(missing_ok=True)  # a stale spool of a killed run (the folder lock is held)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._private = os.fdopen(fd, "w", encoding="ascii")
        self._public = safe_write.open_stream(directory / public_name, "w", encoding="utf-8")
        self._seal = AESGCM(AESGCM.generate_key(bit_length=256))
        self._hashed = hashed
        self._lock = threading.Lock()

    def emit(self, action: dict[str, Any]) -> None:
        public = {"action_id": action["action_id"], "action": action["action"], "store": action["store"],
                  "target": action.get("target") or self._hashed(action)}  # postgres actions carry their own
        nonce = os.urandom(12)
        sealed = base64.b64encode(nonce + self._seal.encrypt(nonce, json.dumps(action).encode("utf-8"), None)).decode("ascii")
        with self._lock:
            self._private.write(sealed + "\n")
            self._public.write(json.dumps(public, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._private.close()
        self._public.close()

    def actions(self) -> Iterator[dict[str, Any]]:
        with open(self.path, encoding="ascii") as handle:
            for line in handle:
                raw = base64.b64decode(line)
                yield json.loads(self._seal.decrypt(raw[:12], raw[12:], None))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
