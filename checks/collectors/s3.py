"""S3: the buckets, with the facts the controls in scope read, plus the account-level public access block.

ListBuckets once, with each bucket's region (`BucketRegion`, which AWS includes when the
request has a parameter, here MaxBuckets). Where the endpoint leaves it out, one listing per
region in scope filtered by `BucketRegion` places the buckets, and GetBucketLocation only the
ones left. Then each bucket's facts (rows of vigil/s3_facts.py) are read concurrently on the
session's bounded pool, with a client in the bucket's own region (real AWS answers a
wrong-region client with a redirect, i.e. a second call), and only those its class needs:

* every bucket: what the controls on all buckets read (ENC-01, TLS-01, ACC-01, ACC-02);
* data-store buckets: also what the data-store controls read;
* replicas (found through the stores' replication rules): also what BAK-03, RET-02 read.
"""
from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import Bucket, BucketFacts, Fact, Inventory

from vigil.s3_facts import S3_FACTS, S3Fact

# GetBucketLocation answers these legacy names for two regions.
_LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}
LIST_PAGE = 10_000  # the most ListBuckets returns at once; any parameter makes AWS include BucketRegion


def collect(session: CollectSession, inventory: Inventory) -> None:
    primary = session.policy.regions.primary
    wanted = session.bucket_facts or BucketFacts.all()
    account_block = session.submit(_account_public_access_block, session, primary, inventory.account_id)
    listed = fetch("s3:ListBuckets", lambda: _list_buckets(session.aws.client("s3", primary)))
    if not listed.ok:
        inventory.listing_errors["s3"] = listed
    regions = _regions(session, primary, dict(listed.value or {}))

    stores = session.policy.data_buckets
    pending: dict[str, dict[str, Future[Fact]]] = {}
    for name, region in regions.items():
        facts = wanted.for_store() if name in stores else wanted.every
        pending[name] = _read(session, name, region, facts)
    # Replicas are known once the stores' replication rules are in; they add their own facts.
    extra = wanted.for_replica() - wanted.every
    if extra:
        for name in _replicas(stores, pending):
            if name in regions:
                pending[name].update(_read(session, name, regions[name], extra - set(pending[name])))

    for name, region in regions.items():
        facts = {field: future.result() for field, future in pending.pop(name).items()}
        inventory.buckets[name] = Bucket(name=name, region=region, **facts)
    inventory.account_public_access_block = account_block.result()


def _list_buckets(client: Any, **filters: str) -> list[tuple[str, str | None]]:
    """(name, region or None when the endpoint does not say) for each bucket listed."""
    out: list[tuple[str, str | None]] = []
    pages = client.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": LIST_PAGE}, **filters)
    for page in pages:
        out.extend((bucket["Name"], bucket.get("BucketRegion")) for bucket in page.get("Buckets", []))
    return out


def _regions(session: CollectSession, primary: str, listed: dict[str, str | None]) -> dict[str, Fact[str]]:
    """Each listed bucket's region as a fact, from the listing where it says, else asked."""
    out = {name: Fact("s3:ListBuckets", region) for name, region in listed.items() if region}
    unplaced = [name for name in listed if name not in out]
    if unplaced:  # an endpoint without BucketRegion in its answer (moto, older S3 APIs): filter by region
        by_region = {region: session.submit(fetch, "s3:ListBuckets", _filtered(session, region)) for region in session.regions}
        for region, future in by_region.items():
            fact = future.result()
            for name, _ in fact.value or []:
                if name in listed and name not in out:
                    out[name] = Fact("s3:ListBuckets", region)
        located = {name: session.submit(_location, session, primary, name) for name in unplaced if name not in out}
        out.update({name: future.result() for name, future in located.items()})
    return {name: out[name] for name in listed}  # in listing order


def _filtered(session: CollectSession, region: str) -> Any:
    # AWS answers a BucketRegion filter only at that region's endpoint.
    return lambda: _list_buckets(session.aws.client("s3", region), BucketRegion=region)


def _replicas(stores: set[str], pending: dict[str, dict[str, Future[Fact]]]) -> list[str]:
    out: list[str] = []
    for name in stores:
        future = pending.get(name, {}).get("replication")
        fact = future.result() if future is not None else None
        for rule in ((fact.value or {}) if fact is not None and fact.ok else {}).get("Rules", []):
            replica = rule.get("Destination", {}).get("Bucket", "").removeprefix("arn:aws:s3:::")
            if replica and replica not in out:
                out.append(replica)
    return out


def _read(session: CollectSession, name: str, region: Fact[str], facts: Iterable[str]) -> dict[str, Future[Fact]]:
    client = session.aws.client("s3", region.value or session.policy.regions.primary)
    return {fact: session.submit(read_fact, client, name, S3_FACTS[fact]) for fact in sorted(facts)}


def read_fact(client: Any, bucket: str, row: S3Fact) -> Fact:
    """One row of the facts table for one bucket: its value, "not configured", or why it could not be read."""
    answer = fetch(row.api, lambda: getattr(client, row.get)(Bucket=bucket), absent=row.absent)
    if not answer.ok:
        return answer
    if answer.value is None:
        return Fact(row.api, row.not_configured())
    try:
        value = row.value_from(answer.value)
    except ValueError as exc:
        return Fact(row.api, error=f"{row.api} returned a {row.name} that is not valid JSON ({exc})")
    if row.form == "json" and not isinstance(value, dict):
        return Fact(row.api, error=f"{row.api} returned a {row.name} that is not a JSON object")
    return Fact(row.api, value)


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
