"""SecureBucket: one S3 bucket with every bucket-level control built in, and its replica.

Encryption (ENC-01/02), versioning (BAK-01), all four public access blocks (ACC-01),
owner-enforced object ownership (no ACLs), access logging (AUD-02), lifecycle (RET-01),
Object Lock (RET-04), the TLS and MFA denies (TLS-01/02, MFA-03), and replication of all
objects to a replica built by this same component in the backup region (BAK-02/03).
Subclasses override one method to change one thing (the deploy-time tests do).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from vigil.infra.components import bucket_policy


@dataclass
class ReplicaTarget:
    """Where a bucket's replica lives and how it is protected."""

    provider: aws.Provider
    region: str
    role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    log_bucket: pulumi.Input[str] | None = None
    suffix: str = "-replica"


@dataclass
class SecureBucketArgs:
    bucket: str
    provider: aws.Provider
    region: str
    kms_key_arn: pulumi.Input[str] | None = None  # None: SSE-S3 (server access log targets cannot use SSE-KMS)
    log_bucket: pulumi.Input[str] | None = None
    log_prefix: str = ""
    lifecycle_rules: list[dict] = field(default_factory=list)
    object_lock_days: int | None = None
    object_lock_mode: str = "COMPLIANCE"
    require_mfa: bool = False  # data stores: object access needs MFA except for the exempt service roles
    exempt_role_arns: Sequence[pulumi.Input[str]] = ()
    extra_statements: pulumi.Input[Sequence[dict]] = ()  # e.g. log delivery for a log bucket
    replica: ReplicaTarget | None = None
    tags: dict[str, str] = field(default_factory=dict)


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    replica: SecureBucket | None

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:storage:SecureBucket", name, None, opts)
        self.args = args
        self.bucket_name = args.bucket
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.bucket = aws.s3.Bucket(
            name, bucket=args.bucket, object_lock_enabled=bool(args.object_lock_days) or None,
            tags=args.tags or None, opts=child,
        )
        bucket_id = self.bucket.id
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket_id, rule={"object_ownership": self.object_ownership()}, opts=child)
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=bucket_id, **self.public_access_block_settings(), opts=child)
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket_id, rules=[self.encryption_rule()], opts=child)
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket_id, versioning_configuration={"status": self.versioning_status()}, opts=child)
        if args.log_bucket is not None:
            aws.s3.BucketLogging(f"{name}-logging", bucket=bucket_id, target_bucket=args.log_bucket,
                                 target_prefix=args.log_prefix or f"{args.bucket}/", opts=child)
        rules = self.lifecycle_rules()
        if rules:
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle", bucket=bucket_id, rules=rules,
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.versioning]))
        if args.object_lock_days:
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock", bucket=bucket_id, object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": args.object_lock_mode, "days": args.object_lock_days}},
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.versioning]))
        document = pulumi.Output.all(list(args.exempt_role_arns), args.extra_statements).apply(
            lambda values: json.dumps(bucket_policy.document(self.policy_statements(values[0], values[1]))))
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=bucket_id, policy=document,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.public_access_block]))
        self.replica = self._replicate(name, args.replica) if args.replica else None
        self.arn = self.bucket.arn
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn,
                               "replica": self.replica.bucket.bucket if self.replica else None})

    # --- the settings, one method each so a subclass can change exactly one ---------------

    def encryption_rule(self) -> dict:
        if self.args.kms_key_arn is None:
            return {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}
        return {
            "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": self.args.kms_key_arn},
            "bucket_key_enabled": True,  # one data key per bucket: far fewer KMS calls, same key control
        }

    def object_ownership(self) -> str:
        return "BucketOwnerEnforced"  # ACLs disabled: only policies grant access (ACC-04)

    def public_access_block_settings(self) -> dict:
        return {"block_public_acls": True, "block_public_policy": True, "ignore_public_acls": True, "restrict_public_buckets": True}

    def versioning_status(self) -> str:
        return "Enabled"

    def lifecycle_rules(self) -> list[dict]:
        return list(self.args.lifecycle_rules)

    def policy_statements(self, exempt_role_arns: list[str], extra: list[dict]) -> list[dict]:
        name = self.args.bucket
        # Grants first: some emulators stop reading at the first statement they do not expect.
        statements = [*extra, bucket_policy.deny_plain_http(name), bucket_policy.deny_old_tls(name)]
        if self.args.require_mfa:
            statements.append(bucket_policy.deny_without_mfa(name, exempt_role_arns))
        return statements

    def replication_rule(self, target: SecureBucket, replica: ReplicaTarget) -> dict:
        return {
            "id": "all-objects",
            "status": "Enabled",
            "priority": 1,
            "filter": {"prefix": ""},  # every object: the whole bucket is the data store's copy
            "delete_marker_replication": {"status": "Enabled"},
            "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
            "destination": {
                "bucket": target.bucket.arn,
                "encryption_configuration": {"replica_kms_key_id": replica.kms_key_arn},
            },
        }

    # --- the replica: built by this same class, so it gets the same protection (BAK-03) ----

    def replica_args(self, replica: ReplicaTarget) -> SecureBucketArgs:
        return SecureBucketArgs(
            bucket=f"{self.args.bucket}{replica.suffix}",
            provider=replica.provider,
            region=replica.region,
            kms_key_arn=replica.kms_key_arn,
            log_bucket=replica.log_bucket,
            log_prefix=f"{self.args.bucket}{replica.suffix}/",
            lifecycle_rules=self.args.lifecycle_rules,
            object_lock_days=self.args.object_lock_days,
            object_lock_mode=self.args.object_lock_mode,
            require_mfa=self.args.require_mfa,
            exempt_role_arns=self.args.exempt_role_arns,
            tags={**self.args.tags, "vigil:replica-of": self.args.bucket},
        )

    def replica_component(self) -> type[SecureBucket]:
        return type(self)

    def _replicate(self, name: str, replica: ReplicaTarget) -> SecureBucket:
        target = self.replica_component()(f"{name}-replica", self.replica_args(replica), pulumi.ResourceOptions(parent=self))
        aws.s3.BucketReplicationConfig(
            f"{name}-replication", bucket=self.bucket.id, role=replica.role_arn,
            rules=[self.replication_rule(target, replica)],
            opts=pulumi.ResourceOptions(parent=self, provider=self.args.provider, depends_on=[self.versioning, target.versioning]))
        return target
