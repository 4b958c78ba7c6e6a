"""Per-account sessions: refreshable assumed-role credentials, the accounts file, the store and waiver `account:`."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws
from vigil.checks.model import Evidence, Finding, Status
from vigil.checks.waivers import apply_waivers

from tests import org_world as world
from tests.conftest import ROOT
from vigil.accounts.model import Account, AccountsOptions
from vigil.accounts.sessions import assume
from vigil.accounts.sources import load_accounts_file, to_yaml
from vigil.aws import Aws
from vigil.cli.main import main
from vigil.errors import UsageError
from vigil.policy import load_policy
from vigil.policy.models import Waiver

MEMBER = "210987654321"


def _assume_count(account: str, session: str) -> int:
    return sum(1 for r in world.assume_role_requests(account) if r["session"] == session)


@mock_aws
def test_credentials_are_refreshed_before_they_expire() -> None:
    """Role chaining caps a session at one hour: with a short session (15 min, inside botocore's refresh window)
    every use assumes the role again, and the account's clients keep working on the new keys."""
    aws = assume(Aws(), Account(MEMBER), "run-short", "us-east-1", duration_seconds=900)
    s3 = aws.client("s3", "us-east-1")
    first = aws.session.get_credentials().get_frozen_credentials().access_key
    for index in range(3):
        s3.create_bucket(Bucket=f"refresh-{index}-{MEMBER}")
    assert _assume_count(MEMBER, "vigil-run-short") >= 3  # the pre-flight, then again as each call found it expiring
    assert aws.session.get_credentials().get_frozen_credentials().access_key != first
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert names == {f"refresh-{i}-{MEMBER}" for i in range(3)}  # every call landed in the member account


@mock_aws
def test_an_hour_long_session_is_assumed_once() -> None:
    aws = assume(Aws(), Account(MEMBER, external_id="ext-1"), "run-long", "us-east-1")
    for index in range(3):
        aws.client("s3", "us-east-1").create_bucket(Bucket=f"long-{index}-{MEMBER}")
    assert _assume_count(MEMBER, "vigil-run-long") == 1
    assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []  # nothing in the caller's account
    assert [r["external_id"] for r in world.assume_role_requests(MEMBER)] == ["ext-1"]


def test_accounts_file_entries_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "prod.yaml").write_text((ROOT / "policy.yaml").read_text())
    path = tmp_path / "accounts.yaml"
    path.write_text("- account_id: '012345678901'\n  name: prod\n  role: arn:aws:iam::012345678901:role/custom\n"
                    "  regions: [eu-west-1]\n  policy: prod.yaml\n- account_id: 123456789012\n")
    first, second = load_accounts_file(path, AccountsOptions(role_name="auditor", external_id="x-1"))
    assert first == Account("012345678901", "prod", "ACTIVE", "arn:aws:iam::012345678901:role/custom", "vigil-retention",
                            "x-1", ("eu-west-1",), tmp_path / "prod.yaml")
    assert second.role_arn() == "arn:aws:iam::123456789012:role/auditor"
    assert second.role_arn(retention=True) == "arn:aws:iam::123456789012:role/vigil-retention"
    frozen = tmp_path / "frozen.yaml"  # `vigil accounts list` output reads back; accounts not ACTIVE stay comments
    frozen.write_text(to_yaml([first, Account("999999999999", "gone", "SUSPENDED")]))
    assert [(a.id, a.name) for a in load_accounts_file(frozen, AccountsOptions())] == [("012345678901", "prod")]
    assert "# SUSPENDED, not checked:" in frozen.read_text()


