"""RET-01: lifecycle rules keep a data store bucket within its retention without anyone running a job.

For each store in the bucket, the enabled rules whose filter covers the store's prefix must
expire noncurrent versions (within retain + grace; any age when the clock starts at an event
or the data is kept forever), abort incomplete multipart uploads, and, for whole-object
stores whose action is delete and whose clock starts at creation, expire current objects
within retain + grace. One finding per bucket, even when several stores share it.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, enabled, filter_prefix, missing_bucket
from vigil.checks.verdicts import errored, verdict

from vigil.policy.models import S3Store

ID = "RET-01"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("lifecycle",))


def covering_rules(rules: list[dict], prefix: str) -> list[dict]:
    out = []
    for rule in rules:
        rule_prefix = filter_prefix(rule)
        if enabled(rule) and rule_prefix is not None and prefix.startswith(rule_prefix):
            out.append(rule)
    return out


def store_problems(ctx: Context, store: S3Store, rules: list[dict]) -> list[str]:
    category = ctx.policy.category_of(store)
    covering = covering_rules(rules, store.prefix)
    where = f"store {store.name} ({store.prefix or 'whole bucket'})"
    limit = ctx.policy.retention_limit_days(store)
    problems = []

    noncurrent = [r["NoncurrentVersionExpiration"].get("NoncurrentDays") for r in covering
                  if "NoncurrentVersionExpiration" in r]
    noncurrent = [d for d in noncurrent if isinstance(d, int)]
    if not noncurrent:
        problems.append(f"{where}: no enabled rule expires noncurrent versions")
    elif limit is not None and min(noncurrent) > limit:
        problems.append(f"{where}: noncurrent versions expire after {min(noncurrent)} days, more than {limit} "
                        f"(retain {category.retain} + grace {ctx.policy.grace})")

    if not any("AbortIncompleteMultipartUpload" in r for r in covering):
        problems.append(f"{where}: no enabled rule aborts incomplete multipart uploads")

    if ctx.policy.expiry_days(store) is not None:  # S3 lifecycle itself must expire current objects
        current = [r["Expiration"].get("Days") for r in covering if isinstance(r.get("Expiration", {}).get("Days"), int)]
        if not current:
            problems.append(f"{where}: no enabled rule expires current objects (needed within {limit} days)")
        elif min(current) > limit:
            problems.append(f"{where}: current objects expire after {min(current)} days, more than {limit} "
                            f"(retain {category.retain} + grace {ctx.policy.grace})")
    return problems


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.lifecycle
    region = bucket.region_name
    if not fact.ok:
        return errored(ID, bucket.arn, region, fact)
    stores = ctx.stores_by_bucket.get(bucket.name, [])
    rules = fact.value or []
    problems = [p for store in stores for p in store_problems(ctx, store, rules)]
    if fact.value is None:
        reason = f"bucket {bucket.name} has no lifecycle configuration; add the rules the retention schedule needs"
    elif problems:
        reason = f"bucket {bucket.name} lifecycle rules do not enforce retention: " + "; ".join(problems)
    else:
        reason = f"bucket {bucket.name} lifecycle rules enforce the retention of " + ", ".join(s.name for s in stores)
    return verdict(ID, bucket.arn, region, not problems and fact.value is not None, reason, fact.api, {"Rules": fact.value})


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield check_bucket(ctx, bucket) if bucket else missing_bucket(ctx, ID, name)
