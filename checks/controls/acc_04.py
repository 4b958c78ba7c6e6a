"""ACC-04: data store buckets have ACLs disabled (Object Ownership BucketOwnerEnforced).

With ACLs enabled, whoever writes an object can grant access to it through the object's
ACL, outside every bucket and IAM policy the access review (ACC-03) reads. Buckets made
since April 2023 enforce bucket ownership by default; older ones, and buckets created with
ObjectWriter or BucketOwnerPreferred, do not.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, missing_bucket
from vigil.checks.verdicts import errored, failed, passed

ID = "ACC-04"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("ownership",))
ENFORCED = "BucketOwnerEnforced"


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.ownership
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    rules = (fact.value or {}).get("Rules") or []
    settings = [rule.get("ObjectOwnership") for rule in rules]
    if settings and all(setting == ENFORCED for setting in settings):
        return passed(ID, bucket.arn, bucket.region_name, f"bucket {bucket.name} has ACLs disabled ({ENFORCED})",
                      fact.api, fact.value)
    what = f"Object Ownership is {', '.join(str(s) for s in settings)}" if settings else "it has no Object Ownership setting"
    return failed(ID, bucket.arn, bucket.region_name,
                  f"bucket {bucket.name} has ACLs enabled ({what}): object ACLs can grant access no policy shows; "
                  f"set Object Ownership to {ENFORCED}", fact.api, fact.value)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield check_bucket(ctx, bucket) if bucket else missing_bucket(ctx, ID, name)
