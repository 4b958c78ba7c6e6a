"""Plan an S3 store from its newest S3 Inventory report instead of listing the bucket.

AWS writes a report as `<prefix>/<source bucket>/<config id>/<YYYY-MM-DDTHH-MMZ>/manifest.json`
(+ `manifest.checksum`, the MD5 hex of manifest.json) and data files under `.../data/`. The
manifest names every data file with the MD5 of its (compressed) bytes. A report is used only when
the manifest and every data file match their checksums and its schema carries every field the
planner needs; otherwise the store gets an error and nothing of it is planned.

Rows come back as the same `ObjectEntry`/`Version` records a listing yields, so the planner is
shared. AWS documents no row order, so rows are grouped by key with an external sort in the run's
private scratch directory (s3_inventory_rows.py): memory stays flat however large the report. CSV
reports need nothing extra; ORC and Parquet reports are read with pyarrow (the `inventory` extra).
A row modified after the report's creationTimestamp is left for the next report.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions

from vigil.aws import Aws, describe_error
from vigil.policy.models import InventorySource

from .model import ObjectEntry
from .s3_inventory_rows import COLUMNS, Row, RowError, arrow_rows, csv_rows, grouped, micros, sorted_rows

REQUIRED = ("Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag",
            "ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z$")
CHUNK = 1 << 20
FORMATS = ("CSV", "ORC", "PARQUET")
BATCH = 65_536  # ORC/Parquet rows converted to Python at a time


class InventoryError(Exception):
    """The report cannot be used (missing, incomplete, tampered, wrong schema or format)."""


@dataclass(frozen=True)
class Report:
    bucket: str  # where the report lives
    manifest_key: str
    created: datetime  # manifest creationTimestamp
    file_format: str
    schema: tuple[str, ...]  # the report's fields by their CSV names (Key, VersionId, ...)
    files: tuple[dict[str, Any], ...]
    columns: tuple[str, ...] = ()  # the same fields as the data files name them (ORC/Parquet: key, version_id, ...)

    def column(self, name: str) -> str:
        return (self.columns or self.schema)[self.schema.index(name)]

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
        fmt = str(doc["fileFormat"]).upper()
        columns = _columns(fmt, str(doc["fileSchema"])) if fmt in FORMATS else ()
        created = datetime.fromtimestamp(int(doc["creationTimestamp"]) / 1000, UTC)
        files = tuple(doc["files"])
        for f in files:
            if not (isinstance(f, dict) and f.get("key") and f.get("MD5checksum")):
                raise ValueError("a files[] entry lacks key or MD5checksum")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InventoryError(f"{where}: not a readable inventory manifest ({type(exc).__name__}: {exc})") from None
    if doc.get("sourceBucket") not in (None, source_bucket):
        raise InventoryError(f"{where}: a report of bucket {doc.get('sourceBucket')!r}, not {source_bucket!r}")
    if fmt not in FORMATS:
        raise InventoryError(f"{where}: file format {fmt} is not read by vigil (use CSV, ORC or Parquet)")
    schema = tuple(columns if fmt == "CSV" else map(_camel, columns))
    missing = [name for name in REQUIRED if name not in schema]
    if missing:
        raise InventoryError(f"{where}: the report lacks fields {', '.join(missing)} (include all versions and these "
                             f"optional fields in the inventory configuration)")
    return Report(bucket, key, created, fmt, schema, files, columns)


def _columns(fmt: str, text: str) -> tuple[str, ...]:
    """Field names as the data files hold them. CSV: "Bucket, Key, ..."; ORC: "struct<bucket:string,...>";
    Parquet: "message s3.inventory { required binary bucket (UTF8); ... }" (AWS's documented manifests)."""
    if fmt == "CSV":
        return tuple(part.strip() for part in text.split(","))
    if fmt == "ORC":
        match = re.fullmatch(r"\s*struct<(.*)>\s*", text, re.S)
        if match is None:
            raise ValueError(f"fileSchema is not an ORC struct<...>: {text[:80]!r}")
        return tuple(part.split(":", 1)[0].strip() for part in match.group(1).split(","))
    return tuple(re.findall(r"(?:required|optional|repeated)\s+\w+\s+(\w+)", text))


def _camel(name: str) -> str:
    """ORC and Parquet name fields in snake case: last_modified_date -> LastModifiedDate, e_tag -> ETag."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def fetch_files(aws: Aws, region: str, report: Report, into: Path) -> list[Path]:
    """Download every data file, checking its MD5 as it streams; any mismatch refuses the whole report."""
    s3 = aws.client("s3", region)
    paths = []
    for index, entry in enumerate(report.files):
        path = into / f"{index:06d}"
        digest = hashlib.md5()  # noqa: S324 - AWS's checksum is MD5
        try:
            body = s3.get_object(Bucket=report.bucket, Key=entry["key"])["Body"]
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                for chunk in body.iter_chunks(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise InventoryError(describe_error(f"s3:GetObject s3://{report.bucket}/{entry['key']}", exc)) from None
        if digest.hexdigest() != str(entry["MD5checksum"]).lower():
            raise InventoryError(f"s3://{report.bucket}/{entry['key']}: MD5 does not match the manifest; the report is refused")
        paths.append(path)
    return paths


def report_rows(report: Report, path: Path, label: str, prefix: str) -> Iterator[Row]:
    """Rows of one verified data file under `prefix`, leaving out versions newer than the report."""
    newest = micros(report.created, "creationTimestamp")
    if report.file_format == "CSV":
        return csv_rows(path, label, report.schema, prefix, newest)
    names = [report.column(name) for name in COLUMNS]
    try:  # optional: only ORC and Parquet reports need it
        if report.file_format == "ORC":
            import pyarrow.orc as orc
        else:
            import pyarrow.parquet as pq
    except ImportError:
        raise InventoryError(f"{'an ORC' if report.file_format == 'ORC' else 'a Parquet'} inventory report needs "
                             f"pyarrow: pip install 'vigil[inventory]'") from None
    if report.file_format == "ORC":
        stripes = orc.ORCFile(path)
        batches = (stripe.slice(start, BATCH) for stripe in (stripes.read_stripe(i, columns=names) for i in range(stripes.nstripes))
                   for start in range(0, stripe.num_rows, BATCH))
    else:
        batches = pq.ParquetFile(path).iter_batches(batch_size=BATCH, columns=names)
    return arrow_rows(batches, names, label, prefix, newest)


def entries(report: Report, paths: list[Path], prefix: str, scratch: Path) -> Iterator[ObjectEntry]:
    """The report's objects under `prefix`, keys in order, versions latest then newest first (as a listing
    yields them). Reads every row (any bad one refuses the report) before it returns; each data file is
    removed once its rows are in sorted runs, so the scratch directory holds about one copy of the report."""

    def every_row() -> Iterator[Row]:
        for path, entry in zip(paths, report.files, strict=True):
            label = f"s3://{report.bucket}/{entry['key']}"
            try:
                yield from report_rows(report, path, label, prefix)
            except (RowError, InventoryError):
                raise
            except Exception as exc:  # a corrupt ORC/Parquet file: pyarrow raises its own kinds (ArrowInvalid, OSError, ...)
                raise RowError(f"{label}: unreadable: {type(exc).__name__}: {exc}"[:500]) from None
            path.unlink(missing_ok=True)

    try:
        return grouped(sorted_rows(every_row(), scratch))
    except RowError as exc:
        raise InventoryError(str(exc)) from None


class Scratch:
    """The run's private directory (mode 0700; files in it 0600) for one report's data files and sorted
    runs, removed when planning ends."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="vigil-inventory-"))  # mkdtemp: 0700, owner only
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def inventory_entries(aws: Aws, region: str, bucket: str, prefix: str, inv: InventorySource, as_of: datetime,
                      scratch: Path) -> tuple[Iterator[ObjectEntry], dict[str, Any]]:
    """The store's objects from the newest verified report, and what the plan says about that report.
    Raises InventoryError before anything is yielded when the report cannot be used."""
    report = newest_report(aws, region, bucket, inv)
    paths = fetch_files(aws, region, report, scratch)
    return entries(report, paths, prefix, scratch), report.describe(as_of)
