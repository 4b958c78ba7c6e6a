"""The Pulumi program: storage that keeps every promise in controls.md, read from policy.yaml.

`build_stack(policy, settings, parts)` declares everything; `main()` is what `pulumi up`
runs (through infra/__main__.py). `parts` names the component classes, so a test can swap
exactly one for a subclass that breaks exactly one control.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
from vigil.infra import lifecycle
from vigil.infra.components import (
    AccessRoles,
    AccessRolesArgs,
    AuditTrail,
    AuditTrailArgs,
    BackupPlan,
    BackupPlanArgs,
    BackupVault,
    BackupVaultArgs,
    CustomerKey,
    CustomerKeyArgs,
    ReplicaTarget,
    SecureBucket,
    SecureBucketArgs,
    SecureTable,
    SecureTableArgs,
    bucket_policy,
)
from vigil.infra.components.batch import BatchOperations, BatchOperationsArgs
from vigil.infra.components.inventory import (
    Report,
    StoreInventories,
    StoreInventoriesArgs,
    allow_delivery,
    key_policy,
    reports,
)
from vigil.infra.components.table import BACKUP_TAG
from vigil.infra.settings import StackSettings, policy_path, project_root

from vigil.policy import Policy, S3Store, load_policy

DATA_KEY_ALIAS = "alias/vigil-data"


@dataclass
class Parts:
    """The component classes the program builds with (a test replaces one to break one control)."""

    key: type[CustomerKey] = CustomerKey
    data_bucket: type[SecureBucket] = SecureBucket
    support_bucket: type[SecureBucket] = SecureBucket
    table: type[SecureTable] = SecureTable
    vault: type[BackupVault] = BackupVault
    plan: type[BackupPlan] = BackupPlan
    trail: type[AuditTrail] = AuditTrail
    roles: type[AccessRoles] = AccessRoles
    report_bucket: type[SecureBucket] = SecureBucket  # S3 Inventory destinations and the Batch Operations buckets


@dataclass
class Stack:
    buckets: dict[str, SecureBucket] = field(default_factory=dict)
    tables: dict[str, SecureTable] = field(default_factory=dict)
    outputs: dict[str, object] = field(default_factory=dict)


def _buckets(policy: Policy) -> dict[str, list[S3Store]]:
    out: dict[str, list[S3Store]] = {}
    for store in policy.s3_stores:
        out.setdefault(store.bucket, []).append(store)
    return out


def _tables(policy: Policy) -> dict[str, tuple[str, list[str]]]:
    """Table name -> (hash key, categories it holds); the subject-request log is keyed by request id."""
    out: dict[str, tuple[str, list[str]]] = {}
    if policy.subjects is not None:
        out[policy.subjects.table] = (policy.subjects.key, [])
    if policy.requests is not None:
        out[policy.requests.table] = ("id", [])
    for store in policy.dynamodb_stores:
        # The policy does not name a store table's key; the subject attribute need not be it (one
        # subject may have many items), so such tables are keyed by "id".
        key, categories = out.get(store.table, ("id", []))
        out[store.table] = (key, [*categories, store.category])
    return out


def build_stack(policy: Policy, settings: StackSettings, parts: Parts | None = None) -> Stack:
    parts = parts or Parts()
    settings.check(policy)
    primary, backup = policy.regions.primary, policy.regions.backup
    providers = {
        primary: aws.Provider("primary", region=primary),
        backup: aws.Provider("backup", region=backup),
    }
    account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=providers[primary])).account_id
    stack = Stack()
    tags = {"vigil:managed": "true", "vigil:organization": policy.organization}

    # Keys: one customer-managed, rotating key per region (ENC-02, ENC-03).
    keys = {region: parts.key(f"data-key-{region}", CustomerKeyArgs(provider=providers[region], region=region, alias=DATA_KEY_ALIAS))
            for region in (primary, backup)}

    # Support buckets: server access logs per region; they hold no personal data of a store.
    log_buckets: dict[str, SecureBucket] = {}
    for region in (primary, backup):
        name = f"{settings.name_prefix}-access-logs-{region}"
        log_buckets[region] = parts.support_bucket(f"access-logs-{region}", SecureBucketArgs(
            bucket=name, provider=providers[region], region=region, tags=tags,
            lifecycle_rules=[_expire_all("access-logs", settings.access_log_days, policy)],
            extra_statements=account_id.apply(functools.partial(_log_delivery, name)),
        ))

    source_buckets = list(_buckets(policy))
    replica_names = [f"{name}{settings.replica_suffix}" for name in source_buckets]
    table_specs = _tables(policy)
    table_arns = [pulumi.Output.concat("arn:aws:dynamodb:", primary, ":", account_id, ":table/", name) for name in table_specs]
    inventories = reports(policy)
    report_key = parts.key("report-key", CustomerKeyArgs(
        provider=providers[primary], region=primary, alias="alias/vigil-inventory", description="Vigil: S3 Inventory reports",
        policy=account_id.apply(lambda acct: key_policy(acct, inventories)))) if inventories else None
    roles = parts.roles("access", AccessRolesArgs(
        provider=providers[primary], account_id=account_id, replication_role=settings.replication_role,
        backup_role=settings.backup_role, retention_role=settings.retention_role, human_roles=policy.access.human_roles,
        source_buckets=source_buckets, replica_buckets=replica_names, table_arns=table_arns,
        key_arns=[keys[primary].arn, keys[backup].arn], retention_runs_on=settings.retention_runs_on, tags=tags,
        inventories=[(r.bucket, r.prefix) for r in inventories], report_key_arns=[report_key.arn] if report_key else [],
    ))
    exempt = list(roles.service_role_arns)
    if report_key is not None:
        batch = _batch_operations(policy, settings, parts, providers, account_id, keys, log_buckets, tags, roles.retention.name)
        exempt.append(batch.task_role.arn)  # it reads and rewrites store objects, like the retention job
        stack.outputs["batchOperations"] = {"functions": {r: f.arn for r, f in batch.functions.items()},
                                            "role": batch.jobs_role.arn, "bucket": settings.batch_bucket("{region}")}

    # Data store buckets and their replicas in the backup region.
    for name, stores in _buckets(policy).items():
        stack.buckets[name] = parts.data_bucket(name, SecureBucketArgs(
            bucket=name, provider=providers[primary], region=primary, kms_key_arn=keys[primary].arn,
            log_bucket=_log_target(log_buckets[primary]), log_prefix=f"{name}/",
            lifecycle_rules=lifecycle.lifecycle_rules(policy, stores),
            object_lock_days=lifecycle.object_lock_days(policy, stores),
            require_mfa=True, exempt_role_arns=exempt,
            replica=ReplicaTarget(provider=providers[backup], region=backup, role_arn=roles.replication.arn,
                                  kms_key_arn=keys[backup].arn, log_bucket=_log_target(log_buckets[backup]),
                                  suffix=settings.replica_suffix),
            tags={**tags, "vigil:data-store": ",".join(s.name for s in stores)},
        ))

    if report_key is not None:
        stack.outputs["inventories"] = _inventories(inventories, settings, parts, providers[primary], account_id,
                                                    report_key, log_buckets[primary], tags, policy, stack)

    # DynamoDB stores, the subjects table and the subject-request log: every table gets the same protections.
    for name, (hash_key, categories) in table_specs.items():
        stack.tables[name] = parts.table(name, SecureTableArgs(
            table=name, hash_key=hash_key, provider=providers[primary], region=primary, kms_key_arn=keys[primary].arn,
            tags={**tags, "vigil:categories": ",".join(categories)},
        ))

    # AWS Backup: a vault per region, one daily plan copying off-site (BAK-04, RET-03).
    vaults = {region: parts.vault(f"vault-{region}", BackupVaultArgs(
        name=f"vigil-{region}", provider=providers[region], region=region, kms_key_arn=keys[region].arn)) for region in (primary, backup)}
    held = sorted({c for _key, categories in table_specs.values() for c in categories})
    longest = policy.longest_retention_days(held)
    keep_days = settings.backup_keep_days if longest is None else min(settings.backup_keep_days, longest)
    parts.plan("backup-plan", BackupPlanArgs(
        name="vigil-daily", provider=providers[primary], region=primary, vault_name=vaults[primary].vault.name,
        copy_vault_arn=vaults[backup].arn, role_arn=roles.backup.arn, selection_tag=BACKUP_TAG,
        keep_days=keep_days, schedule=settings.backup_schedule,
    ), pulumi.ResourceOptions(depends_on=list(stack.tables.values())))

    # Audit: CloudTrail into its own bucket; EBS encryption by default in both regions.
    trail_bucket_name = f"{settings.name_prefix}-cloudtrail"
    trail_bucket = parts.support_bucket("cloudtrail-logs", SecureBucketArgs(
        bucket=trail_bucket_name, provider=providers[primary], region=primary, tags=tags,
        log_bucket=_log_target(log_buckets[primary]), log_prefix=f"{trail_bucket_name}/",
        lifecycle_rules=[_expire_all("cloudtrail", settings.evidence_lock_days, policy)],
        extra_statements=account_id.apply(lambda acct: bucket_policy.allow_log_delivery(trail_bucket_name, acct, "cloudtrail.amazonaws.com")),
    ))
    trail = parts.trail("audit", AuditTrailArgs(
        name=settings.trail_name, provider=providers[primary], region=primary, bucket=trail_bucket.bucket.id,
        regional_providers=providers, depends_on=[trail_bucket.policy]))

    # Evidence packs: CMK-encrypted, Object Lock in compliance mode, so no one can rewrite history.
    evidence_name = f"{settings.name_prefix}-evidence"
    evidence = parts.support_bucket("evidence", SecureBucketArgs(
        bucket=evidence_name, provider=providers[primary], region=primary, kms_key_arn=keys[primary].arn,
        log_bucket=_log_target(log_buckets[primary]), log_prefix=f"{evidence_name}/",
        object_lock_days=settings.evidence_lock_days, object_lock_mode="COMPLIANCE", tags=tags,
        lifecycle_rules=[{"id": "abort-multipart", "status": "Enabled", "filter": {"prefix": ""},
                          "abort_incomplete_multipart_upload": {"days_after_initiation": lifecycle.ABORT_MULTIPART_DAYS}}],
    ))

    stack.outputs = {**stack.outputs,
        "stores": {**{s.name: s.bucket for s in policy.s3_stores}, **{s.name: s.table for s in policy.dynamodb_stores}},
        "replicas": {name: b.replica.bucket.bucket for name, b in stack.buckets.items() if b.replica},
        "tables": {name: t.table.arn for name, t in stack.tables.items()},
        "vaults": {region: v.vault.arn for region, v in vaults.items()},
        "roles": {"replication": roles.replication.arn, "backup": roles.backup.arn, "retention": roles.retention.arn,
                  **{name: r.arn for name, r in roles.humans.items()}},
        "keys": {region: k.arn for region, k in keys.items()},
        "accessLogBuckets": {region: b.bucket.bucket for region, b in log_buckets.items()},
        "trail": trail.trail.arn,
        "evidenceBucket": evidence.bucket.bucket,
    }
    for key, value in stack.outputs.items():
        pulumi.export(key, value)
    return stack


def _inventories(inventories: list[Report], settings: StackSettings, parts: Parts, provider: aws.Provider,
                 account_id: pulumi.Output[str], key: CustomerKey, log_bucket: SecureBucket, tags: dict[str, str],
                 policy: Policy, stack: Stack) -> dict[str, str]:
    """The S3 Inventory destinations the policy names (CMK-encrypted, kept `inventoryReportDays`) and
    one inventory configuration per store bucket and report: the stores plan from them."""
    destinations: dict[str, SecureBucket] = {}
    for name in sorted({r.bucket for r in inventories}):
        destinations[name] = parts.report_bucket(f"inventory-{name}", SecureBucketArgs(
            bucket=name, provider=provider, region=policy.regions.primary, kms_key_arn=key.arn,
            log_bucket=_log_target(log_bucket), log_prefix=f"{name}/", tags=tags,
            lifecycle_rules=[_expire_all("inventory-reports", settings.inventory_report_days, policy)],
            extra_statements=account_id.apply(functools.partial(allow_delivery, name, items=inventories)),
        ))
    StoreInventories("inventory", StoreInventoriesArgs(
        provider=provider, reports=inventories, destinations={n: b.arn for n, b in destinations.items()}, key_arn=key.arn,
        depends_on=[b.policy for b in destinations.values()] + [stack.buckets[r.source] for r in inventories]))
    return {f"{r.source}/{r.config_id}": f"s3://{r.bucket}/{r.prefix}" for r in inventories}


def _batch_operations(policy: Policy, settings: StackSettings, parts: Parts, providers: dict[str, aws.Provider],
                      account_id: pulumi.Output[str], keys: dict[str, CustomerKey], log_buckets: dict[str, SecureBucket],
                      tags: dict[str, str], runner_role: pulumi.Output[str]) -> BatchOperations:
    """The Lambda S3 Batch Operations jobs invoke, in each region, its role and the jobs' role, each
    region's bucket for the jobs' manifests and completion reports (kept `batchReportDays`), and what
    the retention role needs to create and collect the jobs."""
    buckets = {}
    for region, provider in providers.items():
        name = settings.batch_bucket(region)
        buckets[region] = parts.report_bucket(f"batch-{region}", SecureBucketArgs(
            bucket=name, provider=provider, region=region, kms_key_arn=keys[region].arn,
            log_bucket=_log_target(log_buckets[region]), log_prefix=f"{name}/", tags=tags,
            lifecycle_rules=[_expire_all("batch-reports", settings.batch_report_days, policy)]))
    code = Path(settings.batch_lambda_code).expanduser()
    return BatchOperations("batch-operations", BatchOperationsArgs(
        policy=policy, providers=providers, account_id=account_id,
        replicas={b: [f"{b}{settings.replica_suffix}"] for b in policy.data_buckets},
        code=pulumi.FileArchive(str(code if code.is_absolute() else project_root() / code)),
        function_name=settings.batch_function, task_role=settings.batch_task_role, jobs_role=settings.batch_role,
        batch_bucket=settings.batch_bucket("{region}"), batch_key_arns=[keys[r].arn for r in providers], tags=tags,
        runner_role=runner_role, environment=dict(settings.batch_environment)))


def _log_target(log_bucket: SecureBucket) -> pulumi.Output[str]:
    """The log bucket's name, known only once its policy lets S3 deliver logs (PutBucketLogging checks)."""
    return log_bucket.policy.bucket


def _expire_all(rule_id: str, days: int, policy: Policy) -> dict:
    return {"id": rule_id, "status": "Enabled", "filter": {"prefix": ""}, "expiration": {"days": days},
            "noncurrent_version_expiration": {"noncurrent_days": lifecycle.noncurrent_days(policy)},
            "abort_incomplete_multipart_upload": {"days_after_initiation": lifecycle.ABORT_MULTIPART_DAYS}}


def main() -> None:
    config = pulumi.Config("vigil")
    policy = load_policy(policy_path(config))
    build_stack(policy, StackSettings.from_config(policy, config))


def _log_delivery(bucket: str, account_id: str) -> list[dict]:
    """The statements letting S3 server access logging write into `bucket` for the account."""
    return bucket_policy.allow_log_delivery(bucket, account_id, "logging.s3.amazonaws.com")
