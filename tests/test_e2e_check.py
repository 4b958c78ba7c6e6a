"""End to end: a moto server on 127.0.0.1, a seeded estate (compliant plus deliberately broken),
and the `vigil` CLI run as a user runs it, in a subprocess with --endpoint-url."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import boto3
import jsonschema
import pytest
from vigil.checks.catalogue import catalogue

from tests import builders_services as services
from tests.builders_s3 import bucket_policy, build_s3_estate, protect_bucket
from tests.conftest import ROOT, SPEC
from tests.helpers import repo_policy

pytestmark = pytest.mark.e2e
ACCOUNT = "123456789012"


def seed(policy) -> None:
    """Everything compliant, then three things broken on purpose."""
    estate = build_s3_estate(policy)
    primary, backup = policy.regions.primary, policy.regions.backup
    tags = {"vigil:backup": "daily"}
    services.encrypted_table("referrals", primary, key_arn=estate.keys[primary], tags=tags)
    services.encrypted_table("accounts", primary, key_arn=estate.keys[primary], tags=tags)
    services.multi_region_trail(region=primary)
    trail_bucket = f"vigil-audit-trail-logs-{primary}"
    delivery = {"Sid": "CloudTrailDelivery", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{trail_bucket}/AWSLogs/*"}
    protect_bucket(trail_bucket, primary, estate.keys[primary], ACCOUNT, [], mfa_gate=False, lead=[delivery])
    services.ebs_encryption_by_default([primary, backup])
    services.backup_vaults_and_plan(primary, backup)
    services.rds_instance("vigil-reporting", primary)
    iam = boto3.client("iam", region_name=primary)
    trust_mfa = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                 "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}
    iam.create_role(RoleName="data-steward", AssumeRolePolicyDocument=json.dumps(trust_mfa))
    service_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    for role in policy.access.service_roles:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(service_trust))
    # Broken 1: the billing bucket loses its TLS deny (keeps the TLS-version and MFA statements).
    weak = bucket_policy("example-billing", ACCOUNT, policy.access.service_roles)
    weak["Statement"] = [s for s in weak["Statement"] if "aws:SecureTransport" not in json.dumps(s)]
    boto3.client("s3", region_name=primary).put_bucket_policy(Bucket="example-billing", Policy=json.dumps(weak))
    # Broken 2: referrals loses point-in-time recovery.
    boto3.client("dynamodb", region_name=primary).update_continuous_backups(
        TableName="referrals", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    # Broken 3: a console user without MFA.
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Correct-Horse-9")


@pytest.fixture
def estate(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)  # the builders' boto3 clients go to the server too
    seed(repo_policy())
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    return moto_server


def run_vigil(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    return subprocess.run([sys.executable, "-m", "vigil", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_check_against_a_loopback_moto_server(estate: str, tmp_path: Path) -> None:
    result = run_vigil("check", "--policy", "policy.yaml", "--endpoint-url", estate, "--output", str(tmp_path))
    assert result.returncode == 1, result.stderr  # the deliberate failures
    assert "Traceback" not in result.stderr
    data = json.loads((tmp_path / "findings.json").read_text())
    jsonschema.validate(data, json.loads((SPEC / "findings.schema.json").read_text()))
    assert data["run"]["account"] == ACCOUNT and data["run"]["regions"] == ["us-east-1", "us-west-2"]

    by_key = {(f["control"], f["resource"]): f for f in data["findings"]}
    assert len(by_key) == len(data["findings"]), "one finding per (control, resource)"
    status = {key: f["status"] for key, f in by_key.items()}
    billing, contacts = "arn:aws:s3:::example-billing", "arn:aws:s3:::example-contacts"
    referrals = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/referrals"
    accounts = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/accounts"

    # the three deliberate failures
    assert status[("TLS-01", billing)] == "fail"
    assert status[("BAK-05", referrals)] == "fail"
    assert status[("MFA-02", f"arn:aws:iam::{ACCOUNT}:user/alice")] == "fail"
    # moto cannot turn on root MFA: AccountMFAEnabled is always 0
    assert status[("MFA-01", ACCOUNT)] == "fail"

    # every control is evaluated and the compliant estate passes it
    expected_pass = {
        ("ENC-01", contacts), ("ENC-02", contacts), ("ENC-02", accounts), ("ENC-04", referrals), ("ENC-06", "region:us-west-2"),
        ("TLS-01", contacts), ("TLS-02", billing), ("MFA-03", billing), ("MFA-04", f"arn:aws:iam::{ACCOUNT}:role/data-steward"),
        ("BAK-01", contacts), ("BAK-02", contacts), ("BAK-03", "arn:aws:s3:::example-contacts-replica"), ("BAK-05", accounts),
        ("ACC-01", contacts), ("ACC-02", contacts), ("ACC-03", contacts), ("AUD-01", ACCOUNT), ("AUD-02", contacts),
        ("RES-01", contacts), ("RES-01", "arn:aws:s3:::example-contacts-replica"), ("RET-01", contacts),
        ("RET-04", "arn:aws:s3:::example-sms-consent"),
        ("ENC-05", f"arn:aws:rds:us-east-1:{ACCOUNT}:db:vigil-reporting"),
        ("TLS-03", f"arn:aws:rds:us-east-1:{ACCOUNT}:db:vigil-reporting"),
        ("RET-02", billing), ("RET-02", contacts), ("RET-02", referrals),
    }
    wrong = {key: (status.get(key), by_key.get(key, {}).get("reason")) for key in expected_pass if status.get(key) != "pass"}
    assert not wrong, wrong
    assert all(s == "pass" for (c, _), s in status.items() if c == "ENC-03"), "every customer key rotates"
    seen = {control for control, _ in status}
    missing = set(catalogue()) - seen
    assert not missing, f"controls with no finding: {missing}"
    # what moto cannot do is an error with that reason, never a silent pass or a crash
    for f in data["findings"]:
        if f["status"] == "error":
            assert f["reason"], f
    fails = sorted((c, r) for (c, r), s in status.items() if s == "fail")
    assert set(fails) <= {("TLS-01", billing), ("BAK-05", referrals), ("MFA-02", f"arn:aws:iam::{ACCOUNT}:user/alice"),
                          ("MFA-01", ACCOUNT), ("BAK-03", "arn:aws:s3:::example-billing-replica")} | {
        (c, r) for (c, r) in fails if c in ("BAK-04", "RET-02", "RET-03")}, fails
    assert "TLS-01" in result.stdout and "findings:" in result.stdout
    # without the keys every store is still judged (a pseudonym is known by its shape) ...
    logs = by_key[("RET-02", "arn:aws:s3:::example-usage-logs")]
    assert logs["status"] == "pass", logs


def test_ret02_with_the_pseudonymize_key(estate: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """... and with the key, the same verdicts (nothing seeded is past retention)."""
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0zMmJ5dGVz")
    result = run_vigil("check", "--endpoint-url", estate, "--output", str(tmp_path), "--control", "RET-02")
    assert result.returncode == 0, result.stdout + result.stderr
    findings = json.loads((tmp_path / "findings.json").read_text())["findings"]
    assert findings and all(f["status"] == "pass" for f in findings)
    assert "arn:aws:s3:::example-usage-logs-replica" in {f["resource"] for f in findings}


def test_check_with_retention_status_calls_no_api_twice_for_one_resource(estate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """RET-02's read-only verify reuses what the collectors read (location, replication, Object Lock,
    DescribeTable) instead of asking again; only the listings it alone needs are new calls."""
    from collections import Counter
    from datetime import datetime

    from vigil.checks.runner import run_check
    from vigil.retention.verify import retention_status

    from vigil.aws import Aws

    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0zMmJ5dGVz")
    aws = Aws(endpoint_url=estate)
    per_resource: Counter = Counter()
    streamed = {"ListObjectVersions", "GetObject", "HeadObject", "Scan", "Query"}

    def count(model, params, **_) -> None:
        ident = tuple((k, str(params[k])) for k in ("Bucket", "TableName", "KeyId", "ResourceArn", "UserName", "RoleName") if k in params)
        if ident and model.name not in streamed:
            per_resource[(model.service_model.service_name, model.name, ident)] += 1

    aws.session.events.register("before-parameter-build", count)  # `params` are the API's own arguments here
    policy = repo_policy()
    run = run_check(aws, policy, policy.regions_in_scope, datetime.now(UTC), "t", retention=retention_status)
    assert any(f.control == "RET-02" and f.status.value == "pass" for f in run.findings)
    assert per_resource[("s3", "GetBucketPolicy", (("Bucket", "example-contacts"),))] == 1  # the hook sees the calls
    twice = {call: n for call, n in per_resource.items() if n > 1}
    assert not twice, twice
