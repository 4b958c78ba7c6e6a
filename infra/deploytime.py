"""Deploy time: the resources a Pulumi program declares -> the same records the collectors fill.

`inventory_from(resources)` turns each declared resource (Pulumi type + inputs, with the
region its provider uses) into checks.model records whose values have the exact shape of
the AWS API answers the boto3 collectors read, so the catalogue's evaluators judge a
declared stack and a live account alike. Facts name the Pulumi type they came from.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vigil.checks.context import Context
from vigil.checks.model import (
    BackupPlan,
    BackupVault,
    Bucket,
    Fact,
    Finding,
    IamRole,
    IamUser,
    Inventory,
    KmsKey,
    Table,
    Trail,
)
from vigil.checks.registry import evaluate
from vigil.infra import shapes
from vigil.infra.mocks import ACCOUNT_ID, DeclaredResource

from vigil.policy import Policy
from vigil.s3_facts import S3_FACTS

# Controls a declaration cannot decide: they are judged at run time only.
RUN_TIME_ONLY = {
    "MFA-01": "the root user's MFA is account state, not something a stack declares",
    "RET-02": "whether data past its retention remains is a property of the data, not of the declaration",
}

# Pulumi type -> (the S3 fact it declares, inputs -> the fact's value), from the facts table.
S3_PARTS = {row.pulumi: (row.name, shapes.S3_FACT_SHAPES[row.name]) for row in S3_FACTS.values() if row.pulumi}
# Types the converter reads besides S3_PARTS; anything else is listed in `ignored`.
KNOWN = set(S3_PARTS) | {
    "aws:s3/bucket:Bucket", "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
    "aws:kms/key:Key", "aws:kms/alias:Alias", "aws:dynamodb/table:Table", "aws:backup/vault:Vault", "aws:backup/plan:Plan",
    "aws:backup/selection:Selection", "aws:cloudtrail/trail:Trail", "aws:ebs/encryptionByDefault:EncryptionByDefault",
    "aws:iam/role:Role", "aws:iam/user:User", "aws:iam/userLoginProfile:UserLoginProfile",
}


@dataclass
class DeclaredInventory:
    inventory: Inventory
    ignored: list[DeclaredResource] = field(default_factory=list)  # types no control reads


def _fact(typ: str, value: object) -> Fact:
    return Fact(f"pulumi:{typ}", value)


def _aws_managed_key(service: str, region: str, account: str) -> KmsKey:
    """The AWS-managed key a service uses when no key is given (what DescribeKey reports for it)."""
    key_id = f"aws-managed-{service}-{region}"
    arn = f"arn:aws:kms:{region}:{account}:key/{key_id}"
    metadata = {"KeyId": key_id, "Arn": arn, "KeyManager": "AWS", "KeySpec": "SYMMETRIC_DEFAULT", "KeyState": "Enabled"}
    return KmsKey(key_id, arn, region, metadata, Fact("kms:GetKeyRotationStatus"), [f"alias/aws/{service}"])


def inventory_from(resources: Iterable[DeclaredResource], policy: Policy, account_id: str = ACCOUNT_ID) -> DeclaredInventory:
    resources = list(resources)
    out = DeclaredInventory(Inventory(account_id=account_id, regions=policy.regions_in_scope))
    inv = out.inventory
    by_type: dict[str, list[DeclaredResource]] = {}
    for resource in resources:
        by_type.setdefault(resource.type, []).append(resource)
        if resource.type not in KNOWN:
            out.ignored.append(resource)
    managed: dict[tuple[str, str], KmsKey] = {}

    def managed_key(service: str, region: str) -> str:
        key = managed.setdefault((service, region), _aws_managed_key(service, region, account_id))
        return key.arn

    _buckets(inv, by_type)
    _keys(inv, by_type)
    _tables(inv, by_type, managed_key)
    _backup(inv, by_type, managed_key)
    _trails(inv, by_type)
    _iam(inv, by_type)
    for region in policy.regions_in_scope:
        inv.ebs_encryption_by_default[region] = _fact("aws:ebs/encryptionByDefault:EncryptionByDefault", False)
    for resource in by_type.get("aws:ebs/encryptionByDefault:EncryptionByDefault", []):
        inv.ebs_encryption_by_default[resource.region] = _fact(resource.type, bool(resource.get("enabled", True)))
    inv.kms_keys.extend(managed.values())
    return out


def _buckets(inv: Inventory, by_type: dict[str, list[DeclaredResource]]) -> None:
    for resource in by_type.get("aws:s3/bucket:Bucket", []):
        name = resource.id or resource.get("bucket") or resource.name
        lock = {"ObjectLockEnabled": "Enabled"} if resource.get("objectLockEnabled") else None
        t = resource.type
        facts = {row.name: _fact(t, row.not_configured()) for row in S3_FACTS.values()}  # what a bare bucket answers
        inv.buckets[name] = Bucket(name=name, region=_fact(t, resource.region), **{
            **facts,
            # Since January 2023 every bucket without a configuration encrypts with SSE-S3.
            "encryption": _fact(t, [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]),
            # Since April 2023 every new bucket has ACLs disabled (BucketOwnerEnforced).
            "ownership": _fact(t, {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
            "object_lock": _fact(t, lock), "tags": _fact(t, shapes.tags(resource.inputs)),
        })
    for typ, (field_name, convert) in S3_PARTS.items():
        for resource in by_type.get(typ, []):
            bucket = inv.buckets.get(resource.get("bucket", ""))
            if bucket is not None:
                setattr(bucket, field_name, _fact(typ, convert(resource.inputs)))
    for resource in by_type.get("aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock", []):
        inv.account_public_access_block = _fact(resource.type, shapes.s3_public_access_block(resource.inputs))


def _keys(inv: Inventory, by_type: dict[str, list[DeclaredResource]]) -> None:
    aliases: dict[str, list[str]] = {}
    for alias in by_type.get("aws:kms/alias:Alias", []):
        aliases.setdefault(alias.get("targetKeyId", ""), []).append(alias.get("name", ""))
    for resource in by_type.get("aws:kms/key:Key", []):
        key_id = resource.state.get("keyId", resource.id)
        arn = resource.state.get("arn", "")
        spec = resource.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
        metadata = {
            "AWSAccountId": inv.account_id, "KeyId": key_id, "Arn": arn, "Enabled": resource.get("isEnabled", True),
            "KeyState": "Enabled", "KeyUsage": resource.get("keyUsage", "ENCRYPT_DECRYPT"), "KeySpec": spec,
            "CustomerMasterKeySpec": spec, "KeyManager": "CUSTOMER", "Origin": "AWS_KMS",
            "MultiRegion": bool(resource.get("multiRegion", False)), "Description": resource.get("description", ""),
        }
        rotation = _fact(resource.type, bool(resource.get("enableKeyRotation", False)))
        inv.kms_keys.append(KmsKey(key_id, arn, resource.region, metadata, rotation, aliases.get(key_id, []) + aliases.get(arn, [])))


def _tables(inv: Inventory, by_type: dict[str, list[DeclaredResource]], managed_key: Callable[[str, str], str]) -> None:
    for resource in by_type.get("aws:dynamodb/table:Table", []):
        name = resource.get("name") or resource.id
        arn = resource.state.get("arn", f"arn:aws:dynamodb:{resource.region}:{inv.account_id}:table/{name}")
        schema, attributes = shapes.dynamodb_key_schema(resource.inputs) if resource.get("hashKey") else ([], [])
        description: dict = {"TableName": name, "TableArn": arn, "TableStatus": "ACTIVE", "KeySchema": schema,
                             "AttributeDefinitions": attributes,
                             "BillingModeSummary": {"BillingMode": resource.get("billingMode", "PROVISIONED")},
                             "DeletionProtectionEnabled": bool(resource.get("deletionProtectionEnabled", False))}
        sse = shapes.dynamodb_sse(resource.inputs)
        if sse is not None:
            description["SSEDescription"] = {"Status": "ENABLED", "SSEType": "KMS",
                                             "KMSMasterKeyArn": sse.get("KMSMasterKeyId") or managed_key("dynamodb", resource.region)}
        status = "ENABLED" if shapes.dynamodb_pitr(resource.inputs) else "DISABLED"
        backups = {"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": status}}
        t = resource.type
        inv.tables[arn] = Table(name, arn, resource.region, _fact(t, description), _fact(t, backups), _fact(t, shapes.tags(resource.inputs)))


def _backup(inv: Inventory, by_type: dict[str, list[DeclaredResource]], managed_key: Callable[[str, str], str]) -> None:
    for resource in by_type.get("aws:backup/vault:Vault", []):
        name = resource.get("name") or resource.id
        arn = resource.state.get("arn", "")
        description = {"BackupVaultName": name, "BackupVaultArn": arn, "NumberOfRecoveryPoints": 0, "Locked": False,
                       "EncryptionKeyArn": resource.get("kmsKeyArn") or managed_key("backup", resource.region)}
        inv.vaults[arn] = BackupVault(name, arn, resource.region, description, _fact(resource.type, []))
    selections: dict[str, list[dict]] = {}
    for resource in by_type.get("aws:backup/selection:Selection", []):
        selections.setdefault(resource.get("planId", ""), []).append(shapes.backup_selection(resource.inputs))
    for resource in by_type.get("aws:backup/plan:Plan", []):
        inv.plans.append(BackupPlan(resource.id, resource.state.get("arn", resource.id), resource.region,
                                    _fact(resource.type, shapes.backup_plan(resource.inputs)),
                                    _fact("aws:backup/selection:Selection", selections.get(resource.id, []))))


def _trails(inv: Inventory, by_type: dict[str, list[DeclaredResource]]) -> None:
    for resource in by_type.get("aws:cloudtrail/trail:Trail", []):
        name = resource.get("name") or resource.id
        arn = resource.state.get("arn", "")
        description = {
            "Name": name, "TrailARN": arn, "HomeRegion": resource.region, "S3BucketName": resource.get("s3BucketName"),
            "S3KeyPrefix": resource.get("s3KeyPrefix"), "IncludeGlobalServiceEvents": bool(resource.get("includeGlobalServiceEvents", True)),
            "IsMultiRegionTrail": bool(resource.get("isMultiRegionTrail", False)),
            "LogFileValidationEnabled": bool(resource.get("enableLogFileValidation", False)),
            "IsOrganizationTrail": bool(resource.get("isOrganizationTrail", False)),
            "HasCustomEventSelectors": bool(resource.get("eventSelectors") or resource.get("advancedEventSelectors")),
        }
        if resource.get("kmsKeyId"):
            description["KmsKeyId"] = resource.get("kmsKeyId")
        status = {"IsLogging": bool(resource.get("enableLogging", True))}
        inv.trails.append(Trail(name, arn, resource.region, description, _fact(resource.type, status),
                                _fact(resource.type, {"TrailARN": arn, **shapes.trail_event_selectors(resource.inputs)})))


def _iam(inv: Inventory, by_type: dict[str, list[DeclaredResource]]) -> None:
    for resource in by_type.get("aws:iam/role:Role", []):
        name = resource.get("name") or resource.id
        inv.roles[name] = IamRole(name, resource.state.get("arn", ""), _fact(resource.type, shapes.json_document(resource.get("assumeRolePolicy"))))
    logins = {r.get("user") for r in by_type.get("aws:iam/userLoginProfile:UserLoginProfile", [])}
    for resource in by_type.get("aws:iam/user:User", []):
        name = resource.get("name") or resource.id
        inv.users.append(IamUser(name, resource.state.get("arn", ""), _fact("aws:iam/userLoginProfile:UserLoginProfile", name in logins),
                                 _fact(resource.type, [])))


def deploy_time_controls() -> list[str]:
    from vigil.checks.registry import evaluators

    return [control for control in evaluators() if control not in RUN_TIME_ONLY]


def evaluate_declared(resources: Iterable[DeclaredResource], policy: Policy, as_of: datetime | None = None) -> list[Finding]:
    """The catalogue's verdicts on a declared stack (controls decidable at deploy time)."""
    declared = inventory_from(resources, policy)
    ctx = Context(policy=policy, inventory=declared.inventory, as_of=as_of or datetime.now(UTC))
    return evaluate(ctx, only=deploy_time_controls())
