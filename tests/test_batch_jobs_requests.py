"""The S3 Batch Operations executor's requests and flags: CreateJob checked by botocore's Stubber against
the s3control model (idempotency token, ConfirmationRequired), flags that could destroy data early
refused with exit 2 before anything is read, and the IAM it adds only when used."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from vigil.retention.batch_jobs import PREFIX, BatchExecutor, BatchSettings, Location, manifest_line, takes
from vigil.retention.batch_reports import classify
from vigil.retention.keys import RetentionKeys

from tests.conftest import ROOT
from vigil import permissions
from vigil.aws import Aws
from vigil.cli.main import main

ROLE = "arn:aws:iam::123456789012:role/vigil-batch"
SETTINGS = BatchSettings("vigil-batch", "arn:aws:lambda:{region}:123456789012:function:vigil-batch", ROLE, priority=7)
KEYS = RetentionKeys(bytes(range(32)))


class _Ledger:
    """Only records lines (the real ledger is exercised in test_batch_jobs.py)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def write(self, phase: str, action: dict[str, Any], target: dict[str, Any], outcome: str | None = None, detail: Any = None) -> None:
        self.lines.append((phase, action, target))


def _action(keys: list[str]) -> dict[str, Any]:
    objects = [[key, f"v{i}"] for i, key in enumerate(keys)]
    return {"action": "delete_versions", "store": "billing", "location": "example-billing", "region": "us-east-1",
            "objects": objects, "count": len(objects), "bytes": 10 * len(objects), "action_id": "a" * 32}


@pytest.mark.parametrize("apply", [True, False])
def test_create_job_request_is_valid_and_idempotent(apply: bool) -> None:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="vigil-batch")
        control = boto3.client("s3control", region_name="us-east-1")
        stub = Stubber(control)
        ledger = _Ledger()
        executor = BatchExecutor(Aws(), KEYS, SETTINGS, apply, control=lambda region: control)
        expected: dict[str, Any] = {}

        def expect(token: str, etag: str) -> None:
            expected.update({
                "AccountId": "123456789012", "ConfirmationRequired": not apply, "ClientRequestToken": token,
                "Operation": {"LambdaInvoke": {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:vigil-batch",
                                               "InvocationSchemaVersion": "2.0", "UserArguments": {"vigil_job": token}}},
                "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key", "VersionId"]},
                             "Location": {"ObjectArn": f"arn:aws:s3:::vigil-batch/{PREFIX}manifests/{token}.csv", "ETag": etag}},
                "Report": {"Bucket": "arn:aws:s3:::vigil-batch", "Format": "Report_CSV_20180820", "Enabled": True,
                           "Prefix": f"{PREFIX}reports", "ReportScope": "AllTasks"},
                "Priority": 7, "RoleArn": ROLE, "Description": "vigil retention: 2 planned versions of example-billing"})

        keys = ["invoices/s1/a b.json", "invoices/s1/c,d.json"]
        body = b"".join(manifest_line("example-billing", key, f"v{i}") for i, key in enumerate(keys))
        location = Location("billing", "example-billing", "us-east-1", Path(os.devnull))
        location.token.update(_action(keys)["action_id"].encode())
        expect(location.job_action["action_id"], hashlib.md5(body).hexdigest())  # noqa: S324 - a one-part upload's ETag
        for _ in range(2):
            stub.add_response("create_job", {"JobId": "11111111-2222-3333-4444-555555555555"}, expected)
        written_then: list[int] = []  # ledger lines at the moment CreateJob is called
        control.meta.events.register("provide-client-params.s3-control.CreateJob", lambda **_: written_then.append(len(ledger.lines)))
        with stub:
            first = executor.submit(ledger, [_action(keys)])
            again = BatchExecutor(Aws(), KEYS, SETTINGS, apply, control=lambda region: control).submit(_Ledger(), [_action(keys)])
            stub.assert_no_pending_responses()
        assert first[0].token == again[0].token == expected["ClientRequestToken"], "the same plan asks with the same token"
        assert [phase for phase, _, _ in ledger.lines] == ["intent", "job"]
        assert written_then[0] == 1, "the intent is in the ledger before CreateJob is called"
        assert ledger.lines[0][2]["manifest"]["etag"] == expected["Manifest"]["Location"]["ETag"]
        assert first[0].confirmation_required is (not apply)


def test_create_job_is_rejected_by_the_model_when_malformed() -> None:
    """The Stubber validates against the s3control model: a priority AWS would refuse never reaches it."""
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="vigil-batch")
        control = boto3.client("s3control", region_name="us-east-1")
        bad = BatchSettings("vigil-batch", "vigil-batch", ROLE, priority=-1)
        stub = Stubber(control)
        stub.add_response("create_job", {"JobId": "11111111-2222-3333-4444-555555555555"})
        with stub, pytest.raises(Exception, match="Priority"):
            BatchExecutor(Aws(), KEYS, bad, True, control=lambda region: control).submit(_Ledger(), [_action(["k"])])


