"""Deploy the Pulumi program into the emulator: Pulumi's mocks, with each resource applied by boto3.

Pulumi registers a resource only once the outputs it uses are known, so `create` is called
in dependency order. Each resource goes to the region of the provider it uses. A type this
deployer does not apply is listed in `skipped` (never silently dropped); a call the
emulator refuses is listed in `failed` with its reason, and the deploy goes on.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

from vigil import s3_facts
from vigil.aws import Aws
from vigil.infra import shapes
from vigil.infra.mocks import DeclaredResource, RecordingMocks, fake_identity

Applier = Callable[["EmulatorMocks", DeclaredResource], tuple[str, dict] | None]
APPLIERS: dict[str, Applier] = {}


def applies(typ: str) -> Callable[[Applier], Applier]:
    def register(fn: Applier) -> Applier:
        APPLIERS[typ] = fn
        return fn
    return register


@dataclass
class Outcome:
    applied: list[DeclaredResource] = field(default_factory=list)
    skipped: list[DeclaredResource] = field(default_factory=list)
    failed: list[tuple[DeclaredResource, str]] = field(default_factory=list)


class EmulatorMocks(RecordingMocks):
    def __init__(self, endpoint_url: str, default_region: str, account_id: str):
        super().__init__(default_region, account_id)
        self.aws = Aws(endpoint_url=endpoint_url)
        # A refusal from the emulator is final: report it rather than retry it.
        self.aws.config = self.aws.config.merge(Config(retries={"mode": "standard", "max_attempts": 1}))
        self.outcome = Outcome()
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        return self.aws.client(service, region)

    def create(self, resource: DeclaredResource) -> tuple[str, dict]:
        physical, computed = fake_identity(resource.type, resource.name, resource.inputs, resource.region, self.account_id)
        applier = APPLIERS.get(resource.type)
        if applier is None:
            with self._lock:
                self.outcome.skipped.append(resource)
            return physical, computed
        try:
            answer = applier(self, resource)
        except Exception as exc:  # the emulator refused: keep going, report it at the end
            with self._lock:
                self.outcome.failed.append((resource, refusal(exc)))
            return physical, computed
        with self._lock:
            self.outcome.applied.append(resource)
        if answer is None:
            return physical, computed
        return answer[0], {**computed, **answer[1]}


def refusal(exc: Exception) -> str:
    """One line: the error code and message (the message pulled out of an XML body if need be)."""
    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    if not error:
        return f"{type(exc).__name__}: {exc}"
    message = str(error.get("Message", ""))
    inner = re.search(r"<Message>(.*?)</Message>", message)
    return f"{error.get('Code', 'Error')}: {inner.group(1) if inner else message}"


# --- S3 ------------------------------------------------------------------------------


@applies("aws:s3/bucket:Bucket")
def _bucket(m: EmulatorMocks, r: DeclaredResource) -> None:
    s3 = m.client("s3", r.region)
    kwargs: dict[str, Any] = {"Bucket": r.get("bucket")}
    if r.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": r.region}
    if r.get("objectLockEnabled"):
        kwargs["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**kwargs)
    if r.get("tags"):
        s3_facts.write(s3, r.get("bucket"), "tags", r.get("tags"))


def _s3_fact(fact: str) -> Applier:
    """A resource that declares one S3 fact: set it with that fact's `put` call (vigil/s3_facts.py)."""
    shape = shapes.S3_FACT_SHAPES[fact]

    def apply(m: EmulatorMocks, r: DeclaredResource) -> None:
        s3_facts.write(m.client("s3", r.region), r.get("bucket"), fact, shape(r.inputs))
    return apply


for _row in s3_facts.S3_FACTS.values():
    if _row.pulumi:
        APPLIERS[_row.pulumi] = _s3_fact(_row.name)



# --- KMS, DynamoDB, AWS Backup --------------------------------------------------------


