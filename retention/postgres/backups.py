"""What RDS keeps of a database after rows are deleted: automated backups and snapshots cannot be
edited, so a deleted row stays in them until they expire. Read-only (rds:DescribeDBInstances,
rds:DescribeDBSnapshots); said in the plan and in a subject's export."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.aws import Aws


def _short(exc: BaseException) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return str(code or type(exc).__name__)


def rds_backups(aws: Aws, region: str, instance: str | None, as_of: datetime) -> dict[str, Any]:
    """{"automated_backup_days", "until", "snapshots": [{type, created, age_days}], "note"}; `until` is the
    last day an automated backup taken now may still hold a row deleted now."""
    if instance is None:
        return {"note": "no rds_instance named: vigil cannot see this database's backups; rows deleted here stay in "
                        "any backup or snapshot of it until that expires"}
    client = aws.client("rds", region)
    out: dict[str, Any] = {"instance": instance, "snapshots": []}
    try:
        found = client.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
        days = int(found.get("BackupRetentionPeriod") or 0)
        out["automated_backup_days"] = days
        out["until"] = (as_of.astimezone(UTC) + timedelta(days=days)).date().isoformat() if days else None
    except Exception as exc:  # said, never a crash
        out["note"] = f"rds:DescribeDBInstances failed ({_short(exc)}); backups unknown"
        return out
    try:
        pages = client.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=instance)
        snapshots = [s for page in pages for s in page.get("DBSnapshots", [])]
    except Exception as exc:
        out["note"] = f"rds:DescribeDBSnapshots failed ({_short(exc)}); snapshots unknown"
        return out
    for snap in sorted(snapshots, key=lambda s: s.get("SnapshotCreateTime") or as_of):
        created = snap.get("SnapshotCreateTime")
        age = (as_of - created).days if isinstance(created, datetime) else None
        out["snapshots"].append({"type": snap.get("SnapshotType"), "created": created.isoformat() if created else None,
                                 "age_days": age, "until": None if snap.get("SnapshotType") == "manual" else out.get("until")})
    manual = [s for s in out["snapshots"] if s["type"] == "manual"]
    out["note"] = (f"rows deleted or anonymized now remain in automated backups until {out['until']} "
                   f"({days}-day backup retention)" if days else "automated backups are off")
    if manual:
        oldest = max(s["age_days"] or 0 for s in manual)
        out["note"] += (f"; {len(manual)} manual snapshots (oldest {oldest} days old) keep them until deleted by hand")
    return out
