"""Rolling Vigil out over an AWS Organization, declared in Pulumi.

* `declare_member_roles`: the audit and retention roles (MemberRoles) in every member
  account, from one stack: a provider per account that assumes the account's
  OrganizationAccountAccessRole (the role AWS Organizations creates in accounts it makes).
  Stacks per account work the same way: one MemberRoles per stack, its provider that account.
* `declare_account_runs`: beyond what one machine fans out, a Step Functions state machine
  whose Distributed Map runs `vigil run` for each account as an ECS task (`.sync`), each
  uploading its own signed pack; `vigil merge` joins the packs into one.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from vigil.infra.components.member_roles import MemberRoles, MemberRolesArgs

from vigil.accounts.model import Account
from vigil.policy import Policy

ORG_ACCESS_ROLE = "OrganizationAccountAccessRole"


def declare_member_roles(policy: Policy, accounts: Sequence[Account], central_account_id: str, external_id: str,
                         region: str, access_role: str = ORG_ACCESS_ROLE) -> dict[str, MemberRoles]:
    out = {}
    for account in accounts:
        if not account.active:
            continue
        provider = aws.Provider(f"member-{account.id}", region=region,
                                assume_roles=[aws.ProviderAssumeRoleArgs(role_arn=f"arn:aws:iam::{account.id}:role/{access_role}",
                                                                         session_name="vigil-rollout")])
        out[account.id] = MemberRoles(f"member-{account.id}", MemberRolesArgs(
            provider, account.id, central_account_id, external_id, policy, account.role, account.retention_role))
    return out


@dataclass
class AccountRunsArgs:
    accounts: Sequence[Account]
    cluster_arn: str  # the ECS cluster and the task definition of the Vigil image (deploy/Dockerfile)
    task_definition_arn: str
    container: str
    subnets: Sequence[str]
    evidence_upload: str  # s3://bucket/prefix: each account's pack goes to <prefix>/<account id>/
    max_concurrency: int = 20


def account_command(upload: str) -> list[str]:
    """The container's command for one account (its id in $VIGIL_ACCOUNT_ID): a one-entry accounts file, then `vigil run`."""
    script = ("printf -- \"- account_id: '%s'\\n\" \"$VIGIL_ACCOUNT_ID\" > /tmp/accounts.yaml && "
              f"exec vigil run --accounts-file /tmp/accounts.yaml --output /tmp/pack --upload {upload}/$VIGIL_ACCOUNT_ID")
    return ["sh", "-c", script]


def state_machine_definition(args: AccountRunsArgs) -> dict[str, Any]:
    task = {
        "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
        "Parameters": {
            "Cluster": args.cluster_arn, "TaskDefinition": args.task_definition_arn, "LaunchType": "FARGATE",
            "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": list(args.subnets), "AssignPublicIp": "DISABLED"}},
            "Overrides": {"ContainerOverrides": [{
                "Name": args.container, "Command": account_command(args.evidence_upload),
                "Environment": [{"Name": "VIGIL_ACCOUNT_ID", "Value.$": "$.account_id"}]}]},
        },
        "Retry": [{"ErrorEquals": ["ECS.AmazonECSException", "States.TaskFailed"], "MaxAttempts": 2, "BackoffRate": 2}],
        "End": True,
    }
    return {
        "Comment": "vigil run in every account; then `vigil merge` joins the packs",
        "StartAt": "EveryAccount",
        "States": {"EveryAccount": {
            "Type": "Map", "ItemsPath": "$.accounts", "MaxConcurrency": args.max_concurrency,
            "ToleratedFailurePercentage": 100,  # a failed account is in its pack (or missing from the merge), never hidden
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                              "StartAt": "VigilRun", "States": {"VigilRun": task}},
            "End": True}},
    }


def declare_account_runs(name: str, args: AccountRunsArgs, role_arn: pulumi.Input[str]) -> aws.sfn.StateMachine:
    """The state machine; start it with {"accounts": [{"account_id": ...}, ...]} (`vigil accounts list --org`)."""
    return aws.sfn.StateMachine(name, role_arn=role_arn, definition=json.dumps(state_machine_definition(args)))
