"""Lifecycle rules and Object Lock derived from a store's category (RET-01, RET-04).

Durations in lifecycle rules are whole days: a year counts 365 days and a month 30
(`Duration.approx_days()`). The rules come out in Pulumi's argument shape (snake_case
keys), ready for `aws.s3.BucketLifecycleConfiguration(rules=...)`.
"""
from __future__ import annotations

from vigil.policy import Policy, S3Store

# Incomplete multipart uploads hold data nobody can see or list as objects; a week is plenty.
ABORT_MULTIPART_DAYS = 7


def noncurrent_days(policy: Policy) -> int:
    """A replaced or deleted version is gone within the grace period the policy allows for lateness."""
    return max(1, policy.grace.approx_days())


def expiry_days(policy: Policy, store: S3Store) -> int | None:
    """Days after which current objects expire, or None when lifecycle must not expire them.

    Only whole-object stores whose action is delete and whose clock starts at creation are
    expired by S3 itself; records inside objects, anonymization and `after:` clocks (account
    closed) are the retention job's work.
    """
    category = policy.category_of(store)
    if category.retain.forever or category.after is not None or category.action != "delete":
        return None
    if store.layout != "object":
        return None
    return category.retain.approx_days()


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
        days = expiry_days(policy, store)
        if days is not None:
            rule["expiration"] = {"days": days}
        rules.append(rule)
    return rules


def object_lock_days(policy: Policy, stores: list[S3Store]) -> int | None:
    """Default Object Lock retention: the longest `keep_at_least` of the bucket's categories."""
    days = [policy.category_of(s).keep_at_least.approx_days() for s in stores if policy.category_of(s).keep_at_least]
    return max(days) if days else None


def longest_retention_days(policy: Policy, categories: list[str]) -> int | None:
    """The longest retention among `categories` (None if any is forever)."""
    longest = 0
    for name in categories:
        retain = policy.categories[name].retain
        if retain.forever:
            return None
        longest = max(longest, retain.approx_days())
    return longest
