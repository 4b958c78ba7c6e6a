"""Locks that keep two runs apart: a local lock file (fcntl), and optionally an S3 lock object.

Used by the scheduler (one run of each job kind) and by retention (one run per output folder,
one applying run per store). The file lock (fcntl.flock, released by the kernel if the process
dies) stops two runs on one machine. The S3 lock stops two replicas on different machines: it is created with a
conditional put (If-None-Match: *), which S3 lets exactly one writer win; it carries an
expiry so a replica that died holding it does not block the job for ever.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import botocore.exceptions

from vigil import safe_write

CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


class FileLock:
    def __init__(self, path: Path):
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = safe_write.open_stream(self.path, "a+", encoding="utf-8")  # never truncates a link's target
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _code(exc: botocore.exceptions.ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


class S3Lock:
    def __init__(self, s3: Any, bucket: str, key: str, ttl: timedelta, now: Callable[[], datetime] = _utc_now):
        self.s3, self.bucket, self.key, self.ttl, self.now = s3, bucket, key, ttl, now
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._etag: str | None = None

    def acquire(self) -> bool:
        if self._put():
            return True
        holder = self._read()
        if holder is None:  # released between our put and our read: one more try
            return self._put()
        etag, body = holder
        if _parse(body.get("expires_at")) > self.now():
            return False
        # The holder's lease ran out (it died mid-run): remove exactly that object, then race fairly.
        with contextlib.suppress(botocore.exceptions.ClientError):
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        return self._put()

    def release(self) -> None:
        if self._etag is None:
            return
        holder = self._read()
        if holder is not None and holder[1].get("owner") == self.owner:
            with contextlib.suppress(botocore.exceptions.ClientError):
                self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=holder[0])
        self._etag = None

    def _put(self) -> bool:
        now = self.now()
        body = {"owner": self.owner, "acquired_at": now.isoformat(), "expires_at": (now + self.ttl).isoformat()}
        try:
            answer = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(body).encode(),
                                        ContentType="application/json", IfNoneMatch="*")
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in CONFLICT:
                return False
            raise
        self._etag = answer.get("ETag", "")
        return True

    def _read(self) -> tuple[str, dict[str, Any]] | None:
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        try:
            body = json.loads(answer["Body"].read())
        except ValueError:
            body = {}
        return answer.get("ETag", ""), body if isinstance(body, dict) else {}


def _parse(text: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)  # unreadable lock: treat as expired
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Locks:
    """The locks a job kind takes: always the file lock, the S3 lock when configured."""

    lock_dir: Path
    s3_lock: Callable[[str], S3Lock] | None = None  # job kind -> its S3 lock

    @contextlib.contextmanager
    def hold(self, kind: str) -> Iterator[str]:
        """Yields "" when this process may run `kind`, else why not (and holds nothing)."""
        local = FileLock(self.lock_dir / f"vigil-{kind}.lock")
        if not local.acquire():
            yield f"another {kind} run holds {local.path}"
            return
        try:
            remote = self.s3_lock(kind) if self.s3_lock else None
            if remote is not None and not remote.acquire():
                yield f"another replica holds s3://{remote.bucket}/{remote.key}"
                return
            try:
                yield ""
            finally:
                if remote is not None:
                    remote.release()
        finally:
            local.release()
