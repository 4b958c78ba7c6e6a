"""Pulumi resource inputs (camelCase) -> the shapes the AWS APIs use (PascalCase).

One function per configuration, so the deploy-time records (deploytime.py) and the demo's
deployer (which sends these very shapes to the emulator with boto3) agree with what the
boto3 collectors read back.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# Keys whose AWS spelling is not simply the Pulumi name with a capital first letter.
_RENAMES = {
    "id": "ID",
    "sseAlgorithm": "SSEAlgorithm",
    "kmsMasterKeyId": "KMSMasterKeyID",
    "replicaKmsKeyId": "ReplicaKmsKeyID",
}


def number(value: Any) -> Any:
    """Pulumi carries numbers as floats; AWS shapes use integers where the value is whole."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def pascal(value: Any) -> Any:
    if isinstance(value, dict):
        return {_RENAMES.get(k, k[:1].upper() + k[1:]): pascal(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [pascal(v) for v in value]
    return number(value)


def json_document(value: Any) -> dict | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, dict) else json.loads(value)


# --- S3 ------------------------------------------------------------------------------


def s3_encryption_rules(inputs: dict) -> list[dict]:
    # GetBucketEncryption always states BucketKeyEnabled.
    return [{**rule, "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled", False))} for rule in pascal(inputs.get("rules") or [])]


def s3_versioning(inputs: dict) -> dict:
    config = inputs.get("versioningConfiguration") or {}
    out = {"Status": config.get("status", "Suspended")}
    if config.get("mfaDelete"):
        out["MFADelete"] = config["mfaDelete"]
    return out


def s3_public_access_block(inputs: dict) -> dict:
    return {key: bool(inputs.get(name, False)) for key, name in (
        ("BlockPublicAcls", "blockPublicAcls"), ("IgnorePublicAcls", "ignorePublicAcls"),
        ("BlockPublicPolicy", "blockPublicPolicy"), ("RestrictPublicBuckets", "restrictPublicBuckets"))}


def s3_ownership(inputs: dict) -> dict:
    return {"Rules": [pascal(inputs.get("rule") or {})]}


def s3_logging(inputs: dict) -> dict:
    return {"TargetBucket": inputs.get("targetBucket"), "TargetPrefix": inputs.get("targetPrefix", "")}


def s3_lifecycle_rules(inputs: dict) -> list[dict]:
    return pascal(inputs.get("rules") or [])


def s3_replication(inputs: dict) -> dict:
    return {"Role": inputs.get("role"), "Rules": pascal(inputs.get("rules") or [])}


def s3_object_lock(inputs: dict) -> dict:
    out: dict = {"ObjectLockEnabled": inputs.get("objectLockEnabled", "Enabled")}
    if inputs.get("rule"):
        out["Rule"] = pascal(inputs["rule"])
    return out


def tags(inputs: dict) -> dict[str, str]:
    return dict(inputs.get("tags") or {})


def s3_policy(inputs: dict) -> dict | None:
    return json_document(inputs.get("policy"))


# The S3 facts (rows of vigil/s3_facts.py with a `pulumi` type) -> inputs of that resource -> the value.
S3_FACT_SHAPES: dict[str, Callable[[dict], Any]] = {
    "encryption": s3_encryption_rules,
    "policy": s3_policy,
    "versioning": s3_versioning,
    "replication": s3_replication,
    "public_access_block": s3_public_access_block,
    "logging": s3_logging,
    "lifecycle": s3_lifecycle_rules,
    "object_lock": s3_object_lock,
    "ownership": s3_ownership,
}


# --- AWS Backup ----------------------------------------------------------------------


def _backup_lifecycle(lifecycle: dict | None) -> dict | None:
    if not lifecycle:
        return None
    out = {}
    if lifecycle.get("deleteAfter") is not None:
        out["DeleteAfterDays"] = number(lifecycle["deleteAfter"])
    if lifecycle.get("coldStorageAfter") is not None:
        out["MoveToColdStorageAfterDays"] = number(lifecycle["coldStorageAfter"])
    return out


def backup_plan(inputs: dict) -> dict:
    rules = []
    for rule in inputs.get("rules") or []:
        out = {
            "RuleName": rule.get("ruleName"),
            "TargetBackupVaultName": rule.get("targetVaultName"),
            "ScheduleExpression": rule.get("schedule"),
            "StartWindowMinutes": number(rule.get("startWindow")),
            "CompletionWindowMinutes": number(rule.get("completionWindow")),
            "Lifecycle": _backup_lifecycle(rule.get("lifecycle")),
            "CopyActions": [
                {k: v for k, v in {"DestinationBackupVaultArn": copy.get("destinationVaultArn"),
                                   "Lifecycle": _backup_lifecycle(copy.get("lifecycle"))}.items() if v is not None}
                for copy in rule.get("copyActions") or []
            ],
        }
        rules.append({k: v for k, v in out.items() if v is not None})
    return {"BackupPlanName": inputs.get("name"), "Rules": rules}


def backup_selection(inputs: dict) -> dict:
    out = {
        "SelectionName": inputs.get("name"),
        "IamRoleArn": inputs.get("iamRoleArn"),
        "Resources": list(inputs.get("resources") or []),
        "NotResources": list(inputs.get("notResources") or []),
        "ListOfTags": [{"ConditionType": t.get("type", "STRINGEQUALS"), "ConditionKey": t.get("key"), "ConditionValue": t.get("value")}
                       for t in inputs.get("selectionTags") or []],
    }
    return out


# --- DynamoDB ------------------------------------------------------------------------


def dynamodb_sse(inputs: dict) -> dict | None:
    """SSESpecification for CreateTable; None means the AWS-owned key (no KMS at all)."""
    sse = inputs.get("serverSideEncryption") or {}
    if not sse.get("enabled"):
        return None
    spec: dict = {"Enabled": True, "SSEType": "KMS"}
    if sse.get("kmsKeyArn"):
        spec["KMSMasterKeyId"] = sse["kmsKeyArn"]
    return spec


def dynamodb_pitr(inputs: dict) -> bool:
    return bool((inputs.get("pointInTimeRecovery") or {}).get("enabled", False))


def dynamodb_key_schema(inputs: dict) -> tuple[list[dict], list[dict]]:
    schema = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
    if inputs.get("rangeKey"):
        schema.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
    attributes = [{"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs.get("attributes") or []]
    return schema, attributes


# --- CloudTrail ----------------------------------------------------------------------


def trail_event_selectors(inputs: dict) -> dict:
    if inputs.get("advancedEventSelectors"):
        return {"AdvancedEventSelectors": pascal(inputs["advancedEventSelectors"])}
    selectors = pascal(inputs.get("eventSelectors") or []) or [
        {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [], "ExcludeManagementEventSources": []}]
    return {"EventSelectors": selectors}
