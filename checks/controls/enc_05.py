"""ENC-05: every RDS instance and cluster has StorageEncrypted = true."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import rds_listing_errors
from vigil.checks.verdicts import verdict

ID = "ENC-05"


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    yield from rds_listing_errors(ctx, ID)
    databases = [("instance", d.arn, d.region, d.description, "rds:DescribeDBInstances") for d in ctx.inventory.db_instances]
    databases += [("cluster", c.arn, c.region, c.description, "rds:DescribeDBClusters") for c in ctx.inventory.db_clusters]
    for kind, arn, region, description, api in databases:
        encrypted = description.get("StorageEncrypted") is True
        reason = (f"storage is encrypted (KMS key {description.get('KmsKeyId', 'default')})" if encrypted
                  else f"the {kind}'s storage is not encrypted; restore it from an encrypted snapshot copy")
        yield verdict(ID, arn, region, encrypted, reason, api,
                      {"StorageEncrypted": description.get("StorageEncrypted"), "KmsKeyId": description.get("KmsKeyId")})
