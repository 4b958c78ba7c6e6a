"""MemberRoles: the two roles a central Vigil assumes in a member account (cli.md "Many accounts").

* the audit role (default `vigil-audit`): what `vigil check` calls, read-only (any write or
  delete the derivation might name is dropped, so it stays read-only by construction);
* the retention role (default `vigil-retention`): what `vigil retain` calls, on the account's
  own stores, least privilege as `vigil iam-policy retain` derives it from the code.

Both trust only the central account, and only with the external id (sts:ExternalId), the
defence against a confused deputy that moto cannot test: the tests check the documents.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from vigil.accounts.model import DEFAULT_AUDIT_ROLE, DEFAULT_RETENTION_ROLE
from vigil.permissions import COMMANDS, Targets, build, is_write
from vigil.policy import Policy


@dataclass
class MemberRolesArgs:
    provider: aws.Provider  # one that deploys into the member account
    account_id: str  # the member account
    central_account_id: str  # where vigil runs and assumes from
    external_id: str
    policy: Policy  # the run's policy; the member gets its own stores (Policy.for_account)
    audit_role: str = DEFAULT_AUDIT_ROLE
    retention_role: str = DEFAULT_RETENTION_ROLE


def trust(central_account_id: str, external_id: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{central_account_id}:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": external_id}}}]}


def read_only(document: dict[str, Any]) -> dict[str, Any]:
    """The document without any action that changes or deletes something."""
    statements = []
    for statement in document["Statement"]:
        actions = [a for a in statement["Action"] if not is_write(a)]
        if actions:
            statements.append({**statement, "Action": actions})
    return {**document, "Statement": statements}


def audit_permissions(policy: Policy, account_id: str) -> dict[str, Any]:
    own = policy.for_account(account_id)
    return read_only(build(COMMANDS["check"], Targets.of(own, own.regions_in_scope, account_id)))


def retention_permissions(policy: Policy, account_id: str) -> dict[str, Any]:
    own = policy.for_account(account_id)
    return build(COMMANDS["retain"], Targets.of(own, own.regions_in_scope, account_id))


class MemberRoles(pulumi.ComponentResource):
    def __init__(self, name: str, args: MemberRolesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:accounts:MemberRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        document = json.dumps(trust(args.central_account_id, args.external_id))
        roles = {}
        for role_name, permissions in ((args.audit_role, audit_permissions(args.policy, args.account_id)),
                                       (args.retention_role, retention_permissions(args.policy, args.account_id))):
            role = aws.iam.Role(f"{name}-{role_name}", name=role_name, assume_role_policy=document,
                                max_session_duration=3600, opts=child)
            aws.iam.RolePolicy(f"{name}-{role_name}-permissions", role=role.name, policy=json.dumps(permissions), opts=child)
            roles[role_name] = role
        self.audit, self.retention = roles[args.audit_role], roles[args.retention_role]
        self.register_outputs({"audit": self.audit.arn, "retention": self.retention.arn})
