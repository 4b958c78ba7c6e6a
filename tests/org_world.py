"""An AWS Organization in moto: a management account and member accounts, each with its own state.

moto keeps separate state per account: AssumeRole into arn:aws:iam::<id>:role/x returns
credentials whose later requests land in <id>. moto does not check trust policies, external
ids or even that the role exists, so "cannot be assumed" is made the way AWS would refuse it
from the caller's side: moto's IAM authorization is switched on and the central identity's
policy denies sts:AssumeRole into that account. Bucket names are global across moto's
accounts too, so every account's buckets are named apart.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
from moto.core.authorization import enable_iam_authentication
from moto.sts.models import sts_backends

from tests.builders_s3 import build_s3_estate, client
from vigil.policy import Policy

MANAGEMENT = "123456789012"  # moto's default account: the caller, the organization's management account
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
DENY_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}


@dataclass
class Org:
    members: dict[str, str] = field(default_factory=dict)  # name -> account id
    central_keys: dict[str, str] = field(default_factory=dict)  # the central identity's access key


def create_org(names: list[str], closed: list[str] = ()) -> Org:
    org = Org()
    api = boto3.client("organizations", region_name="us-east-1")
    api.create_organization(FeatureSet="ALL")
    for name in [*names, *closed]:
        request = api.create_account(Email=f"{name}@example.invalid", AccountName=name)["CreateAccountStatus"]["Id"]
        org.members[name] = api.describe_create_account_status(CreateAccountRequestId=request)["CreateAccountStatus"]["AccountId"]
    for name in closed:
        api.close_account(AccountId=org.members[name])  # moto: SUSPENDED
    return org


def credentials_in(account_id: str) -> dict[str, str]:
    """Credentials in `account_id` (moto routes requests signed with them there)."""
    answer = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="test-setup")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": answer["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": answer["SecretAccessKey"],
            "AWS_SESSION_TOKEN": answer["SessionToken"]}


@contextmanager
def signed_by(credentials: dict[str, str]) -> Iterator[None]:
    """The environment's credentials (which boto3 and the builders use) are these, until the block ends."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    saved = {k: os.environ.get(k) for k in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(credentials)
    fresh()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        fresh()


def inside(account_id: str):
    """Run the builders in another account."""
    return signed_by(credentials_in(account_id))


def fresh() -> None:
    """boto3's default session keeps the credentials it first read: forget it (and the builders' clients)."""
    boto3.DEFAULT_SESSION = None
    client.cache_clear()


def role(account_id: str, name: str, permissions: dict = ALLOW_ALL) -> None:
    """The role vigil assumes in an account; under IAM authorization moto reads its policies."""
    with inside(account_id):
        iam = client("iam", "us-east-1")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"},
                                                          "Action": "sts:AssumeRole"}]}
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(permissions))


def estate(account_id: str, policy: Policy) -> None:
    with inside(account_id):
        build_s3_estate(policy.for_account(account_id))


def central_identity(denied_accounts: list[str]) -> dict[str, str]:
    """An IAM user in the management account that may do anything except assume roles in `denied_accounts`."""
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="vigil-central")
    statements = [*ALLOW_ALL["Statement"]]
    if denied_accounts:
        statements.append({"Effect": "Deny", "Action": "sts:AssumeRole",
                           "Resource": [f"arn:aws:iam::{a}:role/*" for a in denied_accounts]})
    iam.put_user_policy(UserName="vigil-central", PolicyName="central",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName="vigil-central")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@contextmanager
def enforced(keys: dict[str, str]) -> Iterator[None]:
    """moto checks IAM policies on every request, signed by the central identity."""
    with signed_by(keys), enable_iam_authentication():
        yield


def assume_role_requests(account_id: str) -> list[dict[str, str | None]]:
    """What moto recorded of every AssumeRole into `account_id`: role, session name, external id."""
    roles = sts_backends[account_id]["aws"].assumed_roles
    return [{"role": r.role_arn, "session": r.session_name, "external_id": r.external_id} for r in roles]
