"""The Lambda handler against a loopback moto server, and the Pulumi declaration under mocks."""
from __future__ import annotations

import base64
import importlib.util
import json
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pulumi
import pytest

from vigil.errors import UsageError
from vigil.locks import S3Lock
from vigil.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def load_deploy_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DEPLOY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def endpoint(moto_server: str) -> str:
    return moto_server


@pytest.fixture
def lambda_env(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="example-evidence", ObjectLockEnabledForBucket=True)
    s3.create_bucket(Bucket="vigil-locks")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("VIGIL_POLICY", str(ROOT / "policy.yaml"))
    monkeypatch.setenv("VIGIL_REGIONS", "us-east-1")
    monkeypatch.setenv("VIGIL_UPLOAD", "s3://example-evidence/packs")
    monkeypatch.setenv("VIGIL_LOCK_BUCKET", "vigil-locks")
    monkeypatch.setenv("VIGIL_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(b"k" * 32).decode())
    return s3


def test_handler_runs_the_job_uploads_the_pack_and_releases_its_lock(lambda_env: Any, tmp_path: Path) -> None:
    handler = load_deploy_module("lambda_handler")
    earlier, unrelated = tmp_path / "work" / "20261101T020000Z-retain-abc123", tmp_path / "work" / "keep-me"
    earlier.mkdir(parents=True)
    unrelated.mkdir()
    summary = handler.handler({"job": "check"}, None)
    assert not earlier.exists() and unrelated.exists()  # a warm /tmp drops old runs, and only those
    assert summary["job"] == "check" and summary["exit_code"] in (0, 1)
    assert summary["stages"]["check"] in (0, 1)
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == tmp_path / "work" and "-check-" in run_dir.name
    assert json.loads((run_dir / "findings.json").read_text())["summary"] == summary["findings"]
    if "report" in summary["stages"] and not str(summary["stages"]["report"]).startswith("skipped"):
        assert summary["stages"]["report"] == 0
        keys = [o["Key"] for o in lambda_env.list_objects_v2(Bucket="example-evidence").get("Contents", [])]
        assert any(k.endswith("/manifest.json") for k in keys)
    assert "Contents" not in lambda_env.list_objects_v2(Bucket="vigil-locks")


def test_handler_skips_while_another_invocation_holds_the_lock(lambda_env: Any, endpoint: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_deploy_module("lambda_handler")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    from datetime import timedelta
    held = S3Lock(s3, "vigil-locks", "vigil/locks/retain.lock", timedelta(minutes=15))
    assert held.acquire()
    assert handler.handler({"job": "retain"}, None) == {"job": "retain", "skipped": True}
    monkeypatch.setenv("VIGIL_APPLY", "true")  # a "run" that applies takes the same lock as "retain"
    assert handler.handler({"job": "run"}, None) == {"job": "run", "skipped": True}
    held.release()


def test_handler_raises_on_environment_failure_and_unknown_jobs(lambda_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_deploy_module("lambda_handler")
    with pytest.raises(handler.JobFailed, match="unknown job"):
        handler.handler({"job": "delete-everything"}, None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{dead}")
    monkeypatch.delenv("VIGIL_LOCK_BUCKET")
    with pytest.raises(handler.JobFailed, match="exited 3"):
        handler.handler({"job": "check"}, None)


def test_only_the_environment_turns_on_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = load_deploy_module("lambda_handler")
    monkeypatch.setenv("VIGIL_APPLY", "true")
    assert handler.options_from_env("retain").apply is True
    assert handler.options_from_env("check").apply is False
    assert handler.options_from_env("report").apply is False  # the report job plans, never applies
    monkeypatch.setenv("VIGIL_APPLY", "false")
    assert handler.options_from_env("retain").apply is False
    monkeypatch.setenv("VIGIL_MAX_DELETE", "many")
    with pytest.raises(UsageError, match="VIGIL_MAX_DELETE"):
        handler.options_from_env("retain")


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[tuple[str, str, dict]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.resources.append((args.typ, args.name, dict(args.inputs)))
        outputs = dict(args.inputs)
        outputs.setdefault("arn", f"arn:aws:mock:::{args.name}")
        outputs.setdefault("name", args.name)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


@pytest.fixture
def declared() -> list[tuple[str, str, dict]]:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="vigil", stack="test", preview=False)
    module = load_deploy_module("lambda_schedule")

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        component = module.VigilScheduledLambda(
            "vigil-job", load_policy(ROOT / "policy.yaml"), code=pulumi.AssetArchive({}),
            environment={"VIGIL_UPLOAD": "s3://example-evidence/packs", "VIGIL_APPLY": "true",
                         "VIGIL_SIGNING_KEY": "kms:alias/vigil-signing"})
        return pulumi.Output.all(component.function.arn, *[r.arn for r in component.rules.values()])

    program()
    return mocks.resources


def test_pulumi_declares_one_rule_per_policy_job_targeting_the_function(declared: list) -> None:
    by_type: dict[str, list] = {}
    for typ, name, inputs in declared:
        by_type.setdefault(typ, []).append((name, inputs))
    (function,) = by_type["aws:lambda/function:Function"]
    assert function[1]["handler"] == "lambda_handler.handler" and function[1]["runtime"] == "python3.11"
    assert function[1]["environment"]["variables"]["VIGIL_APPLY"] == "true"
    rules = {name: inputs["scheduleExpression"] for name, inputs in by_type["aws:cloudwatch/eventRule:EventRule"]}
    assert rules == {"vigil-job-check": "rate(6 hours)", "vigil-job-retain": "cron(0 2 * * ? *)",
                     "vigil-job-report": "cron(0 6 ? * MON *)"}
    targets = {name: json.loads(inputs["input"]) for name, inputs in by_type["aws:cloudwatch/eventTarget:EventTarget"]}
    assert targets == {f"vigil-job-{k}": {"job": k} for k in ("check", "retain", "report")}
    permissions = by_type["aws:lambda/permission:Permission"]
    assert len(permissions) == 3 and all(p["principal"] == "events.amazonaws.com" for _, p in permissions)
    (role_policy,) = by_type["aws:iam/rolePolicy:RolePolicy"]
    statements = {s["Sid"]: s for s in json.loads(role_policy[1]["policy"])["Statement"]}
    assert {"AccountWide", "StoreObjects", "EvidenceObjects", "SigningKey"} <= set(statements)
    assert statements["SigningKey"]["Condition"] == {"StringEquals": {"kms:RequestAlias": "alias/vigil-signing"}}
    assert statements["SigningKey"]["Action"] == ["kms:GetPublicKey", "kms:Sign"]
    (role,) = by_type["aws:iam/role:Role"]
    assert json.loads(role[1]["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
