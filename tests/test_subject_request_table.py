"""The subject-request log holds subject ids: the stack declares it with every table's protections
(CMK, PITR, backup selection, deletion protection) and Vigil never creates it (no CreateTable grant)."""
from __future__ import annotations

from pathlib import Path

import pytest
from vigil.checks.model import Status
from vigil.infra.deploytime import evaluate_declared
from vigil.infra.mocks import ACCOUNT_ID, declare_stack

from tests.helpers import policy_variant
from vigil.cli.main import main

REQUESTS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/subject-requests"


def _with_request_log(data: dict) -> None:
    data["requests"] = {"table": "subject-requests", "deadline": "P30D"}


def test_request_log_is_declared_and_passes_the_deploy_time_controls(tmp_path: Path) -> None:
    policy = policy_variant(tmp_path, _with_request_log)
    declared = declare_stack(policy).resources
    (table,) = [r for r in declared if r.type == "aws:dynamodb/table:Table" and r.get("name") == "subject-requests"]
    assert table.get("hashKey") == "id"
    assert table.get("serverSideEncryption")["enabled"] is True and table.get("serverSideEncryption")["kmsKeyArn"].startswith("arn:aws:kms:")
    assert table.get("pointInTimeRecovery") == {"enabled": True} and table.get("deletionProtectionEnabled") is True

    findings = [f for f in evaluate_declared(declared, policy) if f.resource == REQUESTS]
    verdicts = {f.control: f.status for f in findings}
    assert {c: verdicts.get(c) for c in ("ENC-02", "ENC-04", "BAK-04", "BAK-05")} == dict.fromkeys(
        ("ENC-02", "ENC-04", "BAK-04", "BAK-05"), Status.PASS), [(f.control, f.status, f.reason) for f in findings]
    assert not [f for f in findings if f.status != Status.PASS]


def test_iam_policy_subject_reaches_the_request_log_but_never_creates_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    policy = policy_variant(tmp_path, _with_request_log)
    assert main(["iam-policy", "subject", "--policy", policy.source_path, "--account", ACCOUNT_ID]) == 0
    printed = capsys.readouterr().out
    assert REQUESTS in printed and "dynamodb:PutItem" in printed
    assert "dynamodb:CreateTable" not in printed
