"""The CrossGuard pack's logic: `pulumi preview` resources -> the catalogue's evaluators -> violations.

Each control is its own stack policy, so `pulumi preview --policy-pack infra/policy_pack`
names the control that a change would break. During a preview, values that depend on
resources not yet created are unknown; a reference to another resource (a bucket's name,
a key's ARN) is filled with the identity that resource will have, found through the
property's dependencies, so a new stack is judged as it will be, not failed for unknowns.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
    proxy,
)
from vigil.checks.catalogue import catalogue
from vigil.checks.model import Status
from vigil.infra.deploytime import deploy_time_controls, evaluate_declared
from vigil.infra.mocks import ACCOUNT_ID, DeclaredResource, fake_identity

from vigil.policy import Policy

UNKNOWN = object()
_SENTINELS = {proxy.UNKNOWN_BOOLEAN_VALUE, proxy.UNKNOWN_NUMBER_VALUE, proxy.UNKNOWN_STRING_VALUE, proxy.UNKNOWN_ARRAY_VALUE,
              proxy.UNKNOWN_ASSET_VALUE, proxy.UNKNOWN_ARCHIVE_VALUE, proxy.UNKNOWN_OBJECT_VALUE}


def plain(value: Any) -> Any:
    """A plain copy of CrossGuard's props: proxies unwrapped, unknown values as UNKNOWN."""
    if isinstance(value, Mapping):
        target = value["__target"] if isinstance(value, proxy._DictProxy) else value
        return {key: plain(item) for key, item in target.items()}
    if isinstance(value, proxy._ListProxy):
        value = value["__target"]
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, str) and value in _SENTINELS:
        return UNKNOWN
    return value


def _region(resource: PolicyResource, props: dict, default_region: str) -> str:
    if isinstance(props.get("region"), str):
        return props["region"]
    provider_props = plain(resource.provider.props) if resource.provider is not None else {}
    region = provider_props.get("region")
    return region if isinstance(region, str) else default_region


def _reference(key: str, dependency: DeclaredResource) -> Any:
    """What a property that names `dependency` holds once it exists."""
    if key in ("bucket", "planId", "role", "user", "targetBucket", "s3BucketName", "targetVaultName"):
        return dependency.id
    if key == "targetKeyId":
        return dependency.state.get("keyId", dependency.id)
    return dependency.state.get("arn", dependency.id)


def _fill(value: Any, replacement: Any) -> Any:
    if value is UNKNOWN:
        return replacement
    if isinstance(value, dict):
        return {k: _fill(v, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, replacement) for v in value]
    return value


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not UNKNOWN}
    if isinstance(value, list):
        return [_strip(v) for v in value if v is not UNKNOWN]
    return value


def declared_from(resources: Iterable[PolicyResource], default_region: str, account_id: str = ACCOUNT_ID) -> list[DeclaredResource]:
    """CrossGuard's view of the stack as the converter's DeclaredResource records."""
    resources = [r for r in resources if r.resource_type.startswith("aws:") and not r.resource_type.startswith("pulumi:providers:")]
    by_urn: dict[str, DeclaredResource] = {}
    pending: list[tuple[PolicyResource, DeclaredResource]] = []
    for resource in resources:
        props = plain(resource.props)
        region = _region(resource, props, default_region)
        known = _strip(props)
        physical, computed = fake_identity(resource.resource_type, resource.name, known, region, account_id)
        real_id = props.get("id")
        declared = DeclaredResource(resource.resource_type, resource.name, region, props,
                                    real_id if isinstance(real_id, str) else physical, {**computed, **known})
        by_urn[resource.urn] = declared
        pending.append((resource, declared))
    for resource, declared in pending:
        for key, value in list(declared.inputs.items()):
            dependencies = [by_urn[d.urn] for d in resource.property_dependencies.get(key, []) if d.urn in by_urn]
            if len(dependencies) == 1:
                declared.inputs[key] = _fill(value, _reference(key, dependencies[0]))
        declared.inputs = _strip(declared.inputs)
    return list(by_urn.values())


def violations(resources: Iterable[PolicyResource], policy: Policy, control: str) -> list[tuple[str, str | None]]:
    """(message, urn of the resource at fault) for every failed finding of `control`."""
    resources = list(resources)
    declared = declared_from(resources, policy.regions.primary)
    urn_of = {}
    for resource, record in zip([r for r in resources if r.resource_type.startswith("aws:")], declared, strict=False):
        arn = record.state.get("arn")
        if arn:
            urn_of[arn] = resource.urn
    out = []
    for finding in evaluate_declared(declared, policy):
        if finding.control == control and finding.status == Status.FAIL:
            out.append((f"{control} {finding.resource}: {finding.reason}", urn_of.get(finding.resource)))
    return out


def validator(policy: Policy, control: str) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message, urn in violations(args.resources, policy, control):
            report_violation(message, urn)
    return validate


def policies(policy: Policy, enforcement: EnforcementLevel = EnforcementLevel.MANDATORY) -> list[StackValidationPolicy]:
    entries = catalogue()
    return [
        StackValidationPolicy(name=f"vigil-{control.lower()}", description=f"{control}: {entries[control].title}",
                              validate=validator(policy, control), enforcement_level=enforcement)
        for control in deploy_time_controls()
    ]
