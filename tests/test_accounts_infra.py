"""Rolling out to an organization under Pulumi's mocks: the member roles in every account, and the Step Functions map."""
from __future__ import annotations

import json

from vigil.infra.components.member_roles import audit_permissions, retention_permissions
from vigil.infra.mocks import RecordingMocks, run_program
from vigil.infra.org import AccountRunsArgs, declare_account_runs, declare_member_roles

from tests.helpers import repo_policy
from vigil.accounts.model import Account
from vigil.permissions import COMMANDS, Targets, build, is_write

CENTRAL = "999999999999"
MEMBERS = [Account("111111111111", "prod"), Account("222222222222", "dev", role="auditor"), Account("333333333333", "old", "SUSPENDED")]


def test_every_active_member_gets_its_two_roles_trusting_the_central_account_with_the_external_id() -> None:
    policy = repo_policy()
    mocks = RecordingMocks(policy.regions.primary)
    run_program(mocks, lambda: declare_member_roles(policy, MEMBERS, CENTRAL, "ext-42", policy.regions.primary))
    roles = {r.name: r for r in mocks.resources if r.type == "aws:iam/role:Role"}
    assert set(roles) == {"member-111111111111-vigil-audit", "member-111111111111-vigil-retention",
                          "member-222222222222-auditor", "member-222222222222-vigil-retention"}  # not the suspended account
    for role in roles.values():
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CENTRAL}:root"}, "Action": "sts:AssumeRole",
                          "Condition": {"StringEquals": {"sts:ExternalId": "ext-42"}}}]
    providers = [p for p in mocks.provider_regions]  # one provider per member account (it assumes into that account)
    assert {p.rsplit("-", 1)[-1] for p in providers if p.startswith("provider-member-")} == {"111111111111", "222222222222"}
    documents = {r.name.removesuffix("-permissions"): json.loads(r.inputs["policy"]) for r in mocks.resources
                 if r.type == "aws:iam/rolePolicy:RolePolicy"}
    audit = documents["member-111111111111-vigil-audit"]
    assert audit == audit_permissions(policy, "111111111111")
    actions = [a for s in audit["Statement"] for a in s["Action"]]
    assert actions and not [a for a in actions if is_write(a)]  # read-only
    assert "s3:GetBucketPolicy" in actions
    retention = documents["member-111111111111-vigil-retention"]
    assert retention == build(COMMANDS["retain"], Targets.of(policy, policy.regions_in_scope, "111111111111"))
    assert retention == retention_permissions(policy, "111111111111")


def test_the_distributed_map_runs_vigil_run_per_account() -> None:
    args = AccountRunsArgs(MEMBERS[:2], "arn:aws:ecs:us-east-1:999999999999:cluster/vigil",
                           "arn:aws:ecs:us-east-1:999999999999:task-definition/vigil:1", "vigil", ["subnet-1"],
                           "s3://evidence-bucket/packs")
    mocks = RecordingMocks("us-east-1")
    run_program(mocks, lambda: declare_account_runs("vigil-accounts", args, "arn:aws:iam::999999999999:role/sfn"))
    [machine] = [r for r in mocks.resources if r.type == "aws:sfn/stateMachine:StateMachine"]
    definition = json.loads(machine.inputs["definition"])
    each = definition["States"]["EveryAccount"]
    assert each["Type"] == "Map" and each["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    task = each["ItemProcessor"]["States"]["VigilRun"]
    assert task["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    override = task["Parameters"]["Overrides"]["ContainerOverrides"][0]
    assert "vigil run --accounts-file /tmp/accounts.yaml" in override["Command"][-1]
    assert "--upload s3://evidence-bucket/packs/$VIGIL_ACCOUNT_ID" in override["Command"][-1]
    assert override["Environment"] == [{"Name": "VIGIL_ACCOUNT_ID", "Value.$": "$.account_id"}]
