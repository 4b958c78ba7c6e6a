"""Non-S3 controls end to end: moto resources -> real collectors -> evaluators -> findings.

Denied calls are simulated the way AWS answers them: a botocore `before-call` handler on
the test's own Aws session raises AccessDenied for one operation. What moto does not
implement (AWS Backup selections and recovery points) is fed through botocore's Stubber
with responses shaped like AWS's documentation, and also checked to give `error` on
plain moto.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from builders_services import (ACCOUNT, backup_vaults_and_plan, cmk, ebs_encryption_by_default, encrypted_table,
                               multi_region_trail, rds_cluster, rds_instance)
from helpers import finding, policy_variant, repo_policy, run_checks
from vigil.aws import Aws
from vigil.checks.collectors import collect_inventory
from vigil.checks.context import Context
from vigil.checks.controls.bak_04 import runs_daily
from vigil.checks.model import Fact, Inventory, Status
from vigil.checks.registry import evaluate

PASS, FAIL, ERROR, NA = Status.PASS, Status.FAIL, Status.ERROR, Status.NOT_APPLICABLE
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def moto():
    with mock_aws():
        yield


def denying(service: str, operation: str) -> Aws:
    """An Aws whose clients are refused `operation`, as AWS answers a missing permission."""
    aws = Aws()

    def deny(**_: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied by test"}}, operation)

    aws.session.events.register(f"before-call.{service}.{operation}", deny)
    return aws


def with_rds(tmp_path, **store):
    return policy_variant(tmp_path, lambda d: d["stores"].append({"name": "orders-db", "kind": "rds", "category": "billing", **store}))


# --- ENC-03 ---------------------------------------------------------------------------


def test_enc03_rotated_key_passes_unrotated_fails_pending_deletion_not_applicable():
    good, bad, doomed = cmk(alias="alias/vigil-data"), cmk(rotate=False), cmk()
    boto3.client("kms", region_name="us-east-1").schedule_key_deletion(KeyId=doomed.rsplit("/", 1)[-1], PendingWindowInDays=7)
    findings = run_checks(repo_policy(), only=["ENC-03"])
    assert finding(findings, "ENC-03", good).status == PASS
    assert finding(findings, "ENC-03", bad).status == FAIL
    assert "kms:EnableKeyRotation" in finding(findings, "ENC-03", bad).reason
    assert finding(findings, "ENC-03", doomed).status == NA
    assert len(findings) == 3


def test_enc03_denied_rotation_status_is_an_error_for_that_key():
    key = cmk()
    findings = run_checks(repo_policy(), only=["ENC-03"], aws=denying("kms", "GetKeyRotationStatus"))
    result = finding(findings, "ENC-03", key)
    assert result.status == ERROR and "kms:GetKeyRotationStatus was denied" in result.reason


# --- ENC-04 / BAK-05 (DynamoDB) -------------------------------------------------------


def test_enc04_bak05_tables():
    good = encrypted_table("accounts")
    bad = encrypted_table("referrals", encrypted=False, pitr=False)
    findings = run_checks(repo_policy(), only=["ENC-04", "BAK-05"])
    assert finding(findings, "ENC-04", good).status == PASS
    assert finding(findings, "ENC-04", bad).status == FAIL
    assert finding(findings, "BAK-05", good).status == PASS
    assert finding(findings, "BAK-05", bad).status == FAIL and "DISABLED" in finding(findings, "BAK-05", bad).reason


def test_declared_table_missing_fails():
    encrypted_table("accounts")
    findings = run_checks(repo_policy(), only=["BAK-05", "BAK-04"])
    for control in ("BAK-05", "BAK-04"):
        result = finding(findings, control, "referrals")
        assert result.status == FAIL and result.reason == "declared data store table referrals was not found"


def test_enc04_bak05_denied_calls_are_errors():
    table = encrypted_table("accounts")
    findings = run_checks(repo_policy(), only=["ENC-04"], aws=denying("dynamodb", "DescribeTable"))
    assert finding(findings, "ENC-04", table).status == ERROR
    findings = run_checks(repo_policy(), only=["BAK-05"], aws=denying("dynamodb", "DescribeContinuousBackups"))
    assert "DescribeContinuousBackups was denied" in finding(findings, "BAK-05", table).reason
    findings = run_checks(repo_policy(), only=["BAK-05"], aws=denying("dynamodb", "ListTables"))
    assert finding(findings, "BAK-05", "referrals").status == ERROR  # not seen is not "missing"


# --- ENC-05 / TLS-03 / BAK-05 (RDS) ---------------------------------------------------


def test_enc05_tls03_instances(tmp_path):
    pg = rds_instance("orders")
    my = rds_instance("shop", engine="mysql")
    plain = rds_instance("legacy", encrypted=False, force_ssl=False, retention=1)
    findings = run_checks(with_rds(tmp_path, instance="orders"), only=["ENC-05", "TLS-03", "BAK-05"])
    assert finding(findings, "ENC-05", pg).status == PASS
    assert finding(findings, "ENC-05", plain).status == FAIL
    assert finding(findings, "TLS-03", pg).status == PASS
    assert finding(findings, "TLS-03", my).status == PASS and "require_secure_transport = ON" in finding(findings, "TLS-03", my).reason
    unforced = finding(findings, "TLS-03", plain)
    assert unforced.status == FAIL and "returned no parameters" in unforced.reason  # moto: no default groups
    assert finding(findings, "BAK-05", pg).status == PASS


def test_tls03_parameter_off_fails_and_bak05_short_retention_fails(tmp_path):
    from builders_services import tls_parameter_group
    rds = boto3.client("rds", region_name="us-east-1")
    group = tls_parameter_group("weak", forced=False)
    arn = rds.create_db_instance(DBInstanceIdentifier="orders", DBInstanceClass="db.t3.micro", Engine="postgres",
                                 MasterUsername="u_admin", MasterUserPassword="not-a-real-password", AllocatedStorage=20,
                                 DBParameterGroupName=group, BackupRetentionPeriod=1)["DBInstance"]["DBInstanceArn"]
    findings = run_checks(with_rds(tmp_path, instance="orders"), only=["TLS-03", "BAK-05"])
    assert finding(findings, "TLS-03", arn).status == FAIL and "rds.force_ssl = 0" in finding(findings, "TLS-03", arn).reason
    assert finding(findings, "BAK-05", arn).status == FAIL


def test_clusters(tmp_path):
    good = rds_cluster("ledger")
    bare = rds_cluster("scratch", engine="aurora-mysql", force_ssl=False, encrypted=False, retention=1)
    rds = boto3.client("rds", region_name="us-east-1")
    member = rds.create_db_instance(DBInstanceIdentifier="ledger-1", DBInstanceClass="db.r6g.large", Engine="aurora-postgresql",
                                    DBClusterIdentifier="ledger")["DBInstance"]["DBInstanceArn"]
    findings = run_checks(with_rds(tmp_path, cluster="scratch"), only=["ENC-05", "TLS-03", "BAK-05"])
    assert finding(findings, "ENC-05", good).status == PASS
    assert finding(findings, "ENC-05", bare).status == FAIL
    assert finding(findings, "TLS-03", good).status == PASS
    missing_group = finding(findings, "TLS-03", bare)  # moto's default cluster group does not exist
    assert missing_group.status == ERROR and "was not found (DBParameterGroupNotFound)" in missing_group.reason
    assert finding(findings, "TLS-03", member).status == NA
    assert finding(findings, "BAK-05", bare).status == FAIL


def test_rds_denied(tmp_path):
    arn = rds_instance("orders")
    findings = run_checks(with_rds(tmp_path, instance="orders"), only=["TLS-03"], aws=denying("rds", "DescribeDBParameters"))
    assert finding(findings, "TLS-03", arn).status == ERROR
    findings = run_checks(with_rds(tmp_path, instance="orders"), only=["ENC-05", "BAK-05"], aws=denying("rds", "DescribeDBInstances"))
    assert finding(findings, "ENC-05", f"arn:aws:rds:us-east-1:{ACCOUNT}:db:*").status == ERROR
    assert finding(findings, "BAK-05", arn).status == ERROR


# --- ENC-06 ---------------------------------------------------------------------------


def test_enc06_per_region():
    ebs_encryption_by_default(["us-east-1"])
    findings = run_checks(repo_policy(), only=["ENC-06"])
    assert finding(findings, "ENC-06", "region:us-east-1").status == PASS
    assert finding(findings, "ENC-06", "region:us-west-2").status == FAIL
    findings = run_checks(repo_policy(), only=["ENC-06"], aws=denying("ec2", "GetEbsEncryptionByDefault"))
    assert {f.status for f in findings} == {ERROR} and len(findings) == 2


# --- MFA-01 / MFA-02 ------------------------------------------------------------------


def test_mfa01_moto_root_without_mfa_fails_and_denied_errors():
    findings = run_checks(repo_policy(), only=["MFA-01"])
    assert finding(findings, "MFA-01", ACCOUNT).status == FAIL  # moto always reports AccountMFAEnabled 0
    findings = run_checks(repo_policy(), only=["MFA-01"], aws=denying("iam", "GetAccountSummary"))
    assert finding(findings, "MFA-01", ACCOUNT).status == ERROR


def test_mfa01_root_with_mfa_passes():
    inventory = Inventory(ACCOUNT, ["us-east-1"], account_summary=Fact("iam:GetAccountSummary", {"AccountMFAEnabled": 1}))
    findings = evaluate(Context(repo_policy(), inventory), only=["MFA-01"])
    assert finding(findings, "MFA-01", ACCOUNT).status == PASS


def test_mfa02_console_users():
    iam = boto3.client("iam", region_name="us-east-1")
    for name in ("alice", "bob", "robot"):
        iam.create_user(UserName=name)
    for name in ("alice", "bob"):
        iam.create_login_profile(UserName=name, Password="Not-a-real-password-1")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="alice", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")
    findings = run_checks(repo_policy(), only=["MFA-02"])
    assert finding(findings, "MFA-02", "alice").status == PASS
    assert finding(findings, "MFA-02", "bob").status == FAIL
    assert finding(findings, "MFA-02", "robot").status == NA
    findings = run_checks(repo_policy(), only=["MFA-02"], aws=denying("iam", "ListMFADevices"))
    assert finding(findings, "MFA-02", "bob").status == ERROR and finding(findings, "MFA-02", "robot").status == NA


# --- AUD-01 ---------------------------------------------------------------------------


def test_aud01_multi_region_logging_validated_trail_passes():
    multi_region_trail("regional-only", multi_region=False)
    multi_region_trail()
    assert finding(run_checks(repo_policy(), only=["AUD-01"]), "AUD-01", ACCOUNT).status == PASS


def test_aud01_fails_without_a_qualifying_trail_and_errors_when_denied():
    multi_region_trail("not-logging", logging=False)
    multi_region_trail("no-validation", validation=False, region="us-west-2")
    result = finding(run_checks(repo_policy(), only=["AUD-01"]), "AUD-01", ACCOUNT)
    assert result.status == FAIL and "not-logging is not logging" in result.reason and "no-validation has no log file validation" in result.reason
    multi_region_trail("good")
    result = finding(run_checks(repo_policy(), only=["AUD-01"], aws=denying("cloudtrail", "GetTrailStatus")), "AUD-01", ACCOUNT)
    assert result.status == ERROR and "GetTrailStatus was denied" in result.reason


# --- BAK-04 / RET-03 ------------------------------------------------------------------


def test_runs_daily():
    assert runs_daily("cron(0 5 ? * * *)") and runs_daily("cron(0 */6 * * ? *)") and runs_daily("rate(12 hours)")
    assert runs_daily("rate(1 day)") and runs_daily("rate(30 minutes)") and runs_daily(None)  # None: AWS's daily default
    assert not runs_daily("cron(0 5 ? * MON *)") and not runs_daily("cron(0 5 1 * ? *)") and not runs_daily("cron(0 5 ? 1 * *)")
    assert not runs_daily("rate(2 days)") and not runs_daily("rate(25 hours)") and not runs_daily("at(2026-01-01T00:00:00)")


def test_plain_moto_backup_selections_unimplemented_is_error():
    encrypted_table("accounts")
    encrypted_table("referrals")
    made = backup_vaults_and_plan()
    findings = run_checks(repo_policy(), only=["BAK-04", "RET-03"])
    for table in ("accounts", "referrals"):
        result = finding(findings, "BAK-04", table)
        assert result.status == ERROR and "ListBackupSelections is not implemented by this endpoint" in result.reason
    for vault in (made["primary_vault"], made["backup_vault"]):
        result = finding(findings, "RET-03", vault)
        assert result.status == ERROR and "not implemented by this endpoint" in result.reason


def test_bak04_denied_plan_listing_is_error():
    encrypted_table("accounts")
    findings = run_checks(repo_policy(), only=["BAK-04"], aws=denying("backup", "ListBackupPlans"))
    assert "backup:ListBackupPlans was denied" in finding(findings, "BAK-04", "accounts").reason
