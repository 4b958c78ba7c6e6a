"""The Pulumi program under Pulumi's mocks: what it declares, and the catalogue's verdict on it."""
from __future__ import annotations

import json

import pytest
from vigil.checks.model import Status
from vigil.checks.registry import evaluators
from vigil.infra import lifecycle
from vigil.infra.deploytime import RUN_TIME_ONLY, evaluate_declared, inventory_from
from vigil.infra.mocks import DeclaredResource, RecordingMocks, declare_stack, run_program
from vigil.infra.program import Parts, build_stack
from vigil.infra.settings import StackSettings

from tests.helpers import repo_policy
from vigil import permissions

# Controls the stack must be seen to pass once their evaluators exist (RDS ones have nothing to judge here).
EXPECTED = {"ENC-01", "ENC-02", "ENC-03", "ENC-04", "ENC-06", "TLS-01", "TLS-02", "MFA-03", "MFA-04", "BAK-01", "BAK-02",
            "BAK-03", "BAK-04", "BAK-05", "ACC-01", "ACC-02", "AUD-01", "AUD-02", "RES-01", "RET-01", "RET-03", "RET-04"}


@pytest.fixture(scope="module")
def declared() -> RecordingMocks:
    return declare_stack(repo_policy())


def of_type(mocks: RecordingMocks, suffix: str) -> list[DeclaredResource]:
    return [r for r in mocks.resources if r.type.endswith(suffix)]


def test_every_applicable_control_passes_for_the_stack(declared: RecordingMocks) -> None:
    policy = repo_policy()
    findings = evaluate_declared(declared.resources, policy)
    bad = [(f.control, f.resource, f.status.value, f.reason) for f in findings if f.status in (Status.FAIL, Status.ERROR)]
    assert bad == []
    passed = {f.control for f in findings if f.status == Status.PASS}
    registered = set(evaluators()) - set(RUN_TIME_ONLY)
    assert EXPECTED & registered <= passed, f"no passing finding for {sorted((EXPECTED & registered) - passed)}"
    assert len(registered) >= 20, f"only {sorted(registered)} registered"
    # every data store is judged, with its replica (BAK-03) in the backup region
    resources = {f.resource for f in findings}
    for bucket in policy.data_buckets:
        assert f"arn:aws:s3:::{bucket}" in resources
        assert f"arn:aws:s3:::{bucket}-replica" in resources


