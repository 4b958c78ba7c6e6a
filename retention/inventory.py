"""Streamed inventory of what each store holds: every object version and delete marker (source
and replicas), the records inside them, DynamoDB items, subjects' closing dates.

Read-only. Generators yield one object (all its versions) or one item at a time, so memory
stays flat however large the bucket; per-object reads run on a bounded pool.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions
from vigil.checks.model import Inventory

from vigil.aws import Aws, describe_error
from vigil.policy import Policy
from vigil.policy.models import DynamoDBStore, S3Store

from .items import FLAG, plain  # FLAG: the object metadata (and item attribute) vigil's rewrites carry
from .model import Item, Location, ObjectEntry, TableInfo, Version
from .records import Unreadable, parse
from .transforms import parse_time

REPLACES = "vigil-replaces"  # metadata of a version vigil rewrote: the raw version id it replaced
WINDOW = 64  # per-object reads in flight per location


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) if isinstance(exc, botocore.exceptions.ClientError) else ""


def s3_locations(aws: Aws, policy: Policy, store: S3Store, known: Inventory | None = None) -> list[Location]:
    """The store bucket and the replicas its replication configuration names (each with its region).

    `known`: what `vigil check` already read (location, replication, Object Lock); used instead of
    asking again, so no API is called twice for one bucket in one run.
    """
    if known is not None and store.bucket in known.buckets:
        return _known_locations(known, policy, store)
    s3 = aws.client("s3", policy.regions.primary)
    source = Location(store.name, store.bucket, policy.regions.primary)
    try:
        source.region = s3.get_bucket_location(Bucket=store.bucket).get("LocationConstraint") or "us-east-1"
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        source.error = describe_error("s3:GetBucketLocation", exc)
        return [source]
    out = [source]
    try:
        rules = s3.get_bucket_replication(Bucket=store.bucket)["ReplicationConfiguration"].get("Rules", [])
    except botocore.exceptions.ClientError as exc:
        rules = []
        if _code(exc) != "ReplicationConfigurationNotFoundError":
            source.error = describe_error("s3:GetBucketReplication", exc)
    for rule in rules:
        name = rule.get("Destination", {}).get("Bucket", "").removeprefix("arn:aws:s3:::")
        if name and name != store.bucket and all(loc.bucket != name for loc in out):
            replica = Location(store.name, name, policy.regions.backup, replica=True)
            try:
                replica.region = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                replica.error = describe_error("s3:GetBucketLocation", exc)
            out.append(replica)
    for loc in out:
        if loc.error is None:
            _read_lock_config(aws, loc)
    return out


def _known_locations(known: Inventory, policy: Policy, store: S3Store) -> list[Location]:
    source = known.buckets[store.bucket]
    names = [store.bucket]
    if source.replication.ok:
        for rule in (source.replication.value or {}).get("Rules", []):
            name = rule.get("Destination", {}).get("Bucket", "").removeprefix("arn:aws:s3:::")
            if name and name not in names:
                names.append(name)
    out = []
    for index, name in enumerate(names):
        loc = Location(store.name, name, policy.regions.backup if index else policy.regions.primary, replica=index > 0)
        bucket = known.buckets.get(name)
        if bucket is None:
            loc.error = f"replica bucket {name} is not visible to this account"
        else:
            failed = next((f for f in (bucket.region, bucket.object_lock) if not f.ok), None)
            if index == 0 and not bucket.replication.ok:
                failed = failed or bucket.replication
            loc.region = bucket.region.value or loc.region
            loc.locked = ((bucket.object_lock.value or {}) if bucket.object_lock.ok else {}).get("ObjectLockEnabled") == "Enabled"
            loc.error = failed.error if failed is not None else None
        out.append(loc)
    return out


def _read_lock_config(aws: Aws, loc: Location) -> None:
    try:
        config = aws.client("s3", loc.region).get_object_lock_configuration(Bucket=loc.bucket)
        loc.locked = config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
    except botocore.exceptions.ClientError as exc:
        if _code(exc) not in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"):
            loc.error = describe_error("s3:GetObjectLockConfiguration", exc)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _version_pages(aws: Aws, loc: Location, prefix: str, page_size: int = 1000) -> Iterator[list[Version]]:
    """ListObjectVersions, 1,000 a page, as Versions. Each response is let go before the next call:
    botocore's paginator keeps the last page alive during the next request, two pages a listing."""
    s3 = aws.client("s3", loc.region)
    args: dict[str, Any] = {"Bucket": loc.bucket, "Prefix": prefix, "MaxKeys": page_size}
    while True:
        page = s3.list_object_versions(**args)
        versions = [Version(raw["Key"], raw.get("VersionId") or "null", bool(raw.get("IsLatest")), marker,
                            _utc(raw["LastModified"]), int(raw.get("Size", 0)))
                    for field_name, marker in (("Versions", False), ("DeleteMarkers", True))
                    for raw in page.get(field_name, [])]
        more, key_marker, version_marker = page.get("IsTruncated"), page.get("NextKeyMarker"), page.get("NextVersionIdMarker")
        del page
        yield versions
        if not more or not key_marker:
            return
        args["KeyMarker"] = key_marker
        if version_marker:
            args["VersionIdMarker"] = version_marker
        else:
            args.pop("VersionIdMarker", None)


