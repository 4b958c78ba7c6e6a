"""Inventory -> plan for one store: the glue used by apply (plan mode) and by verify (RET-02).

`scan_store` streams every location of a store through the pure planner and hands each
planned action to `emit`; with `split=True` it keeps one summary per location (verify
reports the store bucket and each replica on its own).
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

from vigil.checks.model import Inventory

from vigil.aws import Aws, describe_error
from vigil.policy import Duration, Policy
from vigil.policy.models import DynamoDBStore, S3Store

from .decide import Rules
from .inventory import closed_accounts, iter_items, iter_objects, s3_locations, table_info
from .items import is_anonymized_item
from .keys import RetentionKeys
from .plan import Planner, Summary, reads_records
from .plan_items import ItemPlanner, key_text
from .transforms import Anonymizer

Emit = Callable[[dict[str, Any]], None]
Observe = Callable[[str, str, Any], None]  # (location, keyed hash, versions or None)


def action_of(category) -> str:
    return "keep" if category.retain.forever else str(category.action)


def store_rules(policy: Policy, store, as_of: datetime, closed: dict[str, datetime], grace: Duration | None = None) -> Rules:
    return Rules.for_store(policy, store.name, policy.category_of(store), as_of, closed, grace)


def anonymizer_for(policy: Policy, store, keys: RetentionKeys) -> Anonymizer | None:
    category = policy.category_of(store)
    return Anonymizer(category, keys.pseudonym) if category.action == "anonymize" else None


def needs_subjects(policy: Policy, stores: list) -> bool:
    return any(policy.category_of(s).after == "account_closed" for s in stores)


def load_closed(aws: Aws, policy: Policy, stores: list) -> tuple[dict[str, datetime], str | None]:
    if not needs_subjects(policy, stores):
        return {}, None
    try:
        return closed_accounts(aws, policy), None
    except Exception as exc:  # noqa: BLE001 - reported per store that needs it
        return {}, describe_error("dynamodb:Scan (subjects)", exc)


def scan_store(aws: Aws, policy: Policy, keys: RetentionKeys, store, as_of: datetime, closed: dict[str, datetime],
               pool: Executor, emit: Emit | None = None, observe: Observe | None = None, grace: Duration | None = None,
               split: bool = False, subjects_error: str | None = None, known: Inventory | None = None) -> list[Summary]:
    """`known`: the facts `vigil check` already read, so verify asks nothing twice."""
    emit = emit or _discard
    category = policy.category_of(store)
    rules = store_rules(policy, store, as_of, closed, grace)
    anonymizer = anonymizer_for(policy, store, keys)
    if isinstance(store, S3Store):
        return _scan_s3(aws, policy, keys, store, category, rules, anonymizer, pool, emit, observe, split, subjects_error, known)
    if isinstance(store, DynamoDBStore):
        return [_scan_table(aws, policy, keys, store, category, rules, anonymizer, pool, emit, observe, subjects_error, known)]
    return []


def _discard(action: dict[str, Any]) -> None:
    """Verify plans to count what is left; its actions go nowhere."""


def _summary(store, category, resource: str, region: str, replicas: list[str] | None = None) -> Summary:
    return Summary(store.name, store.kind, store.category, action_of(category), resource, region, list(replicas or []))


def _scan_s3(aws, policy, keys, store: S3Store, category, rules, anonymizer, pool, emit: Emit, observe, split, subjects_error,
             known: Inventory | None = None) -> list[Summary]:
    locations = s3_locations(aws, policy, store, known)
    main = _summary(store, category, locations[0].arn, locations[0].region, [ln.arn for ln in locations[1:]])
    summaries = [main]
    for loc in locations:
        summary = main
        if split and loc.replica:
            summary = _summary(store, category, loc.arn, loc.region)
            summaries.append(summary)
        error = loc.error or (subjects_error if category.after else None)
        if error:
            summary.error(loc.arn, error)
            continue
        planner = Planner(rules, store, keys, summary, anonymizer)
        try:
            for entry in iter_objects(aws, loc, store, pool, reads_records(store, category)):
                if observe is not None:
                    observe(loc.bucket, keys.hash(entry.key), entry)
                try:
                    actions = planner.object(loc, entry)
                except Exception as exc:  # noqa: BLE001 - one bad object is an error for that object alone
                    summary.error(keys.hash(entry.key), f"object could not be planned: {type(exc).__name__}: {exc}"[:300])
                    summary.stuck += 1
                    continue
                for action in actions:
                    emit(action)
        except Exception as exc:  # noqa: BLE001 - an unreadable bucket fails its store only
            summary.error(loc.arn, describe_error("s3:ListObjectVersions", exc))
        for action in planner.flush():  # what was planned before a failure is still planned (and counted)
            emit(action)
    return summaries


def _scan_table(aws, policy, keys, store: DynamoDBStore, category, rules, anonymizer, pool, emit: Emit, observe,
                subjects_error, known: Inventory | None = None) -> Summary:
    info = table_info(aws, policy, store, known)
    arn = info.arn or f"arn:aws:dynamodb:{info.region}::table/{store.table}"
    summary = _summary(store, category, arn, info.region)
    error = info.error or (subjects_error if category.after else None)
    if error:
        summary.error(arn, error)
        return summary
    planner = ItemPlanner(rules, store, keys, summary, anonymizer, info)
    done = (lambda raw: is_anonymized_item(anonymizer, raw)) if planner.anonymizer is not None else None
    try:
        for item in iter_items(aws, info, store, pool, anonymized=done):
            if observe is not None and not item.anonymized:  # an anonymized item is a done action, not a target
                observe(store.table, keys.hash(key_text(item.key)), None)
            for action in planner.item(item):
                emit(action)
    except Exception as exc:  # noqa: BLE001 - an unreadable table fails its store only
        summary.error(arn, describe_error("dynamodb:Scan", exc))
    for action in planner.flush():
        emit(action)
    return summary
