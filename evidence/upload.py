"""Send an evidence pack to the Object-Lock evidence bucket, each object locked in COMPLIANCE mode.

COMPLIANCE retention cannot be shortened or removed by anyone, the root user included, until
the date passes: the evidence itself cannot be altered. The bucket must have Object Lock
enabled (it can only be turned on at creation); without it nothing is uploaded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from vigil import safe_write
from vigil.errors import EnvironmentFailure, UsageError

from .manifest import MANIFEST, SIGNATURE, pack_files

DEFAULT_RETAIN_DAYS = 365


@dataclass(frozen=True)
class Destination:
    bucket: str
    prefix: str  # "" or ends with "/"


def parse_destination(url: str) -> Destination:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise UsageError(f"--upload {url!r}: expected s3://bucket/prefix")
    prefix = parsed.path.strip("/")
    return Destination(parsed.netloc, f"{prefix}/" if prefix else "")


def check_options(url: str, retain_days: int) -> Destination:
    """Bad flags are refused before anything is written or sent."""
    if retain_days < 1:
        raise UsageError(f"--retain-days {retain_days}: evidence must be locked for at least one day")
    return parse_destination(url)


def _require_object_lock(client: Any, bucket: str) -> None:
    try:
        config = client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration", {})
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ObjectLockConfigurationNotFoundError":
            config = {}
        else:
            raise EnvironmentFailure(f"evidence bucket {bucket}: cannot read its Object Lock configuration ({code})") from None
    if config.get("ObjectLockEnabled") != "Enabled":
        raise EnvironmentFailure(f"evidence bucket {bucket} does not have Object Lock enabled: nothing was uploaded "
                                 "(create it with Object Lock on; evidence must not be alterable)")


def _read_no_link(path: Path) -> bytes:
    """The file's bytes; a link that appeared after the pack was listed is refused, never followed."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | safe_write.NOFOLLOW), "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise safe_write.failure(exc, path, "read") from None


def upload_pack(directory: Path, url: str, client: Any, retain_until: datetime | None = None,
                retain_days: int = DEFAULT_RETAIN_DAYS) -> list[str]:
    """Upload every pack file under <prefix><folder name>/, the manifest and then its signature last.

    Returns the keys written. A partial upload (a crash midway) lacks manifest.sig, so it
    never passes as a complete, signed pack.
    """
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise UsageError(f"{directory}: no {MANIFEST}; render the pack first (vigil report)")
    destination = check_options(url, retain_days)
    until = retain_until or datetime.now(UTC) + timedelta(days=retain_days)
    names = pack_files(directory) + [MANIFEST] + ([SIGNATURE] if (directory / SIGNATURE).is_file() else [])  # links refused
    _require_object_lock(client, destination.bucket)
    keys: list[str] = []
    for name in names:
        body = _read_no_link(directory / name)
        key = f"{destination.prefix}{directory.name}/{name}"
        try:
            client.put_object(
                Bucket=destination.bucket, Key=key, Body=body,
                # Object Lock uploads must carry an integrity check; S3 verifies the SHA-256 of the bytes it stores.
                ChecksumAlgorithm="SHA256",
                ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise EnvironmentFailure(f"upload of {name} to s3://{destination.bucket}/{key} failed ({code}); "
                                     f"{len(keys)} of {len(names)} files were uploaded") from None
        keys.append(key)
    return keys
