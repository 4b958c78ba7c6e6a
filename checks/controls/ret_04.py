"""RET-04: data that must be kept for a minimum time (`keep_at_least`) cannot be deleted before it.

For S3 the guard is Object Lock with a default retention at least that long. DynamoDB and RDS
have no per-item guard against deletion, so such stores fail with that reason.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import missing_bucket, missing_table
from vigil.checks.verdicts import errored, failed, verdict

ID = "RET-04"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("object_lock",))


def guarded(ctx: Context, store) -> bool:
    return ctx.policy.category_of(store).keep_at_least is not None


def default_retention_days(config: dict) -> int:
    retention = (config.get("Rule") or {}).get("DefaultRetention") or {}
    return int(retention.get("Days") or 0) or int(retention.get("Years") or 0) * 365


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.object_lock
    region = bucket.region_name
    if not fact.ok:
        return errored(ID, bucket.arn, region, fact)
    stores = [s for s in ctx.stores_by_bucket.get(bucket.name, []) if guarded(ctx, s)]
    needed = ctx.policy.keep_at_least_days(stores)
    config = fact.value or {}
    if config.get("ObjectLockEnabled") != "Enabled":
        return failed(ID, bucket.arn, region,
                      f"bucket {bucket.name} has no Object Lock; enable it with a default retention of at least {needed} days",
                      fact.api, fact.value)
    days = default_retention_days(config)
    mode = ((config.get("Rule") or {}).get("DefaultRetention") or {}).get("Mode", "no mode")
    if days >= needed:
        reason = f"bucket {bucket.name} locks new objects for {days} days ({mode}), at least the {needed} required"
    elif days == 0:
        reason = f"bucket {bucket.name} has Object Lock but no default retention; set at least {needed} days"
    else:
        reason = f"bucket {bucket.name} locks new objects for only {days} days; at least {needed} are required"
    return verdict(ID, bucket.arn, region, days >= needed, reason, fact.api, fact.value)


def _no_guard(ctx: Context, resource: str, region: str, what: str, needed: int, api: str) -> Finding:
    return failed(ID, resource, region,
                  f"{what} must keep data at least {needed} days but has no per-item deletion guard; "
                  "keep this category in an S3 bucket with Object Lock", api, None)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    primary = ctx.policy.regions.primary
    for name, stores in ctx.stores_by_bucket.items():
        if any(guarded(ctx, s) for s in stores):
            bucket = ctx.bucket(name)
            yield check_bucket(ctx, bucket) if bucket else missing_bucket(ctx, ID, name)
    for name, table in ctx.data_tables():
        stores = [s for s in ctx.stores_by_table.get(name, []) if guarded(ctx, s)]
        if not stores:
            continue
        if table is None:
            yield missing_table(ctx, ID, name)
        else:
            yield _no_guard(ctx, table.arn, table.region, f"table {name}", ctx.policy.keep_at_least_days(stores), "dynamodb:DescribeTable")
    for store in ctx.rds_stores:
        if guarded(ctx, store):
            kind, ident = ("cluster", store.cluster) if store.cluster else ("db", store.instance)
            arn = f"arn:aws:rds:{primary}:{ctx.inventory.account_id}:{kind}:{ident}"
            yield _no_guard(ctx, arn, primary, f"RDS {kind} {ident}", ctx.policy.keep_at_least_days([store]), "rds:DescribeDBInstances")
