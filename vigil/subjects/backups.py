"""Where AWS Backup may still hold the subject's data, and until when.

Recovery points are whole snapshots: a record cannot be erased from them, they can only
expire. A backup taken up to now may hold the subject's data, so it is there at most until
now + the plan rule's DeleteAfterDays (copy actions too); recovery points that can be listed
for a store say their own date (CalculatedLifecycle.DeleteAt). What cannot be read is said.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import botocore.exceptions

from vigil.aws import Aws
from vigil.policy import Policy

from .model import BackupCopy, Found


def _call(fn, *args, **kwargs) -> tuple[Any, str]:
    try:
        return fn(*args, **kwargs), ""
    except Exception as exc:  # denied, not implemented (moto), unreachable: said, never a crash
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, botocore.exceptions.ClientError) else None
        return None, str(code or type(exc).__name__)


def _covers(client, plan_id: str, arns: set[str]) -> str:
    """'yes', 'no' or why it is unknown: from the plan's selections (resources or '*')."""
    listed, error = _call(client.list_backup_selections, BackupPlanId=plan_id)
    if listed is None:
        return f"selections unreadable ({error}); assumed to include the stores"
    for entry in listed.get("BackupSelectionsList", []):
        got, error = _call(client.get_backup_selection, BackupPlanId=plan_id, SelectionId=entry["SelectionId"])
        if got is None:
            return f"selection unreadable ({error}); assumed to include the stores"
        selection = got["BackupSelection"]
        resources = selection.get("Resources") or []
        if any(r == "*" or r in arns for r in resources) or selection.get("ListOfTags") or selection.get("Conditions"):
            return "yes"
    return "no"


def _until(today: date, days: Any) -> date | None:
    return None if days is None else today + timedelta(days=int(days))


def backup_copies(aws: Aws, policy: Policy, found: Found, as_of: datetime) -> list[BackupCopy]:
    arns = {s.resource for s in found.stores if s.copies and s.resource}
    arns |= {r for s in found.stores if s.copies for r in s.replicas}
    if not arns:
        return []
    today = as_of.date()
    out: list[BackupCopy] = []
    for region in policy.regions_in_scope:
        client = aws.client("backup", region)
        plans, error = _call(client.list_backup_plans)
        if plans is None:
            out.append(BackupCopy(f"backup plans in {region}", region, None, f"could not be listed ({error})"))
            continue
        for entry in plans.get("BackupPlansList", []):
            covered = _covers(client, entry["BackupPlanId"], arns)
            if covered == "no":
                continue
            got, error = _call(client.get_backup_plan, BackupPlanId=entry["BackupPlanId"])
            body = (got or {}).get("BackupPlan") or {}
            note = "" if covered == "yes" else covered
            for rule in body.get("Rules", []):
                where = f"plan {body.get('BackupPlanName', entry['BackupPlanId'])} rule {rule.get('RuleName')}"
                out.append(BackupCopy(where, region, _until(today, (rule.get("Lifecycle") or {}).get("DeleteAfterDays")), note))
                for action in rule.get("CopyActions") or []:
                    out.append(BackupCopy(f"{where} copy to {action.get('DestinationBackupVaultArn', '')}", region,
                                          _until(today, (action.get("Lifecycle") or {}).get("DeleteAfterDays")), note))
        for arn in sorted(arns):
            points, _ = _call(client.list_recovery_points_by_resource, ResourceArn=arn)
            for point in (points or {}).get("RecoveryPoints", []):
                delete_at = (point.get("CalculatedLifecycle") or {}).get("DeleteAt")
                out.append(BackupCopy(f"recovery point {point.get('RecoveryPointArn', '')}", region,
                                      delete_at.date() if isinstance(delete_at, datetime) else None))
    return out
