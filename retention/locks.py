"""One retention run per output folder, and one applying run per store, at a time.

Two runs in one folder would interleave its ledger's hash chain; two applying runs over one
store (in any folders) would claim the same deletions twice. So a run holds a lock for its
folder for its whole life, and with --apply one per store: lock files (fcntl, released by the
kernel when a process dies) in VIGIL_LOCK_DIR (default <tmp>/vigil-locks, outside the evidence
folder so no lock file lands in a signed pack), plus an S3 lock object per store when a lock
bucket is configured (other machines; vigil/locks.py, the scheduler's mechanism). A run that
finds a lock taken exits 3 before it changes anything.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from vigil.errors import EnvironmentFailure
from vigil.locks import FileLock, S3Lock
from vigil.policy.models import DynamoDBStore, S3Store

S3_TTL = timedelta(hours=6)  # longer than any run; a holder that died is taken over after it


def lock_dir() -> Path:
    return Path(os.environ.get("VIGIL_LOCK_DIR") or Path(tempfile.gettempdir()) / "vigil-locks")


def store_resource(store: Any) -> str:
    """What a store's lock stands for: the bucket (prefixes may overlap across policies) or the table."""
    if isinstance(store, S3Store):
        return f"s3:{store.bucket}"
    if isinstance(store, DynamoDBStore):
        return f"dynamodb:{store.table}"
    return f"{store.kind}:{store.table}" if hasattr(store, "table") else f"{store.kind}:{store.name}"


def _name(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@contextlib.contextmanager
def run_locks(out_dir: Path, stores: list[Any], apply: bool, s3: Any = None, lock_bucket: str | None = None) -> Iterator[None]:
    held: list[FileLock | S3Lock] = []
    try:
        folder = FileLock(lock_dir() / f"folder-{_name(str(out_dir.resolve()))}.lock")
        if not folder.acquire():
            raise EnvironmentFailure(f"another vigil run is writing {out_dir} (lock {folder.path}); wait for it or use "
                                     f"another --output; nothing was changed")
        held.append(folder)
        for store in stores if apply else []:
            resource = store_resource(store)
            local = FileLock(lock_dir() / f"store-{_name(resource)}.lock")
            if not local.acquire():
                raise EnvironmentFailure(f"another retention run is changing store '{store.name}' ({resource}; lock "
                                         f"{local.path}); nothing was changed")
            held.append(local)
            if lock_bucket and s3 is not None:
                remote = S3Lock(s3, lock_bucket, f"vigil/locks/store-{_name(resource)}.lock", S3_TTL)
                if not remote.acquire():
                    raise EnvironmentFailure(f"another retention run is changing store '{store.name}' ({resource}; "
                                             f"s3://{lock_bucket}/{remote.key}); nothing was changed")
                held.append(remote)
        yield
    finally:
        for lock in reversed(held):
            lock.release()
