"""deploy/batch_handler.py: S3 Batch Operations (LambdaInvoke, schema 2.0) called in process against
moto: delete, Object Lock and legal hold refused, a policy hold refused, a vanished version, throttling;
and for stores whose records are read, the retention rewrite (the same object `vigil retain --apply`
writes), holds, throttling, a vanished version and a rewrite interrupted before its raw version went."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import botocore.exceptions
import pytest
import yaml
from moto import mock_aws
from vigil.retention import faults
from vigil.retention.batch_ops import Shared, handle
from vigil.retention.inventory import REPLACES

from tests.aging import YEAR, written_ago
from tests.conftest import ROOT
from tests.test_deploy_lambda import load_deploy_module
from tests.test_retention_s3 import live_logs, old_logs
from tests.test_retention_world import BACKUP, World, jsonl
from vigil.aws import Aws
from vigil.policy import load_policy

BILLING, CONSENT, LOGS = "example-billing", "example-sms-consent", "example-usage-logs"


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


# --- stores whose records are read: the retention rewrite ------------------------------------


def _hold_web(data: dict[str, Any]) -> None:
    data["holds"] = [{"reason": "litigation 7", "prefixes": ["web/held/"]}]


def _logs_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lock: bool = False, replica: str | None = None) -> World:
    """Inside mock_aws: the repository policy (plus a hold on web/held/) and the web-logs bucket."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    world = World(tmp_path, monkeypatch, _hold_web)
    world.bucket(LOGS, lock=lock, replica=replica)
    monkeypatch.setenv("VIGIL_POLICY", str(world.policy_path))
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return world


def _written(world: World, key: str, raw: str) -> tuple[bytes, dict[str, str], list[dict[str, str]], str]:
    """The key's only version (the raw one is gone): body, metadata less the raw id it replaced, tags, type."""
    versions = world.versions(LOGS)
    assert [v["key"] for v in versions] == [key], "the raw version must be gone, the rewrite the only version"
    metadata = dict(versions[0]["metadata"])
    assert metadata.pop(REPLACES) == raw
    s3 = world.s3["us-east-1"]
    return (versions[0]["body"], metadata, s3.get_object_tagging(Bucket=LOGS, Key=key)["TagSet"],
            s3.head_object(Bucket=LOGS, Key=key)["ContentType"])


def test_anonymizing_rewrite_writes_what_retain_apply_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = jsonl(old_logs(6) + live_logs(2))
    written = {}
    for how in ("retain", "batch"):
        with mock_aws():
            world = _logs_world(tmp_path / how, monkeypatch)
            raw = world.put(LOGS, "web/a.jsonl", body, Tagging="team=web", ContentType="application/x-ndjson")
            if how == "retain":
                code, plan, _ = world.retain("--apply", "--store", "web-logs")
                assert code == 0, plan
            else:
                code, text = _result(load_deploy_module("batch_handler").handler(event(LOGS, "web/a.jsonl", raw)))
                assert code == "Succeeded" and text.startswith("rewritten as version "), text
                assert "(anonymize 6, suppress 0, delete 0, keep 2)" in text
            written[how] = _written(world, "web/a.jsonl", raw)
    assert written["batch"] == written["retain"]
    content = [json.loads(line) for line in written["batch"][0].decode().splitlines()]
    assert content[0]["ip"] == "203.0.113.0/24" and content[6:] == live_logs(2)


def test_records_under_a_hold_or_an_object_lock_legal_hold_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        world = _logs_world(tmp_path, monkeypatch, lock=True)
        module = load_deploy_module("batch_handler")
        held = world.put(LOGS, "web/held/a.jsonl", jsonl(old_logs(6)))
        legal = world.put(LOGS, "web/legal.jsonl", jsonl(old_logs(6)), ObjectLockLegalHoldStatus="ON")
        before = world.versions(LOGS)
        assert _result(module.handler(event(LOGS, "web/held/a.jsonl", held))) == ("PermanentFailure", "held: legal hold: litigation 7")
        assert _result(module.handler(event(LOGS, "web/legal.jsonl", legal))) == ("PermanentFailure", "held: S3 Object Lock legal hold")
        young = world.put(LOGS, "web/young.jsonl", jsonl(live_logs(3)))
        assert _result(module.handler(event(LOGS, "web/young.jsonl", young)))[1].startswith("not past retention now")
        assert [v for v in world.versions(LOGS) if v["key"] != "web/young.jsonl"] == before, "nothing held was touched"


