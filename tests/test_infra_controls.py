"""For each control: change one input of the stack (a subclassed component) and see it fail at deploy time."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pulumi
import pulumi_aws as aws
import pytest
from vigil.checks.model import Status
from vigil.checks.registry import evaluators
from vigil.infra.components import (
    AccessRoles,
    AuditTrail,
    BackupPlan,
    CustomerKey,
    SecureBucket,
    SecureTable,
    bucket_policy,
)
from vigil.infra.deploytime import RUN_TIME_ONLY, evaluate_declared
from vigil.infra.mocks import declare_stack
from vigil.infra.program import Parts

from tests.helpers import repo_policy

CONTACTS = "arn:aws:s3:::example-contacts"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/"


class NoEncryptionRules(SecureBucket):
    def encryption_rule(self) -> dict:
        return {}  # an empty rule: no default encryption algorithm at all


class SseS3Only(SecureBucket):
    def encryption_rule(self) -> dict:
        return {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}


class Unrotated(CustomerKey):
    def __init__(self, name, args, opts=None):
        super().__init__(name, dataclasses.replace(args, rotate=False), opts)


class PlainTable(SecureTable):
    def encryption(self) -> dict:
        return {"enabled": False}


class NoPitr(SecureTable):
    def point_in_time_recovery(self) -> dict:
        return {"enabled": False}


class NoEbsDefault(AuditTrail):
    def ebs_encryption(self, region: str) -> bool:
        return region != "us-west-2"


class SingleRegionTrail(AuditTrail):
    def trail_settings(self) -> dict:
        return {"is_multi_region_trail": False, "enable_log_file_validation": True}


def without(sid: str) -> type[SecureBucket]:
    class Missing(SecureBucket):
        def policy_statements(self, exempt, extra):
            return [s for s in super().policy_statements(exempt, extra) if s.get("Sid") != sid]
    return Missing


class PublicRead(SecureBucket):
    def policy_statements(self, exempt, extra):
        return super().policy_statements(exempt, extra) + [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{self.args.bucket}/*"}]


class MfaBoolOnly(SecureBucket):
    def policy_statements(self, exempt, extra):
        out = [s for s in super().policy_statements(exempt, extra) if s.get("Sid") != "DenyObjectAccessWithoutMfa"]
        mfa = bucket_policy.deny_without_mfa(self.args.bucket, exempt)
        mfa["Condition"]["Bool"] = mfa["Condition"].pop("BoolIfExists")  # lets requests without the key through
        return out + [mfa]


class NoMfaTrust(AccessRoles):
    def human_trust(self, account_id: str) -> str:
        return super().human_trust(account_id).replace('"Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}', '"Condition": {}')


class ConsoleUserWithoutMfa(AccessRoles):
    def __init__(self, name, args, opts=None):
        super().__init__(name, args, opts)
        user = aws.iam.User("intern", name="intern", opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
        aws.iam.UserLoginProfile("intern-console", user=user.name, opts=pulumi.ResourceOptions(parent=self, provider=args.provider))


class Unversioned(SecureBucket):
    def versioning_status(self) -> str:
        return "Suspended"


class PrefixOnlyReplication(SecureBucket):
    def replication_rule(self, target, replica) -> dict:
        return {**super().replication_rule(target, replica), "filter": {"prefix": "only-this/"}}


class WeakReplica(SecureBucket):
    def replica_component(self) -> type[SecureBucket]:
        return without("DenyPlainHttp")


class NoCopyOffSite(BackupPlan):
    def rule(self) -> dict:
        return {**super().rule(), "copy_actions": []}


class KeepsBackupsTooLong(BackupPlan):
    def rule(self) -> dict:
        return {**super().rule(), "lifecycle": {"delete_after": 3650}}


class OneBlockOff(SecureBucket):
    def public_access_block_settings(self) -> dict:
        return {**super().public_access_block_settings(), "restrict_public_buckets": False}


class AclsEnabled(SecureBucket):
    def object_ownership(self) -> str:
        return "ObjectWriter"


class Unlogged(SecureBucket):
    def __init__(self, name, args, opts=None):
        super().__init__(name, dataclasses.replace(args, log_bucket=None), opts)


class ReplicaOutsideAllowedRegions(SecureBucket):
    def replica_args(self, replica):
        rogue = aws.Provider(f"rogue-{self.args.bucket}", region="eu-west-1")
        return dataclasses.replace(super().replica_args(replica), provider=rogue, region="eu-west-1")


class NoLifecycle(SecureBucket):
    def lifecycle_rules(self) -> list[dict]:
        return []


class NoObjectLock(SecureBucket):
    def __init__(self, name, args, opts=None):
        super().__init__(name, dataclasses.replace(args, object_lock_days=None), opts)


# control -> (the one change, the resource whose finding must fail)
BREAKS: dict[str, tuple[Callable[[], Parts], str]] = {
    "ENC-01": (lambda: Parts(support_bucket=NoEncryptionRules), "arn:aws:s3:::example-telecom-evidence"),
    "ENC-02": (lambda: Parts(data_bucket=SseS3Only), CONTACTS),
    "ENC-03": (lambda: Parts(key=Unrotated), "arn:aws:kms:us-east-1:123456789012:key/"),
    "ENC-04": (lambda: Parts(table=PlainTable), TABLE + "referrals"),
    "ENC-06": (lambda: Parts(trail=NoEbsDefault), "region:us-west-2"),
    "TLS-01": (lambda: Parts(support_bucket=without("DenyPlainHttp")), "arn:aws:s3:::example-telecom-cloudtrail"),
    "TLS-02": (lambda: Parts(data_bucket=without("DenyTlsBelow12")), CONTACTS),
    "MFA-02": (lambda: Parts(roles=ConsoleUserWithoutMfa), "arn:aws:iam::123456789012:user/intern"),
    "MFA-03": (lambda: Parts(data_bucket=MfaBoolOnly), CONTACTS),
    "MFA-04": (lambda: Parts(roles=NoMfaTrust), "arn:aws:iam::123456789012:role/data-steward"),
    "BAK-01": (lambda: Parts(data_bucket=Unversioned), CONTACTS),
    "BAK-02": (lambda: Parts(data_bucket=PrefixOnlyReplication), CONTACTS),
    "BAK-03": (lambda: Parts(data_bucket=WeakReplica), "arn:aws:s3:::example-contacts-replica"),
    "BAK-04": (lambda: Parts(plan=NoCopyOffSite), TABLE + "referrals"),
    "BAK-05": (lambda: Parts(table=NoPitr), TABLE + "accounts"),
    "ACC-01": (lambda: Parts(data_bucket=OneBlockOff), CONTACTS),
    "ACC-02": (lambda: Parts(data_bucket=PublicRead), CONTACTS),
    "ACC-04": (lambda: Parts(data_bucket=AclsEnabled), CONTACTS),
    "AUD-01": (lambda: Parts(trail=SingleRegionTrail), "123456789012"),
    "AUD-02": (lambda: Parts(data_bucket=Unlogged), CONTACTS),
    "RES-01": (lambda: Parts(data_bucket=ReplicaOutsideAllowedRegions), "arn:aws:s3:::example-contacts-replica"),
    "RET-01": (lambda: Parts(data_bucket=NoLifecycle), CONTACTS),
    "RET-03": (lambda: Parts(plan=KeepsBackupsTooLong), "arn:aws:backup:"),
    "RET-04": (lambda: Parts(data_bucket=NoObjectLock), "arn:aws:s3:::example-sms-consent"),
}


def test_every_deploy_time_control_has_a_break() -> None:
    """A control with an evaluator and no way to break it here would be untested at deploy time."""
    untested = set(evaluators()) - set(BREAKS) - set(RUN_TIME_ONLY) - {"ENC-05", "TLS-03", "ACC-03"}
    assert untested == set(), f"add a break for {sorted(untested)} (ENC-05/TLS-03: no RDS store; ACC-03 is informational)"


@pytest.mark.parametrize("control", sorted(BREAKS))
def test_breaking_one_input_fails_its_control(control: str) -> None:
    assert control in evaluators(), f"{control} has a break but no evaluator"
    policy = repo_policy()
    make_parts, resource = BREAKS[control]
    findings = evaluate_declared(declare_stack(policy, parts=make_parts()).resources, policy)
    mine = [f for f in findings if f.control == control]
    failed = [f for f in mine if f.status == Status.FAIL and f.resource.startswith(resource)]
    assert failed, f"{control} did not fail on {resource}: {[(f.resource, f.status.value, f.reason) for f in mine]}"
    assert all(f.reason for f in failed)
