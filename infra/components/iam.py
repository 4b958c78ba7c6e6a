"""AccessRoles: the service roles (replication, backup, retention job) and the human roles.

Human roles demand MFA in their trust policy (MFA-04). The retention job's role gets exactly
the actions `vigil iam-policy retain` derives from the retention code, on the declared stores
and their replicas: no wildcard action (listing backup vaults alone needs resource `*`).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from vigil.permissions import inventory_resources, retention_role_actions

BACKUP_MANAGED_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)


STEWARD_OBJECT_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
STEWARD_TABLE_ACTIONS = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:Query"]


@dataclass
class AccessRolesArgs:
    provider: aws.Provider
    account_id: pulumi.Input[str]
    replication_role: str
    backup_role: str
    retention_role: str
    human_roles: Sequence[str]
    source_buckets: Sequence[str]
    replica_buckets: Sequence[str]
    table_arns: Sequence[pulumi.Input[str]]
    key_arns: Sequence[pulumi.Input[str]]
    retention_runs_on: str = "ecs-tasks.amazonaws.com"  # where the scheduled job runs (ECS, Lambda, ...)
    tags: dict[str, str] = field(default_factory=dict)
    inventories: Sequence[tuple[str, str]] = ()  # (bucket, prefix) of the S3 Inventory reports stores plan from
    report_key_arns: Sequence[pulumi.Input[str]] = ()  # the key the reports are encrypted with (read only)


def _service_trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def _buckets(names: Sequence[str]) -> list[str]:
    return [f"arn:aws:s3:::{name}" for name in names]


def _objects(names: Sequence[str]) -> list[str]:
    return [f"arn:aws:s3:::{name}/*" for name in names]


class AccessRoles(pulumi.ComponentResource):
    def __init__(self, name: str, args: AccessRolesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:security:AccessRoles", name, None, opts)
        self.args = args
        self._child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.replication = self._role(args.replication_role, _service_trust("s3.amazonaws.com"))
        self._inline(args.replication_role, self.replication, pulumi.Output.all(list(args.key_arns)).apply(
            lambda keys: self.replication_permissions(keys[0])))
        self.backup = self._role(args.backup_role, _service_trust("backup.amazonaws.com"))
        for index, arn in enumerate(BACKUP_MANAGED_POLICIES):
            aws.iam.RolePolicyAttachment(f"{args.backup_role}-managed-{index}", role=self.backup.name, policy_arn=arn, opts=self._child)
        self.retention = self._role(args.retention_role, _service_trust(args.retention_runs_on))
        self._inline(args.retention_role, self.retention, pulumi.Output.all(
            list(args.table_arns), list(args.key_arns), args.account_id, list(args.report_key_arns)).apply(
            lambda values: self.retention_permissions(values[0], values[1], values[2], values[3])))
        self.humans: dict[str, aws.iam.Role] = {}
        for role_name in args.human_roles:
            trust = pulumi.Output.from_input(args.account_id).apply(self.human_trust)
            role = self._role(role_name, trust)
            self._inline(role_name, role, pulumi.Output.all(list(args.table_arns), list(args.key_arns)).apply(
                lambda values: self.steward_permissions(values[0], values[1])))
            self.humans[role_name] = role
        self.service_role_arns = [self.replication.arn, self.backup.arn, self.retention.arn]
        self.register_outputs({"replication": self.replication.arn, "backup": self.backup.arn, "retention": self.retention.arn,
                               **{name: role.arn for name, role in self.humans.items()}})

    def _role(self, role_name: str, trust: pulumi.Input[str]) -> aws.iam.Role:
        return aws.iam.Role(role_name, name=role_name, assume_role_policy=trust, tags=self.args.tags or None, opts=self._child)

    def _inline(self, role_name: str, role: aws.iam.Role, document: pulumi.Output[dict]) -> aws.iam.RolePolicy:
        return aws.iam.RolePolicy(f"{role_name}-permissions", role=role.name, policy=document.apply(json.dumps), opts=self._child)

    # --- documents ------------------------------------------------------------------------

    def human_trust(self, account_id: str) -> str:
        """People assume the role from the account only with MFA (MFA-04)."""
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        }]})

    def replication_permissions(self, key_arns: list[str]) -> dict:
        a = self.args
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": _buckets(a.source_buckets)},
            {"Effect": "Allow", "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
                                           "s3:GetObjectRetention", "s3:GetObjectLegalHold"], "Resource": _objects(a.source_buckets)},
            {"Effect": "Allow", "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"], "Resource": _objects(a.replica_buckets)},
            {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], "Resource": key_arns},
        ]}

    def retention_permissions(self, table_arns: list[str], key_arns: list[str], account_id: str = "*",
                              report_key_arns: Sequence[str] = ()) -> dict:
        """What `vigil retain` calls (vigil.permissions, derived from its code), on the stack's stores only,
        and the reads of the S3 Inventory reports the policy's stores plan from."""
        buckets = [*self.args.source_buckets, *self.args.replica_buckets]
        needed = retention_role_actions()
        # Rewriting objects under the store keys: S3 calls KMS for the job (Decrypt to read, GenerateDataKey to write).
        kms = sorted({*needed.kms, "kms:Decrypt", "kms:GenerateDataKey"})
        regions = sorted({arn.split(":")[3] for arn in [*table_arns, *key_arns] if arn.count(":") >= 4}) or ["*"]
        statements = [
            {"Effect": "Allow", "Action": needed.bucket, "Resource": _buckets(buckets)},
            {"Effect": "Allow", "Action": needed.object, "Resource": _objects(buckets)},
            {"Effect": "Allow", "Action": needed.table, "Resource": table_arns},
            {"Effect": "Allow", "Action": kms, "Resource": key_arns},
            # A recovery point's ARN does not name its vault: the account's recovery points in the stack's regions.
            {"Effect": "Allow", "Action": needed.recovery_point,
             "Resource": [f"arn:aws:backup:{r}:{account_id}:recovery-point:*" for r in regions]},
            {"Effect": "Allow", "Action": [*needed.backup_reads, *needed.account_reads], "Resource": "*"},  # no narrower resource
        ]
        reports, report_buckets = inventory_resources(self.args.inventories)
        if reports:
            statements += [
                {"Effect": "Allow", "Action": needed.report_bucket, "Resource": list(report_buckets)},
                {"Effect": "Allow", "Action": needed.report_object, "Resource": list(reports)},
                {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": list(report_key_arns)},
            ]
        # needed.secrets: the stack declares no PostgreSQL store secrets; the job policy grants those it names.
        return {"Version": "2012-10-17", "Statement": [st for st in statements if st["Action"] and st["Resource"]]}

    def steward_permissions(self, table_arns: list[str], key_arns: list[str]) -> dict:
        """Read-only access to the stores (reviews, subject requests); the bucket policies add the MFA demand."""
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": _buckets(self.args.source_buckets)},
            {"Effect": "Allow", "Action": STEWARD_OBJECT_ACTIONS, "Resource": _objects(self.args.source_buckets)},
            {"Effect": "Allow", "Action": STEWARD_TABLE_ACTIONS, "Resource": table_arns},
            {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": key_arns},
        ]}
