"""A small moto world for the retention tests: the repository policy's stores, replicas, data.

moto cannot backdate LastModified, so data is aged by record timestamps, `closed_at`, or a
future `--as-of`; moto does not replicate, so the replica copies are written here.
"""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import yaml

from tests.conftest import ROOT
from vigil.cli.main import main

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()
NOW = datetime.now(UTC).replace(microsecond=0)
PRIMARY, BACKUP = "us-east-1", "us-west-2"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ago(days: float) -> str:
    return iso(NOW - timedelta(days=days))


class World:
    def __init__(self, tmp_path: Path, monkeypatch, change=None, endpoint: str | None = None):
        monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", KEY_B64)
        self.tmp = tmp_path
        data = yaml.safe_load((ROOT / "policy.yaml").read_text())
        if change is not None:
            change(data)
        self.policy_path = tmp_path / "policy.yaml"
        self.policy_path.write_text(yaml.safe_dump(data, sort_keys=False))
        session = boto3.Session()  # fresh: the default session caches credentials across tests
        self.s3 = {r: session.client("s3", region_name=r, endpoint_url=endpoint) for r in (PRIMARY, BACKUP)}
        self.ddb = session.client("dynamodb", region_name=PRIMARY, endpoint_url=endpoint)
        self.endpoint = endpoint
        self.runs = 0

    # --- building ---------------------------------------------------------------------

    def bucket(self, name: str, region: str = PRIMARY, lock: bool = False, replica: str | None = None) -> None:
        s3 = self.s3[region]
        args: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if lock:
            args["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**args)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if replica:
            self.bucket(replica, BACKUP)
            s3.put_bucket_replication(Bucket=name, ReplicationConfiguration={
                "Role": "arn:aws:iam::123456789012:role/vigil-replication",
                "Rules": [{"ID": "all", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
                           "DeleteMarkerReplication": {"Status": "Disabled"},
                           "Destination": {"Bucket": f"arn:aws:s3:::{replica}"}}]})

    def put(self, bucket: str, key: str, body: bytes | str, region: str = PRIMARY, **extra: Any) -> str:
        if isinstance(body, str):
            body = body.encode()
        return self.s3[region].put_object(Bucket=bucket, Key=key, Body=body, **extra)["VersionId"]

    def table(self, name: str, key: str) -> None:
        self.ddb.create_table(TableName=name, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")

    def account(self, account_id: str, closed_at: str | None = None, **attrs: str) -> None:
        item = {"account_id": {"S": account_id}, **{k: {"S": v} for k, v in attrs.items()}}
        if closed_at:
            item["closed_at"] = {"S": closed_at}
        self.ddb.put_item(TableName="accounts", Item=item)

    # --- reading ----------------------------------------------------------------------

    def versions(self, bucket: str, region: str = PRIMARY) -> list[dict[str, Any]]:
        """Every version and delete marker with its body: the full state, to compare before and after."""
        s3 = self.s3[region]
        answer = s3.list_object_versions(Bucket=bucket)
        out = []
        for v in answer.get("Versions", []):
            got = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            out.append({"key": v["Key"], "version": v["VersionId"], "latest": v["IsLatest"], "body": got["Body"].read(),
                        "metadata": got.get("Metadata", {})})
        for m in answer.get("DeleteMarkers", []):
            out.append({"key": m["Key"], "version": m["VersionId"], "latest": m["IsLatest"], "marker": True})
        return sorted(out, key=lambda v: (v["key"], v["version"]))

    def current(self, bucket: str, key: str, region: str = PRIMARY) -> bytes:
        return self.s3[region].get_object(Bucket=bucket, Key=key)["Body"].read()

    def items(self, table: str) -> list[dict[str, Any]]:
        return self.ddb.scan(TableName=table)["Items"]

    # --- running ----------------------------------------------------------------------

    def retain(self, *args: str, out: Path | None = None) -> tuple[int, dict[str, Any], Path]:
        self.runs += 1
        out = out or self.tmp / f"run{self.runs}"
        endpoint = ["--endpoint-url", self.endpoint] if self.endpoint else []
        code = main(["retain", "--policy", str(self.policy_path), "--output", str(out), *endpoint, *args])
        plan_path = out / "retention-plan.json"
        plan = json.loads(plan_path.read_text()) if plan_path.exists() else {}
        return code, plan, out


def store_plan(plan: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in plan["stores"] if s["store"] == name)


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_world_builds_and_an_empty_store_plans_clean(tmp_path: Path, monkeypatch) -> None:
    from moto import mock_aws

    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-billing")
        code, plan, _ = world.retain("--store", "billing")
        assert code == 0
        assert plan["schema"] == "vigil.retention-plan/v1"
        assert store_plan(plan, "billing")["counts"] == dict.fromkeys(["delete", "anonymize", "suppress", "keep", "held", "error"], 0)
