"""What the stack reads from Pulumi config: where the policy file is, and the names and periods it does not say."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from vigil.retention.plan import reads_records

from vigil.policy import Policy

PROJECT_FILES = ("Pulumi.yaml", "Pulumi.yml")


def project_root(start: Path | None = None) -> Path:
    """The folder holding Pulumi.yaml: what relative paths in the stack's config are relative to.

    `pulumi up` runs the program with `main:` (infra/) as its working directory, so the
    working directory is not the root. The SDK knows the root when the engine tells it; with
    an older engine, or under mocks, it answers a placeholder, so the root is then the
    nearest folder at or above the working directory that holds a Pulumi.yaml.
    """
    answer = getattr(pulumi, "get_root_directory", lambda: None)()
    if answer and Path(answer).is_absolute() and _holds_project(Path(answer)):
        return Path(answer)
    here = (start or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents) if _holds_project(folder)), here)


def _holds_project(folder: Path) -> bool:
    return any((folder / name).is_file() for name in PROJECT_FILES)


def policy_path(config: pulumi.Config) -> Path:
    """vigil:policyFile (Pulumi.yaml's default: policy.yaml), relative to the project root unless absolute."""
    configured = Path(config.get("policyFile") or "policy.yaml").expanduser()
    return configured if configured.is_absolute() else project_root() / configured


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:30] or "vigil"


@dataclass(frozen=True)
class StackSettings:
    name_prefix: str  # support buckets (access logs, CloudTrail, evidence) are named after it
    replication_role: str = "vigil-replication"
    backup_role: str = "vigil-backup"
    retention_role: str = "vigil-retention"
    replica_suffix: str = "-replica"
    backup_keep_days: int = 35  # capped by the longest retention of the tables backed up (RET-03)
    backup_schedule: str = "cron(0 3 * * ? *)"
    evidence_lock_days: int = 2555  # evidence packs are kept 7 years, undeletable
    access_log_days: int = 365
    trail_name: str = "vigil-audit"
    retention_runs_on: str = "ecs-tasks.amazonaws.com"  # the service that runs the scheduled job (ECS, Lambda, ...)
    # S3 Inventory and Batch Operations, declared when a store of the policy names an `inventory:` report
    inventory_report_days: int = 14  # reports are kept this long (vigil plans from the newest, at most 48 hours old)
    batch_lambda_code: str = "build/lambda"  # the folder deploy/build_lambda.sh makes, relative to the project root
    batch_function: str = "vigil-batch"  # the Lambda the jobs invoke, in each region (deploy/batch_handler.py)
    batch_task_role: str = "vigil-batch-task"  # the Lambda's role: it reads and rewrites store objects (allow-list it)
    batch_role: str = "vigil-batch-operations"  # the role S3 Batch Operations runs the jobs as
    batch_report_days: int = 90  # job manifests and completion reports are kept this long
    # variables the Lambda reads the policy's `env` key sources from (a secret config object; kept secret)
    batch_environment: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def defaults(cls, policy: Policy) -> StackSettings:
        return cls(name_prefix=slug(policy.organization))

    @classmethod
    def from_config(cls, policy: Policy, config: pulumi.Config | None = None) -> StackSettings:
        config = config or pulumi.Config("vigil")
        base = cls.defaults(policy)
        return cls(
            name_prefix=config.get("namePrefix") or base.name_prefix,
            replication_role=config.get("replicationRole") or base.replication_role,
            backup_role=config.get("backupRole") or base.backup_role,
            retention_role=config.get("retentionRole") or base.retention_role,
            replica_suffix=config.get("replicaSuffix") or base.replica_suffix,
            backup_keep_days=config.get_int("backupKeepDays") or base.backup_keep_days,
            backup_schedule=config.get("backupSchedule") or base.backup_schedule,
            evidence_lock_days=config.get_int("evidenceLockDays") or base.evidence_lock_days,
            access_log_days=config.get_int("accessLogDays") or base.access_log_days,
            trail_name=config.get("trailName") or base.trail_name,
            retention_runs_on=config.get("retentionRunsOn") or base.retention_runs_on,
            inventory_report_days=config.get_int("inventoryReportDays") or base.inventory_report_days,
            batch_lambda_code=config.get("batchLambdaCode") or base.batch_lambda_code,
            batch_function=config.get("batchFunction") or base.batch_function,
            batch_task_role=config.get("batchTaskRole") or base.batch_task_role,
            batch_role=config.get("batchRole") or base.batch_role,
            batch_report_days=config.get_int("batchReportDays") or base.batch_report_days,
            batch_environment=config.get_object("batchEnvironment") or {},
        )

    def batch_bucket(self, region: str) -> str:
        """Where `vigil retain --executor batch-operations` writes a region's job manifests and reads its reports."""
        return f"{self.name_prefix}-batch-{region}"

    def check(self, policy: Policy) -> None:
        """The MFA exemption (MFA-03) may only name allow-listed roles: refuse a mismatch early."""
        roles = [self.replication_role, self.backup_role, self.retention_role]
        roles += [self.batch_task_role] if any(s.inventory for s in policy.s3_stores) else []  # it rewrites store objects
        missing = [r for r in roles if r not in policy.access.service_roles]
        if missing:
            raise ValueError(f"{policy.source_path or 'policy'}: access.service_roles must list {', '.join(missing)} "
                             "(the stack's service roles are exempt from the MFA deny only when allow-listed)")
        unset = [name for name in self.lambda_key_variables(policy) if name not in self.batch_environment]
        if unset:
            raise ValueError(f"{policy.source_path or 'policy'}: keys read from ${', $'.join(unset)} (source: env), which "
                             f"the Batch Operations Lambda needs to rewrite records: set them with `pulumi config set "
                             f"--secret --path vigil:batchEnvironment.{unset[0]} ...`, or use a kms key source")

    @staticmethod
    def lambda_key_variables(policy: Policy) -> list[str]:
        """The `env` key sources the Lambda reads: only when a store it serves has its records read."""
        if not any(s.inventory and reads_records(s, policy.category_of(s)) for s in policy.s3_stores):
            return []
        return [k.name for k in (policy.keys.pseudonymize, policy.keys.evidence) if k is not None and k.source == "env" and k.name]
