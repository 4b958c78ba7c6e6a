"""The S3 facts Vigil reads about a bucket: one row each, in the manner of Cloud Custodian's
augment tables.

A row says which `Bucket` field the fact fills (`name`), the API call that reads it (`api`, a
botocore operation label, also the evidence's `api`), where its value sits in the answer
(`answer`, a dotted path; "" for the whole answer), the error codes that mean "not
configured" (`absent`) and what stands for that (`empty`), the IAM actions the call needs
(`iam`), where the value goes in the request that sets it (`request`; the call is the `Put`
twin of the `Get`), and the Pulumi resource type that declares it (`pulumi`, if any).

Everyone reads this table, so a new bucket fact is one new row: the collectors
(checks/collectors/s3.py), deploy time (infra/deploytime.py, with the Pulumi shape in
infra/shapes.py), the demo deployer, the tests' builders, and the IAM action list.

The bucket's region is not a row: it comes with the listing (ListBuckets `BucketRegion`) and
every other call is made in it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from botocore import xform_name

# How a value is kept when AWS carries it in another form: the policy is JSON text on the wire
# and a parsed document in the record; tags are a TagSet list on the wire and a dict in the record.
Form = Literal["plain", "json", "tags"]


@dataclass(frozen=True)
class S3Fact:
    name: str
    api: str
    answer: str
    iam: tuple[str, ...]
    request: str
    absent: tuple[str, ...] = ()
    empty: Literal["none", "list", "dict"] = "none"
    form: Form = "plain"
    pulumi: str | None = None

    @property
    def operation(self) -> str:
        return self.api.split(":", 1)[1]

    @property
    def get(self) -> str:
        """The boto3 method that reads it: `get_bucket_encryption`."""
        return xform_name(self.operation)

    @property
    def put(self) -> str:
        """The boto3 method that sets it: the `put_` twin of `get` (the table never names it, so
        the IAM derivation, which reads call sites, does not count writes as reads)."""
        return "put_" + self.get.removeprefix("get_")

    def not_configured(self) -> Any:
        """What the record holds when the bucket has no such configuration."""
        return {"none": None, "list": [], "dict": {}}[self.empty]

    def value_from(self, answer: dict) -> Any:
        """The fact's value out of the API's answer, in the record's form."""
        value: Any = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
        for key in self.answer.split(".") if self.answer else ():
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return self.not_configured()
        if self.form == "json":
            return json.loads(value)
        if self.form == "tags":
            return {tag["Key"]: tag["Value"] for tag in value}
        return value

    def request_for(self, value: Any) -> dict:
        """The `put` call's arguments (besides Bucket) that set the fact to `value`."""
        if self.form == "json":
            value = json.dumps(value)
        elif self.form == "tags":
            value = [{"Key": k, "Value": v} for k, v in value.items()]
        for key in reversed(self.request.split(".")):
            value = {key: value}
        return value


S3_FACTS: dict[str, S3Fact] = {fact.name: fact for fact in (
    S3Fact("encryption", "s3:GetBucketEncryption", "ServerSideEncryptionConfiguration.Rules",
           ("s3:GetEncryptionConfiguration",), "ServerSideEncryptionConfiguration.Rules",
           absent=("ServerSideEncryptionConfigurationNotFoundError",), empty="list",
           pulumi="aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"),
    S3Fact("policy", "s3:GetBucketPolicy", "Policy", ("s3:GetBucketPolicy",), "Policy",
           absent=("NoSuchBucketPolicy",), form="json", pulumi="aws:s3/bucketPolicy:BucketPolicy"),
    # {} when versioning was never enabled (the answer has no Status)
    S3Fact("versioning", "s3:GetBucketVersioning", "", ("s3:GetBucketVersioning",), "VersioningConfiguration",
           empty="dict", pulumi="aws:s3/bucketVersioning:BucketVersioning"),
    S3Fact("replication", "s3:GetBucketReplication", "ReplicationConfiguration", ("s3:GetReplicationConfiguration",),
           "ReplicationConfiguration", absent=("ReplicationConfigurationNotFoundError",),
           pulumi="aws:s3/bucketReplicationConfig:BucketReplicationConfig"),
    S3Fact("public_access_block", "s3:GetPublicAccessBlock", "PublicAccessBlockConfiguration",
           ("s3:GetBucketPublicAccessBlock",), "PublicAccessBlockConfiguration",
           absent=("NoSuchPublicAccessBlockConfiguration",), pulumi="aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"),
    S3Fact("logging", "s3:GetBucketLogging", "LoggingEnabled", ("s3:GetBucketLogging",), "BucketLoggingStatus.LoggingEnabled",
           pulumi="aws:s3/bucketLogging:BucketLogging"),
    S3Fact("lifecycle", "s3:GetBucketLifecycleConfiguration", "Rules", ("s3:GetLifecycleConfiguration",),
           "LifecycleConfiguration.Rules", absent=("NoSuchLifecycleConfiguration",),
           pulumi="aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"),
    S3Fact("object_lock", "s3:GetObjectLockConfiguration", "ObjectLockConfiguration",
           ("s3:GetBucketObjectLockConfiguration",), "ObjectLockConfiguration",
           absent=("ObjectLockConfigurationNotFoundError",),
           pulumi="aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"),
    # ACLs are disabled when the one rule says BucketOwnerEnforced (the default for buckets made since April 2023).
    S3Fact("ownership", "s3:GetBucketOwnershipControls", "OwnershipControls", ("s3:GetBucketOwnershipControls",),
           "OwnershipControls", absent=("OwnershipControlsNotFoundError",),
           pulumi="aws:s3/bucketOwnershipControls:BucketOwnershipControls"),
    # Declared on the bucket resource itself (its `tags` input), not by a resource of its own.
    S3Fact("tags", "s3:GetBucketTagging", "TagSet", ("s3:GetBucketTagging",), "Tagging.TagSet",
           absent=("NoSuchTagSet",), empty="dict", form="tags"),
)}


def write(client: Any, bucket: str, fact: str, value: Any) -> None:
    """Set one fact of `bucket` with its `put` call (the demo deployer and the tests' builders)."""
    row = S3_FACTS[fact]
    getattr(client, row.put)(Bucket=bucket, **row.request_for(value))
