"""Inventory -> plan for one store: the glue used by apply (plan mode) and by verify (RET-02).

`scan_store(ScanContext, store)` streams every location of a store through the pure planner
and hands each planned action to the context's `emit`; with `split=True` it keeps one summary
per location (verify reports the store bucket and each replica on its own).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from vigil.checks.model import Inventory

from vigil.aws import Aws, describe_error
from vigil.policy import Duration, Policy
from vigil.policy.models import DynamoDBStore, S3Store

from .dataset_k import CountTask, DatasetJudgement, dataset_scope, judge_local, refuse_all
from .decide import Rules
from .inventory import closed_accounts, iter_items, iter_objects, s3_locations, table_info
from .items import is_anonymized_item
from .keys import RetentionKeys
from .model import Location, ObjectEntry
from .plan import Planner, Summary, reads_records
from .plan_items import ItemPlanner, key_text
from .s3_inventory import InventoryError, Scratch, inventory_entries
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
    except Exception as exc:  # reported per store that needs it
        return {}, describe_error("dynamodb:Scan (subjects)", exc)


def _discard(action: dict[str, Any]) -> None:
    """Verify plans only to count what is left: its actions go nowhere."""


@dataclass(frozen=True)
class ScanContext:
    """What scanning any store of one run needs: the account, the policy and keys, the instant
    and the subjects' closing dates, the read pool, and where planned actions and listings go."""

    aws: Aws
    policy: Policy
    keys: RetentionKeys
    as_of: datetime
    closed: dict[str, datetime]
    pool: Executor
    emit: Emit = field(default=_discard)
    observe: Observe | None = None  # resume: which of the dangling intents' targets still exist
    grace: Duration | None = None  # verify: how late a deletion may be
    split: bool = False  # one summary per location (verify), not per store
    subjects_error: str | None = None  # why the closing dates could not be read
    known: Inventory | None = None  # the facts `vigil check` already read, so verify asks nothing twice
    reports: bool = True  # plan from a store's S3 Inventory report; verify lists (a report predates the apply it checks)
    spark_master: str | None = None  # count dataset-wide k (dataset_k.py) with Spark instead of on this machine


@dataclass(frozen=True)
class _Store:
    """One store's fixed parts for a scan."""

    store: Any
    category: Any
    rules: Rules
    anonymizer: Anonymizer | None


def scan_store(ctx: ScanContext, store) -> list[Summary]:
    category = ctx.policy.category_of(store)
    one = _Store(store, category, store_rules(ctx.policy, store, ctx.as_of, ctx.closed, ctx.grace),
                 anonymizer_for(ctx.policy, store, ctx.keys))
    if isinstance(store, S3Store):
        return _scan_s3(ctx, one)
    if isinstance(store, DynamoDBStore):
        return [_scan_table(ctx, one)]
    return []


def _summary(store, category, resource: str, region: str, replicas: list[str] | None = None) -> Summary:
    return Summary(store.name, store.kind, store.category, action_of(category), resource, region, list(replicas or []))


def _scan_s3(ctx: ScanContext, one: _Store) -> list[Summary]:
    store, category = one.store, one.category
    locations = s3_locations(ctx.aws, ctx.policy, store, ctx.known)
    main = _summary(store, category, locations[0].arn, locations[0].region, [ln.arn for ln in locations[1:]])
    summaries = [main]
    datasets = _datasets(ctx, one, locations) if dataset_scope(category) else {}
    for loc in locations:
        summary = main
        if ctx.split and loc.replica:
            summary = _summary(store, category, loc.arn, loc.region)
            summaries.append(summary)
        error = loc.error or (ctx.subjects_error if category.after else None)
        if error:
            summary.error(loc.arn, error)
            continue
        planner = Planner(one.rules, store, ctx.keys, summary, one.anonymizer, datasets.get(loc.bucket))
        with Scratch() as scratch:
            listed = None
            if ctx.reports and store.inventory is not None and not loc.replica:  # replicas have no report: they are listed
                try:
                    listed, summary.inventory = inventory_entries(ctx.aws, loc.region, loc.bucket, store.prefix,
                                                                  store.inventory, ctx.as_of, scratch)
                except InventoryError as exc:
                    summary.error(loc.arn, f"inventory report refused: {exc}")
                    continue
            _plan_objects(ctx, one, loc, planner, summary, listed)
    return summaries


