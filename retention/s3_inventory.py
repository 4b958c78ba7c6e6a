"""Plan an S3 store from its newest S3 Inventory report instead of listing the bucket.

AWS writes a report as `<prefix>/<source bucket>/<config id>/<YYYY-MM-DDTHH-MMZ>/manifest.json`
(+ `manifest.checksum`, the MD5 hex of manifest.json) and data files under `.../data/`. The
manifest names every data file with the MD5 of its (compressed) bytes. A report is used only when
the manifest and every data file match their checksums and its schema carries every field the
planner needs; otherwise the store gets an error and nothing of it is planned.

Rows come back as the same `ObjectEntry`/`Version` records a listing yields, so the planner is
shared. Row order is not documented by AWS, so rows are grouped by key here. NOTE: grouping is in
memory (one small Version per row); a report larger than memory needs an external sort (not yet).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import botocore.exceptions

from vigil.aws import Aws, describe_error
from vigil.policy.models import InventorySource

from .model import ObjectEntry, Version
from .transforms import parse_time

REQUIRED = ("Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag",
            "ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z$")
CHUNK = 1 << 20


class InventoryError(Exception):
    """The report cannot be used (missing, incomplete, tampered, wrong schema or format)."""


@dataclass(frozen=True)
class Report:
    bucket: str  # where the report lives
    manifest_key: str
    created: datetime  # manifest creationTimestamp
    file_format: str
    schema: tuple[str, ...]
    files: tuple[dict[str, Any], ...]

    def describe(self, as_of: datetime) -> dict[str, Any]:
        """What the plan says about the report it came from."""
        return {"bucket": self.bucket, "manifest": self.manifest_key, "created": self.created.isoformat(),
                "age_hours": round((as_of - self.created).total_seconds() / 3600, 1)}


def report_root(source_bucket: str, inv: InventorySource) -> str:
    prefix = inv.prefix.strip("/")
    return f"{prefix + '/' if prefix else ''}{source_bucket}/{inv.config_id}/"


def _read(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def newest_report(aws: Aws, region: str, source_bucket: str, inv: InventorySource) -> Report:
    """The newest report whose manifest.json and manifest.checksum both exist and agree."""
    s3 = aws.client("s3", region)
    root = report_root(source_bucket, inv)
    try:
        stamps: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=inv.bucket, Prefix=root, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(root):].rstrip("/")
                if _STAMP.match(name):
                    stamps.append(name)
        for stamp in sorted(stamps, reverse=True):  # the timestamp format sorts as text
            key = f"{root}{stamp}/manifest.json"
            try:
                manifest = _read(s3, inv.bucket, key)
                checksum = _read(s3, inv.bucket, f"{root}{stamp}/manifest.checksum")
            except botocore.exceptions.ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404"):
                    continue  # still being written: not complete yet
                raise
            return _parse_manifest(inv.bucket, key, manifest, checksum, source_bucket)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise InventoryError(describe_error(f"reading inventory s3://{inv.bucket}/{root}", exc)) from None
    raise InventoryError(f"no complete inventory report under s3://{inv.bucket}/{root} (manifest.json + manifest.checksum)")


def _parse_manifest(bucket: str, key: str, manifest: bytes, checksum: bytes, source_bucket: str) -> Report:
    where = f"s3://{bucket}/{key}"
    expected = checksum.decode("ascii", "replace").strip().split()[0].lower() if checksum.strip() else ""
    if hashlib.md5(manifest).hexdigest() != expected:  # noqa: S324 - AWS's checksum is MD5
        raise InventoryError(f"{where}: does not match manifest.checksum; the report is refused")
    try:
        doc = json.loads(manifest)
        schema = tuple(part.strip() for part in doc["fileSchema"].split(","))
        created = datetime.fromtimestamp(int(doc["creationTimestamp"]) / 1000, UTC)
        files = tuple(doc["files"])
        fmt = str(doc["fileFormat"]).upper()
        for f in files:
            if not (isinstance(f, dict) and f.get("key") and f.get("MD5checksum")):
                raise ValueError("a files[] entry lacks key or MD5checksum")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InventoryError(f"{where}: not a readable inventory manifest ({type(exc).__name__}: {exc})") from None
    if doc.get("sourceBucket") not in (None, source_bucket):
        raise InventoryError(f"{where}: a report of bucket {doc.get('sourceBucket')!r}, not {source_bucket!r}")
    missing = [name for name in REQUIRED if name not in schema]
    if missing:
        raise InventoryError(f"{where}: the report lacks fields {', '.join(missing)} (include all versions and these "
                             f"optional fields in the inventory configuration)")
    if fmt not in ("CSV", "PARQUET"):
        raise InventoryError(f"{where}: file format {fmt} is not read by vigil (use CSV or Parquet)")
    return Report(bucket, key, created, fmt, schema, files)


def fetch_files(aws: Aws, region: str, report: Report, into: Path) -> list[Path]:
    """Download every data file, checking its MD5 as it streams; any mismatch refuses the whole report."""
    s3 = aws.client("s3", region)
    paths = []
    for index, entry in enumerate(report.files):
        path = into / f"{index:06d}"
        digest = hashlib.md5()  # noqa: S324 - AWS's checksum is MD5
        try:
            body = s3.get_object(Bucket=report.bucket, Key=entry["key"])["Body"]
            with path.open("wb") as out:
                for chunk in body.iter_chunks(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise InventoryError(describe_error(f"s3:GetObject s3://{report.bucket}/{entry['key']}", exc)) from None
        if digest.hexdigest() != str(entry["MD5checksum"]).lower():
            raise InventoryError(f"s3://{report.bucket}/{entry['key']}: MD5 does not match the manifest; the report is refused")
        paths.append(path)
    return paths


def _flag(text: Any) -> bool:
    return str(text).strip().lower() == "true" if not isinstance(text, bool) else text


def _when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(str(value))


def _version(row: dict[str, Any], url_encoded: bool) -> Version:
    key = unquote_plus(row["Key"]) if url_encoded else row["Key"]
    modified = _when(row["LastModifiedDate"])
    if modified is None:
        raise InventoryError(f"row for a key has no readable LastModifiedDate: {row['LastModifiedDate']!r}")
    return Version(key, row.get("VersionId") or "null", _flag(row["IsLatest"]), _flag(row["IsDeleteMarker"]), modified,
                   int(row.get("Size") or 0), row.get("ObjectLockMode") or None, _when(row.get("ObjectLockRetainUntilDate")),
                   str(row.get("ObjectLockLegalHoldStatus") or "").upper() == "ON")


def _csv_rows(path: Path, schema: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for line, values in enumerate(csv.reader(handle), 1):
            if len(values) != len(schema):
                raise InventoryError(f"{path.name}:{line}: {len(values)} columns, the manifest's schema has {len(schema)}")
            yield dict(zip(schema, values, strict=True))


def _parquet_rows(path: Path, schema: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq  # optional: only Parquet reports need it
    except ImportError:
        raise InventoryError("a Parquet inventory report needs pyarrow: pip install 'vigil[inventory]'") from None
    for batch in pq.ParquetFile(path).iter_batches(columns=[c for c in REQUIRED if c in schema]):
        yield from batch.to_pylist()


def versions_of(report: Report, paths: list[Path]) -> Iterator[Version]:
    """Every row of the (verified) report as a Version; keys decoded."""
    for path in paths:
        # Keys are URL-encoded in CSV reports (spaces as '+'); Parquet holds them as written.
        rows = _csv_rows(path, report.schema) if report.file_format == "CSV" else _parquet_rows(path, report.schema)
        for row in rows:
            yield _version(row, report.file_format == "CSV")


def entries(versions: Iterator[Version], prefix: str) -> Iterator[ObjectEntry]:
    """Rows grouped by key, keys in order, versions newest first (as a listing yields them).

    Every row is read (and any bad one refuses the report) before the first entry is yielded: the
    report's row order is undocumented, so grouping holds every row in memory until the end."""
    grouped: dict[str, list[Version]] = {}
    try:
        for version in versions:
            if version.key.startswith(prefix):
                grouped.setdefault(version.key, []).append(version)
    except (OSError, EOFError, ValueError, KeyError, csv.Error) as exc:
        raise InventoryError(f"inventory data file could not be read: {type(exc).__name__}: {exc}") from None
    return _grouped(grouped)


def _grouped(grouped: dict[str, list[Version]]) -> Iterator[ObjectEntry]:
    for key in sorted(grouped):
        yield ObjectEntry(key, sorted(grouped.pop(key), key=lambda v: (not v.is_latest, -v.last_modified.timestamp())))


class Scratch:
    """A temporary directory for one report's data files, removed when planning ends."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="vigil-inventory-"))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def inventory_entries(aws: Aws, region: str, bucket: str, prefix: str, inv: InventorySource, as_of: datetime,
                      scratch: Path) -> tuple[Iterator[ObjectEntry], dict[str, Any]]:
    """The store's objects from the newest verified report, and what the plan says about that report.
    Raises InventoryError before anything is yielded when the report cannot be used."""
    report = newest_report(aws, region, bucket, inv)
    paths = fetch_files(aws, region, report, scratch)
    return entries(versions_of(report, paths), prefix), report.describe(as_of)