@pytest.mark.parametrize(("text", "where"), [
    ("- account_id: 12345\n", "accounts.yaml:1: [0].account_id: 12345 is not an AWS account id"),
    ("- name: prod\n", "accounts.yaml:1: [0].account_id: required key is missing"),
    ("- account_id: '012345678901'\n  rol: x\n", "accounts.yaml:2: [0].rol: unknown key"),
    ("- account_id: '012345678901'\n- account_id: '012345678901'\n", "accounts.yaml:2: [1].account_id: account 012345678901 is listed twice"),
    ("- account_id: '012345678901'\n  regions: [mars-1]\n", "accounts.yaml:2: [0].regions[0]: 'mars-1' is not an AWS region"),
    ("- account_id: '012345678901'\n  policy: missing.yaml\n", "accounts.yaml:2: [0].policy: policy file"),
    ("accounts: []\n", "accounts.yaml:1: accounts: expected a non-empty list"),
    ("- &a [*a]\n", "accounts.yaml:1: (top level): YAML"),
])
def test_accounts_file_errors_name_file_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_accounts_file(path, AccountsOptions())
    assert str(caught.value).startswith(str(tmp_path / where)), str(caught.value)


def test_a_bad_accounts_file_is_exit_2_before_any_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("- account_id: nope\n")
    with mock_aws():
        code = main(["check", "--policy", str(ROOT / "policy.yaml"), "--accounts-file", str(path), "--output", str(tmp_path / "out")])
    assert code == 2
    assert f"{path}:1: [0].account_id" in capsys.readouterr().err
    assert not (tmp_path / "out" / "findings.json").exists()


def test_stores_and_waivers_belong_to_their_account(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["stores"][0]["account"] = MEMBER
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    policy = load_policy(path)
    assert policy.for_account(MEMBER).stores == policy.stores
    assert [s.name for s in policy.for_account("123456789012").stores] == [s.name for s in policy.stores[1:]]
    waiver = Waiver(control="TLS-01", resource="arn:aws:s3:::*", reason="r", owner="o", approval="a",
                    expires=policy.waivers[0].expires if policy.waivers else "2099-01-01", account=MEMBER)
    mine = Finding("TLS-01", "arn:aws:s3:::b", "us-east-1", Status.FAIL, "x", Evidence("s3:GetBucketPolicy", None), account=MEMBER)
    other = Finding("TLS-01", "arn:aws:s3:::b", "us-east-1", Status.FAIL, "x", Evidence("s3:GetBucketPolicy", None), account="123456789012")
    assert set(apply_waivers([waiver], [mine], date(2026, 1, 1))[0]) == {("TLS-01", "arn:aws:s3:::b")}
    assert apply_waivers([waiver], [other], date(2026, 1, 1))[0] == {}
    bad = tmp_path / "bad.yaml"
    data["stores"][0]["account"] = "12"
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(Exception, match=r"stores\[0\]\.account: '12' is not an AWS account id"):
        load_policy(bad)


@mock_aws
def test_accounts_list_freezes_the_organization(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    org = world.create_org(["prod", "dev"], closed=["old"])
    assert main(["accounts", "list", "--org"]) == 0
    frozen = tmp_path / "accounts.yaml"
    frozen.write_text(capsys.readouterr().out)
    listed = {a.id: a.name for a in load_accounts_file(frozen, AccountsOptions())}
    assert listed == {world.MANAGEMENT: listed[world.MANAGEMENT], org.members["prod"]: "prod", org.members["dev"]: "dev"}
    # YAML quotes an id only where it would otherwise read as a number (moto's random ids may start with 0)
    closed = org.members["old"]
    assert f"# - account_id: '{closed}'" in frozen.read_text() or f"# - account_id: {closed}" in frozen.read_text()


@mock_aws
def test_an_account_whose_every_read_is_denied_is_an_error_not_a_pass(tmp_path: Path) -> None:
    org = world.create_org(["locked"])
    locked = org.members["locked"]
    world.role(locked, "vigil-audit", world.DENY_ALL)
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(f"- account_id: '{locked}'\n  name: locked\n  regions: [us-east-1]\n")
    with world.enforced(world.central_identity(denied_accounts=[])):
        code = main(["check", "--policy", str(ROOT / "policy.yaml"), "--accounts-file", str(accounts), "--output", str(tmp_path / "out")])
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert code == 1
    [status] = findings["run"]["accounts"]
    assert status["status"] == "error" and status["reason"].startswith("every read was denied")
    assert {(f["resource"], f["status"]) for f in findings["findings"]} == {(f"arn:aws:iam::{locked}:root", "error")}
