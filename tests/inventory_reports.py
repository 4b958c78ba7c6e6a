"""Writes S3 Inventory reports in AWS's real format from moto's state (moto writes no inventory files).

Layout, manifest fields and CSV conventions follow AWS's documentation ("Locating your inventory
list", "Configuring Amazon S3 Inventory"): `<prefix>/<source>/<config>/<YYYY-MM-DDTHH-MMZ>/manifest.json`
+ `manifest.checksum` (MD5 hex of manifest.json), data files under `<config>/data/`. CSV: gzip, no
header row, every field quoted, keys URL-encoded, booleans `true`/`false`, ISO times in UTC with ms.
ORC and Parquet: fields in snake case (`last_modified_date`), keys as written, booleans, int64 size,
times as millisecond timestamps, and the manifest's fileSchema spelled as AWS's documented examples
(`struct<...>` for ORC, `message s3.inventory {...}` for Parquet).
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

FIELDS = ("Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag",
          "StorageClass", "IsMultipartUploaded", "ReplicationStatus", "EncryptionStatus",
          "ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus")


def aws_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rows_from(s3: Any, bucket: str) -> list[dict[str, str]]:
    """Every version and delete marker of `bucket` as inventory rows (lock facts from HeadObject)."""
    rows = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for raw in page.get("Versions", []):
            head = s3.head_object(Bucket=bucket, Key=raw["Key"], VersionId=raw["VersionId"])
            until = head.get("ObjectLockRetainUntilDate")
            rows.append({"Bucket": bucket, "Key": raw["Key"], "VersionId": raw["VersionId"],
                         "IsLatest": str(raw["IsLatest"]).lower(), "IsDeleteMarker": "false", "Size": str(raw["Size"]),
                         "LastModifiedDate": aws_time(raw["LastModified"]), "ETag": raw["ETag"].strip('"'),
                         "StorageClass": "STANDARD", "IsMultipartUploaded": "false", "ReplicationStatus": "",
                         "EncryptionStatus": "SSE-S3", "ObjectLockRetainUntilDate": aws_time(until) if until else "",
                         "ObjectLockMode": head.get("ObjectLockMode", ""),
                         "ObjectLockLegalHoldStatus": head.get("ObjectLockLegalHoldStatus", "OFF")})
        for raw in page.get("DeleteMarkers", []):
            rows.append({"Bucket": bucket, "Key": raw["Key"], "VersionId": raw["VersionId"],
                         "IsLatest": str(raw["IsLatest"]).lower(), "IsDeleteMarker": "true", "Size": "",
                         "LastModifiedDate": aws_time(raw["LastModified"]), "ETag": "", "StorageClass": "",
                         "IsMultipartUploaded": "", "ReplicationStatus": "", "EncryptionStatus": "",
                         "ObjectLockRetainUntilDate": "", "ObjectLockMode": "", "ObjectLockLegalHoldStatus": ""})
    return rows


def csv_gz(rows: list[dict[str, str]], fields: tuple[str, ...] = FIELDS) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for row in rows:
        writer.writerow([quote_plus(row[f], safe="") if f == "Key" else row.get(f, "") for f in fields])
    return gzip.compress(text.getvalue().encode("utf-8"), mtime=0)


def snake(field: str) -> str:
    """ORC/Parquet field names: LastModifiedDate -> last_modified_date, ETag -> e_tag."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", field).lower()


BOOLEANS = ("IsLatest", "IsDeleteMarker", "IsMultipartUploaded")
TIMES = ("LastModifiedDate", "ObjectLockRetainUntilDate")
ORC_TYPES = {"Size": "bigint", **dict.fromkeys(BOOLEANS, "boolean"), **dict.fromkeys(TIMES, "timestamp")}
PARQUET_TYPES = {"Size": ("int64", ""), **dict.fromkeys(BOOLEANS, ("boolean", "")), **dict.fromkeys(TIMES, ("int64", " (TIMESTAMP_MILLIS)"))}


