"""Run the program under Pulumi's mocks and record what it declares (no CLI, no cloud).

`RecordingMocks` gives each resource the id and ARN AWS would (so references between
resources resolve to realistic values) and records type, name, region and inputs. The
demo's deployer subclasses it to apply each resource to an emulator instead.
"""
from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

from vigil.policy import Policy

ACCOUNT_ID = "123456789012"  # moto's default account, so deploy-time and demo ARNs agree


@dataclass
class DeclaredResource:
    type: str  # Pulumi type token, e.g. aws:s3/bucket:Bucket
    name: str  # logical name
    region: str
    inputs: dict[str, Any]  # Pulumi property names (camelCase), outputs of other resources resolved
    id: str = ""
    state: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.inputs.get(key, default)


def _stable_uuid(text: str) -> str:
    return str(uuid.UUID(hashlib.sha256(text.encode()).hexdigest()[:32]))


def fake_identity(typ: str, name: str, inputs: dict, region: str, account: str) -> tuple[str, dict]:
    """The physical id and the computed outputs AWS would give this resource."""
    arn_of = {
        "aws:s3/bucket:Bucket": lambda: (inputs.get("bucket") or name, "arn:aws:s3:::{id}"),
        "aws:kms/key:Key": lambda: (_stable_uuid(f"{region}/{name}"), f"arn:aws:kms:{region}:{account}:key/{{id}}"),
        "aws:kms/alias:Alias": lambda: (inputs.get("name") or name, f"arn:aws:kms:{region}:{account}:{{id}}"),
        "aws:iam/role:Role": lambda: (inputs.get("name") or name, f"arn:aws:iam::{account}:role/{{id}}"),
        "aws:iam/user:User": lambda: (inputs.get("name") or name, f"arn:aws:iam::{account}:user/{{id}}"),
        "aws:dynamodb/table:Table": lambda: (inputs.get("name") or name, f"arn:aws:dynamodb:{region}:{account}:table/{{id}}"),
        "aws:backup/vault:Vault": lambda: (inputs.get("name") or name, f"arn:aws:backup:{region}:{account}:backup-vault:{{id}}"),
        "aws:backup/plan:Plan": lambda: (_stable_uuid(f"{region}/{name}"), f"arn:aws:backup:{region}:{account}:backup-plan:{{id}}"),
        "aws:cloudtrail/trail:Trail": lambda: (inputs.get("name") or name, f"arn:aws:cloudtrail:{region}:{account}:trail/{{id}}"),
        "aws:lambda/function:Function": lambda: (inputs.get("name") or name, f"arn:aws:lambda:{region}:{account}:function:{{id}}"),
    }.get(typ)
    if arn_of is None:
        return f"{name}-id", {}
    physical, arn = arn_of()
    state: dict[str, Any] = {"arn": arn.format(id=physical)}
    if typ == "aws:kms/key:Key":
        state["keyId"] = physical
    if typ == "aws:s3/bucket:Bucket":
        state.update(bucket=physical, region=region)
    if typ in ("aws:iam/role:Role", "aws:dynamodb/table:Table", "aws:backup/vault:Vault", "aws:iam/user:User",
               "aws:lambda/function:Function"):
        state["name"] = physical
    return physical, state


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers every resource with realistic ids/ARNs and records it (in declaration order)."""

    def __init__(self, default_region: str, account_id: str = ACCOUNT_ID):
        self.default_region = default_region
        self.account_id = account_id
        self.resources: list[DeclaredResource] = []
        self.provider_regions: dict[str, str] = {}  # provider id -> region

    def region_of(self, args: pulumi.runtime.MockResourceArgs) -> str:
        if args.inputs.get("region"):
            return args.inputs["region"]
        provider_id = (args.provider or "").rsplit("::", 1)[-1]
        return self.provider_regions.get(provider_id, self.default_region)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ.startswith("pulumi:providers:"):
            provider_id = f"provider-{args.name}"
            self.provider_regions[provider_id] = args.inputs.get("region") or self.default_region
            return provider_id, dict(args.inputs)
        if args.custom is False:  # component resources only group their children
            return f"{args.name}-component", {}
        region = self.region_of(args)
        resource = DeclaredResource(args.typ, args.name, region, dict(args.inputs))
        resource.id, computed = self.create(resource)
        resource.state = {**resource.inputs, **computed}
        self.resources.append(resource)
        return resource.id, resource.state

    def create(self, resource: DeclaredResource) -> tuple[str, dict]:
        """The physical id and computed outputs; the demo's deployer creates it for real here."""
        return fake_identity(resource.type, resource.name, resource.inputs, resource.region, self.account_id)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        """(outputs, check failures: none)."""
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account_id, "arn": f"arn:aws:iam::{self.account_id}:user/deployer", "userId": "AIDADEPLOYER",
                    "id": self.account_id}, []
        return {}, []


def run_program(mocks: RecordingMocks, program: Callable[[], Any], project: str = "vigil", stack: str = "dev") -> Any:
    """Run `program` under `mocks` to completion (every output resolved) and return its result."""
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    result: dict[str, Any] = {}

    def body() -> Any:
        result["value"] = program()
        return None

    pulumi.runtime.test(body)()
    return result.get("value")


def declare_stack(policy: Policy, settings: Any = None, parts: Any = None, mocks: RecordingMocks | None = None) -> RecordingMocks:
    """Declare the stack for `policy` under recording mocks; returns the mocks with every resource."""
    from vigil.infra.program import Parts, build_stack
    from vigil.infra.settings import StackSettings

    mocks = mocks or RecordingMocks(policy.regions.primary)
    run_program(mocks, lambda: build_stack(policy, settings or StackSettings.defaults(policy), parts or Parts()))
    return mocks
