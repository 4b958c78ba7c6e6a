"""What an evaluator sees: the policy, the inventory, the time, and the scope derived from them.

Scope comes from the policy file (which buckets/tables are data stores) and from each data
store's own configuration (its replicas from the replication rules, its vaults from the
backup plans that select it), never from naming conventions.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from vigil.checks.model import BackupPlan, Bucket, Inventory, KmsKey, Table

from vigil.policy import Policy
from vigil.policy.models import DynamoDBStore, RDSStore, S3Store


@dataclass
class Context:
    policy: Policy
    inventory: Inventory
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))

    # --- data stores ------------------------------------------------------------------

    @cached_property
    def stores_by_bucket(self) -> dict[str, list[S3Store]]:
        out: dict[str, list[S3Store]] = {}
        for store in self.policy.s3_stores:
            out.setdefault(store.bucket, []).append(store)
        return out

    @cached_property
    def stores_by_table(self) -> dict[str, list[DynamoDBStore]]:
        """Declared DynamoDB stores by table name; the subjects table and the subject-request log
        (it holds subject ids) are data stores too."""
        out: dict[str, list[DynamoDBStore]] = {}
        for store in self.policy.dynamodb_stores:
            out.setdefault(store.table, []).append(store)
        for table in sorted(self.policy.data_tables - set(out)):
            out[table] = []
        return out

    @property
    def rds_stores(self) -> list[RDSStore]:
        return self.policy.rds_stores

    def data_tables(self) -> list[tuple[str, Table | None]]:
        """(table name, the table found in the regions in scope, or None when it is missing)."""
        out = []
        for name in self.stores_by_table:
            found = self.inventory.tables_named(name)
            primary = [t for t in found if t.region == self.policy.regions.primary]
            out.append((name, (primary or found or [None])[0]))
        return out

    def table_arn(self, name: str) -> str:
        return f"arn:aws:dynamodb:{self.policy.regions.primary}:{self.inventory.account_id}:table/{name}"

    # --- copies -----------------------------------------------------------------------

    @cached_property
    def replicas(self) -> dict[str, list[str]]:
        """Replica bucket name -> the data store buckets that replicate into it."""
        out: dict[str, list[str]] = {}
        for name in self.stores_by_bucket:
            bucket = self.inventory.buckets.get(name)
            config = bucket.replication.value if bucket and bucket.replication.ok else None
            for rule in (config or {}).get("Rules", []):
                destination = rule.get("Destination", {}).get("Bucket", "")
                replica = destination.removeprefix("arn:aws:s3:::")
                if replica and replica != name and name not in out.get(replica, []):
                    out.setdefault(replica, []).append(name)
        return out

    @cached_property
    def data_store_arns(self) -> set[str]:
        arns = {f"arn:aws:s3:::{name}" for name in self.stores_by_bucket}
        arns |= {table.arn for name, table in self.data_tables() if table is not None}
        arns |= {i.arn for i in self.inventory.db_instances if any(s.instance == i.identifier for s in self.rds_stores)}
        arns |= {c.arn for c in self.inventory.db_clusters if any(s.cluster == c.identifier for s in self.rds_stores)}
        return arns

    def selects(self, selection: dict, arn: str, tags: dict[str, str]) -> bool:
        """Does an AWS Backup selection pick the resource `arn` (by ARN pattern or tag)?"""
        if any(fnmatch.fnmatchcase(arn, pattern) for pattern in selection.get("NotResources", []) or []):
            return False
        if any(fnmatch.fnmatchcase(arn, pattern) for pattern in selection.get("Resources", []) or []):
            return True
        for condition in selection.get("ListOfTags", []) or []:
            if condition.get("ConditionType", "STRINGEQUALS") == "STRINGEQUALS" and tags.get(condition.get("ConditionKey", "")) == condition.get("ConditionValue"):
                return True
        return False

    def resource_tags(self, arn: str) -> dict[str, str]:
        table = self.inventory.tables.get(arn)
        if table is not None and table.tags.ok:
            return table.tags.value or {}
        return {}

    @cached_property
    def plans_for_store(self) -> dict[str, list[tuple[BackupPlan, dict]]]:
        """Data store ARN -> [(backup plan record, the selection that picks it)]."""
        out: dict[str, list[tuple[BackupPlan, dict]]] = {}
        for plan in self.inventory.plans:
            if not plan.plan.ok or not plan.selections.ok:
                continue
            for selection in plan.selections.value or []:
                for arn in self.data_store_arns:
                    if self.selects(selection, arn, self.resource_tags(arn)):
                        out.setdefault(arn, []).append((plan, selection))
        return out

    @cached_property
    def data_store_vaults(self) -> dict[str, set[str]]:
        """Vault ARN -> data store ARNs whose backups it holds (plan targets, copy targets, recovery points)."""
        by_name = {(v.region, v.name): arn for arn, v in self.inventory.vaults.items()}
        out: dict[str, set[str]] = {}
        for store_arn, pairs in self.plans_for_store.items():
            for plan, _selection in pairs:
                for rule in (plan.plan.value or {}).get("Rules", []):
                    target = by_name.get((plan.region, rule.get("TargetBackupVaultName", "")))
                    if target:
                        out.setdefault(target, set()).add(store_arn)
                    for copy in rule.get("CopyActions", []) or []:
                        destination = copy.get("DestinationBackupVaultArn", "")
                        if destination:
                            out.setdefault(destination, set()).add(store_arn)
        for arn, vault in self.inventory.vaults.items():
            for point in (vault.recovery_points.value or []) if vault.recovery_points.ok else []:
                if point.get("ResourceArn") in self.data_store_arns:
                    out.setdefault(arn, set()).add(point["ResourceArn"])
        return out

    # --- KMS --------------------------------------------------------------------------

    def resolve_key(self, reference: str | None, region: str) -> KmsKey | None:
        """Find a key by id, key ARN, alias name or alias ARN (as S3/DynamoDB/Backup record it)."""
        if not reference:
            return None
        for key in self.inventory.kms_keys:
            if reference in (key.key_id, key.arn):
                return key
            if key.region == region and reference in key.aliases:
                return key
            if any(reference == f"arn:aws:kms:{key.region}:{self.inventory.account_id}:{alias}" for alias in key.aliases):
                return key
        return None

    def bucket(self, name: str) -> Bucket | None:
        return self.inventory.buckets.get(name)
