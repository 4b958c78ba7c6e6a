"""TLS-01: every bucket's policy denies all S3 actions over plain HTTP, on the bucket and its objects.

The strict reading (cdk-nag S3BucketSSLRequestsOnly, AWS Config s3-bucket-ssl-requests-only):
Deny, principal *, action s3:* (or *), condition Bool/BoolIfExists aws:SecureTransport=false
and nothing else (a test every request passes, like `StringLikeIfExists "*"`, counts as
nothing), together covering every S3 action on `bucket` and `bucket/*`: one statement or
several, split by resource or by action (`NotAction s3:Get*` plus `Action s3:Get*`).
An Allow on SecureTransport=true does not make HTTP impossible.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import all_buckets_unlisted
from vigil.checks.verdicts import errored, verdict

ID = "TLS-01"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(every=("policy",))
KEY = "aws:SecureTransport"


def _denies_http(statement: dict) -> bool:
    conds = [c for c in iam.conditions(statement) if not iam.always_true(c)]
    return len(conds) == 1 and iam.is_bool(conds[0], KEY, "false", among=True)


def _defect(statement: dict) -> str | None:
    """Why a statement that mentions SecureTransport does not enforce TLS (None: it does, for its resources)."""
    if statement.get("Effect") != "Deny":
        return "it is an Allow; allowing TLS does not deny plain HTTP"
    if not iam.principal_is_everyone(statement):
        return "its principal is not everyone (\"*\")"
    if not _denies_http(statement):
        return "its condition is not exactly Bool aws:SecureTransport = false (extra conditions narrow the deny)"
    return None


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.policy
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    observed = fact.value
    good = [s for s in iam.statements(observed) if _defect(s) is None]
    gaps = iam.uncovered(good, ["s3:*"], [bucket.arn, f"{bucket.arn}/*"])
    if not gaps:
        return verdict(ID, bucket.arn, bucket.region_name, True,
                       "the bucket policy denies every S3 action without TLS on the bucket and its objects",
                       fact.api, observed)
    if observed is None:
        reason = "the bucket has no policy, so requests over plain HTTP are not denied; add a Deny on aws:SecureTransport=false"
    elif good:
        reason = f"the TLS deny falls short: {iam.describe_gap(gaps, bucket.arn)}"
    else:
        mentioned = [s for s in iam.statements(observed) if any(c.key == KEY.lower() for c in iam.conditions(s))]
        if mentioned:
            reason = f"the statement on aws:SecureTransport does not deny plain HTTP: {_defect(mentioned[0])}"
        else:
            reason = "the bucket policy has no Deny on aws:SecureTransport=false, so plain HTTP is allowed"
    return verdict(ID, bucket.arn, bucket.region_name, False, reason, fact.api, observed)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for bucket in ctx.inventory.buckets.values():
        yield check_bucket(ctx, bucket)
    yield from all_buckets_unlisted(ctx, ID)