def _datasets(ctx: ScanContext, one: _Store, locations: list[Location]) -> dict[str, DatasetJudgement]:
    """The first pass of dataset-wide k (dataset_k.py): each readable location's judgement."""
    out: dict[str, DatasetJudgement] = {}
    assert one.anonymizer is not None  # dataset scope is an anonymize category's
    for loc in locations:
        if loc.error is not None:
            continue
        task = CountTask(ctx.aws.session.profile_name if ctx.aws.endpoint_url is None else None, ctx.aws.endpoint_url,
                         loc, one.store, one.rules, one.anonymizer)
        try:
            with Scratch() as scratch:
                listed = None
                if ctx.reports and one.store.inventory is not None and not loc.replica:
                    listed = inventory_entries(ctx.aws, loc.region, loc.bucket, one.store.prefix, one.store.inventory,
                                               ctx.as_of, scratch)[0]
                if ctx.spark_master is not None:
                    from .dataset_k_spark import judge_spark
                    out[loc.bucket] = judge_spark(task, ctx.aws, ctx.spark_master, listed)
                else:
                    out[loc.bucket] = judge_local(task, ctx.aws, ctx.pool, listed)
        except Exception as exc:  # nothing of the store is published without its count (never judged per object instead)
            why = (f"inventory report refused: {exc}" if isinstance(exc, InventoryError) else
                   describe_error("s3:ListObjectVersions", exc) if isinstance(exc, ClientError | BotoCoreError) else
                   f"{type(exc).__name__}: {str(exc).strip()[:200]}")
            out[loc.bucket] = DatasetJudgement(loc.bucket, one.anonymizer.k, refused=f"dataset-wide k-anonymity could not be counted: {why}")
    return refuse_all(out)


def _plan_objects(ctx: ScanContext, one: _Store, loc: Location, planner: Planner, summary: Summary,
                  listed: Iterator[ObjectEntry] | None) -> None:
    store, category = one.store, one.category
    try:
        for entry in iter_objects(ctx.aws, loc, store, ctx.pool, reads_records(store, category), listed):
            if ctx.observe is not None:
                ctx.observe(loc.bucket, ctx.keys.hash(entry.key), entry)
            try:
                actions = planner.object(loc, entry)
            except Exception as exc:  # one bad object is an error for that object alone
                summary.error(ctx.keys.hash(entry.key), f"object could not be planned: {type(exc).__name__}: {exc}"[:300])
                summary.stuck += 1
                continue
            for action in actions:
                ctx.emit(action)
    except Exception as exc:  # an unreadable bucket fails its store only
        summary.error(loc.arn, describe_error("s3:ListObjectVersions", exc))
    for action in planner.flush():  # what was planned before a failure is still planned (and counted)
        ctx.emit(action)


def _scan_table(ctx: ScanContext, one: _Store) -> Summary:
    store, category = one.store, one.category
    info = table_info(ctx.aws, ctx.policy, store, ctx.known)
    arn = info.arn or f"arn:aws:dynamodb:{info.region}::table/{store.table}"
    summary = _summary(store, category, arn, info.region)
    error = info.error or (ctx.subjects_error if category.after else None)
    if error:
        summary.error(arn, error)
        return summary
    planner = ItemPlanner(one.rules, store, ctx.keys, summary, one.anonymizer, info)
    anonymizer = planner.anonymizer
    done = (lambda raw: is_anonymized_item(anonymizer, raw)) if anonymizer is not None else None
    try:
        for item in iter_items(ctx.aws, info, store, ctx.pool, anonymized=done):
            if ctx.observe is not None and not item.anonymized:  # an anonymized item is a done action, not a target
                ctx.observe(store.table, ctx.keys.hash(key_text(item.key)), None)
            for action in planner.item(item):
                ctx.emit(action)
    except Exception as exc:  # an unreadable table fails its store only
        summary.error(arn, describe_error("dynamodb:Scan", exc))
    for action in planner.flush():
        ctx.emit(action)
    return summary
