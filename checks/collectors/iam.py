"""IAM (global): the account summary, every user's console password and MFA devices, the policy's roles."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import Fact, IamRole, IamUser, Inventory


def trust_document(document: Any) -> dict | None:
    """AssumeRolePolicyDocument arrives as a dict (boto3 decodes it) or a URL-encoded JSON string."""
    if document is None or isinstance(document, dict):
        return document
    text = str(document)
    return json.loads(text if text.lstrip().startswith("{") else unquote(text))


def _user(client: Any, entry: dict) -> IamUser:
    name = entry["UserName"]
    profile = fetch("iam:GetLoginProfile", lambda: client.get_login_profile(UserName=name)["LoginProfile"], absent=["NoSuchEntity"])
    login = Fact(profile.api, profile.value is not None) if profile.ok else Fact(profile.api, error=profile.error)
    devices = fetch("iam:ListMFADevices", lambda: [
        device for page in client.get_paginator("list_mfa_devices").paginate(UserName=name) for device in page["MFADevices"]
    ])
    return IamUser(name, entry["Arn"], login, devices)


def _role(client: Any, account_id: str, name: str) -> IamRole:
    role = fetch("iam:GetRole", lambda: client.get_role(RoleName=name)["Role"], absent=["NoSuchEntity"])
    arn = (role.value or {}).get("Arn") or f"arn:aws:iam::{account_id}:role/{name}"
    if not role.ok:
        return IamRole(name, arn, Fact(role.api, error=role.error))
    try:
        trust = Fact(role.api, trust_document((role.value or {}).get("AssumeRolePolicyDocument")))
    except (ValueError, TypeError) as exc:
        trust = Fact(role.api, error=f"iam:GetRole returned a trust policy that is not JSON: {exc}")
    return IamRole(name, arn, trust)


def collect(session: CollectSession, inventory: Inventory) -> None:
    region = session.policy.regions.primary
    client = session.aws.client("iam", region)
    summary = session.submit(fetch, "iam:GetAccountSummary", lambda: client.get_account_summary()["SummaryMap"])
    names = list(dict.fromkeys([*session.policy.access.human_roles, *session.policy.access.service_roles]))
    roles = [session.submit(_role, client, inventory.account_id, name) for name in names]
    users = fetch("iam:ListUsers", lambda: [u for page in client.get_paginator("list_users").paginate() for u in page["Users"]])
    if not users.ok:
        inventory.listing_errors["iam"] = users
    details = [session.submit(_user, client, entry) for entry in users.value or []]
    inventory.account_summary = summary.result()
    inventory.users.extend(task.result() for task in details)
    for task in roles:
        role = task.result()
        inventory.roles[role.name] = role
