"""BAK-05: DynamoDB data stores have point-in-time recovery; RDS data stores keep backups >= 7 days."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.controls.bak_04 import data_stores
from vigil.checks.model import Finding, Table
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import errored, verdict

ID = "BAK-05"
MIN_RETENTION_DAYS = 7


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for store in data_stores(ctx):
        record = store.record
        if record is None:
            yield store.missing(ID)
        elif isinstance(record, Table):
            if not record.continuous_backups.ok:
                yield errored(ID, store.arn, store.region, record.continuous_backups)
                continue
            pitr = (record.continuous_backups.value or {}).get("PointInTimeRecoveryDescription") or {}
            status = pitr.get("PointInTimeRecoveryStatus", "DISABLED")
            ok = status == "ENABLED"
            reason = "point-in-time recovery is enabled" if ok else f"point-in-time recovery is {status}; enable it (UpdateContinuousBackups)"
            yield verdict(ID, store.arn, store.region, ok, reason, record.continuous_backups.api, {"PointInTimeRecoveryDescription": pitr})
        else:
            days = record.description.get("BackupRetentionPeriod") or 0
            ok = days >= MIN_RETENTION_DAYS
            reason = (f"automated backups are kept {days} days" if ok
                      else f"automated backups are kept {days} days; set BackupRetentionPeriod to at least {MIN_RETENTION_DAYS}")
            api = "rds:DescribeDBInstances" if store.kind == "database instance" else "rds:DescribeDBClusters"
            yield verdict(ID, store.arn, store.region, ok, reason, api, {"BackupRetentionPeriod": days})
