"""ENC-03: customer-managed symmetric KMS keys rotate automatically.

AWS-managed keys (KeyManager AWS, or an `alias/aws/*` alias: moto reports those as
CUSTOMER) are out of scope. Keys pending deletion, disabled keys, keys with imported
material and asymmetric/HMAC keys cannot be given automatic rotation: not_applicable.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import listing_errors
from vigil.checks.verdicts import errored, not_applicable, verdict

ID = "ENC-03"


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    yield from listing_errors(ctx, ID, (("kms", "key/*"),))
    for key in ctx.inventory.kms_keys:
        meta = key.metadata
        if not meta:  # DescribeKey failed; its error travels in the rotation fact
            yield errored(ID, key.arn, key.region, key.rotation)
            continue
        if not key.customer_managed:
            continue
        observed = {"KeyState": meta.get("KeyState"), "KeySpec": meta.get("KeySpec"), "Origin": meta.get("Origin"),
                    "KeyManager": meta.get("KeyManager"), "Aliases": key.aliases}
        state, spec, origin = meta.get("KeyState"), meta.get("KeySpec", "SYMMETRIC_DEFAULT"), meta.get("Origin", "AWS_KMS")
        if spec != "SYMMETRIC_DEFAULT":
            yield not_applicable(ID, key.arn, key.region, f"{spec} keys do not support automatic rotation", "kms:DescribeKey", observed)
        elif state != "Enabled":
            yield not_applicable(ID, key.arn, key.region, f"the key is {state}; rotation is judged on enabled keys", "kms:DescribeKey", observed)
        elif origin != "AWS_KMS":
            yield not_applicable(ID, key.arn, key.region, f"key material from {origin} cannot rotate automatically", "kms:DescribeKey", observed)
        elif not key.rotation.ok:
            yield errored(ID, key.arn, key.region, key.rotation)
        else:
            on = key.rotation.value is True
            reason = "automatic key rotation is enabled" if on else "automatic key rotation is disabled; enable it (kms:EnableKeyRotation)"
            yield verdict(ID, key.arn, key.region, on, reason, ["kms:DescribeKey", "kms:GetKeyRotationStatus"],
                          {**observed, "KeyRotationEnabled": key.rotation.value})
