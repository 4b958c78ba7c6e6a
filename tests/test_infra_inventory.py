"""S3 Inventory and S3 Batch Operations in the Pulumi program, under Pulumi's mocks: the inventory
configurations, their CMK-encrypted destination with its own retention, the delivery and key policies,
the Lambda the jobs invoke with its derived role, the jobs' role; and the deploy-time controls on the
new buckets (they pass, and fail when one control is taken away)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import botocore.session
import pytest
from pulumi.runtime import rpc
from pulumi_policy import StackValidationArgs
from vigil.checks.model import Status
from vigil.infra.components.inventory import OPTIONAL_FIELDS, reports
from vigil.infra.deploytime import evaluate_declared, inventory_from
from vigil.infra.mocks import DeclaredResource, RecordingMocks, declare_stack
from vigil.infra.policy_pack.pack import policies
from vigil.infra.program import Parts
from vigil.infra.settings import StackSettings
from vigil.retention.s3_inventory import REQUIRED

from tests.helpers import policy_variant, repo_policy
from tests.test_infra_controls import NoEncryptionRules, OneBlockOff, without
from tests.test_infra_policy_pack import as_preview
from vigil import permissions
from vigil.policy import Policy

INVENTORY = "example-inventory"
ACCOUNT = "123456789012"
STORES = ("billing", "web-logs")  # a whole-object store and a records store plan from reports


def _with_inventories(data: dict) -> None:
    data["access"]["service_roles"].append("vigil-batch-task")
    for store in data["stores"]:
        if store["name"] in STORES:
            store["inventory"] = {"bucket": INVENTORY, "prefix": "inventory", "config_id": "vigil"}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return policy_variant(tmp_path_factory.mktemp("inventory"), _with_inventories)


KEY = "a2V5LWZvci10aGUtbGFtYmRhLW9ubHktMzJieXRlcyE="  # the policy's VIGIL_PSEUDONYM_KEY (source: env), for the Lambda


def settings(policy: Policy) -> StackSettings:
    return dataclasses.replace(StackSettings.defaults(policy), batch_environment={"VIGIL_PSEUDONYM_KEY": KEY})


@pytest.fixture(scope="module")
def declared(policy: Policy) -> RecordingMocks:
    return declare_stack(policy, settings(policy))


def of_type(mocks: RecordingMocks, typ: str) -> list[DeclaredResource]:
    return [r for r in mocks.resources if r.type == typ]


def named(mocks: RecordingMocks, name: str) -> DeclaredResource:
    (found,) = [r for r in mocks.resources if r.name == name]
    return found


def report_key(mocks: RecordingMocks) -> DeclaredResource:
    (key,) = [k for k in of_type(mocks, "aws:kms/key:Key") if k.name == "report-key"]
    return key


def test_one_inventory_per_store_bucket_with_every_version_and_the_fields_the_reader_needs(declared: RecordingMocks) -> None:
    configs = {c.get("bucket"): c for c in of_type(declared, "aws:s3/inventory:Inventory")}
    assert set(configs) == {"example-billing", "example-usage-logs"}
    key_arn = report_key(declared).state["arn"]
    for config in configs.values():
        assert config.get("name") == "vigil" and config.get("enabled") is True
        assert config.get("includedObjectVersions") == "All"
        assert config.get("schedule") == {"frequency": "Daily"}
        assert config.get("region") in (None, "us-east-1") and config.region == "us-east-1"  # a destination is in its source's region
        assert config.get("destination") == {"bucket": {
            "bucketArn": f"arn:aws:s3:::{INVENTORY}", "format": "CSV", "prefix": "inventory",
            "encryption": {"sseKms": {"keyId": key_arn}}}}
        assert set(config.get("optionalFields")) == set(OPTIONAL_FIELDS)
    assert configs["example-usage-logs"].get("filter") == {"prefix": "web/"}  # the store's prefix only
    assert configs["example-billing"].get("filter") is None  # the whole bucket is the store


def test_the_optional_fields_are_valid_and_with_all_versions_give_every_column_the_reader_requires() -> None:
    valid = botocore.session.get_session().get_service_model("s3").shape_for("InventoryOptionalField").enum
    assert set(OPTIONAL_FIELDS) <= set(valid), "PutBucketInventoryConfiguration would refuse the configuration"
    assert {"Size", "LastModifiedDate", "ETag", "ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"} <= set(OPTIONAL_FIELDS)
    assert set(REQUIRED) == set(OPTIONAL_FIELDS) | {"Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker"}


def test_the_destination_is_cmk_encrypted_kept_for_its_own_period_and_open_to_s3_delivery_only(declared: RecordingMocks,
                                                                                               policy: Policy) -> None:
    inventory = inventory_from(declared.resources, policy).inventory
    bucket = inventory.buckets[INVENTORY]
    key_arn = report_key(declared).state["arn"]
    rule = bucket.encryption.value[0]["ApplyServerSideEncryptionByDefault"]
    assert rule == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    assert bucket.versioning.value == {"Status": "Enabled"} and all(bucket.public_access_block.value.values())
    assert bucket.logging.value["TargetBucket"] == "example-telecom-access-logs-us-east-1"
    (expiry,) = bucket.lifecycle.value
    assert expiry["Expiration"] == {"Days": StackSettings.defaults(policy).inventory_report_days}
    assert expiry["Filter"] == {"Prefix": ""} and "NoncurrentVersionExpiration" in expiry
    statements = {s["Sid"]: s for s in bucket.policy.value["Statement"]}
    assert {"DenyPlainHttp", "DenyTlsBelow12"} <= set(statements)
    delivery = statements["AllowS3InventoryDelivery"]
    assert delivery["Principal"] == {"Service": "s3.amazonaws.com"} and delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == [f"arn:aws:s3:::{INVENTORY}/inventory/*"]
    assert delivery["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT, "s3:x-amz-acl": "bucket-owner-full-control"},
        "ArnLike": {"aws:SourceArn": ["arn:aws:s3:::example-billing", "arn:aws:s3:::example-usage-logs"]}}


def test_the_report_key_rotates_and_lets_s3_encrypt_only_for_these_sources(declared: RecordingMocks) -> None:
    key = report_key(declared)
    assert key.get("enableKeyRotation") is True
    statements = {s["Sid"]: s for s in json.loads(key.get("policy"))["Statement"]}
    assert statements["AccountAdministers"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    s3 = statements["AllowS3InventoryEncryption"]
    assert s3["Principal"] == {"Service": "s3.amazonaws.com"} and s3["Action"] == "kms:GenerateDataKey"
    assert s3["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                               "ArnLike": {"aws:SourceArn": ["arn:aws:s3:::example-billing", "arn:aws:s3:::example-usage-logs"]}}


def test_the_lambda_runs_the_batch_handler_in_each_region_with_the_role_derived_from_its_code(declared: RecordingMocks,
                                                                                            policy: Policy) -> None:
    functions = {f.region: f for f in of_type(declared, "aws:lambda/function:Function")}
    assert set(functions) == {"us-east-1", "us-west-2"}  # a replica's job runs in the replica's region
    for function in functions.values():
        assert function.get("handler") == "batch_handler.handler" and function.get("runtime") == "python3.11"
        assert function.get("name") == "vigil-batch" and function.get("role") == f"arn:aws:iam::{ACCOUNT}:role/vigil-batch-task"
        assert function.get("timeout") == 900
        environment = function.get("environment")  # the key stays a Pulumi secret (encrypted in the state)
        assert environment[rpc._special_sig_key] == rpc._special_secret_sig
        assert environment["value"] == {"variables": {"VIGIL_POLICY": "policy.yaml", "VIGIL_PSEUDONYM_KEY": KEY}}
    role = named(declared, "vigil-batch-task")
    assert json.loads(role.get("assumeRolePolicy"))["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    document = json.loads(named(declared, "vigil-batch-task-permissions").get("policy"))
    replicas = {b: [f"{b}-replica"] for b in policy.data_buckets}
    assert document == permissions.build([permissions.BATCH_TASK], permissions.Targets.of(
        policy, ["us-east-1", "us-west-2"], ACCOUNT, replicas))
    granted = {a for s in document["Statement"] for a in s["Action"]}
    assert {"s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:PutObject", "s3:ListBucketVersions",
            "kms:Decrypt"} <= granted
    assert not {a for a in granted if a.startswith(("backup:", "dynamodb:BatchWrite", "dynamodb:Put", "dynamodb:Delete"))}
    objects = next(s for s in document["Statement"] if "s3:DeleteObjectVersion" in s["Action"])
    assert "arn:aws:s3:::example-usage-logs-replica/web/*" in objects["Resource"]
    assert all(not r.startswith(f"arn:aws:s3:::{INVENTORY}") for r in objects["Resource"])


def test_the_store_buckets_exempt_the_lambda_from_the_mfa_deny_and_the_settings_demand_it_allow_listed(
        declared: RecordingMocks, policy: Policy, tmp_path: Path) -> None:
    inventory = inventory_from(declared.resources, policy).inventory
    mfa = next(s for s in inventory.buckets["example-billing"].policy.value["Statement"] if s["Sid"] == "DenyObjectAccessWithoutMfa")
    assert f"arn:aws:iam::{ACCOUNT}:role/vigil-batch-task" in mfa["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    with pytest.raises(ValueError, match="access.service_roles must list vigil-batch-task"):
        StackSettings(name_prefix="x").check(policy_variant(tmp_path, _inventories_only))
    StackSettings(name_prefix="x").check(repo_policy())  # no inventory store: no Lambda, nothing to allow-list


def _inventories_only(data: dict) -> None:
    _with_inventories(data)
    data["access"]["service_roles"].remove("vigil-batch-task")


def test_the_jobs_role_trusts_batch_operations_and_only_invokes_the_handler_and_uses_the_batch_buckets(
        declared: RecordingMocks) -> None:
    role = named(declared, "vigil-batch-operations")
    assert json.loads(role.get("assumeRolePolicy"))["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "batchoperations.s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    statements = {s["Sid"]: s for s in json.loads(named(declared, "vigil-batch-operations-permissions").get("policy"))["Statement"]}
    functions = sorted(f.state["arn"] for f in of_type(declared, "aws:lambda/function:Function"))
    assert statements["InvokeVigilHandler"]["Action"] == "lambda:InvokeFunction"
    assert sorted(statements["InvokeVigilHandler"]["Resource"]) == functions
    batch = [f"arn:aws:s3:::example-telecom-batch-{r}/vigil/batch/*" for r in ("us-east-1", "us-west-2")]
    assert statements["ReadManifests"]["Resource"] == batch and statements["WriteReports"]["Resource"] == batch
    assert statements["ReadManifests"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert statements["WriteReports"]["Action"] == "s3:PutObject"
    assert len(statements["BatchBucketKeys"]["Resource"]) == 2
    assert not any(a.startswith("s3:Delete") for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))


def test_the_retention_role_reads_the_reports_as_iam_policy_retain_derives(declared: RecordingMocks, policy: Policy) -> None:
    statements = json.loads(named(declared, "vigil-retention-permissions").get("policy"))["Statement"]
    derived = permissions.build(permissions.COMMANDS["retain"], permissions.Targets.of(policy, ["us-east-1"], ACCOUNT))
    wanted = {s["Sid"]: s for s in derived["Statement"] if s["Sid"].startswith("Inventory")}
    assert set(wanted) == {"InventoryReports", "InventoryBuckets"}
    for sid, statement in wanted.items():
        assert any(s["Action"] == statement["Action"] and s["Resource"] == statement["Resource"] for s in statements), sid
    decrypt = [s for s in statements if s["Action"] == ["kms:Decrypt"]]
    assert decrypt and decrypt[0]["Resource"] == [report_key(declared).state["arn"]]


def test_a_stack_without_inventory_stores_declares_none_of_it() -> None:
    mocks = declare_stack(repo_policy())
    assert not of_type(mocks, "aws:s3/inventory:Inventory") and not of_type(mocks, "aws:lambda/function:Function")
    assert all("batch" not in r.name for r in mocks.resources)


def test_every_control_passes_on_the_new_buckets(declared: RecordingMocks, policy: Policy) -> None:
    findings = evaluate_declared(declared.resources, policy)
    bad = [(f.control, f.resource, f.reason) for f in findings if f.status in (Status.FAIL, Status.ERROR)]
    assert bad == []
    for bucket in (INVENTORY, "example-telecom-batch-us-east-1", "example-telecom-batch-us-west-2"):
        judged = {f.control for f in findings if f.resource == f"arn:aws:s3:::{bucket}" and f.status == Status.PASS}
        assert {"ENC-01", "TLS-01"} <= judged, (bucket, judged)


@pytest.mark.parametrize(("control", "part"), [("ENC-01", NoEncryptionRules), ("TLS-01", without("DenyPlainHttp")),
                                               ("ACC-01", OneBlockOff)])
def test_taking_a_control_away_from_the_report_buckets_fails_it(policy: Policy, control: str, part: type) -> None:
    findings = evaluate_declared(declare_stack(policy, settings(policy), parts=Parts(report_bucket=part)).resources, policy)
    failed = {f.resource for f in findings if f.control == control and f.status == Status.FAIL}
    assert failed == {f"arn:aws:s3:::{b}" for b in (INVENTORY, "example-telecom-batch-us-east-1", "example-telecom-batch-us-west-2")}


def test_reports_refuse_two_destinations_for_one_configuration(tmp_path: Path) -> None:
    def split(data: dict) -> None:
        _with_inventories(data)
        data["stores"].append({**next(s for s in data["stores"] if s["name"] == "web-logs"), "name": "web-logs-2",
                               "prefix": "web2/", "inventory": {"bucket": "other-inventory", "config_id": "vigil"}})
    with pytest.raises(ValueError, match="different destinations"):
        reports(policy_variant(tmp_path, split))


def test_the_retention_role_may_create_and_collect_the_jobs_as_iam_policy_retain_executor_derives(
        declared: RecordingMocks, policy: Policy) -> None:
    runner = named(declared, "batch-operations-runner")
    assert runner.get("role") == "vigil-retention"
    jobs_role = named(declared, "vigil-batch-operations").state["arn"]
    derived = permissions.build(permissions.EXECUTORS["batch-operations"], permissions.Targets.of(
        policy, ["us-east-1", "us-west-2"], ACCOUNT, batch_bucket="example-telecom-batch-{region}", batch_role=jobs_role))
    assert json.loads(runner.get("policy")) == derived
    statements = {s["Sid"]: s for s in derived["Statement"]}
    assert statements["BatchPassRole"]["Resource"] == [jobs_role]
    assert statements["BatchCreateJob"]["Condition"] == {"StringEquals": {"s3:RequestJobOperation": "LambdaInvoke"}}


def _pack(policy: Policy, declared: list[DeclaredResource]) -> list[tuple[str, str, str | None]]:
    """The CrossGuard pack on a first preview of the declaration (references to other resources unknown)."""
    reported: list[tuple[str, str, str | None]] = []
    for rule in policies(policy):
        rule.validate(StackValidationArgs(as_preview(declared, unknown_references=True)),
                      lambda message, urn=None, name=rule.name: reported.append((name, message, urn)))
    return reported


def test_the_crossguard_pack_passes_the_stack_and_stops_a_report_bucket_without_encryption(
        declared: RecordingMocks, policy: Policy) -> None:
    assert _pack(policy, declared.resources) == []
    broken = declare_stack(policy, settings(policy), parts=Parts(report_bucket=NoEncryptionRules)).resources
    reported = _pack(policy, broken)
    assert {name for name, _message, _urn in reported} == {"vigil-enc-01"}
    assert any(f"arn:aws:s3:::{INVENTORY}:" in message and urn and urn.endswith(f"::inventory-{INVENTORY}")
               for _name, message, urn in reported), reported


def test_the_lambdas_log_to_kept_log_groups_and_the_task_role_may_write_its_logs(declared: RecordingMocks) -> None:
    groups = [g for g in of_type(declared, "aws:cloudwatch/logGroup:LogGroup") if g.get("name") == "/aws/lambda/vigil-batch"]
    assert sorted(g.region for g in groups) == ["us-east-1", "us-west-2"] and all(g.get("retentionInDays") == 365 for g in groups)
    attachment = named(declared, "vigil-batch-task-logs")
    assert attachment.get("policyArn") == "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def test_an_env_key_source_the_lambda_cannot_read_stops_the_program(policy: Policy, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\$VIGIL_PSEUDONYM_KEY \(source: env\).*vigil:batchEnvironment.VIGIL_PSEUDONYM_KEY"):
        StackSettings.defaults(policy).check(policy)
    settings(policy).check(policy)

    def whole_objects_only(data: dict) -> None:  # deleting whole objects needs no key
        _with_inventories(data)
        next(s for s in data["stores"] if s["name"] == "web-logs").pop("inventory")
    StackSettings.defaults(policy).check(policy_variant(tmp_path, whole_objects_only))