@pytest.mark.parametrize(("operation", "error"), [("GetObject", "SlowDown"), ("PutObject", "503")])
def test_rewrite_throttled_is_a_temporary_failure_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     operation: str, error: str) -> None:
    with mock_aws():
        world = _logs_world(tmp_path, monkeypatch)
        raw = world.put(LOGS, "web/busy.jsonl", jsonl(old_logs(6)))
        before = world.versions(LOGS)
        aws = Aws()

        def throttled(**_kwargs: Any) -> None:
            raise botocore.exceptions.ClientError({"Error": {"Code": error, "Message": "Please reduce your request rate."}}, operation)

        aws.session.events.register(f"before-call.s3.{operation}", throttled)
        policy = load_policy(world.policy_path)
        answer = handle(aws, policy, event(LOGS, "web/busy.jsonl", raw), datetime.now(UTC), "us-east-1", Shared(policy))
        assert _result(answer) == ("TemporaryFailure", f"{operation}: {error}")
        assert world.versions(LOGS) == before


def test_rewrite_vanished_version_is_succeeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        world = _logs_world(tmp_path, monkeypatch)
        gone = world.put(LOGS, "web/gone.jsonl", jsonl(old_logs(6)))
        world.s3["us-east-1"].delete_object(Bucket=LOGS, Key="web/gone.jsonl", VersionId=gone)
        assert _result(load_deploy_module("batch_handler").handler(event(LOGS, "web/gone.jsonl", gone))) == ("Succeeded", "already gone")


class Killed(BaseException):
    """The Lambda stopped dead (a timeout): nothing after the point runs, no result is returned."""


def test_a_rewrite_killed_before_its_raw_delete_is_finished_by_the_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        world = _logs_world(tmp_path, monkeypatch)
        module = load_deploy_module("batch_handler")
        raw = world.put(LOGS, "web/a.jsonl", jsonl(old_logs(6)))

        def kill(**_context: Any) -> None:
            raise Killed

        monkeypatch.setitem(faults.hooks, "rewrite.before_raw_delete", kill)
        with pytest.raises(Killed):
            module.handler(event(LOGS, "web/a.jsonl", raw))
        assert len(world.versions(LOGS)) == 2, "the rewrite is written, the raw version not yet deleted"
        monkeypatch.delitem(faults.hooks, "rewrite.before_raw_delete")
        assert _result(module.handler(event(LOGS, "web/a.jsonl", raw))) == ("Succeeded", "deleted")  # S3 retries the task
        (only,) = world.versions(LOGS)
        assert only["metadata"][REPLACES] == raw and all(json.loads(x)["email"] == "[REDACTED]" for x in only["body"].decode().splitlines())


def test_a_replica_is_handled_as_its_store_in_its_own_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        world = _logs_world(tmp_path, monkeypatch, replica=f"{LOGS}-replica")
        raw = world.put(f"{LOGS}-replica", "web/a.jsonl", jsonl(old_logs(6)), region=BACKUP)
        monkeypatch.setenv("AWS_REGION", BACKUP)  # the replica's job runs in the replica's region
        module = load_deploy_module("batch_handler")
        code, text = _result(module.handler(event(f"{LOGS}-replica", "web/a.jsonl", raw)))
        assert code == "Succeeded" and text.startswith("rewritten"), text
        (only,) = world.versions(f"{LOGS}-replica", BACKUP)
        assert only["metadata"][REPLACES] == raw and b"203.0.113.0/24" in only["body"]
        code, text = _result(module.handler(event(f"{LOGS}-replica", "other/a.jsonl", raw)))
        assert code == "PermanentFailure" and "in no store of the policy" in text, "outside the store's prefix"


def test_a_rewrite_judged_by_dataset_wide_k_is_refused_and_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def dataset_k(data: dict[str, Any]) -> None:
        _hold_web(data)
        data["categories"]["usage_logs"]["verify"]["scope"] = "dataset"

    with mock_aws():
        world = World(tmp_path, monkeypatch, dataset_k)
        world.bucket(LOGS)
        monkeypatch.setenv("VIGIL_POLICY", str(world.policy_path))
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        raw = world.put(LOGS, "web/a.jsonl", jsonl(old_logs(6)))
        before = world.versions(LOGS)
        code, text = _result(load_deploy_module("batch_handler").handler(event(LOGS, "web/a.jsonl", raw)))
        assert code == "PermanentFailure" and "verify.scope: dataset" in text
        assert world.versions(LOGS) == before
