"""ACC-01: all four Block Public Access settings are effectively on, flag by flag (bucket OR account)."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Evidence, Finding, Status
from vigil.checks.registry import evaluator
from vigil.checks.scope import all_buckets_unlisted
from vigil.checks.verdicts import failed, passed

ID = "ACC-01"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(every=("public_access_block",))
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    own, account = bucket.public_access_block, ctx.inventory.account_public_access_block
    apis = [own.api, account.api]
    own_value = (own.value or {}) if own.ok else {}
    account_value = (account.value or {}) if account.ok else {}
    effective = {flag: bool(own_value.get(flag)) or bool(account_value.get(flag)) for flag in FLAGS}
    observed = {
        "Bucket": own.value if own.ok else {"error": own.error},
        "Account": account.value if account.ok else {"error": account.error},
        "Effective": effective,
    }
    region = bucket.region_name
    # A denied read only matters when the other level does not already block everything.
    if all(effective.values()):
        return passed(ID, bucket.arn, region, f"bucket {bucket.name} blocks all public access (bucket or account level)",
                      apis, observed)
    denied = [fact.error for fact in (own, account) if not fact.ok]
    if denied:
        return Finding(ID, bucket.arn, region, Status.ERROR, "; ".join(str(d) for d in denied), Evidence(apis, observed))
    off = [flag for flag in FLAGS if not effective[flag]]
    return failed(ID, bucket.arn, region,
                  f"bucket {bucket.name} does not block public access: {', '.join(off)} off at both bucket and account "
                  "level; turn them on", apis, observed)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    yield from all_buckets_unlisted(ctx, ID)
    for bucket in ctx.inventory.buckets.values():
        yield check_bucket(ctx, bucket)
