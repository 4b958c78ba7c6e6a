"""DynamoDB: the subject's items, by Query when the subject attribute is the partition key,
otherwise by a parallel Scan with a filter (only matching items come back over the wire)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import botocore.exceptions
from boto3.dynamodb.types import TypeDeserializer

from vigil.aws import describe_error
from vigil.policy import Policy
from vigil.policy.models import DynamoDBStore
from vigil.retention.decide import Rules
from vigil.retention.inventory import table_info
from vigil.retention.transforms import parse_time

from .decide import hold
from .model import Copy, StoreFound

SEGMENTS = 4
_DESERIALIZE = TypeDeserializer().deserialize


def subjects_table_store(policy: Policy) -> DynamoDBStore | None:
    """The `subjects:` table (account records) when no store already names it: searched by its key."""
    subjects = policy.subjects
    if subjects is None or any(isinstance(s, DynamoDBStore) and s.table == subjects.table for s in policy.stores):
        return None
    category = next(iter(policy.categories))  # unused for decisions: account records have no category of their own
    return DynamoDBStore(name=f"subjects:{subjects.table}", kind="dynamodb", table=subjects.table, category=category,
                         subject_attribute=subjects.key)


def plain(value: Any) -> Any:
    """A deserialized DynamoDB value as JSON-ready data (numbers as int or float, sets as lists)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [plain(v) for v in (sorted(value, key=str) if isinstance(value, set) else value)]
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return value


_CANONICAL_INT = re.compile(r"^-?(0|[1-9][0-9]{0,37})$")


def _values(subject: str) -> dict[str, dict[str, str]]:
    """The id as a string, and as a number only when the number is written exactly so: DynamoDB
    keeps a number's value, not its text, so "007" (or "7.0", "+7") would match subject 7."""
    values = {":s": {"S": subject}}
    if _CANONICAL_INT.match(subject) and subject != "-0":
        values[":n"] = {"N": subject}
    return values


def is_subject(value: dict[str, Any] | None, subject: str) -> bool:
    """The attribute holds exactly this id: the same string, or the number this id spells."""
    if not value:
        return False
    if "S" in value:
        return value["S"] == subject
    return "N" in value and ":n" in _values(subject) and Decimal(value["N"]) == Decimal(subject)


def _pages(client, table: str, attribute: str, subject: str, partition: bool, segment: int) -> Iterator[dict]:
    values = _values(subject)
    args: dict[str, Any] = {"TableName": table, "ExpressionAttributeNames": {"#a": attribute}}
    if partition:
        args.update(KeyConditionExpression="#a = :s", ExpressionAttributeValues={":s": values[":s"]})
        call = client.query
    else:
        args.update(FilterExpression=" OR ".join(f"#a = {v}" for v in values), ExpressionAttributeValues=values,
                    Segment=segment, TotalSegments=SEGMENTS)
        call = client.scan
    while True:
        answer = call(**args)
        yield answer
        if not answer.get("LastEvaluatedKey"):
            return
        args["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def find_items(finder, store: DynamoDBStore, rules: Rules, found: StoreFound) -> None:
    if store.subject_attribute is None:
        found.note = "cannot tell whose data an item holds: give the store 'subject_attribute'"
        return
    info = table_info(finder.aws, finder.policy, store)
    found.resource = info.arn or f"arn:aws:dynamodb:{info.region}::table/{store.table}"
    if info.error:
        found.errors.append(info.error)
        return
    client = finder.aws.client("dynamodb", info.region)
    partition = bool(info.key_names) and info.key_names[0] == store.subject_attribute
    segments = [0] if partition else list(range(SEGMENTS))
    try:
        for items in finder.pool.map(lambda seg: _collect(client, store, info, partition, seg, finder, rules, found), segments):
            found.copies.extend(items)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        found.errors.append(describe_error("dynamodb:Query" if partition else "dynamodb:Scan", exc))


def _collect(client, store: DynamoDBStore, info, partition: bool, segment: int, finder, rules: Rules, found: StoreFound) -> list[Copy]:
    out = []
    for page in _pages(client, store.table, str(store.subject_attribute), finder.subject, partition, segment):
        found.scanned += int(page.get("ScannedCount", page.get("Count", 0)))
        for raw in page.get("Items", []):
            if not is_subject(raw.get(str(store.subject_attribute)), finder.subject):
                continue  # a filter is only as exact as its values: never erase another subject's item
            key_text = json.dumps({name: raw[name] for name in info.key_names if name in raw}, sort_keys=True)
            if finder.observe is not None:
                finder.observe(store.table, finder.keys.hash(key_text), None)
            copy = Copy("item", store.table, info.region, key_text, records=1, bytes=len(repr(raw)), whole=True)
            created = parse_time(plain(_DESERIALIZE(raw[store.timestamp_attribute]))) if store.timestamp_attribute in raw else None
            held = hold(rules, created, finder.subject)
            if held is not None:
                copy.held.append((held[0], held[1], 1, copy.bytes))
            else:
                copy.erase = 1
            if finder.export:
                copy.data = [plain({k: _DESERIALIZE(v) for k, v in raw.items()})]
            out.append(copy)
    return out
