"""AWS Backup: CMK-encrypted vaults, and a plan that copies every recovery point off-site.

The plan runs at least daily (BAK-04), keeps recovery points no longer than the longest
retention of the data they hold (RET-03), and copies each point to the backup region's
vault, with the same lifetime.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class BackupVaultArgs:
    name: str
    provider: aws.Provider
    region: str
    kms_key_arn: pulumi.Input[str]


class BackupVault(pulumi.ComponentResource):
    vault: aws.backup.Vault

    def __init__(self, name: str, args: BackupVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:backup:BackupVault", name, None, opts)
        self.vault = aws.backup.Vault(
            name, name=args.name, kms_key_arn=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
        self.arn = self.vault.arn
        self.register_outputs({"name": self.vault.name, "arn": self.vault.arn})


@dataclass
class BackupPlanArgs:
    name: str
    provider: aws.Provider
    region: str
    vault_name: pulumi.Input[str]
    copy_vault_arn: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    selection_tag: tuple[str, str]
    keep_days: int
    schedule: str = "cron(0 3 * * ? *)"  # daily at 03:00 UTC


class BackupPlan(pulumi.ComponentResource):
    plan: aws.backup.Plan

    def __init__(self, name: str, args: BackupPlanArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:backup:BackupPlan", name, None, opts)
        self.args = args
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.plan = aws.backup.Plan(name, name=args.name, rules=[self.rule()], opts=child)
        key, value = args.selection_tag
        self.selection = aws.backup.Selection(
            f"{name}-selection", name=f"{args.name}-tagged", plan_id=self.plan.id, iam_role_arn=args.role_arn,
            selection_tags=[{"type": "STRINGEQUALS", "key": key, "value": value}], opts=child)
        self.register_outputs({"id": self.plan.id, "arn": self.plan.arn})

    def rule(self) -> dict:
        return {
            "rule_name": "daily",
            "target_vault_name": self.args.vault_name,
            "schedule": self.args.schedule,
            "start_window": 60,
            "completion_window": 180,
            "lifecycle": {"delete_after": self.args.keep_days},
            "copy_actions": [{
                "destination_vault_arn": self.args.copy_vault_arn,
                "lifecycle": {"delete_after": self.args.keep_days},
            }],
        }
