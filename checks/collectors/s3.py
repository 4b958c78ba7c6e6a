"""S3: every bucket's configuration, one call per fact, plus the account-level public access block.

ListBuckets once; then per bucket GetBucketLocation, and once the region is known the other
nine reads concurrently on the session's bounded pool, each with a client in the bucket's
own region (real AWS answers a wrong-region client with a redirect, i.e. a second call).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, as_completed
from typing import Any

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import Bucket, Fact, Inventory

# GetBucketLocation answers these legacy names for two regions.
_LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}


def collect(session: CollectSession, inventory: Inventory) -> None:
    primary = session.policy.regions.primary
    account_block = session.submit(_account_public_access_block, session, primary, inventory.account_id)
    listed = fetch("s3:ListBuckets", lambda: _list_buckets(session.aws.client("s3", primary)))
    if not listed.ok:
        inventory.listing_errors["s3"] = listed
    names = listed.value or []

    locations = {session.submit(_location, session, primary, name): name for name in names}
    pending: dict[str, tuple[Fact[str], dict[str, Future[Fact]]]] = {}
    for done in as_completed(locations):
        name = locations[done]
        region = done.result()
        client = session.aws.client("s3", region.value or primary)
        pending[name] = (region, {field: session.submit(read, client, name) for field, read in _READS.items()})

    for name in names:
        region, futures = pending[name]
        facts = {field: future.result() for field, future in futures.items()}
        inventory.buckets[name] = Bucket(name=name, region=region, **facts)
    inventory.account_public_access_block = account_block.result()


def _list_buckets(client: Any) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator("list_buckets").paginate():
        names.extend(bucket["Name"] for bucket in page.get("Buckets", []))
    return names


def _account_public_access_block(session: CollectSession, region: str, account_id: str) -> Fact[dict]:
    client = session.aws.client("s3control", region)
    return fetch(
        "s3control:GetPublicAccessBlock",
        lambda: client.get_public_access_block(AccountId=account_id)["PublicAccessBlockConfiguration"],
        absent=("NoSuchPublicAccessBlockConfiguration",),
    )


def _location(session: CollectSession, primary: str, name: str) -> Fact[str]:
    client = session.aws.client("s3", primary)

    def call() -> str:
        constraint = client.get_bucket_location(Bucket=name).get("LocationConstraint")
        return _LEGACY_LOCATIONS.get(constraint, constraint)

    return fetch("s3:GetBucketLocation", call)


def _or(fact: Fact, default: Any) -> Fact:
    """A fact whose "not configured" answer (None) means `default` for this field."""
    return Fact(fact.api, default, fact.error) if fact.ok and fact.value is None else fact


def _encryption(client: Any, name: str) -> Fact[list[dict]]:
    fact = fetch(
        "s3:GetBucketEncryption",
        lambda: client.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"].get("Rules", []),
        absent=("ServerSideEncryptionConfigurationNotFoundError",),
    )
    return _or(fact, [])


def _policy(client: Any, name: str) -> Fact[dict]:
    api = "s3:GetBucketPolicy"
    fact = fetch(api, lambda: client.get_bucket_policy(Bucket=name)["Policy"], absent=("NoSuchBucketPolicy",))
    if not fact.ok or fact.value is None:
        return fact
    try:
        document = json.loads(fact.value)
    except ValueError as exc:
        return Fact(api, error=f"{api} returned a policy that is not valid JSON ({exc})")
    if not isinstance(document, dict):
        return Fact(api, error=f"{api} returned a policy that is not a JSON object")
    return Fact(api, document)


def _without_metadata(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def _versioning(client: Any, name: str) -> Fact[dict]:
    return fetch("s3:GetBucketVersioning", lambda: _without_metadata(client.get_bucket_versioning(Bucket=name)))


def _replication(client: Any, name: str) -> Fact[dict]:
    return fetch(
        "s3:GetBucketReplication",
        lambda: client.get_bucket_replication(Bucket=name)["ReplicationConfiguration"],
        absent=("ReplicationConfigurationNotFoundError",),
    )


def _public_access_block(client: Any, name: str) -> Fact[dict]:
    return fetch(
        "s3:GetPublicAccessBlock",
        lambda: client.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"],
        absent=("NoSuchPublicAccessBlockConfiguration",),
    )


def _logging(client: Any, name: str) -> Fact[dict]:
    return fetch("s3:GetBucketLogging", lambda: client.get_bucket_logging(Bucket=name).get("LoggingEnabled"))


def _lifecycle(client: Any, name: str) -> Fact[list[dict]]:
    return fetch(
        "s3:GetBucketLifecycleConfiguration",
        lambda: client.get_bucket_lifecycle_configuration(Bucket=name).get("Rules", []),
        absent=("NoSuchLifecycleConfiguration",),
    )


def _object_lock(client: Any, name: str) -> Fact[dict]:
    return fetch(
        "s3:GetObjectLockConfiguration",
        lambda: client.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"],
        absent=("ObjectLockConfigurationNotFoundError",),
    )


def _tags(client: Any, name: str) -> Fact[dict[str, str]]:
    fact = fetch(
        "s3:GetBucketTagging",
        lambda: {tag["Key"]: tag["Value"] for tag in client.get_bucket_tagging(Bucket=name).get("TagSet", [])},
        absent=("NoSuchTagSet",),
    )
    return _or(fact, {})


# Bucket field -> the one read that fills it.
_READS: dict[str, Callable[[Any, str], Fact]] = {
    "encryption": _encryption,
    "policy": _policy,
    "versioning": _versioning,
    "replication": _replication,
    "public_access_block": _public_access_block,
    "logging": _logging,
    "lifecycle": _lifecycle,
    "object_lock": _object_lock,
    "tags": _tags,
}
