"""The CrossGuard pack's validation functions, run on the stack as `pulumi preview` would hand it over."""
from __future__ import annotations

from pulumi_policy import PolicyProviderResource, PolicyResource, PolicyResourceOptions, StackValidationArgs, proxy
from pulumi_policy.policy import PolicyCustomTimeouts
from vigil.checks.registry import evaluators
from vigil.infra.deploytime import RUN_TIME_ONLY
from vigil.infra.mocks import DeclaredResource, declare_stack
from vigil.infra.policy_pack.pack import policies, violations

from tests.helpers import repo_policy
from tests.test_infra_controls import BREAKS

UNKNOWN = proxy.UNKNOWN_STRING_VALUE


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def as_preview(declared: list[DeclaredResource], unknown_references: bool) -> list[PolicyResource]:
    """The declared resources as CrossGuard sees them; optionally with references to other resources unknown,
    as on a first preview (nothing exists yet)."""
    providers = {region: PolicyProviderResource("pulumi:providers:aws", {"region": region}, f"urn:provider:{region}", region)
                 for region in {r.region for r in declared}}
    by_id = {r.id: r for r in declared}
    by_arn = {r.state.get("arn"): r for r in declared if r.state.get("arn")}
    made: dict[str, PolicyResource] = {}
    out = []
    for record in declared:
        props = dict(record.state)
        dependencies: dict[str, list[PolicyResource]] = {}
        if unknown_references:
            for key, value in record.inputs.items():
                target = by_id.get(value) if key == "bucket" else by_arn.get(value) if isinstance(value, str) else None
                if target is not None and target is not record and target.name in made:
                    props[key] = UNKNOWN
                    dependencies[key] = [made[target.name]]
            props.pop("arn", None)  # computed: unknown until created
        resource = PolicyResource(record.type, proxy.unknown_checking_proxy(props), f"urn:pulumi:dev::vigil::{record.type}::{record.name}",
                                  record.name, _options(), providers[record.region], None, [], dependencies)
        made[record.name] = resource
        out.append(resource)
    return out


def run_pack(resources: list[PolicyResource]) -> list[tuple[str, str, str | None]]:
    reported = []
    for policy in policies(repo_policy()):
        policy.validate(StackValidationArgs(resources), lambda message, urn=None, name=policy.name: reported.append((name, message, urn)))
    return reported


def test_one_mandatory_policy_per_deploy_time_control() -> None:
    names = {p.name for p in policies(repo_policy())}
    assert names == {f"vigil-{c.lower()}" for c in evaluators() if c not in RUN_TIME_ONLY}
    assert all(p.enforcement_level.value == "mandatory" for p in policies(repo_policy()))


def test_the_stack_passes_the_pack() -> None:
    declared = declare_stack(repo_policy()).resources
    assert run_pack(as_preview(declared, unknown_references=False)) == []


def test_a_first_preview_with_unknown_references_passes() -> None:
    declared = declare_stack(repo_policy()).resources
    preview = as_preview(declared, unknown_references=True)
    assert any(r.property_dependencies for r in preview)
    assert run_pack(preview) == []


def test_a_change_that_breaks_a_control_is_stopped_with_the_resource_named() -> None:
    make_parts, resource = BREAKS["TLS-02"]
    declared = declare_stack(repo_policy(), parts=make_parts()).resources
    reported = run_pack(as_preview(declared, unknown_references=True))
    assert reported, "the broken stack passed the pack"
    names = {name for name, _message, _urn in reported}
    assert names == {"vigil-tls-02", "vigil-bak-03"}  # the replica is built by the same class, so it lost the deny too
    assert any(resource in message and urn and urn.endswith("::example-contacts") for _n, message, urn in reported), reported


def test_violations_for_a_replica_outside_allowed_regions() -> None:
    make_parts, resource = BREAKS["RES-01"]
    declared = declare_stack(repo_policy(), parts=make_parts()).resources
    found = violations(as_preview(declared, unknown_references=False), repo_policy(), "RES-01")
    assert any(resource in message for message, _urn in found), found