def file_schema(fields: tuple[str, ...], file_format: str) -> str:
    if file_format == "ORC":
        return "struct<" + ",".join(f"{snake(f)}:{ORC_TYPES.get(f, 'string')}" for f in fields) + ">"
    if file_format == "Parquet":
        parts = []
        for f in fields:
            physical, annotation = PARQUET_TYPES.get(f, ("binary", " (UTF8)"))
            parts.append(f"{'required' if f in ('Bucket', 'Key') else 'optional'} {physical} {snake(f)}{annotation};")
        return "message s3.inventory { " + " ".join(parts) + " }"
    return ", ".join(fields)


def manifest(source: str, dest: str, created: datetime, files: list[dict[str, Any]],
             fields: tuple[str, ...] = FIELDS, file_format: str = "CSV") -> bytes:
    return json.dumps({
        "sourceBucket": source, "destinationBucket": f"arn:aws:s3:::{dest}", "version": "2016-11-30",
        "creationTimestamp": str(int(created.timestamp() * 1000)), "fileFormat": file_format,
        "fileSchema": file_schema(fields, file_format), "files": files}, indent=4).encode()


def arrow_table(rows: list[dict[str, str]], fields: tuple[str, ...]) -> Any:
    """The rows typed as AWS's ORC and Parquet reports hold them."""
    import pyarrow as pa

    columns = {}
    for f in fields:
        values = [row.get(f, "") for row in rows]
        if f in BOOLEANS:
            columns[snake(f)] = pa.array([None if v == "" else v == "true" for v in values], pa.bool_())
        elif f == "Size":
            columns[snake(f)] = pa.array([int(v) if v else None for v in values], pa.int64())
        elif f in TIMES:
            stamps = [datetime.fromisoformat(v) if v else None for v in values]
            columns[snake(f)] = pa.array(stamps, pa.timestamp("ms", tz="UTC"))
        else:
            columns[snake(f)] = pa.array([v or None for v in values] if f != "Key" else values, pa.string())
    return pa.table(columns)


def data_file(rows: list[dict[str, str]], fields: tuple[str, ...], file_format: str) -> bytes:
    if file_format == "CSV":
        return csv_gz(rows, fields)
    sink = io.BytesIO()
    if file_format == "ORC":
        import pyarrow.orc as orc

        orc.write_table(arrow_table(rows, fields), sink)
    else:
        import pyarrow.parquet as pq

        pq.write_table(arrow_table(rows, fields), sink)
    return sink.getvalue()


def write_report(s3: Any, source: str, dest: str, config_id: str, created: datetime, prefix: str = "inventory",
                 rows: list[dict[str, str]] | None = None, n_files: int = 2, fields: tuple[str, ...] = FIELDS,
                 seed: int = 0, file_format: str = "CSV") -> str:
    """Writes one report of `source` (its current moto state unless `rows`) into `dest`; returns the
    manifest key. Rows are shuffled across `n_files` data files: AWS documents no order.
    file_format: CSV, ORC or Parquet (as a manifest spells them)."""
    rows = list(rows_from(s3, source) if rows is None else rows)
    random.Random(seed).shuffle(rows)
    root = f"{prefix.strip('/') + '/' if prefix.strip('/') else ''}{source}/{config_id}/"
    files = []
    for index in range(n_files):
        body = data_file(rows[index::n_files], fields, file_format)
        suffix = {"CSV": "csv.gz", "ORC": "orc", "Parquet": "parquet"}[file_format]
        key = f"{root}data/{uuid.UUID(int=random.Random(seed * 1000 + index).getrandbits(128))}.{suffix}"
        s3.put_object(Bucket=dest, Key=key, Body=body)
        files.append({"key": key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()})  # noqa: S324
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H-%MZ")
    body = manifest(source, dest, created, files, fields, file_format)
    s3.put_object(Bucket=dest, Key=f"{root}{stamp}/manifest.json", Body=body)
    s3.put_object(Bucket=dest, Key=f"{root}{stamp}/manifest.checksum", Body=hashlib.md5(body).hexdigest().encode())  # noqa: S324
    return f"{root}{stamp}/manifest.json"
