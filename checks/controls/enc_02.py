"""ENC-02: data store buckets and tables are encrypted with a customer-managed KMS key.

Only a key the company manages allows key-level access review and crypto-shredding: the
AWS-managed aws/s3 or aws/dynamodb keys and AWS-owned keys do not.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Evidence, Finding, KmsKey, Status, Table
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, missing_bucket, missing_table
from vigil.checks.verdicts import errored, failed, passed

ID = "ENC-02"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("encryption",))
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def key_evidence(key: KmsKey) -> dict[str, Any]:
    return {"KeyId": key.key_id, "Arn": key.arn, "KeyManager": key.metadata.get("KeyManager"), "Aliases": key.aliases}


def judge_key(ctx: Context, resource: str, region: str, what: str, reference: str,
              apis: list[str], observed: dict[str, Any]) -> Finding:
    """Shared by buckets, tables and vaults: resolve the key and require it to be customer-managed."""
    if reference.startswith("alias/aws/") or ":alias/aws/" in reference:
        return failed(ID, resource, region,
                      f"{what} uses the AWS-managed key {reference}; use a customer-managed key", apis, observed)
    key = ctx.resolve_key(reference, region)
    if key is None:
        return Finding(ID, resource, region, Status.ERROR,
                       f"{what} uses KMS key {reference}, which could not be resolved (not found in the inventory: "
                       "kms:DescribeKey or kms:ListAliases may be denied, or the key is in another account)",
                       Evidence(apis + ["kms:DescribeKey"], observed))
    if not key.metadata:  # listed but DescribeKey failed: who manages it is unknown
        return Finding(ID, resource, region, Status.ERROR,
                       f"{what} uses KMS key {reference}, whose manager could not be read: {key.rotation.error}",
                       Evidence(apis + ["kms:DescribeKey"], observed))
    observed = {**observed, "KeyMetadata": key_evidence(key)}
    if key.customer_managed:
        return passed(ID, resource, region, f"{what} is encrypted with customer-managed KMS key {key.arn}",
                      apis + ["kms:DescribeKey"], observed)
    return failed(ID, resource, region,
                  f"{what} uses KMS key {reference}, which is AWS-managed; use a customer-managed key",
                  apis + ["kms:DescribeKey"], observed)


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.encryption
    region = bucket.region_name
    if not fact.ok:
        return errored(ID, bucket.arn, region, fact)
    rules = fact.value or []
    observed = {"Rules": rules}
    kms_rules = [r.get("ApplyServerSideEncryptionByDefault", {}) for r in rules
                 if r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") in KMS_ALGORITHMS]
    if not kms_rules:
        return failed(ID, bucket.arn, region,
                      f"bucket {bucket.name} does not use SSE-KMS; set aws:kms with a customer-managed key",
                      fact.api, observed)
    reference = kms_rules[0].get("KMSMasterKeyID")
    if not reference:
        return failed(ID, bucket.arn, region,
                      f"bucket {bucket.name} uses SSE-KMS with the AWS-managed key aws/s3; name a customer-managed key",
                      fact.api, observed)
    return judge_key(ctx, bucket.arn, region, f"bucket {bucket.name}", reference, [fact.api], observed)


def check_table(ctx: Context, table: Table) -> Finding:
    fact = table.description
    if not fact.ok:
        return errored(ID, table.arn, table.region, fact)
    sse = (fact.value or {}).get("SSEDescription")
    observed = {"SSEDescription": sse}
    if not sse or sse.get("Status") not in ("ENABLED", "UPDATING"):
        return failed(ID, table.arn, table.region,
                      f"table {table.name} is encrypted with an AWS-owned key; set SSE with a customer-managed KMS key",
                      fact.api, observed)
    reference = sse.get("KMSMasterKeyArn")
    if sse.get("SSEType") != "KMS" or not reference:
        return failed(ID, table.arn, table.region,
                      f"table {table.name} does not name a KMS key; set SSE with a customer-managed KMS key",
                      fact.api, observed)
    return judge_key(ctx, table.arn, table.region, f"table {table.name}", reference, [fact.api], observed)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield check_bucket(ctx, bucket) if bucket else missing_bucket(ctx, ID, name)
    for name, table in ctx.data_tables():
        yield check_table(ctx, table) if table else missing_table(ctx, ID, name)
