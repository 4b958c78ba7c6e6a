"""deploy/batch_handler.py: S3 Batch Operations (LambdaInvoke, schema 2.0) called in process against
moto: delete, Object Lock and legal hold refused, a policy hold refused, a vanished version, throttling."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import botocore.exceptions
import pytest
import yaml
from moto import mock_aws
from vigil.retention.batch_ops import handle

from tests.aging import YEAR, written_ago
from tests.conftest import ROOT
from tests.test_deploy_lambda import load_deploy_module
from vigil.aws import Aws
from vigil.policy import load_policy

BILLING, CONSENT = "example-billing", "example-sms-consent"


def event(bucket: str, key: str, version: str | None) -> dict[str, Any]:
    return {"invocationSchemaVersion": "2.0", "invocationId": "aW52b2NhdGlvbg", "job": {"id": "job-1", "userArguments": {}},
            "tasks": [{"taskId": "dGFzaw", "s3Bucket": bucket, "s3Key": quote_plus(key), "s3VersionId": version}]}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["holds"] = [{"reason": "litigation 42", "prefixes": ["invoices/held/"]}]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("VIGIL_POLICY", str(path))
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for name, lock in ((BILLING, False), (CONSENT, True)):
            s3.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock else {}))
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        yield s3, load_deploy_module("batch_handler"), path


def _put(s3: Any, bucket: str, key: str, **extra: Any) -> str:
    with written_ago(8 * YEAR):
        return s3.put_object(Bucket=bucket, Key=key, Body=b"{}", **extra)["VersionId"]


def _result(answer: dict[str, Any]) -> tuple[str, str]:
    assert answer["invocationSchemaVersion"] == "2.0" and answer["invocationId"] == "aW52b2NhdGlvbg"
    assert answer["treatMissingKeysAs"] == "PermanentFailure"
    (result,) = answer["results"]
    assert result["taskId"] == "dGFzaw"
    return result["resultCode"], result["resultString"]


def _versions(s3: Any, bucket: str) -> list[str]:
    return [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket).get("Versions", [])]


def test_expired_version_is_deleted_and_only_that_version(world) -> None:
    s3, module, _ = world
    old = _put(s3, BILLING, "invoices/s1/a b+c.json")
    new = s3.put_object(Bucket=BILLING, Key="invoices/s1/a b+c.json", Body=b"{}")["VersionId"]
    assert _result(module.handler(event(BILLING, "invoices/s1/a b+c.json", old))) == ("Succeeded", "deleted")
    assert _versions(s3, BILLING) == [new]


def test_object_lock_retention_and_legal_hold_are_permanent_failures(world) -> None:
    s3, module, _ = world
    until = datetime.now(UTC) + timedelta(days=400)
    locked = _put(s3, CONSENT, "c/locked.json", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    legal = _put(s3, CONSENT, "c/legal.json", ObjectLockLegalHoldStatus="ON")
    code, text = _result(module.handler(event(CONSENT, "c/locked.json", locked)))
    assert (code, text) == ("PermanentFailure", f"held: S3 Object Lock COMPLIANCE retention until {until.date().isoformat()}")
    code, text = _result(module.handler(event(CONSENT, "c/legal.json", legal)))
    assert (code, text) == ("PermanentFailure", "held: S3 Object Lock legal hold")
    assert sorted(_versions(s3, CONSENT)) == sorted([locked, legal])


def test_policy_hold_and_too_young_are_refused(world) -> None:
    s3, module, _ = world
    held = _put(s3, BILLING, "invoices/held/x.json")
    young = s3.put_object(Bucket=BILLING, Key="invoices/s1/young.json", Body=b"{}")["VersionId"]
    assert _result(module.handler(event(BILLING, "invoices/held/x.json", held))) == ("PermanentFailure", "held: legal hold: litigation 42")
    code, text = _result(module.handler(event(BILLING, "invoices/s1/young.json", young)))
    assert code == "PermanentFailure" and "not past retention" in text
    assert len(_versions(s3, BILLING)) == 2


def test_vanished_version_is_succeeded(world) -> None:
    s3, module, _ = world
    gone = _put(s3, BILLING, "invoices/s1/gone.json")
    s3.delete_object(Bucket=BILLING, Key="invoices/s1/gone.json", VersionId=gone)
    assert _result(module.handler(event(BILLING, "invoices/s1/gone.json", gone))) == ("Succeeded", "already gone")


def test_a_bucket_outside_the_policy_and_a_task_without_version_are_refused(world) -> None:
    s3, module, _ = world
    s3.create_bucket(Bucket="elsewhere")
    assert _result(module.handler(event("elsewhere", "k", "v")))[0] == "PermanentFailure"
    code, text = _result(module.handler(event(BILLING, "invoices/s1/x.json", None)))
    assert code == "PermanentFailure" and "names no bucket, key or version id" in text


@pytest.mark.parametrize("operation", ["HeadObject", "DeleteObject"])
@pytest.mark.parametrize("error", ["SlowDown", "503"])
def test_throttling_is_a_temporary_failure(world, operation: str, error: str) -> None:
    s3, _, path = world
    version = _put(s3, BILLING, "invoices/s1/busy.json")
    aws = Aws()

    def throttled(**_kwargs: Any) -> None:
        raise botocore.exceptions.ClientError({"Error": {"Code": error, "Message": "Please reduce your request rate."}}, operation)

    aws.session.events.register(f"before-call.s3.{operation}", throttled)
    answer = handle(aws, load_policy(path), event(BILLING, "invoices/s1/busy.json", version), datetime.now(UTC), "us-east-1")
    assert _result(answer) == ("TemporaryFailure", f"{operation}: {error}")
    assert _versions(s3, BILLING) == [version]
