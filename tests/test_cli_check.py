"""`vigil check` as a user runs it: exit codes 2 and 3, endpoint rules, findings.json on disk."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import ROOT, SPEC
from vigil.aws import is_loopback, validate_endpoint
from vigil.cli.main import main
from vigil.errors import UsageError


@pytest.mark.parametrize("host,ok", [("127.0.0.1", True), ("127.8.9.10", True), ("localhost", True), ("[::1]", True),
                                     ("10.0.0.1", False), ("moto.invalid", False), ("169.254.169.254", False)])
def test_loopback_detection(host: str, ok: bool) -> None:
    assert is_loopback(host.strip("[]")) is ok


def test_plain_http_to_non_loopback_is_refused(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code = main(["check", "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", "http://moto.invalid:5000", "--output", str(tmp_path / "o")])
    assert code == 2
    assert "plain http is accepted only for loopback" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(UsageError):
        validate_endpoint("ftp://127.0.0.1")
    assert validate_endpoint("https://s3.example.invalid/") == "https://s3.example.invalid"


def test_unreachable_endpoint_is_exit_3(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code = main(["check", "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", "http://127.0.0.1:9", "--output", str(tmp_path / "o")])
    assert code == 3
    assert "unreachable" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_no_credentials_is_exit_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, moto_server: str) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask an instance metadata service
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    assert main(["check", "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", moto_server]) == 3
    assert "no AWS credentials" in capsys.readouterr().err


def test_unknown_control_id_is_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["check", "--policy", str(ROOT / "policy.yaml"), "--control", "XYZ-99"]) == 2
    assert "unknown control id XYZ-99" in capsys.readouterr().err


def test_usage_error_is_exit_2() -> None:
    result = subprocess.run([sys.executable, "-m", "vigil", "check", "--no-such-flag"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_version_and_help() -> None:
    result = subprocess.run([sys.executable, "-m", "vigil", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("vigil ")
    result = subprocess.run([sys.executable, "-m", "vigil", "check", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--endpoint-url" in result.stdout


def test_empty_account_writes_schema_valid_findings(moto_server: str, tmp_path: Path) -> None:
    """Nothing deployed: every declared store is reported missing (fail), exit 1, schema-valid file."""
    out = tmp_path / "out"
    code = main(["check", "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", moto_server, "--output", str(out)])
    assert code == 1
    data = json.loads((out / "findings.json").read_text())
    jsonschema.validate(data, json.loads((SPEC / "findings.schema.json").read_text()))
    assert data["run"]["account"] == "123456789012"
    assert {c["id"] for c in data["controls"]} >= {"ENC-01", "TLS-01", "RET-04"}
    keys = [(f["control"], f["resource"]) for f in data["findings"]]
    assert len(keys) == len(set(keys)), "one finding per (control, resource)"
    missing = [f for f in data["findings"] if f["control"] == "TLS-02"]
    assert missing and all(f["status"] == "fail" and "not found" in f["reason"] for f in missing)
    assert sum(data["summary"].values()) == len(data["findings"])


def test_account_public_access_block_is_read_through_a_loopback_endpoint(moto_server: str) -> None:
    """botocore puts the account id in front of s3control hosts; Aws strips it for a custom endpoint."""
    from vigil.aws import Aws

    client = Aws(endpoint_url=moto_server).client("s3control", "us-east-1")
    flags = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    client.put_public_access_block(AccountId="123456789012", PublicAccessBlockConfiguration=flags)
    assert client.get_public_access_block(AccountId="123456789012")["PublicAccessBlockConfiguration"] == flags
