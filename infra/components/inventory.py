"""S3 Inventory for the stores that plan from a report (`inventory:` in the policy; issue 19).

One inventory configuration per (store bucket, report the policy names): every version
(`IncludedObjectVersions: All`), the optional fields vigil's reader needs
(retention/s3_inventory.py), daily, CSV, into the destination the policy names, encrypted with
SSE-KMS under a customer key of its own. AWS writes the report to
`<prefix>/<source bucket>/<config id>/<YYYY-MM-DDTHH-MMZ>/`, the layout vigil reads.

The destination bucket is built by the stack's bucket component (every control it gives
buckets, its own lifecycle); this module gives the statements that let S3 deliver into it and
encrypt with the key, each only for this account and these source buckets.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from vigil.retention.s3_inventory import REQUIRED

from vigil.policy import Policy

# Every report has Bucket and Key; IncludedObjectVersions All adds VersionId, IsLatest and IsDeleteMarker
# (they are not optional fields: PutBucketInventoryConfiguration refuses them); the rest of what the
# reader requires are optional fields to ask for.
ALWAYS = ("Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker")
OPTIONAL_FIELDS = tuple(name for name in REQUIRED if name not in ALWAYS)
FREQUENCY = "Daily"  # vigil plans from a report at most 48 hours old
FORMAT = "CSV"  # read with the standard library; Parquet would need the inventory extra


@dataclass(frozen=True)
class Report:
    """One inventory configuration: a store bucket's versions under `filter_prefix` into `bucket`/`prefix`."""

    source: str  # the store bucket
    config_id: str
    bucket: str  # the destination the policy names
    prefix: str
    filter_prefix: str  # the common prefix of the stores it covers ("" for the whole bucket)


def reports(policy: Policy) -> list[Report]:
    """The configurations the policy's `inventory:` settings ask for, one per (bucket, config id)."""
    grouped: dict[tuple[str, str], list] = {}
    for store in policy.s3_stores:
        if store.inventory is not None:
            grouped.setdefault((store.bucket, store.inventory.config_id), []).append(store)
    out = []
    for (source, config_id), stores in sorted(grouped.items()):
        destinations = {(s.inventory.bucket, s.inventory.prefix.strip("/")) for s in stores}
        if len(destinations) > 1:
            raise ValueError(f"{policy.source_path or 'policy'}: stores of bucket {source} name inventory {config_id} "
                             f"with different destinations {sorted(destinations)}; one configuration has one destination")
        ((bucket, prefix),) = destinations
        out.append(Report(source, config_id, bucket, prefix, os.path.commonprefix([s.prefix for s in stores])))
    return out


def source_arns(items: Sequence[Report], bucket: str | None = None) -> list[str]:
    return sorted({f"arn:aws:s3:::{r.source}" for r in items if bucket is None or r.bucket == bucket})


def allow_delivery(bucket: str, account_id: str, items: Sequence[Report]) -> list[dict]:
    """The destination's bucket policy statement: S3 may write inventory reports for these sources only."""
    mine = [r for r in items if r.bucket == bucket]
    return [{
        "Sid": "AllowS3InventoryDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": sorted({f"arn:aws:s3:::{bucket}/{r.prefix + '/' if r.prefix else ''}*" for r in mine}),
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id, "s3:x-amz-acl": "bucket-owner-full-control"},
                      "ArnLike": {"aws:SourceArn": source_arns(mine)}},
    }]


def key_policy(account_id: str, items: Sequence[Report]) -> str:
    """The report key's policy: the account administers it (IAM grants its use, as for the data keys);
    S3 may generate data keys with it only to write these sources' reports."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AllowS3InventoryEncryption", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
         "Action": "kms:GenerateDataKey", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id}, "ArnLike": {"aws:SourceArn": source_arns(items)}}},
    ]})


@dataclass
class StoreInventoriesArgs:
    provider: aws.Provider  # the stores' region: a destination must be in its source's region
    reports: Sequence[Report]
    destinations: dict[str, pulumi.Input[str]]  # destination bucket name -> its ARN
    key_arn: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = ()  # the destinations' bucket policies (S3 checks them on creation)


class StoreInventories(pulumi.ComponentResource):
    configurations: list[aws.s3.Inventory]

    def __init__(self, name: str, args: StoreInventoriesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:retention:StoreInventories", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        self.configurations = []
        for report in args.reports:
            self.configurations.append(aws.s3.Inventory(
                f"{name}-{report.source}-{report.config_id}", bucket=report.source, name=report.config_id,
                included_object_versions="All", optional_fields=list(OPTIONAL_FIELDS), enabled=True,
                schedule={"frequency": FREQUENCY},
                filter={"prefix": report.filter_prefix} if report.filter_prefix else None,
                destination={"bucket": {
                    "bucket_arn": args.destinations[report.bucket], "format": FORMAT,
                    "prefix": report.prefix or None,
                    "encryption": {"sse_kms": {"key_id": args.key_arn}},
                }},
                opts=child))
        self.register_outputs({"configurations": [c.name for c in self.configurations]})
