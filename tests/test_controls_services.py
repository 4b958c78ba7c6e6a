"""Non-S3 controls end to end: moto resources -> real collectors -> evaluators -> findings.

Denied calls are simulated the way AWS answers them: a botocore `before-call` handler on
the clients raises AccessDenied for one operation. What moto does not
implement (AWS Backup selections and recovery points) is fed through botocore's Stubber
with responses shaped like AWS's documentation, and also checked to give `error` on
plain moto.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from builders_services import (
    ACCOUNT,
    backup_vaults_and_plan,
    cmk,
    compliant_services,
    ebs_encryption_by_default,
    encrypted_table,
    multi_region_trail,
    rds_cluster,
    rds_instance,
    tls_parameter_group,
)
from helpers import collect, finding, policy_variant, repo_policy, run_checks
from moto import mock_aws
from vigil.checks.collectors import backup
from vigil.checks.collectors.base import CollectSession
from vigil.checks.context import Context
from vigil.checks.controls.bak_04 import runs_daily
from vigil.checks.model import Fact, Inventory, KmsKey, Status
from vigil.checks.registry import evaluate

from vigil.aws import Aws

PASS, FAIL, ERROR, NA = Status.PASS, Status.FAIL, Status.ERROR, Status.NOT_APPLICABLE
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def moto():
    with mock_aws():
        yield


_SHARED: list[Aws] = []
REGIONS = ("us-east-1", "us-west-2")


def shared_aws() -> Aws:
    if not _SHARED:
        _SHARED.append(Aws())
    return _SHARED[0]


def check(policy, only: list[str], deny: tuple[str, str] | None = None):
    """run_checks with one Aws reused across tests (a fresh one costs seconds of model loading;
    moto intercepts its clients all the same and each test's mock_aws starts empty).

    `deny=(service, Operation)`: AWS refuses that call, as it answers a missing permission, via a
    botocore before-call handler on the clients, removed again afterwards.
    """
    aws = shared_aws()
    if deny is None:
        return run_checks(policy, only=only, aws=aws)
    service, operation = deny
    event = f"before-call.{service}.{operation}"

    def refuse(**_: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied by test"}}, operation)

    clients = [aws.client(service, region) for region in REGIONS]
    for client in clients:
        client.meta.events.register(event, refuse, unique_id="vigil-test-deny")
    try:
        return run_checks(policy, only=only, aws=aws)
    finally:
        for client in clients:
            client.meta.events.unregister(event, unique_id="vigil-test-deny")


def with_rds(tmp_path, **store):
    return policy_variant(tmp_path, lambda d: d["stores"].append({"name": "orders-db", "kind": "rds", "category": "billing", **store}))


# --- ENC-03 ---------------------------------------------------------------------------


def test_enc03_rotated_key_passes_unrotated_fails_pending_deletion_not_applicable():
    good, bad, doomed = cmk(alias="alias/vigil-data"), cmk(rotate=False), cmk()
    boto3.client("kms", region_name="us-east-1").schedule_key_deletion(KeyId=doomed.rsplit("/", 1)[-1], PendingWindowInDays=7)
    findings = check(repo_policy(), ["ENC-03"])
    assert finding(findings, "ENC-03", good).status == PASS
    assert finding(findings, "ENC-03", bad).status == FAIL
    assert "kms:EnableKeyRotation" in finding(findings, "ENC-03", bad).reason
    assert finding(findings, "ENC-03", doomed).status == NA
    assert len(findings) == 3


def test_enc03_denied_rotation_status_is_an_error_for_that_key():
    key = cmk()
    findings = check(repo_policy(), ["ENC-03"], deny=("kms", "GetKeyRotationStatus"))
    result = finding(findings, "ENC-03", key)
    assert result.status == ERROR and "kms:GetKeyRotationStatus was denied" in result.reason


def test_enc03_scope_from_records():
    def key(name: str, aliases: list[str], **meta: str) -> KmsKey:
        metadata = {"KeyManager": "CUSTOMER", "KeySpec": "SYMMETRIC_DEFAULT", "KeyState": "Enabled", "Origin": "AWS_KMS", **meta}
        return KmsKey(name, f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{name}", "us-east-1", metadata,
                      Fact("kms:GetKeyRotationStatus", False), aliases)

    keys = [key("aws-s3", ["alias/aws/s3"]), key("hmac", [], KeySpec="HMAC_256"), key("off", [], KeyState="Disabled"),
            key("imported", [], Origin="EXTERNAL"), key("plain", ["alias/app"])]
    findings = evaluate(Context(repo_policy(), Inventory(ACCOUNT, ["us-east-1"], kms_keys=keys)), only=["ENC-03"])
    assert {f.resource.rsplit("/", 1)[-1]: f.status for f in findings} == {"hmac": NA, "off": NA, "imported": NA, "plain": FAIL}


# --- ENC-04 / BAK-05 (DynamoDB) -------------------------------------------------------


def test_enc04_bak05_tables():
    good = encrypted_table("accounts")
    bad = encrypted_table("referrals", encrypted=False, pitr=False)
    findings = check(repo_policy(), ["ENC-04", "BAK-05"])
    assert finding(findings, "ENC-04", good).status == PASS
    assert finding(findings, "ENC-04", bad).status == FAIL
    assert finding(findings, "BAK-05", good).status == PASS
    assert finding(findings, "BAK-05", bad).status == FAIL and "DISABLED" in finding(findings, "BAK-05", bad).reason


def test_declared_table_missing_fails():
    encrypted_table("accounts")
    findings = check(repo_policy(), ["BAK-05", "BAK-04"])
    for control in ("BAK-05", "BAK-04"):
        result = finding(findings, control, "referrals")
        assert result.status == FAIL and result.reason == "declared data store table referrals was not found"


def test_enc04_bak05_denied_calls_are_errors():
    table = encrypted_table("accounts")
    findings = check(repo_policy(), ["ENC-04"], deny=("dynamodb", "DescribeTable"))
    assert finding(findings, "ENC-04", table).status == ERROR
    findings = check(repo_policy(), ["BAK-05"], deny=("dynamodb", "DescribeContinuousBackups"))
    assert "DescribeContinuousBackups was denied" in finding(findings, "BAK-05", table).reason
    findings = check(repo_policy(), ["BAK-05"], deny=("dynamodb", "ListTables"))
    assert finding(findings, "BAK-05", "referrals").status == ERROR  # not seen is not "missing"


# --- ENC-05 / TLS-03 / BAK-05 (RDS) ---------------------------------------------------


def test_enc05_tls03_instances(tmp_path):
    pg = rds_instance("orders")
    my = rds_instance("shop", engine="mysql")
    plain = rds_instance("legacy", encrypted=False, force_ssl=False, retention=1)
    findings = check(with_rds(tmp_path, instance="orders"), ["ENC-05", "TLS-03", "BAK-05"])
    assert finding(findings, "ENC-05", pg).status == PASS
    assert finding(findings, "ENC-05", plain).status == FAIL
    assert finding(findings, "TLS-03", pg).status == PASS
    assert finding(findings, "TLS-03", my).status == PASS and "require_secure_transport = ON" in finding(findings, "TLS-03", my).reason
    unforced = finding(findings, "TLS-03", plain)
    assert unforced.status == FAIL and "returned no parameters" in unforced.reason  # moto: no default groups
    assert finding(findings, "BAK-05", pg).status == PASS


def test_tls03_parameter_off_fails_and_bak05_short_retention_fails(tmp_path):
    rds = boto3.client("rds", region_name="us-east-1")
    group = tls_parameter_group("weak", forced=False)
    arn = rds.create_db_instance(DBInstanceIdentifier="orders", DBInstanceClass="db.t3.micro", Engine="postgres",
                                 MasterUsername="u_admin", MasterUserPassword="not-a-real-password", AllocatedStorage=20,
                                 DBParameterGroupName=group, BackupRetentionPeriod=1)["DBInstance"]["DBInstanceArn"]
    findings = check(with_rds(tmp_path, instance="orders"), ["TLS-03", "BAK-05"])
    assert finding(findings, "TLS-03", arn).status == FAIL and "rds.force_ssl = 0" in finding(findings, "TLS-03", arn).reason
    assert finding(findings, "BAK-05", arn).status == FAIL


def test_clusters(tmp_path):
    good = rds_cluster("ledger")
    bare = rds_cluster("scratch", engine="aurora-mysql", force_ssl=False, encrypted=False, retention=1)
    rds = boto3.client("rds", region_name="us-east-1")
    member = rds.create_db_instance(DBInstanceIdentifier="ledger-1", DBInstanceClass="db.r6g.large", Engine="aurora-postgresql",
                                    DBClusterIdentifier="ledger")["DBInstance"]["DBInstanceArn"]
    findings = check(with_rds(tmp_path, cluster="scratch"), ["ENC-05", "TLS-03", "BAK-05"])
    assert finding(findings, "ENC-05", good).status == PASS
    assert finding(findings, "ENC-05", bare).status == FAIL
    assert finding(findings, "TLS-03", good).status == PASS
    missing_group = finding(findings, "TLS-03", bare)  # moto's default cluster group does not exist
    assert missing_group.status == ERROR and "was not found (DBParameterGroupNotFound)" in missing_group.reason
    assert finding(findings, "TLS-03", member).status == NA
    assert finding(findings, "BAK-05", bare).status == FAIL


def test_rds_denied(tmp_path):
    arn = rds_instance("orders")
    findings = check(with_rds(tmp_path, instance="orders"), ["TLS-03"], deny=("rds", "DescribeDBParameters"))
    assert finding(findings, "TLS-03", arn).status == ERROR
    findings = check(with_rds(tmp_path, instance="orders"), ["ENC-05", "BAK-05"], deny=("rds", "DescribeDBInstances"))
    assert finding(findings, "ENC-05", f"arn:aws:rds:us-east-1:{ACCOUNT}:db:*").status == ERROR
    assert finding(findings, "BAK-05", arn).status == ERROR


# --- ENC-06 ---------------------------------------------------------------------------


def test_enc06_per_region():
    ebs_encryption_by_default(["us-east-1"])
    findings = check(repo_policy(), ["ENC-06"])
    assert finding(findings, "ENC-06", "region:us-east-1").status == PASS
    assert finding(findings, "ENC-06", "region:us-west-2").status == FAIL
    findings = check(repo_policy(), ["ENC-06"], deny=("ec2", "GetEbsEncryptionByDefault"))
    assert {f.status for f in findings} == {ERROR} and len(findings) == 2


# --- MFA-01 / MFA-02 ------------------------------------------------------------------


def test_mfa01_moto_root_without_mfa_fails_and_denied_errors():
    findings = check(repo_policy(), ["MFA-01"])
    assert finding(findings, "MFA-01", ACCOUNT).status == FAIL  # moto always reports AccountMFAEnabled 0
    findings = check(repo_policy(), ["MFA-01"], deny=("iam", "GetAccountSummary"))
    assert finding(findings, "MFA-01", ACCOUNT).status == ERROR


def test_mfa01_root_with_mfa_passes():
    inventory = Inventory(ACCOUNT, ["us-east-1"], account_summary=Fact("iam:GetAccountSummary", {"AccountMFAEnabled": 1}))
    findings = evaluate(Context(repo_policy(), inventory), ["MFA-01"])
    assert finding(findings, "MFA-01", ACCOUNT).status == PASS


def test_mfa02_console_users():
    iam = boto3.client("iam", region_name="us-east-1")
    for name in ("alice", "bob", "robot"):
        iam.create_user(UserName=name)
    for name in ("alice", "bob"):
        iam.create_login_profile(UserName=name, Password="Not-a-real-password-1")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="alice", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")
    findings = check(repo_policy(), ["MFA-02"])
    assert finding(findings, "MFA-02", "alice").status == PASS
    assert finding(findings, "MFA-02", "bob").status == FAIL
    assert finding(findings, "MFA-02", "robot").status == NA
    findings = check(repo_policy(), ["MFA-02"], deny=("iam", "ListMFADevices"))
    assert finding(findings, "MFA-02", "bob").status == ERROR and finding(findings, "MFA-02", "robot").status == NA


# --- AUD-01 ---------------------------------------------------------------------------


def test_aud01_multi_region_logging_validated_trail_passes():
    multi_region_trail("regional-only", multi_region=False)
    multi_region_trail()
    assert finding(check(repo_policy(), ["AUD-01"]), "AUD-01", ACCOUNT).status == PASS


def test_aud01_fails_without_a_qualifying_trail_and_errors_when_denied():
    multi_region_trail("not-logging", logging=False)
    multi_region_trail("no-validation", validation=False, region="us-west-2")
    result = finding(check(repo_policy(), ["AUD-01"]), "AUD-01", ACCOUNT)
    assert result.status == FAIL and "not-logging is not logging" in result.reason and "no-validation has no log file validation" in result.reason
    multi_region_trail("good")
    result = finding(check(repo_policy(), ["AUD-01"], deny=("cloudtrail", "GetTrailStatus")), "AUD-01", ACCOUNT)
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
    findings = check(repo_policy(), ["BAK-04", "RET-03"])
    for table in ("accounts", "referrals"):
        result = finding(findings, "BAK-04", table)
        assert result.status == ERROR and "ListBackupSelections is not implemented by this endpoint" in result.reason
    for vault in (made["primary_vault"], made["backup_vault"]):
        result = finding(findings, "RET-03", vault)
        assert result.status == ERROR and "not implemented by this endpoint" in result.reason


def test_bak04_ret03_denied_plan_listing_is_error():
    encrypted_table("accounts")
    findings = check(repo_policy(), ["BAK-04", "RET-03"], deny=("backup", "ListBackupPlans"))
    assert "backup:ListBackupPlans was denied" in finding(findings, "BAK-04", "accounts").reason
    vaults = finding(findings, "RET-03", f"arn:aws:backup:us-east-1:{ACCOUNT}:backup-vault:*")
    assert vaults.status == ERROR and "ListBackupPlans was denied" in vaults.reason


# AWS Backup as AWS answers it (moto lacks selections and recovery points): botocore's
# Stubber validates every response below against the service model.

PRIMARY_VAULT = f"arn:aws:backup:us-east-1:{ACCOUNT}:backup-vault:vigil-primary"
BACKUP_VAULT = f"arn:aws:backup:us-west-2:{ACCOUNT}:backup-vault:vigil-offsite"
PLAN_ARN = f"arn:aws:backup:us-east-1:{ACCOUNT}:backup-plan:plan-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/vigil-backup"


def _vault(arn: str) -> dict:
    return {"BackupVaultName": arn.rsplit(":", 1)[-1], "BackupVaultArn": arn, "CreationDate": NOW - timedelta(days=900),
            "EncryptionKeyArn": f"arn:aws:kms:{arn.split(':')[3]}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "CreatorRequestId": "vigil", "NumberOfRecoveryPoints": 1, "Locked": False}


def _points(vault_arn: str, resource_arn: str, age_days: int) -> dict:
    return {"RecoveryPoints": [{
        "RecoveryPointArn": f"arn:aws:backup:{vault_arn.split(':')[3]}:{ACCOUNT}:recovery-point:rp-{age_days}",
        "BackupVaultName": vault_arn.rsplit(":", 1)[-1], "BackupVaultArn": vault_arn, "ResourceArn": resource_arn,
        "ResourceType": "DynamoDB", "CreationDate": NOW - timedelta(days=age_days), "Status": "COMPLETED",
        "IsEncrypted": True, "IamRoleArn": ROLE}]}


def _rule(schedule: str, delete_after: int | None, copy_to: str) -> dict:
    lifecycle = {"Lifecycle": {"DeleteAfterDays": delete_after}} if delete_after is not None else {}
    return {"RuleName": "daily", "TargetBackupVaultName": "vigil-primary", "ScheduleExpression": schedule,
            "StartWindowMinutes": 60, "CompletionWindowMinutes": 180, "RuleId": "rule-1", **lifecycle,
            "CopyActions": [{"DestinationBackupVaultArn": copy_to, **lifecycle}]}


def backup_as_aws(tables: dict[str, str], schedule: str = "cron(0 5 ? * * *)", delete_after: int | None = 365,
                  copy_to: str = BACKUP_VAULT, age_days: int = 30, points_denied: bool = False) -> dict[str, list]:
    """Per region, the calls the backup collector makes, in order, with AWS-shaped answers."""
    created = NOW - timedelta(days=400)
    selection = {"SelectionName": "data-stores", "IamRoleArn": ROLE, "Resources": [tables["accounts"]],
                 "ListOfTags": [{"ConditionType": "STRINGEQUALS", "ConditionKey": "backup", "ConditionValue": "daily"}]}
    points = ("error", "AccessDeniedException") if points_denied else ("ok", _points(PRIMARY_VAULT, tables["accounts"], age_days))
    return {
        "us-east-1": [
            ("list_backup_vaults", ("ok", {"BackupVaultList": [_vault(PRIMARY_VAULT)]})),
            ("list_backup_plans", ("ok", {"BackupPlansList": [{"BackupPlanArn": PLAN_ARN, "BackupPlanId": "plan-1", "CreationDate": created,
                                                               "VersionId": "v1", "BackupPlanName": "vigil-daily"}]})),
            ("list_recovery_points_by_backup_vault", points),
            ("get_backup_plan", ("ok", {"BackupPlan": {"BackupPlanName": "vigil-daily", "Rules": [_rule(schedule, delete_after, copy_to)]},
                                        "BackupPlanId": "plan-1", "BackupPlanArn": PLAN_ARN, "VersionId": "v1", "CreationDate": created})),
            ("list_backup_selections", ("ok", {"BackupSelectionsList": [{"SelectionId": "sel-1", "SelectionName": "data-stores",
                                                                          "BackupPlanId": "plan-1", "CreationDate": created, "IamRoleArn": ROLE}]})),
            ("get_backup_selection", ("ok", {"BackupSelection": selection, "SelectionId": "sel-1", "BackupPlanId": "plan-1",
                                             "CreationDate": created})),
        ],
        "us-west-2": [
            ("list_backup_vaults", ("ok", {"BackupVaultList": [_vault(BACKUP_VAULT)]})),
            ("list_backup_plans", ("ok", {"BackupPlansList": []})),
            ("list_recovery_points_by_backup_vault", ("ok", _points(BACKUP_VAULT, tables["referrals"], age_days))),
        ],
    }


def check_with_backup(calls: dict[str, list], only: list[str], policy=None):
    """Collect everything from moto, then AWS Backup from the stubbed answers, and evaluate."""
    policy = policy or repo_policy()
    inventory = collect(policy, aws=shared_aws())
    inventory.vaults.clear(), inventory.plans.clear(), inventory.listing_errors.clear()
    aws, stubbers = Aws(), []
    for region, expected in calls.items():
        stubber = Stubber(aws.client("backup", region))
        for operation, (kind, answer) in expected:
            if kind == "ok":
                stubber.add_response(operation, answer)
            else:
                stubber.add_client_error(operation, service_error_code=answer, http_status_code=403)
        stubber.activate()
        stubbers.append(stubber)
    with ThreadPoolExecutor(max_workers=1) as pool:  # one worker: calls reach each stub in a fixed order
        backup.collect(CollectSession(aws, policy, list(calls), pool), inventory)
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
    return evaluate(Context(policy, inventory, as_of=NOW), only=only)


@pytest.fixture
def tables() -> dict[str, str]:
    return {"accounts": encrypted_table("accounts"), "referrals": encrypted_table("referrals", tags={"backup": "daily"})}


def test_bak04_ret03_pass_with_daily_offsite_plan_and_bounded_lifecycle(tables):
    findings = check_with_backup(backup_as_aws(tables), ["BAK-04", "RET-03"])
    for name in ("accounts", "referrals"):  # by ARN and by tag
        assert finding(findings, "BAK-04", name).status == PASS
    for vault in (PRIMARY_VAULT, BACKUP_VAULT):
        result = finding(findings, "RET-03", vault)
        assert result.status == PASS and "737 days" in result.reason  # contact P2Y = 730 + grace P7D


@pytest.mark.parametrize("change", [{"schedule": "cron(0 5 ? * SUN *)"},
                                    {"copy_to": f"arn:aws:backup:us-east-1:{ACCOUNT}:backup-vault:vigil-primary"}])
def test_bak04_fails_weekly_or_not_offsite(tables, change):
    findings = check_with_backup(backup_as_aws(tables, **change), ["BAK-04"])
    result = finding(findings, "BAK-04", "accounts")
    assert result.status == FAIL and "at least daily and copies to a vault in us-west-2" in result.reason


def test_bak04_fails_when_no_plan_selects_the_store():
    encrypted_table("accounts")
    untagged = encrypted_table("referrals")
    result = finding(check_with_backup(backup_as_aws({"accounts": "arn:aws:dynamodb:us-east-1:1:table/x", "referrals": untagged}),
                                       ["BAK-04"]), "BAK-04", "referrals")
    assert result.status == FAIL and "no AWS Backup plan in us-east-1 selects this table" in result.reason


@pytest.mark.parametrize("change, expected", [({"delete_after": None}, "forever (no DeleteAfterDays)"),
                                              ({"delete_after": 800}, "keeps them 800 days"),
                                              ({"age_days": 800}, "1 recovery point(s) are older than 737 days")])
def test_ret03_fails_when_backups_outlive_retention(tables, change, expected):
    result = finding(check_with_backup(backup_as_aws(tables, **change), ["RET-03"]), "RET-03", PRIMARY_VAULT)
    assert result.status == FAIL and expected in result.reason


def test_ret03_unreadable_recovery_points_are_named_and_lifecycle_judged(tables):
    result = finding(check_with_backup(backup_as_aws(tables, points_denied=True), ["RET-03"]), "RET-03", PRIMARY_VAULT)
    assert result.status == PASS and "recovery points could not be read" in result.reason
    assert "ListRecoveryPointsByBackupVault was denied" in result.evidence.observed["recovery_points_error"]


def test_ret03_forever_category_is_never_too_long(tables, tmp_path):
    policy = policy_variant(tmp_path, lambda d: d["stores"][-1].update(category="aggregates"))  # accounts: kept forever
    result = finding(check_with_backup(backup_as_aws(tables, delete_after=None), ["RET-03"], policy), "RET-03", PRIMARY_VAULT)
    assert result.status == PASS and "forever" in result.reason


def test_compliant_builders_pass_what_moto_can_show():
    compliant_services(repo_policy())
    findings = check(repo_policy(), ["ENC-03", "ENC-04", "ENC-06", "BAK-05", "AUD-01", "TLS-03", "ENC-05", "MFA-02"])
    assert findings and {f.status for f in findings} == {PASS}, [(f.control, f.resource, f.reason) for f in findings if f.status != PASS]


# --- collectors: what they record ------------------------------------------------------


def test_collectors_attach_aliases_and_read_policy_roles():
    from vigil.checks.collectors.iam import trust_document
    key = cmk(alias="alias/vigil-data")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                     "Action": "sts:AssumeRole"}]}
    boto3.client("iam", region_name="us-east-1").create_role(RoleName="data-steward", AssumeRolePolicyDocument=json.dumps(trust))
    inventory = collect(repo_policy(), aws=shared_aws())
    assert [k.aliases for k in inventory.kms_keys if k.arn == key] == [["alias/vigil-data"]]
    assert inventory.roles["data-steward"].trust_policy.value == trust
    absent = inventory.roles["vigil-backup"].trust_policy
    assert absent.ok and absent.value is None  # NoSuchEntity: the role does not exist
    assert trust_document(quote(json.dumps(trust))) == trust  # GetRole's URL-encoded form


def test_rds_parameter_group_is_read_once_per_group():
    group = tls_parameter_group("shared-tls")
    rds = boto3.client("rds", region_name="us-east-1")
    for name in ("db-a", "db-b", "db-c"):
        rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres", MasterUsername="u_admin",
                               MasterUserPassword="not-a-real-password", AllocatedStorage=20, DBParameterGroupName=group)
    calls: list[str] = []
    client = shared_aws().client("rds", "us-east-1")
    client.meta.events.register("before-call.rds.DescribeDBParameters", lambda **kw: calls.append("call"), unique_id="count")
    try:
        inventory = collect(repo_policy(), aws=shared_aws())
    finally:
        client.meta.events.unregister("before-call.rds.DescribeDBParameters", unique_id="count")
    assert len(inventory.db_instances) == 3 and len(calls) == 1
    assert all(i.parameters.value == {"rds.force_ssl": "1"} for i in inventory.db_instances)
