"""S3 controls end to end under moto: a compliant estate passes; breaking one thing fails the right
control on the right resource; a denied read is an `error` for that resource alone.

Denials are simulated the way AWS would answer: a botocore event handler on the checking
session raises AccessDenied for one bucket's call (moto cannot deny the root caller).
"""
from __future__ import annotations

import importlib
import json
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import botocore.exceptions
import pytest
from moto import mock_aws
from vigil.checks.collectors import collect_inventory
from vigil.checks.collectors.base import CollectSession
from vigil.checks.context import Context
from vigil.checks.controls import bak_02
from vigil.checks.model import BackupPlan, Bucket, Fact, Finding, Inventory, Status
from vigil.checks.registry import NO_BUCKET_FACTS, bucket_facts, evaluate
from vigil.checks.registry import reads as registry_reads
from vigil.checks.scope import filter_prefix

from tests.builders_s3 import build_s3_estate, client, create_bucket, s3
from tests.helpers import finding, policy_variant, repo_policy, run_checks
from vigil.aws import Aws
from vigil.policy import Policy
from vigil.s3_facts import S3_FACTS

MINE = ["ENC-01", "ENC-02", "BAK-01", "BAK-02", "BAK-03", "ACC-01", "AUD-02", "RES-01", "RET-01", "RET-04"]
DATA_CONTROLS = ["ENC-02", "BAK-01", "BAK-02", "AUD-02", "RES-01", "RET-01"]
BILLING, CONTACTS, CONSENT = "example-billing", "example-contacts", "example-sms-consent"
# The collectors these controls read; the others (IAM, RDS, EC2) only slow the tests down.
SERVICES = ("s3", "kms", "dynamodb", "cloudtrail", "backup")
FAST = ("s3", "kms")


def collect_with(aws: Aws, policy: Policy, services: Iterable[str] = SERVICES) -> Inventory:
    """The real collectors for `services`, run as collect_inventory runs them, on one bounded pool."""
    inventory = Inventory(account_id=aws.account_id(policy.regions.primary), regions=policy.regions_in_scope)
    with ThreadPoolExecutor(max_workers=16) as pool, ThreadPoolExecutor(max_workers=len(SERVICES)) as services_pool:
        session = CollectSession(aws=aws, policy=policy, regions=policy.regions_in_scope, pool=pool)
        modules = [importlib.import_module(f"vigil.checks.collectors.{name}") for name in services]
        for future in [services_pool.submit(module.collect, session, inventory) for module in modules]:
            future.result()
    return inventory


def check(policy: Policy, only: list[str] = MINE, aws: Aws | None = None, services: Iterable[str] = FAST) -> list[Finding]:
    inventory = collect_with(aws or Aws(), policy, services)
    return evaluate(Context(policy=policy, inventory=inventory, as_of=datetime.now(UTC)), only=only)


def deny(aws: Aws, operation: str, bucket: str | None = None, service: str = "s3") -> Aws:
    """Make AWS answer AccessDenied to `operation` (for one bucket, or always) on this session."""

    def handler(params: dict, model, **_kwargs) -> None:
        if bucket is None or params.get("Bucket") == bucket:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                model.name,
            )

    aws.session.events.register(f"before-parameter-build.{service}.{operation}", handler)
    return aws


def status(findings: list[Finding], control: str, resource: str) -> Status:
    return finding(findings, control, resource).status


def _fewer_stores(data: dict) -> None:
    # The failure tests need one store of each kind RET-01/RET-04 tell apart: `after:`, timed delete, keep_at_least.
    data["stores"] = [s for s in data["stores"] if s.get("bucket") in (None, BILLING, CONTACTS, CONSENT)]


def variant(tmp_path, change) -> Policy:
    """The estate's (three-store) policy with one more change."""
    return policy_variant(tmp_path, lambda data: (_fewer_stores(data), change(data)))


@pytest.fixture
def estate(tmp_path):
    """A compliant estate for three of the policy's S3 stores (enough to break one thing at a time, and faster)."""
    with mock_aws():
        policy = policy_variant(tmp_path, _fewer_stores)
        yield policy, build_s3_estate(policy)


@pytest.fixture
def full_estate():
    """The repository policy's every S3 store, compliant."""
    with mock_aws():
        policy = repo_policy()
        yield policy, build_s3_estate(policy)


# --- the compliant estate ------------------------------------------------------------


