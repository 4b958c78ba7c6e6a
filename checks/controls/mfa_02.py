"""MFA-02: every IAM user with a console password has at least one MFA device.

Users without a console password cannot sign in to the console: not_applicable.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Finding
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import errored, not_applicable, verdict

ID = "MFA-02"


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    listing = ctx.inventory.listing_errors.get("iam")
    if listing is not None:
        yield errored(ID, f"arn:aws:iam::{ctx.inventory.account_id}:user/*", "global", listing)
    for user in ctx.inventory.users:
        if not user.login_profile.ok:
            yield errored(ID, user.arn, "global", user.login_profile)
        elif not user.login_profile.value:
            yield not_applicable(ID, user.arn, "global", "the user has no console password", user.login_profile.api, {"LoginProfile": False})
        elif not user.mfa_devices.ok:
            yield errored(ID, user.arn, "global", user.mfa_devices)
        else:
            devices = [d.get("SerialNumber") for d in user.mfa_devices.value or []]
            reason = (f"console user has {len(devices)} MFA device(s)" if devices
                      else f"user {user.name} can sign in to the console without MFA; assign an MFA device or remove the password")
            yield verdict(ID, user.arn, "global", bool(devices), reason, ["iam:GetLoginProfile", "iam:ListMFADevices"],
                          {"LoginProfile": True, "MFADevices": devices})
