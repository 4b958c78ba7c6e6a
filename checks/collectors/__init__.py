"""Collect everything the catalogue needs, concurrently: one task per service, one per resource.

Each module here (s3, kms, iam, ...) has `collect(session, inventory)` that fills its own
part of the inventory. Services run side by side on one small pool; their per-resource
calls run on the shared, bounded resource pool of the session.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed

from vigil.checks.collectors import backup, cloudtrail, dynamodb, ec2, iam, kms, rds, s3
from vigil.checks.collectors.base import CollectSession
from vigil.checks.model import BucketFacts, Inventory

from vigil import progress
from vigil.aws import Aws
from vigil.policy import Policy

SERVICES = (s3, kms, iam, dynamodb, rds, ec2, cloudtrail, backup)


def collect_inventory(aws: Aws, policy: Policy, regions: list[str], workers: int = 32,
                      bucket_facts: BucketFacts | None = None) -> Inventory:
    """`bucket_facts`: the S3 facts the controls in scope read (registry.bucket_facts); None reads all."""
    account_id = aws.account_id(policy.regions.primary)
    inventory = Inventory(account_id=account_id, regions=list(regions))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-call") as pool, ThreadPoolExecutor(
        max_workers=len(SERVICES), thread_name_prefix="vigil-service"
    ) as services:
        session = CollectSession(aws=aws, policy=policy, regions=list(regions), pool=pool, bucket_facts=bucket_facts)
        futures = [services.submit(module.collect, session, inventory) for module in SERVICES]
        progress.phase(f"reading {len(SERVICES)} AWS services in {len(regions)} region(s)", total=len(SERVICES))
        for future in as_completed(futures):
            future.result()
            progress.advance()
    return inventory