@applies("aws:kms/key:Key")
def _key(m: EmulatorMocks, r: DeclaredResource) -> tuple[str, dict]:
    kms = m.client("kms", r.region)
    meta = kms.create_key(Description=r.get("description", ""), KeyUsage=r.get("keyUsage", "ENCRYPT_DECRYPT"),
                          KeySpec=r.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT"))["KeyMetadata"]
    if r.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    return meta["KeyId"], {"arn": meta["Arn"], "keyId": meta["KeyId"]}


@applies("aws:kms/alias:Alias")
def _alias(m: EmulatorMocks, r: DeclaredResource) -> None:
    m.client("kms", r.region).create_alias(AliasName=r.get("name"), TargetKeyId=r.get("targetKeyId"))


@applies("aws:dynamodb/table:Table")
def _table(m: EmulatorMocks, r: DeclaredResource) -> tuple[str, dict]:
    ddb = m.client("dynamodb", r.region)
    schema, attributes = shapes.dynamodb_key_schema(r.inputs)
    kwargs: dict[str, Any] = {"TableName": r.get("name"), "KeySchema": schema, "AttributeDefinitions": attributes,
                              "BillingMode": r.get("billingMode", "PAY_PER_REQUEST"),
                              "Tags": [{"Key": k, "Value": v} for k, v in (r.get("tags") or {}).items()]}
    sse = shapes.dynamodb_sse(r.inputs)
    if sse:
        kwargs["SSESpecification"] = sse
    if r.get("deletionProtectionEnabled") is not None:
        kwargs["DeletionProtectionEnabled"] = bool(r.get("deletionProtectionEnabled"))
    table = ddb.create_table(**kwargs)["TableDescription"]
    ddb.update_continuous_backups(TableName=r.get("name"),
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": shapes.dynamodb_pitr(r.inputs)})
    return r.get("name"), {"arn": table["TableArn"], "name": r.get("name")}


@applies("aws:backup/vault:Vault")
def _vault(m: EmulatorMocks, r: DeclaredResource) -> tuple[str, dict]:
    kwargs = {"BackupVaultName": r.get("name")}
    if r.get("kmsKeyArn"):
        kwargs["EncryptionKeyArn"] = r.get("kmsKeyArn")
    answer = m.client("backup", r.region).create_backup_vault(**kwargs)
    return r.get("name"), {"arn": answer["BackupVaultArn"], "name": r.get("name")}


@applies("aws:backup/plan:Plan")
def _plan(m: EmulatorMocks, r: DeclaredResource) -> tuple[str, dict]:
    answer = m.client("backup", r.region).create_backup_plan(BackupPlan=shapes.backup_plan(r.inputs))
    return answer["BackupPlanId"], {"arn": answer["BackupPlanArn"]}


@applies("aws:backup/selection:Selection")
def _selection(m: EmulatorMocks, r: DeclaredResource) -> tuple[str, dict]:
    selection = {k: v for k, v in shapes.backup_selection(r.inputs).items() if v}
    answer = m.client("backup", r.region).create_backup_selection(BackupPlanId=r.get("planId"), BackupSelection=selection)
    return answer["SelectionId"], {}


# --- CloudTrail, EC2, IAM --------------------------------------------------------------


@applies("aws:cloudtrail/trail:Trail")
def _trail(m: EmulatorMocks, r: DeclaredResource) -> tuple[str, dict]:
    trail = m.client("cloudtrail", r.region)
    answer = trail.create_trail(Name=r.get("name"), S3BucketName=r.get("s3BucketName"), S3KeyPrefix=r.get("s3KeyPrefix", ""),
                                IncludeGlobalServiceEvents=bool(r.get("includeGlobalServiceEvents", True)),
                                IsMultiRegionTrail=bool(r.get("isMultiRegionTrail", False)),
                                EnableLogFileValidation=bool(r.get("enableLogFileValidation", False)))
    if r.get("enableLogging", True):
        trail.start_logging(Name=answer["TrailARN"])
    return r.get("name"), {"arn": answer["TrailARN"]}


@applies("aws:ebs/encryptionByDefault:EncryptionByDefault")
def _ebs_default(m: EmulatorMocks, r: DeclaredResource) -> None:
    ec2 = m.client("ec2", r.region)
    (ec2.enable_ebs_encryption_by_default if r.get("enabled", True) else ec2.disable_ebs_encryption_by_default)()


@applies("aws:iam/role:Role")
def _role(m: EmulatorMocks, r: DeclaredResource) -> tuple[str, dict]:
    tags = [{"Key": k, "Value": v} for k, v in (r.get("tags") or {}).items()]
    role = m.client("iam", r.region).create_role(RoleName=r.get("name"), AssumeRolePolicyDocument=r.get("assumeRolePolicy"), Tags=tags)["Role"]
    return r.get("name"), {"arn": role["Arn"], "name": r.get("name")}


@applies("aws:iam/rolePolicy:RolePolicy")
def _role_policy(m: EmulatorMocks, r: DeclaredResource) -> None:
    m.client("iam", r.region).put_role_policy(RoleName=r.get("role"), PolicyName=r.name, PolicyDocument=r.get("policy"))


@applies("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _attachment(m: EmulatorMocks, r: DeclaredResource) -> None:
    m.client("iam", r.region).attach_role_policy(RoleName=r.get("role"), PolicyArn=r.get("policyArn"))


@applies("aws:iam/user:User")
def _user(m: EmulatorMocks, r: DeclaredResource) -> tuple[str, dict]:
    user = m.client("iam", r.region).create_user(UserName=r.get("name"))["User"]
    return r.get("name"), {"arn": user["Arn"], "name": r.get("name")}


@applies("aws:iam/userLoginProfile:UserLoginProfile")
def _login(m: EmulatorMocks, r: DeclaredResource) -> None:
    m.client("iam", r.region).create_login_profile(UserName=r.get("user"), Password="Demo-password-1!", PasswordResetRequired=True)
