"""Scope helpers controls share: which buckets, missing stores, and what a rule's filter covers.

No evaluator lives here; the controls are in their own files (enc_01.py, bak_02.py, ...).
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, Fact, Finding
from vigil.checks.verdicts import errored, failed


def bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def listing_error(ctx: Context) -> Fact | None:
    return ctx.inventory.listing_errors.get("s3")


def missing_bucket(ctx: Context, control: str, name: str) -> Finding:
    """A declared data store bucket that is not in the inventory: not found, or not listable."""
    region = ctx.policy.regions.primary
    denied = listing_error(ctx)
    if denied is not None:
        return errored(control, bucket_arn(name), region, denied)
    return failed(control, bucket_arn(name), region,
                  f"declared data store bucket {name} was not found; create it or fix the policy file",
                  "s3:ListBuckets", None)


def data_store_buckets(ctx: Context) -> list[tuple[str, Bucket | None]]:
    """(bucket name, its record or None when missing) for every bucket the policy declares."""
    return [(name, ctx.bucket(name)) for name in ctx.stores_by_bucket]


def all_buckets_unlisted(ctx: Context, control: str) -> Iterator[Finding]:
    """For controls on all buckets: when ListBuckets failed, an error on each bucket we know should exist."""
    denied = listing_error(ctx)
    if denied is None:
        return
    for name in ctx.stores_by_bucket:
        if name not in ctx.inventory.buckets:
            yield errored(control, bucket_arn(name), ctx.policy.regions.primary, denied)


def filter_prefix(rule: dict) -> str | None:
    """The key prefix a lifecycle or replication rule applies to; None when tags or sizes narrow it."""
    if "Filter" not in rule:
        return rule.get("Prefix", "") or ""
    rule_filter = rule.get("Filter") or {}
    if "Tag" in rule_filter or "ObjectSizeGreaterThan" in rule_filter or "ObjectSizeLessThan" in rule_filter:
        return None
    if "And" in rule_filter:
        both = rule_filter.get("And") or {}
        if both.get("Tags") or "ObjectSizeGreaterThan" in both or "ObjectSizeLessThan" in both:
            return None
        return both.get("Prefix", "") or ""
    return rule_filter.get("Prefix", "") or ""


def enabled(rule: dict) -> bool:
    return rule.get("Status") == "Enabled"


def missing_table(ctx: Context, control: str, name: str) -> Finding:
    """A declared DynamoDB data store that is not in the inventory: not found, or not listable."""
    region = ctx.policy.regions.primary
    denied = next((fact for key, fact in ctx.inventory.listing_errors.items() if key.startswith("dynamodb")), None)
    if denied is not None:
        return errored(control, ctx.table_arn(name), region, denied)
    return failed(control, ctx.table_arn(name), region,
                  f"declared data store table {name} was not found; create it or fix the policy file",
                  "dynamodb:ListTables", None)


def listing_errors(ctx: Context, control: str, listings: tuple[tuple[str, str], ...]) -> Iterator[Finding]:
    """An error per region whose resources could not be listed, on a wildcard ARN standing for them.

    `listings` pairs an inventory listing key ("kms", "rds-clusters", ...) with the ARN tail its
    resources share ("key/*", "cluster:*"); the ARN's service is the key's first word.
    """
    account = ctx.inventory.account_id
    for region in ctx.inventory.regions:
        for key, tail in listings:
            listing = ctx.inventory.listing_errors.get(f"{key}:{region}")
            if listing is not None:
                yield errored(control, f"arn:aws:{key.split('-')[0]}:{region}:{account}:{tail}", region, listing)


def rds_listing_errors(ctx: Context, control: str) -> Iterator[Finding]:
    """RDS instances or clusters of a region that could not be listed."""
    return listing_errors(ctx, control, (("rds", "db:*"), ("rds-clusters", "cluster:*")))
