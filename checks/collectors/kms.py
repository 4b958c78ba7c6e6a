"""KMS: every key in scope with its metadata, aliases and (for customer-managed symmetric keys) rotation."""
from __future__ import annotations

from typing import Any

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import Fact, Inventory, KmsKey

ROTATABLE_STATES = {"Enabled", "Disabled"}


def _list(client: Any, operation: str, field: str) -> list[dict]:
    return [item for page in client.get_paginator(operation).paginate() for item in page[field]]


def _listing(session: CollectSession, region: str) -> tuple[Fact[list[dict]], Fact[list[dict]]]:
    client = session.aws.client("kms", region)
    keys = fetch("kms:ListKeys", lambda: _list(client, "list_keys", "Keys"))
    aliases = fetch("kms:ListAliases", lambda: _list(client, "list_aliases", "Aliases"))
    return keys, aliases


def _rotatable(metadata: dict, aliases: list[str]) -> bool:
    """Rotation is asked only of customer-managed symmetric keys (AWS refuses it for the others)."""
    probe = KmsKey("", "", "", metadata, Fact("kms:GetKeyRotationStatus"), aliases)
    return (
        probe.customer_managed
        and metadata.get("KeySpec", metadata.get("CustomerMasterKeySpec")) == "SYMMETRIC_DEFAULT"
        and metadata.get("KeyState") in ROTATABLE_STATES
        and metadata.get("Origin", "AWS_KMS") == "AWS_KMS"
    )


def _key(session: CollectSession, region: str, entry: dict, aliases: list[str]) -> KmsKey:
    client = session.aws.client("kms", region)
    key_id, arn = entry["KeyId"], entry.get("KeyArn", "")
    described = fetch("kms:DescribeKey", lambda: client.describe_key(KeyId=key_id)["KeyMetadata"])
    if not described.ok:
        # Without metadata nothing can be judged; the error travels in the rotation fact.
        return KmsKey(key_id, arn, region, {}, Fact("kms:DescribeKey", error=described.error), aliases)
    metadata = described.value or {}
    rotation: Fact[bool] = Fact("kms:GetKeyRotationStatus")
    if _rotatable(metadata, aliases):
        rotation = fetch("kms:GetKeyRotationStatus", lambda: bool(client.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]))
    return KmsKey(key_id, metadata.get("Arn", arn), region, metadata, rotation, aliases)


def collect(session: CollectSession, inventory: Inventory) -> None:
    listings = {region: session.submit(_listing, session, region) for region in session.regions}
    tasks = []
    for region, future in listings.items():
        keys, aliases = future.result()
        if not keys.ok:
            inventory.listing_errors[f"kms:{region}"] = keys
            continue
        if not aliases.ok:
            inventory.listing_errors[f"kms-aliases:{region}"] = aliases
        by_key: dict[str, list[str]] = {}
        for alias in aliases.value or []:
            if alias.get("TargetKeyId"):
                by_key.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
        for entry in keys.value or []:
            tasks.append(session.submit(_key, session, region, entry, sorted(by_key.get(entry["KeyId"], []))))
    inventory.kms_keys.extend(task.result() for task in tasks)
