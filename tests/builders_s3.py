"""boto3 builders (inside mock_aws) for a fully compliant S3 estate: each data store bucket
with its replica in the backup region, as the policy file asks. Break one thing afterwards
to test a control failing. Each S3 fact is set through its row of vigil/s3_facts.py.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache

import boto3

from vigil.policy import Policy
from vigil.policy.models import S3Store
from vigil.s3_facts import write

KEY_ALIAS = "alias/vigil-data"
NONCURRENT_DAYS_FOR_UNTIMED = 30  # `forever` or `after:` categories: any age will do
ABORT_MULTIPART_DAYS = 7


@dataclass
class Estate:
    account_id: str
    keys: dict[str, str]  # region -> customer-managed key ARN
    replicas: dict[str, str] = field(default_factory=dict)  # source bucket -> replica bucket
    log_buckets: dict[str, str] = field(default_factory=dict)  # region -> access log bucket


def client(service: str, region: str):
    """One client per (service, region, endpoint) for all tests: making botocore clients is the slow
    part. The endpoint is part of the key so a client made for mock_aws never talks to a server."""
    return _client(service, region, os.environ.get("AWS_ENDPOINT_URL"))


@cache
def _client(service: str, region: str, endpoint: str | None):
    return boto3.client(service, region_name=region, endpoint_url=endpoint)


client.cache_clear = _client.cache_clear  # type: ignore[attr-defined]


def s3(region: str):
    return client("s3", region)


def account_id() -> str:
    return client("sts", "us-east-1").get_caller_identity()["Account"]


def customer_key(region: str, alias: str = KEY_ALIAS) -> str:
    kms = client("kms", region)
    arn = kms.create_key(Description=f"vigil data key {region}")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=arn)
    kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def bucket_policy(bucket: str, account: str, service_roles: list[str], mfa_gate: bool = True,
                  lead: list[dict] | None = None) -> dict:
    """Deny non-TLS, deny TLS < 1.2, deny object access without MFA except the allow-listed service roles."""
    both = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    roles = [f"arn:aws:iam::{account}:role/{name}" for name in service_roles]
    statements = [
        *(lead or []),
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": both,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyOldTls", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": both,
         "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}},
    ]
    if not mfa_gate:
        return {"Version": "2012-10-17", "Statement": statements}
    mfa: dict = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    if roles:
        mfa["ArnNotLike"] = {"aws:PrincipalArn": roles}
    statements.append({"Sid": "DenyObjectAccessWithoutMfa", "Effect": "Deny", "Principal": "*",
                       "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                       "Resource": f"arn:aws:s3:::{bucket}/*", "Condition": mfa})
    return {"Version": "2012-10-17", "Statement": statements}


def create_bucket(name: str, region: str, object_lock: bool = False) -> None:
    kwargs: dict = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    if object_lock:
        kwargs["ObjectLockEnabledForBucket"] = True
    s3(region).create_bucket(**kwargs)


def protect_bucket(name: str, region: str, key_arn: str, account: str, service_roles: list[str],
                   mfa_gate: bool = True, lead: list[dict] | None = None) -> None:
    """Everything every bucket should have: SSE-KMS with a customer key, TLS/MFA policy, public access blocked, ACLs off."""
    client = s3(region)
    write(client, name, "encryption", [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                                        "BucketKeyEnabled": True}])
    write(client, name, "policy", bucket_policy(name, account, service_roles, mfa_gate, lead))
    write(client, name, "public_access_block",
          {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    write(client, name, "ownership", {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})


def lifecycle_rules(policy: Policy, stores: list[S3Store]) -> list[dict]:
    """One rule per store, derived from its category as RET-01 reads it."""
    rules = []
    for store in stores:
        limit = policy.retention_limit_days(store)
        rule: dict = {
            "ID": f"retention-{store.name}",
            "Status": "Enabled",
            "Filter": {"Prefix": store.prefix},
            "NoncurrentVersionExpiration": {"NoncurrentDays": limit or NONCURRENT_DAYS_FOR_UNTIMED},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_MULTIPART_DAYS},
        }
        expiry = policy.expiry_days(store)
        if expiry is not None:
            rule["Expiration"] = {"Days": expiry}
        rules.append(rule)
    return rules


def build_data_store(policy: Policy, estate: Estate, bucket: str, replica: str | None = None) -> str:
    """A compliant data store bucket (all its stores) and its compliant replica in the backup region."""
    primary, backup = policy.regions.primary, policy.regions.backup
    stores = [s for s in policy.s3_stores if s.bucket == bucket]
    roles = policy.access.service_roles
    lock_days = policy.keep_at_least_days(stores)
    replica = replica or f"{bucket}-replica"

    for name, region in ((bucket, primary), (replica, backup)):
        create_bucket(name, region, object_lock=lock_days > 0 and name == bucket)
        protect_bucket(name, region, estate.keys[region], estate.account_id, roles)
        write(s3(region), name, "versioning", {"Status": "Enabled"})
        write(s3(region), name, "tags", {"vigil:store": bucket})

    client = s3(primary)
    write(client, bucket, "logging", {"TargetBucket": estate.log_buckets[primary], "TargetPrefix": f"{bucket}/"})
    write(client, bucket, "lifecycle", lifecycle_rules(policy, stores))
    if lock_days:
        write(client, bucket, "object_lock",
              {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": lock_days}}})
    write(client, bucket, "replication", {
        "Role": f"arn:aws:iam::{estate.account_id}:role/vigil-replication",
        "Rules": [{
            "ID": "off-site", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Enabled"},
            "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
            "Destination": {"Bucket": f"arn:aws:s3:::{replica}",
                            "EncryptionConfiguration": {"ReplicaKmsKeyID": estate.keys[backup]}},
        }]})
    estate.replicas[bucket] = replica
    return replica


def build_s3_estate(policy: Policy) -> Estate:
    """Keys in both regions, a protected access-log bucket, and every S3 data store of the policy with its replica."""
    estate = Estate(account_id=account_id(), keys={})
    for region in dict.fromkeys([policy.regions.primary, policy.regions.backup]):
        estate.keys[region] = customer_key(region)
    primary = policy.regions.primary
    log_bucket = f"vigil-access-logs-{estate.account_id}"
    create_bucket(log_bucket, primary)
    # S3 log delivery writes here, without MFA (moto wants its Allow as the first statement).
    delivery = {"Sid": "S3ServerAccessLogs", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{log_bucket}/*"}
    protect_bucket(log_bucket, primary, estate.keys[primary], estate.account_id, [], mfa_gate=False, lead=[delivery])
    estate.log_buckets[primary] = log_bucket
    for bucket in dict.fromkeys(s.bucket for s in policy.s3_stores):
        build_data_store(policy, estate, bucket)
    return estate
