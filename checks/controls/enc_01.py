"""ENC-01: every bucket's default encryption is AES-256 (SSE-S3, SSE-KMS or DSSE-KMS)."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import all_buckets_unlisted
from vigil.checks.verdicts import errored, failed, passed

ID = "ENC-01"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(every=("encryption",))
AES256_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")


def default_algorithms(rules: list[dict]) -> list[str]:
    return [rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "") for rule in rules]


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.encryption
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    rules = fact.value or []
    observed = {"Rules": rules}
    algorithms = [a for a in default_algorithms(rules) if a]
    good = [a for a in algorithms if a in AES256_ALGORITHMS]
    if good:
        return passed(ID, bucket.arn, bucket.region_name,
                      f"bucket {bucket.name} encrypts new objects by default with {good[0]} (AES-256)", fact.api, observed)
    if not algorithms:
        reason = f"bucket {bucket.name} has no default encryption; set SSE-KMS (aws:kms) with a customer-managed key"
    else:
        reason = f"bucket {bucket.name} default encryption {', '.join(algorithms)} is not AES-256; use aws:kms or AES256"
    return failed(ID, bucket.arn, bucket.region_name, reason, fact.api, observed)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    yield from all_buckets_unlisted(ctx, ID)
    for bucket in ctx.inventory.buckets.values():
        yield check_bucket(ctx, bucket)