def test_what_the_jobs_carry() -> None:
    assert takes({"action": "delete_versions"}) and takes({"action": "anonymize_object"}) and takes({"action": "rewrite_object"})
    assert not takes({"action": "anonymize_object", "k_scope": "dataset"}), "dataset-wide k needs the location's suppression set"
    assert not takes({"action": "delete_items"}) and not takes({"action": "delete_recovery_point"})


def test_manifest_rows_and_report_rows() -> None:
    assert manifest_line("b", "invoices/s1/a b,+%ü.json", "v1") == b"b,invoices/s1/a%20b%2C%2B%25%C3%BC.json,v1\n"
    # AWS's documented example rows: HTTP status before the error code
    assert classify(["b", "k", "v", "failed", "200", "PermanentFailure", "held: S3 Object Lock legal hold"]) == \
        ("held", "held: S3 Object Lock legal hold")
    assert classify(["b", "k", "v", "succeeded", "200", "", "deleted"]) == ("deleted", "")
    assert classify(["b", "k", "v", "failed", "PermanentFailure", "200", "Lambda returned function error: invoices/x.json"]) == \
        ("failed", "PermanentFailure"), "a message that is not the handler's own might name a key: the code alone"


def _retain(*args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return main(["retain", "--policy", str(ROOT / "policy.yaml"), *args])


BATCH = ["--executor", "batch-operations", "--batch-bucket", "b", "--batch-function", "f", "--batch-role", ROLE]
FUTURE = (datetime.now(UTC) + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("args, message", [
    (["--executor", "bogus"], "--executor 'bogus'"),
    (["--executor", "batch-operations"], "--batch-bucket"),
    (BATCH[:4], "--batch-function"),
    (BATCH[:6], "--batch-role"),
    ([*BATCH[:6], "--batch-role", "vigil-batch"], "not an IAM role ARN"),
    ([*BATCH, "--as-of", FUTURE], "--as-of in the future"),
    ([*BATCH, "--as-of", FUTURE, "--apply"], "future"),
    ([*BATCH, "--engine", "spark"], "--engine local"),
    ([*BATCH, "--batch-priority", "-1"], "--batch-priority"),
    (["--collect", "job-1"], "--collect needs --output"),
    (["--collect", "job-1", "--output", "x", "--apply"], "takes no --apply"),
])
def test_flags_that_could_destroy_early_are_refused(args: list[str], message: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://vigil-refused.invalid")  # nothing may be asked of AWS
    assert _retain(*args) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "nothing written"


def test_collect_needs_the_ledger_of_the_run(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://vigil-refused.invalid")
    assert _retain("--collect", "job-1", "--output", str(tmp_path)) == 2
    assert "ledger.jsonl does not exist" in capsys.readouterr().err


def _policy(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["iam-policy", "retain", "--policy", str(ROOT / "policy.yaml"), "--account", "123456789012", *args]) == 0
    return json.loads(out.getvalue())


def test_iam_for_the_executor_only_when_it_is_used() -> None:
    plain = _policy()
    batch = _policy("--executor", "batch-operations", "--batch-bucket", "vigil-batch-{region}", "--batch-role", ROLE)
    actions = lambda doc: {a for st in doc["Statement"] for a in st["Action"]}  # noqa: E731
    assert not {"s3:CreateJob", "s3:DescribeJob", "iam:PassRole"} & actions(plain)
    assert {"s3:CreateJob", "s3:DescribeJob", "iam:PassRole"} <= actions(batch)
    by_sid = {st["Sid"]: st for st in batch["Statement"]}
    assert by_sid["BatchPassRole"]["Resource"] == [ROLE]
    assert by_sid["BatchPassRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "batchoperations.s3.amazonaws.com"}}
    assert by_sid["BatchCreateJob"]["Condition"] == {"StringEquals": {"s3:RequestJobOperation": "LambdaInvoke"}}
    assert sorted(by_sid["BatchObjects"]["Resource"]) == [f"arn:aws:s3:::vigil-batch-{r}/{PREFIX}*" for r in ("us-east-1", "us-west-2")]
    # every call the executor's code makes is in the policy (derived from the call sites, as for retain itself)
    needed = {a for site, _ in permissions.sites([permissions.BATCH_JOBS]) for a in permissions.actions([permissions.BATCH_JOBS])}
    assert needed <= actions(batch) | {""}
    assert permissions.BATCH_PREFIX == PREFIX
