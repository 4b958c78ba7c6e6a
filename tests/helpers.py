"""Helpers for tests: run the real collectors and evaluators (inside mock_aws) and pick findings."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml
from vigil.checks.collectors import collect_inventory
from vigil.checks.context import Context
from vigil.checks.model import Finding, Inventory
from vigil.checks.registry import evaluate

from vigil.aws import Aws
from vigil.policy import Policy, load_policy

ROOT = Path(__file__).resolve().parent.parent


def repo_policy() -> Policy:
    return load_policy(ROOT / "policy.yaml")


def policy_variant(tmp_path: Path, change) -> Policy:
    """The repository policy with `change(data)` applied to its parsed YAML, loaded for real."""
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    change(data)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_policy(path)


def collect(policy: Policy, regions: list[str] | None = None, aws: Aws | None = None) -> Inventory:
    return collect_inventory(aws or Aws(), policy, regions or policy.regions_in_scope)


def run_checks(policy: Policy, only: Iterable[str] | None = None, as_of: datetime | None = None,
               regions: list[str] | None = None, aws: Aws | None = None) -> list[Finding]:
    """`aws`: a client factory of the test's own (e.g. with a botocore handler that denies a call)."""
    inventory = collect(policy, regions, aws)
    ctx = Context(policy=policy, inventory=inventory, as_of=as_of or datetime.now(UTC))
    return evaluate(ctx, only=list(only) if only is not None else None)


def finding(findings: list[Finding], control: str, resource: str) -> Finding:
    """The one finding for (control, resource); resource may be a bucket/table name or a full ARN."""
    matches = [f for f in findings if f.control == control and (f.resource == resource or f.resource.endswith(":" + resource) or f.resource.endswith("/" + resource))]
    assert len(matches) == 1, f"expected one {control} finding for {resource}, got {[(f.resource, f.status) for f in findings if f.control == control]}"
    return matches[0]
