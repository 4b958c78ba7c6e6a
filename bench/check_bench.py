"""Benchmark `vigil check` against a raw boto3 loop (and Prowler, when installed) on one loopback moto server.

For each estate size (default 200 and 1,000 buckets; half compliant, half with defaults
only; 4 of them the policy's data stores; 50 KMS keys, 20 DynamoDB tables) it runs, each
in its own process against the same server:

* `vigil check --region us-east-1` (the real command, findings.json written);
* a raw concurrent boto3 loop making the calls the controls need (every bucket: encryption,
  policy, public access block; data stores also versioning, replication, logging,
  lifecycle, Object Lock; KMS and DynamoDB as the collectors read them), with no records
  and no evaluation;
* `prowler aws --service s3` when a `prowler` executable is found (`--prowler PATH`).

Calls are counted at the server (each request's signing service), so every client is
counted alike. Wall time, CPU (user + system of the measured process) and peak RSS come
from the process's own rusage: the emulator runs in this process, so CPU is client-side
cost only. Prints figures; asserts nothing.

    .venv/bin/python bench/check_bench.py [--buckets 200 1000] [--rounds 1] [--prowler PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import POLICY_HEAD, vigil_env

REGION = "us-east-1"
STORES = 4
_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class CountingServer:
    """A moto server on 127.0.0.1 that counts the requests it answers, by signing service."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        self.calls: Counter = Counter()
        self._lock = threading.Lock()
        app = DomainDispatcherApplication(create_backend_app)

        def counted(environ: dict, start_response: Any) -> Any:
            match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
            with self._lock:
                self.calls[match.group(1) if match else "unsigned"] += 1
            return app(environ, start_response)

        self._server = make_server("127.0.0.1", 0, counted, True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"

    def take(self) -> Counter:
        with self._lock:
            out, self.calls = self.calls, Counter()
        return out

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def seed(url: str, buckets: int, keys: int, tables: int) -> None:
    import boto3

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
        name = bucket_name(i)
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


def bucket_name(i: int) -> str:
    return f"bench-bucket-{i:04d}"


def policy_file(directory: Path) -> Path:
    stores = "\n".join(f"  - {{name: store-{i}, kind: s3, bucket: {bucket_name(i)}, category: records}}" for i in range(STORES))
    path = directory / "policy.yaml"
    path.write_text(POLICY_HEAD + "categories:\n  records: {retain: P1Y, action: delete}\nstores:\n" + stores + "\n")
    return path


# Runs a module or script as __main__ and reports its own peak RSS (VmHWM of its address space:
# rusage's maxrss would include the pages a forked child shares with this big parent before exec).
WRAP = """
import atexit, os, runpy, sys
def report():
    hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    os.write(2, f"\\nBENCH_VmHWM {hwm}\\n".encode())
atexit.register(report)
kind, target = sys.argv[1], sys.argv[2]
sys.argv = [target, *sys.argv[3:]]
if kind == "path":
    sys.path.insert(0, os.path.dirname(target))
runpy.run_module(target, run_name="__main__", alter_sys=True) if kind == "module" else runpy.run_path(target, run_name="__main__")
"""


def measure(python: str, kind: str, target: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one measured process: wall time, CPU (its rusage) and peak RSS (its VmHWM)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.run([python, "-c", WRAP, kind, target, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child is reaped: its CPU is in here now
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    hwm = re.findall(r"BENCH_VmHWM (\d+)", process.stderr)
    return {"wall": wall, "cpu": cpu, "rss_mib": int(hwm[-1]) / 1024 if hwm else float("nan"),
            "exit": process.returncode, "stdout": process.stdout, "stderr": process.stderr}


# --- the raw loop (run as `check_bench.py --raw URL` in its own process) ---------------------


def raw_loop(url: str, workers: int) -> None:
    """The calls the controls need, concurrently, with plain boto3: no records, no evaluation."""
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=workers, retries={"mode": "adaptive", "max_attempts": 8})
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=url, config=config)
    s3control = boto3.client("s3control", region_name=REGION, endpoint_url=url, config=config)
    kms = boto3.client("kms", region_name=REGION, endpoint_url=url, config=config)
    ddb = boto3.client("dynamodb", region_name=REGION, endpoint_url=url, config=config)
    sts = boto3.client("sts", region_name=REGION, endpoint_url=url, config=config)
    stores = {bucket_name(i) for i in range(STORES)}

    def safe(fn: Any, **kw: Any) -> Any:
        try:
            return fn(**kw)
        except Exception as exc:  # the raw loop only needs to make the call
            return exc

    def bucket(name: str) -> None:
        calls = [s3.get_bucket_encryption, s3.get_bucket_policy, s3.get_public_access_block]
        if name in stores:
            calls += [s3.get_bucket_versioning, s3.get_bucket_replication, s3.get_bucket_logging,
                      s3.get_bucket_lifecycle_configuration, s3.get_object_lock_configuration]
        for fn in calls:
            safe(fn, Bucket=name)

    def key(key_id: str) -> None:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        if meta.get("KeyManager") == "CUSTOMER":
            safe(kms.get_key_rotation_status, KeyId=key_id)

    def table(name: str) -> None:
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
        safe(ddb.describe_continuous_backups, TableName=name)
        safe(ddb.list_tags_of_resource, ResourceArn=arn)

    account = sts.get_caller_identity()["Account"]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        names = [b["Name"] for b in s3.list_buckets(MaxBuckets=10_000)["Buckets"]]
        safe(s3.list_buckets, BucketRegion=REGION)  # moto's listing has no BucketRegion: what vigil does instead
        safe(s3control.get_public_access_block, AccountId=account)
        key_ids = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate() for k in page["Keys"]]
        kms.list_aliases()
        table_names = [t for page in ddb.get_paginator("list_tables").paginate() for t in page["TableNames"]]
        list(pool.map(bucket, names))
        list(pool.map(key, key_ids))
        list(pool.map(table, table_names))


# --- the runs -------------------------------------------------------------------------------


def run_size(server: CountingServer, buckets: int, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    requests_reset(server.url)
    seed(server.url, buckets, args.keys, args.tables)
    server.take()
    policy = policy_file(work)
    env = vigil_env()
    runs = {
        "vigil check": (sys.executable, "module", "vigil", ["check", "--policy", str(policy), "--endpoint-url", server.url,
                                                          "--region", REGION, "--output", str(work / "out")]),
        "raw boto3 loop": (sys.executable, "path", str(Path(__file__).resolve()), ["--raw", server.url, "--workers", str(args.workers)]),
    }
    if args.prowler:  # its own interpreter (the shebang of its script), its own virtualenv
        interpreter = Path(args.prowler).read_text(errors="replace").splitlines()[0].removeprefix("#!").strip()
        runs["prowler aws --service s3"] = (interpreter, "path", args.prowler, [
            "aws", "--service", "s3", "--region", REGION, "--no-banner", "--output-formats", "csv",
            "--output-directory", str(work / "prowler")])
    rows = []
    warm(server.url)  # the emulator builds a service's backend on its first call: not the clients' cost
    server.take()
    for label, (python, kind, target, arguments) in runs.items():
        best: dict[str, Any] | None = None
        for _ in range(args.rounds):
            figures = measure(python, kind, target, arguments, {**env, "AWS_ENDPOINT_URL": server.url})
            figures["calls"] = server.take()
            if figures["exit"] not in (0, 1, 3) or (label == "vigil check" and figures["exit"] not in (0, 1)):
                print(f"{label} exited {figures['exit']}: {figures['stderr'][-2000:]}", file=sys.stderr)
            if best is None or figures["wall"] < best["wall"]:
                best = figures
        assert best is not None
        findings = ""
        if label == "vigil check" and (work / "out" / "findings.json").exists():
            findings = f"{len(json.loads((work / 'out' / 'findings.json').read_text())['findings'])} findings"
        rows.append({"label": label, "buckets": buckets, **best, "findings": findings})
    return rows


def warm(url: str) -> None:
    import boto3

    for service, call, kwargs in (("iam", "get_account_summary", {}), ("rds", "describe_db_instances", {}),
                                  ("ec2", "get_ebs_encryption_by_default", {}), ("cloudtrail", "describe_trails", {}),
                                  ("backup", "list_backup_vaults", {}), ("sts", "get_caller_identity", {}),
                                  ("s3control", "list_access_points", {"AccountId": "123456789012"})):
        with contextlib.suppress(Exception):
            getattr(boto3.client(service, region_name=REGION, endpoint_url=url), call)(**kwargs)


def requests_reset(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buckets", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--prowler", default=shutil.which("prowler"), help="a prowler executable to measure beside vigil")
    parser.add_argument("--raw", metavar="URL", help=argparse.SUPPRESS)  # internal: run the raw loop in this process
    args = parser.parse_args()
    if args.raw:
        raw_loop(args.raw, args.workers)
        return
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log would drown the figures
    server = CountingServer()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; moto server in this process")
    print(f"estate: half the buckets compliant, {STORES} of them data stores; {args.keys} KMS keys, {args.tables} tables; "
          f"{args.workers} workers; best of {args.rounds}; prowler: {args.prowler or 'not installed'}")
    print(f"{'run':<28} {'buckets':>7} {'wall s':>8} {'CPU s':>7} {'peak RSS MiB':>13} {'S3 calls/bucket':>16} {'all calls':>9}  note")
    try:
        for buckets in args.buckets:
            with tempfile.TemporaryDirectory() as tmp:
                for row in run_size(server, buckets, args, Path(tmp)):
                    s3_calls = row["calls"].get("s3", 0)
                    print(f"{row['label']:<28} {buckets:>7} {row['wall']:>8.2f} {row['cpu']:>7.2f} {row['rss_mib']:>13.0f} "
                          f"{s3_calls / buckets:>16.2f} {sum(row['calls'].values()):>9}  {row['findings']}")
                    if os.environ.get("BENCH_VERBOSE"):
                        print(f"  exit {row['exit']}, calls {dict(row['calls'])}\n  stderr: {row['stderr'][-1500:]}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
