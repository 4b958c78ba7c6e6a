"""AWS Backup recovery points of a store (RET-03): whole snapshots, so a point past the
retention of the data it holds is deleted as a whole. Read-only here; apply deletes.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions

from vigil.aws import Aws, describe_error

from .decide import EXPIRED, HELD, Rules
from .plan import Summary, action_id


def vault_regions(aws: Aws, regions: list[str]) -> list[str]:
    """Regions that have at least one backup vault (no vault: no recovery point to look for)."""
    out = []
    for region in regions:
        try:
            if aws.client("backup", region).list_backup_vaults(MaxResults=1).get("BackupVaultList"):
                out.append(region)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            continue
    return out


def plan_recovery_points(aws: Aws, regions: list[str], resource_arn: str, rules: Rules, summary: Summary) -> Iterator[dict[str, Any]]:
    for region in regions:
        client = aws.client("backup", region)
        try:
            pages = client.get_paginator("list_recovery_points_by_resource").paginate(ResourceArn=resource_arn)
            points = [p for page in pages for p in page.get("RecoveryPoints", [])]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            summary.error(f"backup:{region}", describe_error("backup:ListRecoveryPointsByResource", exc), 0)
            continue
        for point in points:
            if point.get("Status") == "DELETING":
                continue
            size = int(point.get("BackupSizeBytes") or 0)
            d = rules.decide(point.get("CreationDate"))
            if d.verdict == HELD:
                summary.hold(d.reason, d.until, 1, size)
                continue
            if d.verdict != EXPIRED:
                summary.add("keep", 1, size)
                continue
            summary.add("delete", 1, size)
            summary.expired(d.start, point["RecoveryPointArn"])
            action = {"action": "delete_recovery_point", "store": summary.store, "location": point.get("BackupVaultName", ""),
                      "region": region, "vault": point.get("BackupVaultName", ""), "recovery_point": point["RecoveryPointArn"],
                      "count": 1, "bytes": size}
            action["action_id"] = action_id(action)
            yield action
