"""Verify: re-read every store and replica, read-only, and say what is still past retention
plus grace. The same planner decides, so `vigil retain` and RET-02 (`vigil check`) agree.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from vigil.checks.model import Inventory, StoreRetention

from vigil.aws import Aws
from vigil.errors import VigilError
from vigil.policy import Policy
from vigil.policy.models import PostgresStore, RDSStore, S3Store
from vigil.timestamps import iso_z

from .keys import RetentionKeys, load_keys
from .plan import Summary
from .postgres import PostgresRetention
from .scan import ScanContext, load_closed, scan_store


def location_summaries(aws: Aws, policy: Policy, keys: RetentionKeys, stores: list, as_of: datetime,
                       closed: dict[str, datetime], subjects_error: str | None, workers: int = 16,
                       known: Inventory | None = None) -> list[Summary]:
    """One summary per store bucket / table and per replica, judged with the policy's grace."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-verify") as pool, \
            ThreadPoolExecutor(max_workers=max(1, min(len(stores), 8))) as per_store:
        context = ScanContext(aws, policy, keys, as_of, closed, pool, grace=policy.grace, split=True, reports=False,
                              subjects_error=subjects_error, known=known)
        found = per_store.map(lambda store: scan_store(context, store), stores)
        return [summary for summaries in found for summary in summaries]


def verify_stores(aws: Aws, policy: Policy, keys: RetentionKeys, stores: list, as_of: datetime,
                  closed: dict[str, datetime], subjects_error: str | None, workers: int = 16) -> dict[str, tuple[int, bool]]:
    """store name -> (items still past retention + grace, whether some copy could not be read)."""
    out: dict[str, tuple[int, bool]] = {}
    for summary in location_summaries(aws, policy, keys, stores, as_of, closed, subjects_error, workers):
        left, unreadable = out.get(summary.store, (0, False))
        out[summary.store] = (left + summary.outstanding, unreadable or bool(unreadable_reason(summary)))
    return out


def _api(store) -> list[str]:
    if isinstance(store, PostgresStore):
        return ["postgres:SELECT"]
    if isinstance(store, S3Store):
        return ["s3:ListObjectVersions", "s3:GetObject"] if store.layout != "object" else ["s3:ListObjectVersions", "s3:HeadObject"]
    return ["dynamodb:Scan"]


def unreadable_reason(summary: Summary) -> str | None:
    """Why the bucket/table itself could not be read (errors filed under its ARN), or None."""
    reasons = [e["reason"] for e in summary.errors if e["object"] == summary.resource]
    return "; ".join(reasons) or None


def to_status(summary: Summary, store) -> StoreRetention:
    error = unreadable_reason(summary)
    return StoreRetention(
        store=summary.store, resource=summary.resource, region=summary.region, scanned=summary.scanned,
        expired=summary.outstanding, held=summary.counts["held"],
        oldest_expired=iso_z(summary.oldest_expired) if summary.oldest_expired else None,
        samples=list(summary.samples), error=error, api=_api(store))


def retention_status(aws: Aws, policy: Policy, inventory: Inventory | None, as_of: datetime) -> Iterable[StoreRetention]:
    """RET-02 facts for `vigil check`: read-only, one record per store bucket/table and per replica.

    The policy's keys are not needed to judge: a pseudonymized value is recognised by its shape
    (64 hex digits), and k-anonymity classes are the same under any HMAC key. Without them,
    throwaway keys stand in, and the samples in findings are hashed under a key no ledger uses.
    """
    stores = [s for s in policy.stores if not isinstance(s, RDSStore | PostgresStore)]
    tables = policy.postgres_stores
    try:
        keys = load_keys(policy, aws)
    except VigilError:
        keys = RetentionKeys(evidence=os.urandom(32), pseudonym=os.urandom(32))
    closed, subjects_error = load_closed(aws, policy, stores + tables)
    by_name = {s.name: s for s in stores}
    statuses = [to_status(summary, by_name[summary.store])
                for summary in location_summaries(aws, policy, keys, stores, as_of, closed, subjects_error, known=inventory)]
    postgres = PostgresRetention(aws, policy, keys, as_of, closed, subjects_error)
    return statuses + [to_status(postgres.verify(table, policy.grace), table) for table in tables]
