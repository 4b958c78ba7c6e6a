"""TLS-01: every bucket's policy denies all S3 actions over plain HTTP, on the bucket and its objects.

The strict reading (cdk-nag S3BucketSSLRequestsOnly, AWS Config s3-bucket-ssl-requests-only):
Deny, principal *, action s3:* (or *), condition Bool/BoolIfExists aws:SecureTransport=false
and nothing else, resources covering `bucket` and `bucket/*` (one statement or several).
An Allow on SecureTransport=true does not make HTTP impossible.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.model import Bucket, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import all_buckets_unlisted
from vigil.checks.verdicts import errored, verdict

ID = "TLS-01"
KEY = "aws:SecureTransport"


def _denies_http(statement: dict) -> bool:
    conds = iam.conditions(statement)
    return len(conds) == 1 and iam.is_bool(conds[0], KEY, "false", among=True)


def _defect(statement: dict, bucket: str) -> str | None:
    """Why a statement that mentions SecureTransport does not enforce TLS (None: it does, for its resources)."""
    if statement.get("Effect") != "Deny":
        return "it is an Allow; allowing TLS does not deny plain HTTP"
    if not iam.principal_is_everyone(statement):
        return "its principal is not everyone (\"*\")"
    if not iam.applies_to_all_s3_actions(statement):
        return "it does not cover all S3 actions (s3:*)"
    if not _denies_http(statement):
        return "its condition is not exactly Bool aws:SecureTransport = false (extra conditions narrow the deny)"
    return None


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.policy
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    observed = fact.value
    good = [s for s in iam.statements(observed) if _defect(s, bucket.name) is None]
    on_bucket = any(iam.applies_to_resource(s, bucket.arn) for s in good)
    on_objects = any(iam.applies_to_all_objects(s, bucket.name) for s in good)
    if on_bucket and on_objects:
        return verdict(ID, bucket.arn, bucket.region_name, True,
                       "the bucket policy denies every S3 action without TLS on the bucket and its objects",
                       fact.api, observed)
    if observed is None:
        reason = "the bucket has no policy, so requests over plain HTTP are not denied; add a Deny on aws:SecureTransport=false"
    elif good:
        missing = "its objects (bucket/*)" if on_bucket else "the bucket itself" if on_objects else "the bucket or its objects"
        reason = f"the TLS deny does not cover {missing}; list both arn:aws:s3:::{bucket.name} and arn:aws:s3:::{bucket.name}/*"
    else:
        mentioned = [s for s in iam.statements(observed) if any(c.key == KEY.lower() for c in iam.conditions(s))]
        if mentioned:
            reason = f"the statement on aws:SecureTransport does not deny plain HTTP: {_defect(mentioned[0], bucket.name)}"
        else:
            reason = "the bucket policy has no Deny on aws:SecureTransport=false, so plain HTTP is allowed"
    return verdict(ID, bucket.arn, bucket.region_name, False, reason, fact.api, observed)


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for bucket in ctx.inventory.buckets.values():
        yield check_bucket(ctx, bucket)
    yield from all_buckets_unlisted(ctx, ID)