def listed_objects(aws: Aws, loc: Location, prefix: str, page_size: int = 1000) -> Iterator[ObjectEntry]:
    """Every key under `prefix` in `loc` with all its versions and delete markers, no reads; a
    key split across pages is held until it is complete."""
    pending: dict[str, list[Version]] = {}
    for versions in _version_pages(aws, loc, prefix, page_size):
        for version in versions:
            pending.setdefault(version.key, []).append(version)
        versions.clear()  # the page generator's own name for this list lives on: empty it, or every version read stays alive
        last = max(pending) if pending else None
        for key in sorted(k for k in pending if k != last):
            yield ObjectEntry(key, _newest_first(pending.pop(key)))
    for key in sorted(pending):
        yield ObjectEntry(key, _newest_first(pending.pop(key)))


def _newest_first(versions: list[Version]) -> list[Version]:
    return sorted(versions, key=lambda v: (not v.is_latest, -v.last_modified.timestamp()))


def iter_objects(aws: Aws, loc: Location, store: S3Store, pool: Executor, read_records: bool,
                 listed: Iterator[ObjectEntry] | None = None) -> Iterator[ObjectEntry]:
    """Every object of the store's prefix in `loc`, with lock state and records read when needed.

    listed: the objects from an S3 Inventory report (lock state included) instead of a listing."""
    needs_reads = read_records or (loc.locked and listed is None)
    window: deque[tuple[ObjectEntry, Future | None]] = deque()
    for entry in listed if listed is not None else listed_objects(aws, loc, store.prefix):
        future = pool.submit(_read_entry, aws, loc, store, entry, read_records) if needs_reads else None
        window.append((entry, future))
        if len(window) >= WINDOW:
            yield _done(window.popleft())
    while window:
        yield _done(window.popleft())


def _done(pair: tuple[ObjectEntry, Future | None]) -> ObjectEntry:
    entry, future = pair
    if future is not None:
        future.result()
    return entry


