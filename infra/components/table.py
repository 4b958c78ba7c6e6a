"""SecureTable: a DynamoDB table encrypted with the CMK, with PITR, tagged for AWS Backup."""
from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

BACKUP_TAG = ("vigil:backup", "daily")  # the AWS Backup selection picks tables by this tag (BAK-04)


@dataclass
class SecureTableArgs:
    table: str
    hash_key: str
    provider: aws.Provider
    region: str
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)


class SecureTable(pulumi.ComponentResource):
    table: aws.dynamodb.Table

    def __init__(self, name: str, args: SecureTableArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:storage:SecureTable", name, None, opts)
        self.args = args
        self.table = aws.dynamodb.Table(
            name,
            name=args.table,
            billing_mode="PAY_PER_REQUEST",
            hash_key=args.hash_key,
            attributes=[{"name": args.hash_key, "type": "S"}],
            server_side_encryption=self.encryption(),
            point_in_time_recovery=self.point_in_time_recovery(),
            deletion_protection_enabled=True,
            tags={**args.tags, **dict([self.backup_tag()])},
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.arn = self.table.arn
        self.register_outputs({"name": self.table.name, "arn": self.table.arn})

    def encryption(self) -> dict:
        return {"enabled": True, "kms_key_arn": self.args.kms_key_arn}

    def point_in_time_recovery(self) -> dict:
        return {"enabled": True}

    def backup_tag(self) -> tuple[str, str]:
        return BACKUP_TAG
