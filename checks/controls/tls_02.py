"""TLS-02: data store buckets deny requests made with TLS older than 1.2 (s3:TlsVersion)."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, missing_bucket
from vigil.checks.verdicts import errored, verdict

ID = "TLS-02"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("policy",))
KEY = "s3:tlsversion"


def _denies_old_tls(statement: dict) -> bool:
    """Deny, everyone, one condition (besides tests every request passes) true for every version below 1.2.

    Which actions and resources: the good statements together must cover s3:* on the bucket
    and its objects (`iam.uncovered`), like TLS-01.
    """
    if statement.get("Effect") != "Deny" or not iam.principal_is_everyone(statement):
        return False
    conds = [c for c in iam.conditions(statement) if not iam.always_true(c)]
    if len(conds) != 1 or conds[0].key != KEY or ":" in conds[0].operator or len(conds[0].values) != 1:
        return False
    bound = iam.number(conds[0].values[0])
    if bound is None:
        return False
    # TLS versions are 1.0, 1.1, 1.2, 1.3: "< 1.2" and "<= 1.1" deny the same requests.
    return (conds[0].base == "NumericLessThan" and bound >= 1.2) or (conds[0].base == "NumericLessThanEquals" and bound >= 1.1)


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.policy
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    good = [s for s in iam.statements(fact.value) if _denies_old_tls(s)]
    gaps = iam.uncovered(good, ["s3:*"], [bucket.arn, f"{bucket.arn}/*"])
    if not gaps:
        return verdict(ID, bucket.arn, bucket.region_name, True,
                       "the bucket policy denies requests with s3:TlsVersion below 1.2 on the bucket and its objects",
                       fact.api, fact.value)
    if good:
        reason = f"the TLS-version deny falls short: {iam.describe_gap(gaps, bucket.arn)}"
    elif any(c.key == KEY for s in iam.statements(fact.value) for c in iam.conditions(s)):
        reason = ("the statement on s3:TlsVersion is not a Deny for everyone on all S3 actions with "
                  "NumericLessThan 1.2 as its only condition")
    else:
        reason = "the bucket policy does not deny TLS versions below 1.2; add a Deny with NumericLessThan s3:TlsVersion 1.2"
    return verdict(ID, bucket.arn, bucket.region_name, False, reason, fact.api, fact.value)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield missing_bucket(ctx, ID, name) if bucket is None else check_bucket(ctx, bucket)