def test_each_store_bucket_is_built_with_every_protection(declared: RecordingMocks) -> None:
    policy = repo_policy()
    inventory = inventory_from(declared.resources, policy).inventory
    keys = {k.region: k for k in inventory.kms_keys if k.metadata.get("KeyManager") == "CUSTOMER"}
    assert set(keys) == {"us-east-1", "us-west-2"} and all(k.rotation.value for k in keys.values())
    for name in policy.data_buckets:
        bucket, replica = inventory.buckets[name], inventory.buckets[f"{name}-replica"]
        assert bucket.region.value == "us-east-1" and replica.region.value == "us-west-2"
        rule = bucket.encryption.value[0]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": keys["us-east-1"].arn}
        assert rule["BucketKeyEnabled"] is True
        assert replica.encryption.value[0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == keys["us-west-2"].arn
        assert bucket.versioning.value == {"Status": "Enabled"} == replica.versioning.value
        assert all(bucket.public_access_block.value.values()) and len(bucket.public_access_block.value) == 4
        assert bucket.logging.value["TargetBucket"] == "example-telecom-access-logs-us-east-1"
        replication = bucket.replication.value
        assert replication["Role"] == "arn:aws:iam::123456789012:role/vigil-replication"
        assert replication["Rules"][0]["Destination"]["Bucket"] == f"arn:aws:s3:::{name}-replica"
        assert replication["Rules"][0]["Filter"] == {"Prefix": ""} and replication["Rules"][0]["Status"] == "Enabled"
        sids = {s["Sid"]: s for s in bucket.policy.value["Statement"]}
        assert sids["DenyPlainHttp"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert sids["DenyTlsBelow12"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
        mfa = sids["DenyObjectAccessWithoutMfa"]["Condition"]
        assert mfa["BoolIfExists"] == {"aws:MultiFactorAuthPresent": "false"}
        assert mfa["ArnNotLike"]["aws:PrincipalArn"] == sorted(
            f"arn:aws:iam::123456789012:role/{r}" for r in ("vigil-replication", "vigil-backup", "vigil-retention"))
        assert replica.policy.value == json.loads(json.dumps(replica.policy.value))  # same denies on the copy
        assert {s["Sid"] for s in replica.policy.value["Statement"]} == set(sids)


def test_lifecycle_rules_follow_the_categories(declared: RecordingMocks) -> None:
    policy = repo_policy()
    inventory = inventory_from(declared.resources, policy).inventory
    rules = {r["ID"]: r for b in policy.data_buckets for r in inventory.buckets[b].lifecycle.value}
    assert rules["vigil-billing"]["Expiration"] == {"Days": 7 * 365}  # P7Y, delete, whole objects
    assert rules["vigil-consent"]["Expiration"] == {"Days": 5 * 365}
    assert "Expiration" not in rules["vigil-contacts"]  # after: account_closed is the retention job's
    assert "Expiration" not in rules["vigil-web-logs"]  # records inside objects, anonymized
    assert rules["vigil-contacts"]["Filter"] == {"Prefix": "contacts/"}
    for rule in rules.values():
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": policy.grace.approx_days()}
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": lifecycle.ABORT_MULTIPART_DAYS}
    lock = inventory.buckets["example-sms-consent"].object_lock.value
    assert lock == {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 4 * 365}}}
    assert inventory.buckets["example-sms-consent-replica"].object_lock.value == lock
    assert inventory.buckets["example-billing"].object_lock.value is None


def test_tables_backup_trail_and_roles(declared: RecordingMocks) -> None:
    policy = repo_policy()
    inventory = inventory_from(declared.resources, policy).inventory
    assert {t.name for t in inventory.tables.values()} == policy.data_tables
    for table in inventory.tables.values():
        assert table.description.value["SSEDescription"]["KMSMasterKeyArn"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
        assert table.continuous_backups.value["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        assert table.tags.value["vigil:backup"] == "daily"
    [plan] = inventory.plans
    [rule] = plan.plan.value["Rules"]
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert rule["Lifecycle"]["DeleteAfterDays"] <= 2 * 365
    assert rule["CopyActions"][0]["DestinationBackupVaultArn"] == "arn:aws:backup:us-west-2:123456789012:backup-vault:vigil-us-west-2"
    assert plan.selections.value[0]["ListOfTags"] == [{"ConditionType": "STRINGEQUALS", "ConditionKey": "vigil:backup", "ConditionValue": "daily"}]
    assert {v.region for v in inventory.vaults.values()} == {"us-east-1", "us-west-2"}
    [trail] = inventory.trails
    assert trail.description["IsMultiRegionTrail"] and trail.description["LogFileValidationEnabled"]
    assert inventory.ebs_encryption_by_default["us-east-1"].value and inventory.ebs_encryption_by_default["us-west-2"].value
    steward = inventory.roles["data-steward"].trust_policy.value["Statement"][0]
    assert steward["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    retention = [r for r in declared.resources if r.name == "vigil-retention-permissions"][0]
    statements = json.loads(retention.inputs["policy"])["Statement"]
    actions = {a for st in statements for a in st["Action"]}
    assert not any("*" in a for a in actions)
    # the deployed role carries exactly what `vigil iam-policy retain` derives from the code (plus the
    # KMS data key S3 needs to write rewritten objects under the store keys)
    # The repository policy plans no store from an S3 Inventory report, so the role has no report reads
    # (tests/test_infra_inventory.py: a policy whose stores do, and the role reading them as retain derives)
    derived = set(permissions.actions(p for p in permissions.COMMANDS["retain"] if p.scope != permissions.INVENTORIES))
    assert not permissions.Targets.of(repo_policy(), ["us-east-1"]).inventories
    assert actions == derived - set(permissions.retention_role_actions().secrets) | {"kms:GenerateDataKey"}
    assert "s3:DeleteObjectVersion" in actions and "dynamodb:BatchWriteItem" in actions
    # only listing backups has no narrower resource than "*"; deleting one is limited to the account's recovery points
    assert all(a.startswith(("backup:List", "backup:Get", "rds:Describe")) for st in statements if st["Resource"] == "*" for a in st["Action"])
    (delete,) = [st for st in statements if "backup:DeleteRecoveryPoint" in st["Action"]]
    assert delete["Resource"] == [f"arn:aws:backup:{r}:123456789012:recovery-point:*" for r in ("us-east-1", "us-west-2")]


def test_outputs_name_every_store_replica_vault_and_role() -> None:
    policy = repo_policy()
    mocks = RecordingMocks(policy.regions.primary)
    outputs: dict = {}

    def program() -> None:
        stack = build_stack(policy, StackSettings.defaults(policy), Parts())
        import pulumi
        pulumi.Output.all(**{k: pulumi.Output.from_input(v) for k, v in stack.outputs.items()}).apply(outputs.update)

    run_program(mocks, program)
    assert set(outputs["stores"]) == {s.name for s in policy.stores}
    assert set(outputs["replicas"]) == policy.data_buckets
    assert all(outputs["replicas"][b] == f"{b}-replica" for b in policy.data_buckets)
    assert set(outputs["vaults"]) == {"us-east-1", "us-west-2"}
    assert {"replication", "backup", "retention", "data-steward"} <= set(outputs["roles"])
    assert outputs["evidenceBucket"] == "example-telecom-evidence"


def test_evidence_bucket_is_locked_in_compliance_mode(declared: RecordingMocks) -> None:
    inventory = inventory_from(declared.resources, repo_policy()).inventory
    lock = inventory.buckets["example-telecom-evidence"].object_lock.value
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert inventory.buckets["example-telecom-evidence"].encryption.value[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_settings_refuse_service_roles_the_policy_does_not_allow_list() -> None:
    policy = repo_policy()
    with pytest.raises(ValueError, match="access.service_roles must list vigil-other"):
        StackSettings(name_prefix="x", retention_role="vigil-other").check(policy)


def test_unknown_resource_types_are_listed_not_dropped(declared: RecordingMocks) -> None:
    declared_inv = inventory_from([*declared.resources, DeclaredResource("aws:sqs/queue:Queue", "q", "us-east-1", {})], repo_policy())
    assert "aws:sqs/queue:Queue" in {r.type for r in declared_inv.ignored}


def test_main_reads_policy_file_and_settings_from_pulumi_config() -> None:
    import pulumi
    from vigil.infra.program import main

    from tests.conftest import ROOT

    pulumi.runtime.set_all_config({"vigil:policyFile": str(ROOT / "policy.yaml"), "vigil:namePrefix": "acme", "vigil:backupKeepDays": "20"})
    try:
        mocks = RecordingMocks("us-east-1")
        run_program(mocks, main)
    finally:
        pulumi.runtime.set_all_config({})
    buckets = {r.id for r in mocks.resources if r.type == "aws:s3/bucket:Bucket"}
    assert {"acme-evidence", "acme-cloudtrail", "acme-access-logs-us-east-1", "acme-access-logs-us-west-2"} <= buckets
    [plan] = [r for r in mocks.resources if r.type == "aws:backup/plan:Plan"]
    assert plan.inputs["rules"][0]["lifecycle"]["deleteAfter"] == 20
