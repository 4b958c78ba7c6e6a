"""CustomerKey: a customer-managed symmetric KMS key with automatic rotation (ENC-02, ENC-03)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class CustomerKeyArgs:
    provider: aws.Provider
    region: str
    alias: str  # "alias/vigil-data"
    description: str = "Vigil: personal data stores, replicas and backups"
    rotate: bool = True
    deletion_window_days: int = 30
    policy: pulumi.Input[str] | None = None  # a key policy (JSON); None: AWS's default (the account administers it)


class CustomerKey(pulumi.ComponentResource):
    key: aws.kms.Key

    def __init__(self, name: str, args: CustomerKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:security:CustomerKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        # The default key policy (account root administers it) keeps access review in IAM, where
        # the access-review evidence (ACC-03) looks; crypto-shredding is ScheduleKeyDeletion.
        self.key = aws.kms.Key(
            name, description=args.description, enable_key_rotation=args.rotate,
            deletion_window_in_days=args.deletion_window_days, key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT", policy=args.policy, opts=child)
        self.alias = aws.kms.Alias(f"{name}-alias", name=args.alias, target_key_id=self.key.key_id, opts=child)
        self.arn = self.key.arn
        self.register_outputs({"arn": self.key.arn, "alias": args.alias})
