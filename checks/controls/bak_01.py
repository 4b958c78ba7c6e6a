"""BAK-01: data store buckets keep versions (versioning Enabled), so overwritten or deleted data can be recovered."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, missing_bucket
from vigil.checks.verdicts import errored, failed, passed

ID = "BAK-01"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("versioning",))


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.versioning
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    observed = fact.value or {}
    status = observed.get("Status")
    if status == "Enabled":
        return passed(ID, bucket.arn, bucket.region_name, f"bucket {bucket.name} has versioning enabled", fact.api, observed)
    state = "suspended" if status == "Suspended" else "never enabled"
    return failed(ID, bucket.arn, bucket.region_name,
                  f"bucket {bucket.name} versioning is {state}; enable versioning", fact.api, observed)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield check_bucket(ctx, bucket) if bucket else missing_bucket(ctx, ID, name)
