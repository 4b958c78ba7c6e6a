"""Lifecycle rules and Object Lock derived from a store's category (RET-01, RET-04).

The retention rules themselves (what expires when, what must be kept) are methods of the
policy model (`Policy.expiry_days`, `keep_at_least_days`, ...), in whole days. The rules
come out in Pulumi's argument shape (snake_case keys), ready for
`aws.s3.BucketLifecycleConfiguration(rules=...)`.
"""
from __future__ import annotations

from vigil.policy import Policy, S3Store

# Incomplete multipart uploads hold data nobody can see or list as objects; a week is plenty.
ABORT_MULTIPART_DAYS = 7


def noncurrent_days(policy: Policy) -> int:
    """A replaced or deleted version is gone within the grace period the policy allows for lateness."""
    return max(1, policy.grace.approx_days())


def lifecycle_rules(policy: Policy, stores: list[S3Store]) -> list[dict]:
    """One rule per store (its prefix), in the shape of BucketLifecycleConfigurationRuleArgs."""
    rules: list[dict] = []
    for store in stores:
        rule: dict = {
            "id": f"vigil-{store.name}",
            "status": "Enabled",
            "filter": {"prefix": store.prefix},
            "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days(policy)},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS},
        }
        days = policy.expiry_days(store)
        if days is not None:
            rule["expiration"] = {"days": days}
        rules.append(rule)
    return rules


def object_lock_days(policy: Policy, stores: list[S3Store]) -> int | None:
    """Default Object Lock retention: the longest `keep_at_least` of the bucket's categories (None: no lock)."""
    return policy.keep_at_least_days(stores) or None