def test_compliant_estate_passes_every_s3_control(full_estate):
    policy, built = full_estate
    findings = run_checks(policy, only=MINE)  # every collector, as `vigil check` runs them
    for bucket in policy.data_buckets:
        for control in ["ENC-01", "ACC-01", *DATA_CONTROLS]:
            assert status(findings, control, bucket) == Status.PASS, finding(findings, control, bucket).reason
        replica = built.replicas[bucket]
        assert status(findings, "BAK-03", replica) == Status.PASS
        assert status(findings, "RES-01", replica) == Status.PASS
        assert status(findings, "ENC-01", replica) == Status.PASS
    assert status(findings, "RET-04", CONSENT) == Status.PASS
    assert status(findings, "ENC-01", built.log_buckets["us-east-1"]) == Status.PASS
    # data-store controls do not judge copies or other buckets (RES-01 does judge copies)
    others = set(built.replicas.values()) | set(built.log_buckets.values())
    judged = {f.resource.removeprefix("arn:aws:s3:::") for f in findings if f.control in DATA_CONTROLS and f.control != "RES-01"}
    assert not judged & others


# --- ENC-01 / ENC-02 -------------------------------------------------------------------


def test_enc01_fails_without_default_encryption(estate):
    s3("us-east-1").delete_bucket_encryption(Bucket=BILLING)
    findings = check(estate[0], ["ENC-01", "ENC-02"])
    f = finding(findings, "ENC-01", BILLING)
    assert f.status == Status.FAIL and "no default encryption" in f.reason
    assert f.evidence.observed == {"Rules": []}
    assert status(findings, "ENC-02", BILLING) == Status.FAIL
    assert status(findings, "ENC-01", CONTACTS) == Status.PASS


@pytest.mark.parametrize(
    "by_default, expected",
    [
        ({"SSEAlgorithm": "AES256"}, "does not use SSE-KMS"),
        ({"SSEAlgorithm": "aws:kms"}, "AWS-managed key aws/s3"),
        ({"SSEAlgorithm": "aws:kms:dsse"}, "AWS-managed key aws/s3"),
        ({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/aws/s3"}, "AWS-managed key alias/aws/s3"),
    ],
)
def test_enc02_fails_without_a_customer_managed_key(estate, by_default, expected):
    s3("us-east-1").put_bucket_encryption(
        Bucket=BILLING, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": by_default}]}
    )
    findings = check(estate[0], ["ENC-01", "ENC-02"])
    assert status(findings, "ENC-01", BILLING) == Status.PASS  # still AES-256
    f = finding(findings, "ENC-02", BILLING)
    assert f.status == Status.FAIL and expected in f.reason
    assert f.evidence.observed["Rules"][0]["ApplyServerSideEncryptionByDefault"] == by_default


def test_enc02_unresolvable_key_is_an_error_naming_it(estate):
    unknown = "arn:aws:kms:us-east-1:210987654321:key/00000000-0000-0000-0000-000000000000"
    s3("us-east-1").put_bucket_encryption(Bucket=BILLING, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": unknown}}]})
    f = finding(check(estate[0], ["ENC-02"]), "ENC-02", BILLING)
    assert f.status == Status.ERROR and unknown in f.reason


def test_enc02_accepts_a_key_named_by_alias(estate):
    s3("us-east-1").put_bucket_encryption(Bucket=BILLING, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/vigil-data"}}]})
    f = finding(check(estate[0], ["ENC-02"]), "ENC-02", BILLING)
    assert f.status == Status.PASS and f.evidence.observed["KeyMetadata"]["KeyManager"] == "CUSTOMER"


def _table(name: str, key_arn: str | None = None) -> None:
    kwargs: dict = {}
    if key_arn:
        kwargs["SSESpecification"] = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn}
    client("dynamodb", "us-east-1").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], **kwargs)


def test_enc02_tables_need_a_customer_managed_key(estate):
    policy, built = estate
    _table("accounts", built.keys["us-east-1"])
    findings = check(policy, ["ENC-02", "RES-01"], services=SERVICES)
    assert status(findings, "ENC-02", "accounts") == Status.PASS
    missing = finding(findings, "ENC-02", "referrals")
    assert missing.status == Status.FAIL and "declared data store table referrals was not found" in missing.reason
    assert status(findings, "RES-01", "accounts") == Status.PASS
    assert status(findings, "RES-01", "referrals") == Status.FAIL

    _table("referrals")  # default encryption: an AWS-owned key
    f = finding(check(policy, ["ENC-02"], services=SERVICES), "ENC-02", "referrals")
    assert f.status == Status.FAIL and "AWS-owned key" in f.reason


# --- BAK-01 / BAK-02 -------------------------------------------------------------------


def test_bak01_fails_when_versioning_is_suspended(estate):
    s3("us-east-1").put_bucket_versioning(Bucket=CONTACTS, VersioningConfiguration={"Status": "Suspended"})
    findings = check(estate[0], ["BAK-01"])
    f = finding(findings, "BAK-01", CONTACTS)
    assert f.status == Status.FAIL and "suspended" in f.reason and f.evidence.observed == {"Status": "Suspended"}
    assert status(findings, "BAK-01", BILLING) == Status.PASS


def _replicate(source: str, destination: str, rule_status: str = "Enabled") -> None:
    s3("us-east-1").put_bucket_replication(Bucket=source, ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/vigil-replication",
        "Rules": [{"ID": "off-site", "Status": rule_status, "Priority": 1, "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Enabled"},
                   "Destination": {"Bucket": f"arn:aws:s3:::{destination}"}}]})


