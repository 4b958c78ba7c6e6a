"""The least-privilege IAM policy the scheduled job needs, derived from the policy file.

Read-only calls of `vigil check` (account-wide: it looks at every bucket, key, role, table),
plus list/get/put/delete on the declared stores only (and their replicas) for retention,
plus, when given, writing evidence packs and lock objects. Nothing else.
`python -m vigil.scheduler.iam policy.yaml [--evidence-bucket B] > deploy/iam-policy.json`
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vigil.policy import Policy, load_policy

# Every read `vigil check` makes, as IAM actions (API GetBucketEncryption is s3:GetEncryptionConfiguration, ...).
CHECK_READ_ONLY = sorted([
    "s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetEncryptionConfiguration", "s3:GetBucketPolicy",
    "s3:GetBucketVersioning", "s3:GetReplicationConfiguration", "s3:GetBucketPublicAccessBlock",
    "s3:GetAccountPublicAccessBlock", "s3:GetBucketObjectLockConfiguration", "s3:GetLifecycleConfiguration",
    "s3:GetBucketLogging", "s3:GetBucketTagging",
    "kms:ListKeys", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyRotationStatus",
    "iam:GetAccountSummary", "iam:GetRole", "iam:ListUsers", "iam:ListMFADevices", "iam:GetLoginProfile",
    "dynamodb:ListTables", "dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups", "dynamodb:ListTagsOfResource",
    "rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBParameters", "rds:DescribeDBClusterParameters",
    "ec2:GetEbsEncryptionByDefault",
    "cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors",
    "backup:ListBackupPlans", "backup:GetBackupPlan", "backup:ListBackupSelections", "backup:GetBackupSelection",
    "backup:ListBackupVaults", "backup:ListRecoveryPointsByBackupVault", "backup:ListRecoveryPointsByResource",
])
RETAIN_BUCKET = ["s3:ListBucket", "s3:ListBucketVersions"]
RETAIN_OBJECT = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging",
                 "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject", "s3:DeleteObjectVersion"]
RETAIN_TABLE = ["dynamodb:DescribeTable", "dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem",
                "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
READ_TABLE = ["dynamodb:DescribeTable", "dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem"]


def job_policy(policy: Policy, replica_suffix: str = "-replica", evidence_bucket: str | None = None,
               lock_bucket: str | None = None, signing_key: str | None = None) -> dict[str, Any]:
    buckets = sorted({s.bucket for s in policy.s3_stores} | {s.bucket + replica_suffix for s in policy.s3_stores})
    prefixes = {s.bucket: s.prefix for s in policy.s3_stores}
    objects = sorted({f"arn:aws:s3:::{b}/{prefixes.get(b, prefixes.get(b.removesuffix(replica_suffix), ''))}*" for b in buckets})
    store_tables = sorted({s.table for s in policy.dynamodb_stores})
    statements: list[dict[str, Any]] = [
        {"Sid": "CheckReadOnly", "Effect": "Allow", "Action": CHECK_READ_ONLY, "Resource": "*"},
        {"Sid": "RetainListStores", "Effect": "Allow", "Action": RETAIN_BUCKET, "Resource": [f"arn:aws:s3:::{b}" for b in buckets]},
        {"Sid": "RetainStoreObjects", "Effect": "Allow", "Action": RETAIN_OBJECT, "Resource": objects},
        {"Sid": "RetainStoreTables", "Effect": "Allow", "Action": RETAIN_TABLE,
         "Resource": [f"arn:aws:dynamodb:*:*:table/{t}" for t in store_tables]},
        {"Sid": "RetainEncryptedStores", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringLike": {"kms:ViaService": ["s3.*.amazonaws.com", "dynamodb.*.amazonaws.com"]}}},
        {"Sid": "RetainBackupPoints", "Effect": "Allow", "Action": ["backup:DeleteRecoveryPoint"],
         "Resource": "arn:aws:backup:*:*:recovery-point:*"},
    ]
    if policy.subjects is not None and policy.subjects.table not in store_tables:
        statements.insert(4, {"Sid": "ReadSubjects", "Effect": "Allow", "Action": READ_TABLE,
                              "Resource": [f"arn:aws:dynamodb:*:*:table/{policy.subjects.table}"]})
    if policy.keys.pseudonymize is not None and policy.keys.pseudonymize.source == "kms":
        statements.append({"Sid": "PseudonymKey", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*",
                           "Condition": {"Null": {"kms:ViaService": "true"}}})
    if evidence_bucket:
        statements.append({"Sid": "UploadEvidence", "Effect": "Allow",
                           "Action": ["s3:GetBucketObjectLockConfiguration", "s3:PutObject", "s3:PutObjectRetention"],
                           "Resource": [f"arn:aws:s3:::{evidence_bucket}", f"arn:aws:s3:::{evidence_bucket}/*"]})
    if lock_bucket:
        statements.append({"Sid": "JobLocks", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                           "Resource": [f"arn:aws:s3:::{lock_bucket}/vigil/locks/*"]})
    if signing_key:
        statements.append({"Sid": "SignEvidence", "Effect": "Allow", "Action": ["kms:Sign", "kms:GetPublicKey"],
                           **_kms_key(signing_key.removeprefix("kms:"))})
    return {"Version": "2012-10-17", "Statement": statements}


def _kms_key(key: str) -> dict[str, Any]:
    """IAM names a KMS key by ARN; an alias only through the kms:RequestAlias condition."""
    if key.startswith("arn:"):
        return {"Resource": [key]}
    if key.startswith("alias/"):
        return {"Resource": "*", "Condition": {"StringEquals": {"kms:RequestAlias": key}}}
    return {"Resource": [f"arn:aws:kms:*:*:key/{key}"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.scheduler.iam", description=__doc__)
    parser.add_argument("policy")
    parser.add_argument("--replica-suffix", default="-replica")
    parser.add_argument("--evidence-bucket")
    parser.add_argument("--lock-bucket")
    parser.add_argument("--signing-key", help="the KMS key that signs evidence: ARN, key id or alias/NAME")
    args = parser.parse_args(argv)
    document = job_policy(load_policy(args.policy), args.replica_suffix, args.evidence_bucket, args.lock_bucket, args.signing_key)
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
