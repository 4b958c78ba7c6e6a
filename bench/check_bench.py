"""Benchmark `vigil check` against a hand-written concurrent boto3 loop on a loopback moto server.

Seeds 200 buckets (half compliant, half broken), 50 KMS keys and 20 DynamoDB tables, then
times (a) vigil's collectors + evaluators and (b) a raw ThreadPoolExecutor loop making only
the calls the controls need, with the same pool size. Counts API calls with a botocore
event hook and reports any API called twice for one resource. Prints figures; asserts nothing.

    .venv/bin/python bench/check_bench.py [--buckets 200] [--keys 50] [--tables 20] [--workers 32]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vigil.checks.collectors import collect_inventory  # noqa: E402
from vigil.checks.context import Context  # noqa: E402
from vigil.checks.registry import evaluate  # noqa: E402

from vigil.aws import Aws  # noqa: E402
from vigil.policy import load_policy  # noqa: E402

REGION = "us-east-1"
IDENTIFYING = ("Bucket", "KeyId", "TableName", "ResourceArn", "UserName", "RoleName", "BackupVaultName", "BackupPlanId", "Name")


def seed(url: str, buckets: int, keys: int, tables: int) -> None:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=url)
    kms = boto3.client("kms", region_name=REGION, endpoint_url=url)
    ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=url)
    key_arns = []
    for i in range(keys):
        arn = kms.create_key(Description=f"bench {i}")["KeyMetadata"]["Arn"]
        if i % 2 == 0:
            kms.enable_key_rotation(KeyId=arn)
        key_arns.append(arn)
    for i in range(buckets):
        name = f"bench-bucket-{i:04d}"
        s3.create_bucket(Bucket=name)
        if i % 2:
            continue  # broken: defaults only
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arns[i % keys]}}]})
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    for i in range(tables):
        extra = {"SSESpecification": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arns[i % keys]}} if i % 2 == 0 else {}
        ddb.create_table(TableName=f"bench-table-{i:03d}", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], **extra)


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.per_resource: Counter = Counter()

    def __call__(self, model, params, **_) -> None:
        op = f"{model.service_model.service_name}:{model.name}"
        self.calls[op] += 1
        ident = tuple((k, str(params.get(k))) for k in IDENTIFYING if k in params)
        if ident and model.name not in ("ListObjectVersions", "ListObjectsV2", "GetObject", "HeadObject", "Scan"):
            self.per_resource[(op, ident)] += 1

    def repeated(self) -> list:
        return [(op, ident, n) for (op, ident), n in self.per_resource.items() if n > 1]


def run_vigil(url: str, policy, workers: int) -> tuple[float, CallCounter, int]:
    aws = Aws(endpoint_url=url, max_pool=workers)
    counter = CallCounter()
    aws.session.events.register("before-parameter-build", counter)  # params: the API's own arguments
    start = time.perf_counter()
    inventory = collect_inventory(aws, policy, [REGION], workers=workers)
    findings = evaluate(Context(policy, inventory))
    return time.perf_counter() - start, counter, len(findings)


def run_raw(url: str, workers: int) -> tuple[float, CallCounter]:
    """Only the calls the bucket, key and table controls need, concurrently, no records or evaluation."""
    session = boto3.Session()
    counter = CallCounter()
    session.events.register("before-parameter-build", counter)
    config = Config(max_pool_connections=workers, retries={"mode": "adaptive", "max_attempts": 8})
    s3 = session.client("s3", region_name=REGION, endpoint_url=url, config=config)
    kms = session.client("kms", region_name=REGION, endpoint_url=url, config=config)
    ddb = session.client("dynamodb", region_name=REGION, endpoint_url=url, config=config)

    def safe(fn, **kw):
        try:
            return fn(**kw)
        except Exception as exc:  # noqa: BLE001 - the raw loop only needs to make the call
            return exc

    def bucket(name: str) -> None:
        for fn in (s3.get_bucket_location, s3.get_bucket_encryption, s3.get_bucket_policy, s3.get_bucket_versioning,
                   s3.get_bucket_replication, s3.get_public_access_block, s3.get_bucket_logging,
                   s3.get_bucket_lifecycle_configuration, s3.get_object_lock_configuration, s3.get_bucket_tagging):
            safe(fn, Bucket=name)

    def key(key_id: str) -> None:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        if meta.get("KeyManager") == "CUSTOMER":
            safe(kms.get_key_rotation_status, KeyId=key_id)

    def table(name: str) -> None:
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
        safe(ddb.describe_continuous_backups, TableName=name)
        safe(ddb.list_tags_of_resource, ResourceArn=arn)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        key_ids = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate() for k in page["Keys"]]
        kms.list_aliases()
        table_names = [t for page in ddb.get_paginator("list_tables").paginate() for t in page["TableNames"]]
        list(pool.map(bucket, names))
        list(pool.map(key, key_ids))
        list(pool.map(table, table_names))
    return time.perf_counter() - start, counter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buckets", type=int, default=200)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log would drown the figures
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        seed(url, args.buckets, args.keys, args.tables)
        policy = load_policy(ROOT / "policy.yaml")
        vigil_times, raw_times = [], []
        for _ in range(args.rounds):
            elapsed, counter, findings = run_vigil(url, policy, args.workers)
            vigil_times.append(elapsed)
            raw_elapsed, raw_counter = run_raw(url, args.workers)
            raw_times.append(raw_elapsed)
        best_vigil, best_raw = min(vigil_times), min(raw_times)
        s3_calls = sum(n for op, n in counter.calls.items() if op.startswith("s3:") and op != "s3:ListBuckets")
        print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"estate: {args.buckets} buckets, {args.keys} KMS keys, {args.tables} tables; {args.workers} workers; best of {args.rounds}")
        print(f"vigil check (collect + evaluate): {best_vigil:.2f} s, {sum(counter.calls.values())} API calls, {findings} findings")
        print(f"raw boto3 loop (same S3/KMS/DynamoDB calls): {best_raw:.2f} s, {sum(raw_counter.calls.values())} API calls")
        print(f"S3 API calls per bucket: {s3_calls / args.buckets:.2f}")
        print(f"throughput ratio vigil/raw: {best_raw / best_vigil:.2f} (target >= 0.80; vigil also lists IAM, EC2, RDS, CloudTrail and Backup, which the raw loop skips)")
        repeated = counter.repeated()
        print(f"APIs called twice for one resource: {len(repeated)}" + (f" e.g. {repeated[:3]}" if repeated else ""))
        print("calls by API:", dict(sorted(counter.calls.items())))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