def test_bak02_fails_when_the_rule_is_disabled(estate):
    _replicate(BILLING, estate[1].replicas[BILLING], "Disabled")
    f = finding(check(estate[0], ["BAK-02"]), "BAK-02", BILLING)
    assert f.status == Status.FAIL and "not enabled" in f.reason


def test_bak02_fails_when_the_copy_is_in_the_primary_region(estate):
    policy, built = estate
    create_bucket("example-billing-same-region", "us-east-1")
    s3("us-east-1").put_bucket_versioning(Bucket="example-billing-same-region", VersioningConfiguration={"Status": "Enabled"})
    _replicate(BILLING, "example-billing-same-region")
    findings = check(policy, ["BAK-02", "RES-01"])
    f = finding(findings, "BAK-02", BILLING)
    assert f.status == Status.FAIL and "us-east-1, not the backup region us-west-2" in f.reason
    assert f.evidence.observed["DestinationRegions"] == {"example-billing-same-region": "us-east-1"}


def test_bak02_fails_without_replication(estate):
    s3("us-east-1").delete_bucket_replication(Bucket=BILLING)
    f = finding(check(estate[0], ["BAK-02"]), "BAK-02", BILLING)
    assert f.status == Status.FAIL and "no replication configuration" in f.reason


def test_bak02_is_an_error_when_buckets_cannot_be_listed(estate):
    f = finding(check(estate[0], ["BAK-02"], deny(Aws(), "ListBuckets")), "BAK-02", BILLING)
    assert f.status == Status.ERROR and "s3:ListBuckets was denied" in f.reason


# --- BAK-03: the replica chain ---------------------------------------------------------