def _read_entry(aws: Aws, loc: Location, store: S3Store, entry: ObjectEntry, read_records: bool) -> None:
    s3 = aws.client("s3", loc.region)
    for version in entry.versions:
        if version.delete_marker:
            continue
        try:
            if read_records:
                answer = s3.get_object(Bucket=loc.bucket, Key=version.key, VersionId=version.version_id)
                body = answer["Body"].read()
                version.parsed = parse(body, version.key, store.layout, store.timestamp_field, store.subject_field)
            else:
                answer = s3.head_object(Bucket=loc.bucket, Key=version.key, VersionId=version.version_id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            version.error = describe_error("s3:GetObject" if read_records else "s3:HeadObject", exc)
            continue
        except Unreadable as exc:  # corrupt gzip, a gzip bomb, a csv field past the module's limit
            version.error = f"object could not be read: {exc}"
            continue
        except Exception as exc:  # one bad object is an error for that object alone, never its store
            version.error = f"object could not be read: {type(exc).__name__}: {exc}"[:300]
            continue
        # GetObjectRetention is not answered by moto; GetObject/HeadObject carry the same facts.
        version.lock_mode = answer.get("ObjectLockMode")
        until = answer.get("ObjectLockRetainUntilDate")
        version.lock_until = _utc(until) if isinstance(until, datetime) else parse_time(until)
        version.legal_hold = answer.get("ObjectLockLegalHoldStatus") == "ON"
        version.anonymized = FLAG in (answer.get("Metadata") or {})
        version.replaces = (answer.get("Metadata") or {}).get(REPLACES)


def subject_matcher(store: S3Store) -> re.Pattern[str] | None:
    return store.key_pattern()  # the policy model owns the pattern syntax ({subject}, *, **)


def subject_from_key(pattern: re.Pattern[str] | None, key: str) -> str | None:
    match = pattern.fullmatch(key) if pattern else None
    return match.group("subject") if match else None


def closed_accounts(aws: Aws, policy: Policy) -> dict[str, datetime]:
    """subject id -> closed_at, from one scan of the subjects table (closed accounts only)."""
    subjects = policy.subjects
    if subjects is None:
        return {}
    table = aws.client("dynamodb", policy.regions.primary)
    out: dict[str, datetime] = {}
    pages = table.get_paginator("scan").paginate(
        TableName=subjects.table, FilterExpression="attribute_exists(#c)",
        ProjectionExpression="#k, #c", ExpressionAttributeNames={"#k": subjects.key, "#c": subjects.closed_at})
    for page in pages:
        for item in page.get("Items", []):
            subject, closed = plain(item.get(subjects.key)), parse_time(plain(item.get(subjects.closed_at)))
            if subject is not None and closed is not None:
                out[str(subject)] = closed
    return out


def table_info(aws: Aws, policy: Policy, store: DynamoDBStore, known: Inventory | None = None) -> TableInfo:
    info = TableInfo(store.name, store.table, policy.regions.primary)
    found = [t for t in known.tables_named(store.table) if t.region == info.region] if known is not None else []
    if found and found[0].description.ok:  # already described by `vigil check`
        table = found[0].description.value or {}
        info.arn = table.get("TableArn", found[0].arn)
        _keys(info, table)
        return info
    try:
        table = aws.client("dynamodb", info.region).describe_table(TableName=store.table)["Table"]
        info.arn = table["TableArn"]
        _keys(info, table)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        info.error = describe_error("dynamodb:DescribeTable", exc)
    return info


def _keys(info: TableInfo, table: dict[str, Any]) -> None:
    info.key_names = [k["AttributeName"] for k in table.get("KeySchema", [])]
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    info.key_types = {name: types[name] for name in info.key_names if name in types}


def iter_items(aws: Aws, info: TableInfo, store: DynamoDBStore, pool: Executor, segments: int = 4,
               anonymized: Callable[[dict[str, Any]], bool] | None = None) -> Iterator[Item]:
    """Every item, read by `segments` parallel scan segments; one page per segment in flight.

    anonymized: for stores that anonymize, tells items vigil already anonymized (their raw
    attributes are kept on the Item for the planner)."""
    client = aws.client("dynamodb", info.region)

    def page(segment: int, start: dict | None) -> dict:
        args: dict[str, Any] = {"TableName": info.table, "Segment": segment, "TotalSegments": segments}
        if start:
            args["ExclusiveStartKey"] = start
        return client.scan(**args)

    running = {segment: pool.submit(page, segment, None) for segment in range(segments)}
    while running:
        for segment in list(running):
            answer = running.pop(segment).result()
            if answer.get("LastEvaluatedKey"):
                running[segment] = pool.submit(page, segment, answer["LastEvaluatedKey"])
            for raw in answer.get("Items", []):
                yield _item(raw, info, store, anonymized)


def _item(raw: dict[str, Any], info: TableInfo, store: DynamoDBStore,
          anonymized: Callable[[dict[str, Any]], bool] | None) -> Item:
    key = {name: raw[name] for name in info.key_names if name in raw}
    ts = parse_time(plain(raw.get(store.timestamp_attribute))) if store.timestamp_attribute else None
    subject = plain(raw.get(store.subject_attribute)) if store.subject_attribute else None
    done = anonymized is not None and anonymized(raw)
    error = None
    if store.timestamp_attribute and ts is None and not done:  # anonymized items may have dropped it
        error = f"missing or unreadable '{store.timestamp_attribute}'"
    return Item(key, ts, None if subject is None else str(subject), len(repr(raw)), error,
                raw if anonymized is not None else None, done)
