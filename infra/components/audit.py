"""AuditTrail: a multi-region CloudTrail trail with log file validation (AUD-01), and EBS
encryption by default in every region of the stack (ENC-06)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class AuditTrailArgs:
    name: str
    provider: aws.Provider
    region: str
    bucket: pulumi.Input[str]
    regional_providers: dict[str, aws.Provider]  # region -> provider, for EBS encryption by default
    depends_on: Sequence[pulumi.Resource] = ()  # the bucket policy CloudTrail needs before it starts


class AuditTrail(pulumi.ComponentResource):
    trail: aws.cloudtrail.Trail

    def __init__(self, name: str, args: AuditTrailArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:audit:AuditTrail", name, None, opts)
        self.args = args
        self.trail = aws.cloudtrail.Trail(
            name, name=args.name, s3_bucket_name=args.bucket, s3_key_prefix="cloudtrail",
            include_global_service_events=True, enable_logging=True, **self.trail_settings(),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)))
        self.ebs_defaults = [
            aws.ebs.EncryptionByDefault(f"{name}-ebs-default-{region}", enabled=self.ebs_encryption(region),
                                        opts=pulumi.ResourceOptions(parent=self, provider=provider))
            for region, provider in args.regional_providers.items()
        ]
        self.register_outputs({"trail": self.trail.arn})

    def trail_settings(self) -> dict:
        return {"is_multi_region_trail": True, "enable_log_file_validation": True}

    def ebs_encryption(self, region: str) -> bool:
        return True