def test_bak03_weak_replica_fails_on_the_replica_while_the_source_passes(estate):
    policy, built = estate
    replica = built.replicas[CONTACTS]
    west = s3("us-west-2")
    west.delete_bucket_policy(Bucket=replica)
    west.put_bucket_encryption(Bucket=replica, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    findings = check(policy)
    f = finding(findings, "BAK-03", replica)
    assert f.status == Status.FAIL
    assert f.resource == f"arn:aws:s3:::{replica}"
    assert "fails ENC-02, TLS-01, TLS-02" in f.reason
    assert f.evidence.observed["ENC-01"]["status"] == "pass"
    assert f.evidence.observed["TLS-01"]["status"] == "fail"
    for control in ("ENC-02", "BAK-01", "BAK-02", "RET-01"):
        assert status(findings, control, CONTACTS) == Status.PASS
    assert not [x for x in findings if x.control == "BAK-03" and x.resource == f"arn:aws:s3:::{CONTACTS}"]
    assert status(findings, "BAK-03", built.replicas[BILLING]) == Status.PASS


def test_bak03_replica_without_versioning_or_public_block_fails(estate):
    policy, built = estate
    replica = built.replicas[BILLING]
    s3("us-west-2").delete_public_access_block(Bucket=replica)
    f = finding(check(policy, ["BAK-03"]), "BAK-03", replica)
    assert f.status == Status.FAIL and "ACC-01" in f.reason


def _backed_up(policy: Policy, key_arn: str | None) -> tuple[Inventory, str]:
    """The accounts table backed up into a vault. moto lists vaults but has no backup selections, so the
    plan is added as the backup collector records AWS's GetBackupPlan / GetBackupSelection answers."""
    backup = client("backup", "us-east-1")
    vault = backup.create_backup_vault(BackupVaultName="vigil-vault", **({"EncryptionKeyArn": key_arn} if key_arn else {}))
    inventory = collect_with(Aws(), policy, SERVICES)
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/accounts"
    inventory.plans.append(BackupPlan(
        "plan-1", "arn:aws:backup:us-east-1:123456789012:backup-plan:plan-1", "us-east-1",
        Fact("backup:GetBackupPlan", {"BackupPlanName": "daily", "Rules": [
            {"RuleName": "daily", "TargetBackupVaultName": "vigil-vault", "ScheduleExpression": "cron(0 3 * * ? *)"}]}),
        Fact("backup:GetBackupSelection", [{"SelectionName": "stores", "Resources": [table],
                                            "IamRoleArn": "arn:aws:iam::123456789012:role/vigil-backup"}])))
    return inventory, vault["BackupVaultArn"]


def test_bak03_vault_with_customer_key_passes(estate):
    policy, built = estate
    _table("accounts", built.keys["us-east-1"])
    inventory, vault = _backed_up(policy, built.keys["us-east-1"])
    findings = evaluate(Context(policy, inventory), only=["BAK-03", "RES-01"])
    f = finding(findings, "BAK-03", vault)
    assert f.status == Status.PASS and f.evidence.observed["EncryptionKeyArn"] == built.keys["us-east-1"]
    assert status(findings, "RES-01", vault) == Status.PASS


def test_bak03_vault_with_unknown_key_is_an_error(estate):
    policy, built = estate
    _table("accounts", built.keys["us-east-1"])
    unknown = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    inventory, vault = _backed_up(policy, unknown)
    f = finding(evaluate(Context(policy, inventory), only=["BAK-03"]), "BAK-03", vault)
    assert f.status == Status.ERROR and unknown in f.reason


# --- ACC-01 ----------------------------------------------------------------------------

ALL_ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def test_acc01_fails_without_any_block(estate):
    s3("us-east-1").delete_public_access_block(Bucket=BILLING)
    findings = check(estate[0], ["ACC-01"])
    f = finding(findings, "ACC-01", BILLING)
    assert f.status == Status.FAIL and "BlockPublicAcls" in f.reason
    assert f.evidence.observed["Effective"]["RestrictPublicBuckets"] is False
    assert status(findings, "ACC-01", CONTACTS) == Status.PASS


def test_acc01_effective_setting_is_bucket_or_account_flag_by_flag(estate):
    s3("us-east-1").put_public_access_block(Bucket=BILLING, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    assert status(check(estate[0], ["ACC-01"]), "ACC-01", BILLING) == Status.FAIL
    client("s3control", "us-east-1").put_public_access_block(
        AccountId=estate[1].account_id, PublicAccessBlockConfiguration={
            "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    f = finding(check(estate[0], ["ACC-01"]), "ACC-01", BILLING)
    assert f.status == Status.PASS and f.evidence.observed["Effective"] == ALL_ON


def test_acc01_denied_read_is_an_error_unless_the_account_blocks_everything(estate):
    s3("us-east-1").delete_public_access_block(Bucket=BILLING)
    findings = check(estate[0], ["ACC-01"], deny(Aws(), "GetPublicAccessBlock", BILLING))
    f = finding(findings, "ACC-01", BILLING)
    assert f.status == Status.ERROR and "s3:GetPublicAccessBlock was denied" in f.reason
    assert status(findings, "ACC-01", CONTACTS) == Status.PASS
    client("s3control", "us-east-1").put_public_access_block(
        AccountId=estate[1].account_id, PublicAccessBlockConfiguration=ALL_ON)
    findings = check(estate[0], ["ACC-01"], deny(Aws(), "GetPublicAccessBlock", BILLING))
    assert status(findings, "ACC-01", BILLING) == Status.PASS


# --- AUD-02 ----------------------------------------------------------------------------


def _trail(selectors: dict) -> None:
    create_bucket("vigil-trail-logs", "us-east-1")
    trail_bucket_policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::vigil-trail-logs/*"}]}
    s3("us-east-1").put_bucket_policy(Bucket="vigil-trail-logs", Policy=json.dumps(trail_bucket_policy))
    cloudtrail = client("cloudtrail", "us-east-1")
    cloudtrail.create_trail(Name="org", S3BucketName="vigil-trail-logs", IsMultiRegionTrail=True, EnableLogFileValidation=True)
    cloudtrail.put_event_selectors(TrailName="org", **selectors)
    cloudtrail.start_logging(Name="org")


def test_aud02_fails_without_access_logging(estate):
    s3("us-east-1").put_bucket_logging(Bucket=BILLING, BucketLoggingStatus={})
    findings = check(estate[0], ["AUD-02"])
    f = finding(findings, "AUD-02", BILLING)
    assert f.status == Status.FAIL and "no server access logging" in f.reason
    assert status(findings, "AUD-02", CONTACTS) == Status.PASS


@pytest.mark.parametrize(
    "selectors, covered",
    [
        ({"EventSelectors": [{"ReadWriteType": "All", "DataResources": [
            {"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{BILLING}/"]}]}]}, True),
        ({"EventSelectors": [{"ReadWriteType": "All", "DataResources": [
            {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}]}, True),
        ({"EventSelectors": [{"ReadWriteType": "All", "DataResources": [
            {"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{CONTACTS}/"]}]}]}, False),
        ({"AdvancedEventSelectors": [{"Name": "s3", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}]}, True),
        ({"AdvancedEventSelectors": [{"Name": "s3", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.ARN", "StartsWith": [f"arn:aws:s3:::{CONTACTS}/"]}]}]}, False),
    ],
)
def test_aud02_cloudtrail_data_events_can_stand_in_for_access_logs(estate, selectors, covered):
    s3("us-east-1").put_bucket_logging(Bucket=BILLING, BucketLoggingStatus={})
    _trail(selectors)
    f = finding(check(estate[0], ["AUD-02"], services=SERVICES), "AUD-02", BILLING)
    assert f.status == (Status.PASS if covered else Status.FAIL), f.reason
    if covered:
        assert "trail org" in f.reason


# --- RES-01 ----------------------------------------------------------------------------


def test_res01_fails_for_a_replica_outside_the_allowed_regions(estate):
    policy, built = estate
    create_bucket("example-billing-eu", "eu-west-1")
    s3("eu-west-1").put_bucket_versioning(Bucket="example-billing-eu", VersioningConfiguration={"Status": "Enabled"})
    _replicate(BILLING, "example-billing-eu")
    findings = check(policy, ["RES-01", "BAK-02"])
    f = finding(findings, "RES-01", "example-billing-eu")
    assert f.status == Status.FAIL and "eu-west-1" in f.reason
    assert f.evidence.observed == {"Region": "eu-west-1", "Allowed": ["us-east-1", "us-west-2"]}
    assert status(findings, "RES-01", BILLING) == Status.PASS
    assert status(findings, "BAK-02", BILLING) == Status.FAIL


def test_declared_bucket_that_does_not_exist_fails_every_data_store_control(estate, tmp_path):
    def add_store(data: dict) -> None:
        data["stores"].append({"name": "ghost", "kind": "s3", "bucket": "example-ghost", "category": "billing"})

    findings = check(variant(tmp_path, add_store))
    for control in DATA_CONTROLS:
        f = finding(findings, control, "example-ghost")
        assert f.status == Status.FAIL and "declared data store bucket example-ghost was not found" in f.reason


# --- RET-01 ----------------------------------------------------------------------------


def _lifecycle(bucket: str, rules: list[dict]) -> None:
    s3("us-east-1").put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


BILLING_LIMIT = 7 * 365 + 7  # P7Y + grace P7D


@pytest.mark.parametrize(
    "rule, problem",
    [
        ({"NoncurrentVersionExpiration": {"NoncurrentDays": BILLING_LIMIT + 1}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
          "Expiration": {"Days": 2555}}, f"noncurrent versions expire after {BILLING_LIMIT + 1} days"),
        ({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}, "Expiration": {"Days": 2555}},
         "no enabled rule aborts incomplete multipart uploads"),
        ({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
         "no enabled rule expires current objects"),
        ({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
          "Expiration": {"Days": BILLING_LIMIT + 30}}, f"current objects expire after {BILLING_LIMIT + 30} days"),
    ],
)
def test_ret01_fails_when_a_rule_is_missing_or_too_long(estate, rule, problem):
    _lifecycle(BILLING, [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, **rule}])
    findings = check(estate[0], ["RET-01"])
    f = finding(findings, "RET-01", BILLING)
    assert f.status == Status.FAIL and problem in f.reason, f.reason
    assert f.evidence.observed["Rules"][0]["ID"] == "r"
    assert status(findings, "RET-01", CONTACTS) == Status.PASS


def test_ret01_rules_must_be_enabled_and_cover_the_store_prefix(estate):
    full = {"NoncurrentVersionExpiration": {"NoncurrentDays": 30}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
    _lifecycle(CONTACTS, [{"ID": "elsewhere", "Status": "Enabled", "Filter": {"Prefix": "archive/"}, **full},
                          {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, **full}])
    assert status(check(estate[0], ["RET-01"]), "RET-01", CONTACTS) == Status.FAIL
    # `after: account_closed` categories are enforced by `vigil retain`: any noncurrent age, no current expiry needed
    _lifecycle(CONTACTS, [{"ID": "all", "Status": "Enabled", "Filter": {"Prefix": "contacts/"},
                           "NoncurrentVersionExpiration": {"NoncurrentDays": 5000},
                           "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}])
    assert status(check(estate[0], ["RET-01"]), "RET-01", CONTACTS) == Status.PASS


def test_ret01_fails_without_lifecycle_and_reports_one_finding_per_shared_bucket(estate, tmp_path):
    def share(data: dict) -> None:
        # two stores in one bucket must not overlap (the policy refuses that): billing keeps invoices/
        next(s for s in data["stores"] if s["name"] == "billing")["prefix"] = "invoices/"
        data["stores"].append({"name": "billing-exports", "kind": "s3", "bucket": BILLING, "prefix": "exports/",
                               "category": "marketing", "layout": "object"})

    policy = variant(tmp_path, share)
    findings = check(policy, ["RET-01"])
    f = finding(findings, "RET-01", BILLING)  # exactly one for the bucket
    # the estate's rules were built for billing alone: marketing's P1Y is shorter than P7Y
    assert f.status == Status.FAIL and "store billing-exports" in f.reason and "store billing " not in f.reason
    s3("us-east-1").delete_bucket_lifecycle(Bucket=BILLING)
    f = finding(check(policy, ["RET-01"]), "RET-01", BILLING)
    assert f.status == Status.FAIL and "no lifecycle configuration" in f.reason


# --- RET-04 ----------------------------------------------------------------------------


def test_ret04_fails_when_object_lock_is_shorter_than_keep_at_least(estate):
    s3("us-east-1").put_object_lock_configuration(Bucket=CONSENT, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
    f = finding(check(estate[0], ["RET-04"]), "RET-04", CONSENT)
    assert f.status == Status.FAIL and "only 30 days" in f.reason and "1460" in f.reason


def test_ret04_counts_years_and_fails_buckets_without_object_lock(estate, tmp_path):
    s3("us-east-1").put_object_lock_configuration(Bucket=CONSENT, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 4}}})
    assert status(check(estate[0], ["RET-04"]), "RET-04", CONSENT) == Status.PASS

    def billing_keeps(data: dict) -> None:
        data["categories"]["billing"]["keep_at_least"] = "P1Y"
        data["categories"]["marketing"]["keep_at_least"] = "P30D"

    findings = check(variant(tmp_path, billing_keeps), ["RET-04"], services=SERVICES)
    f = finding(findings, "RET-04", BILLING)
    assert f.status == Status.FAIL and "no Object Lock" in f.reason
    assert status(findings, "RET-04", "referrals") == Status.FAIL  # declared table is missing here
    _table("referrals")
    f = finding(check(variant(tmp_path, billing_keeps), ["RET-04"], services=SERVICES), "RET-04", "referrals")
    assert f.status == Status.FAIL and "no per-item deletion guard" in f.reason


# --- ACC-04: ACLs disabled on data store buckets ------------------------------------------


def test_acc04_passes_when_bucket_owner_is_enforced_and_fails_with_acls_on(estate):
    policy, built = estate
    findings = check(policy, ["ACC-04"])
    assert {status(findings, "ACC-04", b) for b in policy.data_buckets} == {Status.PASS}
    assert not [f for f in findings if f.resource.endswith(built.replicas[BILLING])]  # data stores only
    s3("us-east-1").put_bucket_ownership_controls(Bucket=BILLING, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    s3("us-east-1").delete_bucket_ownership_controls(Bucket=CONTACTS)
    findings = check(policy, ["ACC-04"])
    billing, contacts = finding(findings, "ACC-04", BILLING), finding(findings, "ACC-04", CONTACTS)
    assert billing.status == Status.FAIL and "Object Ownership is ObjectWriter" in billing.reason
    assert contacts.status == Status.FAIL and "no Object Ownership setting" in contacts.reason
    assert status(findings, "ACC-04", CONSENT) == Status.PASS


# --- denied reads: an error for that resource alone ------------------------------------


@pytest.mark.parametrize(
    "operation, controls",
    [
        ("GetBucketEncryption", ["ENC-01", "ENC-02"]),
        ("GetBucketVersioning", ["BAK-01"]),
        ("GetBucketReplication", ["BAK-02"]),
        ("GetBucketLogging", ["AUD-02"]),
        ("GetBucketLifecycleConfiguration", ["RET-01"]),
        ("GetObjectLockConfiguration", ["RET-04"]),
        ("GetBucketOwnershipControls", ["ACC-04"]),
    ],
)
def test_a_denied_read_is_an_error_for_that_bucket_only(estate, operation, controls):
    target = CONSENT
    findings = check(estate[0], controls, deny(Aws(), operation, target))
    for control in controls:
        f = finding(findings, control, target)
        assert f.status == Status.ERROR, f.reason
        assert f"s3:{operation} was denied (AccessDenied)" in f.reason
        others = [x for x in findings if x.control == control and x.resource.startswith("arn:aws:s3:::")
                  and not x.resource.endswith(target)]
        assert all(x.status == Status.PASS for x in others), [(x.resource, x.reason) for x in others]


def test_a_bucket_whose_region_cannot_be_read_is_a_res01_error_for_it_alone(estate):
    """No BucketRegion in the listing and the region-filtered listings refused: each bucket's
    region is asked with GetBucketLocation, and a refusal there is that bucket's error."""
    aws = deny(Aws(), "GetBucketLocation", CONSENT)

    def refuse_filtered(params: dict, model, **_kwargs) -> None:
        if params.get("BucketRegion"):
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, model.name)

    aws.session.events.register("before-parameter-build.s3.ListBuckets", refuse_filtered)
    findings = check(estate[0], ["RES-01"], aws)
    f = finding(findings, "RES-01", CONSENT)
    assert f.status == Status.ERROR and "s3:GetBucketLocation was denied (AccessDenied)" in f.reason
    assert status(findings, "RES-01", BILLING) == Status.PASS


def test_a_denied_read_on_a_replica_makes_bak03_an_error(estate):
    policy, built = estate
    replica = built.replicas[BILLING]
    f = finding(check(policy, ["BAK-03"], deny(Aws(), "GetBucketVersioning", replica)), "BAK-03", replica)
    assert f.status == Status.ERROR and "BAK-01" in f.reason and "denied" in f.reason


def test_denied_list_buckets_is_a_listing_error_not_a_failure(estate):
    policy, _ = estate
    aws = deny(Aws(), "ListBuckets")
    inventory = collect_with(aws, policy, ["s3"])
    assert "s3:ListBuckets was denied" in inventory.listing_errors["s3"].error
    assert inventory.buckets == {}
    findings = evaluate(Context(policy, inventory), only=MINE)
    for control in ["ENC-01", "ACC-01", *DATA_CONTROLS]:
        assert status(findings, control, BILLING) == Status.ERROR


def test_denied_account_public_access_block_is_kept_as_a_fact(estate):
    inventory = collect_with(deny(Aws(), "GetPublicAccessBlock", service="s3-control"), estate[0], ["s3"])
    assert "s3control:GetPublicAccessBlock was denied" in inventory.account_public_access_block.error
    assert inventory.buckets[BILLING].public_access_block.value == ALL_ON  # bucket level unaffected


# --- the collector: one call per fact, only the facts the controls in scope read ---------

PER_BUCKET = {row.operation for row in S3_FACTS.values()}


def counted(aws: Aws) -> Counter:
    """(operation, bucket or account or region filter) -> calls made on this session."""
    calls: Counter = Counter()
    lock = threading.Lock()

    def count(params: dict, model, **_kwargs) -> None:
        with lock:
            calls[(model.name, params.get("Bucket") or params.get("AccountId") or params.get("BucketRegion"))] += 1

    aws.session.events.register("before-parameter-build.s3", count)
    aws.session.events.register("before-parameter-build.s3-control", count)
    return calls


def test_every_api_is_called_exactly_once_per_bucket(full_estate):
    policy, built = full_estate
    aws = Aws()
    calls = counted(aws)
    inventory = collect_with(aws, policy, ["s3"])

    names = set(inventory.buckets)
    assert names == set(policy.data_buckets) | set(built.replicas.values()) | set(built.log_buckets.values())
    for name in names:
        assert {op for (op, bucket) in calls if bucket == name} == PER_BUCKET
    assert all(n == 1 for n in calls.values()), [k for k, n in calls.items() if n > 1]
    # moto's listing has no BucketRegion: one listing per region in scope places the buckets (no GetBucketLocation)
    assert {key for key in calls if key[0] == "ListBuckets"} == {("ListBuckets", None), *(("ListBuckets", r) for r in policy.regions_in_scope)}
    assert calls[("GetPublicAccessBlock", built.account_id)] == 1
    # values come back in the shapes the records promise
    contacts = inventory.buckets[CONTACTS]
    assert contacts.region.value == "us-east-1" and inventory.buckets[built.replicas[CONTACTS]].region.value == "us-west-2"
    assert contacts.versioning.value["Status"] == "Enabled"
    assert contacts.policy.value["Statement"][0]["Sid"] == "DenyInsecureTransport"
    assert contacts.tags.value == {"vigil:store": CONTACTS}
    assert inventory.buckets[CONSENT].object_lock.value["ObjectLockEnabled"] == "Enabled"
    assert inventory.buckets[built.replicas[CONTACTS]].lifecycle.value is None
    assert inventory.buckets[built.replicas[CONTACTS]].replication.value is None


def test_bucket_region_in_the_listing_saves_every_other_location_call(full_estate):
    """Real S3 answers a ListBuckets that has a parameter (MaxBuckets) with each bucket's BucketRegion."""
    policy, built = full_estate
    where = {name: policy.regions.primary for name in policy.data_buckets} | {r: policy.regions.backup for r in built.replicas.values()}
    where |= {name: region for region, name in built.log_buckets.items()}
    aws = Aws()
    calls = counted(aws)

    def as_aws_answers(parsed: dict, model, **_kwargs) -> None:
        for bucket in parsed.get("Buckets", []):
            bucket["BucketRegion"] = where[bucket["Name"]]

    aws.session.events.register("after-call.s3.ListBuckets", as_aws_answers)
    inventory = collect_with(aws, policy, ["s3"])
    assert [key for key in calls if key[0] in ("ListBuckets", "GetBucketLocation")] == [("ListBuckets", None)]
    assert {name: b.region.value for name, b in inventory.buckets.items()} == where
    assert all(b.region.api == "s3:ListBuckets" for b in inventory.buckets.values())


def test_only_the_facts_the_controls_in_scope_read_are_collected(full_estate):
    policy, built = full_estate
    aws = Aws()
    calls = counted(aws)
    inventory = collect_inventory(aws, policy, policy.regions_in_scope, bucket_facts=bucket_facts(["ENC-01"]))
    per_bucket = {name: {op for (op, bucket) in calls if bucket == name} for name in inventory.buckets}
    assert per_bucket and all(ops == {"GetBucketEncryption"} for ops in per_bucket.values())  # ENC-01 reads encryption only
    unread = inventory.buckets[BILLING].policy
    assert not unread.ok and "not read in this run" in unread.error  # never a silent "no policy"

    calls.clear()
    wanted = bucket_facts()  # every control: each class of bucket gets what its controls read
    inventory = collect_inventory(aws, policy, policy.regions_in_scope, bucket_facts=wanted)
    ops = {name: {op for (op, bucket) in calls if bucket == name} for name in inventory.buckets}
    api = {row.name: row.operation for row in S3_FACTS.values()}
    assert ops[built.log_buckets["us-east-1"]] == {api[f] for f in wanted.every}
    assert ops[built.replicas[BILLING]] == {api[f] for f in wanted.for_replica()}
    assert ops[BILLING] == {api[f] for f in wanted.for_store()}
    assert "GetBucketTagging" not in {op for op, _ in calls}  # no control reads tags


@pytest.mark.parametrize("control", sorted(c for c, reads in registry_reads().items() if reads != NO_BUCKET_FACTS))
def test_a_control_judges_the_same_on_the_facts_it_declares_as_on_all_facts(full_estate, control):
    """Each control's declared facts are all it reads: collecting only those changes none of its findings."""
    policy, _ = full_estate
    everything = check(policy, [control])
    inventory = collect_inventory(Aws(), policy, policy.regions_in_scope, bucket_facts=bucket_facts([control]))
    declared = evaluate(Context(policy=policy, inventory=inventory, as_of=datetime.now(UTC)), only=[control])
    key = lambda findings: sorted((f.resource, f.status, f.reason) for f in findings)  # noqa: E731
    assert key(declared) == key(everything)


def test_an_empty_account_collects_nothing_and_errs_nowhere():
    with mock_aws():
        policy = repo_policy()
        inventory = collect_with(Aws(), policy, ["s3"])
        assert inventory.buckets == {} and inventory.listing_errors == {}
        assert inventory.account_public_access_block.ok and inventory.account_public_access_block.value is None


def test_a_bucket_policy_that_is_not_json_is_an_error_fact(estate):
    s3("us-east-1").put_bucket_policy(Bucket=BILLING, Policy="{not json")
    inventory = collect_with(Aws(), estate[0], ["s3"])
    fact = inventory.buckets[BILLING].policy
    assert not fact.ok and "not valid JSON" in fact.error


# --- rules on records AWS can produce but moto cannot (moto rewrites replication filters) ---


def _record(name: str, region: str, **values) -> Bucket:
    """A bucket record as the collector fills it from AWS's answers."""
    facts = {row.name: Fact(row.api, values.get(row.name)) for row in S3_FACTS.values()}
    return Bucket(name=name, region=Fact("s3:ListBuckets", region), **facts)


@pytest.mark.parametrize(
    "rule, prefix",
    [
        ({"Prefix": ""}, ""),
        ({"Filter": {}}, ""),
        ({"Filter": {"Prefix": ""}}, ""),
        ({"Filter": {"Prefix": "web/"}}, "web/"),
        ({"Filter": {"And": {"Prefix": "web/"}}}, "web/"),
        ({"Filter": {"Tag": {"Key": "class", "Value": "pii"}}}, None),
        ({"Filter": {"And": {"Prefix": "", "Tags": [{"Key": "class", "Value": "pii"}]}}}, None),
        ({"Filter": {"ObjectSizeGreaterThan": 1024}}, None),
    ],
)
def test_filter_prefix_reads_every_filter_shape(rule, prefix):
    assert filter_prefix(rule) == prefix


@pytest.mark.parametrize(
    "rule_filter, ok",
    [({"Prefix": ""}, True), ({}, True), ({"Tag": {"Key": "class", "Value": "pii"}}, False), ({"Prefix": "web/"}, False)],
)
def test_bak02_requires_a_rule_covering_all_objects(rule_filter, ok):
    source = _record(BILLING, "us-east-1", replication={"Role": "r", "Rules": [
        {"ID": "off-site", "Status": "Enabled", "Filter": rule_filter, "Destination": {"Bucket": "arn:aws:s3:::copy"}}]})
    inventory = Inventory("123456789012", ["us-east-1", "us-west-2"], buckets={BILLING: source, "copy": _record("copy", "us-west-2")})
    f = bak_02.check_bucket(Context(repo_policy(), inventory), source)
    assert f.status == (Status.PASS if ok else Status.FAIL), f.reason
    if not ok:
        assert "copies only part of the bucket" in f.reason


def test_bak02_destination_in_another_account_is_an_error():
    source = _record(BILLING, "us-east-1", replication={"Role": "r", "Rules": [
        {"ID": "off-site", "Status": "Enabled", "Filter": {"Prefix": ""}, "Destination": {"Bucket": "arn:aws:s3:::elsewhere"}}]})
    inventory = Inventory("123456789012", ["us-east-1"], buckets={BILLING: source})
    f = bak_02.check_bucket(Context(repo_policy(), inventory), source)
    assert f.status == Status.ERROR and "elsewhere, which is not visible" in f.reason
