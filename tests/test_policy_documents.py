"""Tricky bucket and trust policies, judged by the pure evaluators (TLS-01/02, MFA-03/04, ACC-02).

Records are built the way the S3 collector builds them; the moto tests in
test_controls_access.py prove the same verdicts against the emulator.
"""
from __future__ import annotations

import copy

import pytest
from vigil.checks.context import Context
from vigil.checks.controls import acc_02, mfa_03, mfa_04, tls_01, tls_02
from vigil.checks.model import Bucket, Fact, Inventory, Status

from tests.helpers import repo_policy

B = "example-contacts"
ARN = f"arn:aws:s3:::{B}"
OBJ = f"arn:aws:s3:::{B}/*"
ROLE = "arn:aws:iam::123456789012:role/{}"

TLS_DENY = {"Sid": "DenyHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [ARN, OBJ],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
OLD_TLS_DENY = {"Sid": "DenyOldTls", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [ARN, OBJ],
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}}
MFA_DENY = {"Sid": "DenyNoMfa", "Effect": "Deny", "Principal": "*",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": OBJ,
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"},
                          "ArnNotLike": {"aws:PrincipalArn": [ROLE.format("vigil-replication"), ROLE.format("vigil-backup"), ROLE.format("vigil-retention")]}}}


def bucket(policy: dict | None, error: str | None = None) -> Bucket:
    def fact(api, value=None):
        return Fact(api, value)
    return Bucket(
        name=B, region=fact("s3:GetBucketLocation", "us-east-1"), encryption=fact("s3:GetBucketEncryption", []),
        policy=Fact("s3:GetBucketPolicy", policy, error), versioning=fact("s3:GetBucketVersioning", {}),
        replication=fact("s3:GetBucketReplication"), public_access_block=fact("s3:GetPublicAccessBlock"),
        logging=fact("s3:GetBucketLogging"), lifecycle=fact("s3:GetBucketLifecycleConfiguration"),
        object_lock=fact("s3:GetObjectLockConfiguration"), tags=fact("s3:GetBucketTagging", {}),
    )


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def judge(module, policy: dict | None) -> Status:
    b = bucket(policy)
    ctx = Context(policy=repo_policy(), inventory=Inventory(account_id="123456789012", regions=["us-east-1"], buckets={B: b}))
    return module.check_bucket(ctx, b).status


def variant(base: dict, **changes) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# --- TLS-01 --------------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    TLS_DENY,
    variant(TLS_DENY, Principal={"AWS": "*"}),
    variant(TLS_DENY, Principal={"AWS": ["*"]}),
    variant(TLS_DENY, Action="*"),
    variant(TLS_DENY, Action=["S3:*"]),
    variant(TLS_DENY, Condition={"Bool": {"aws:SecureTransport": False}}),
    variant(TLS_DENY, Condition={"BoolIfExists": {"aws:securetransport": ["false"]}}),
    variant(TLS_DENY, Resource=["arn:aws:s3:::example-*"]),
    variant(TLS_DENY, Resource="*"),
    variant(TLS_DENY, Condition={"Bool": {"aws:SecureTransport": ["false", "true"]}}),  # OR: denies even more
])
def test_tls01_accepts_equivalent_spellings(statement: dict) -> None:
    assert judge(tls_01, doc(statement)) == Status.PASS


def test_tls01_accepts_bucket_and_objects_split_across_statements() -> None:
    assert judge(tls_01, doc(variant(TLS_DENY, Resource=ARN), variant(TLS_DENY, Resource=OBJ))) == Status.PASS


def test_tls01_statement_object_not_list() -> None:
    assert judge(tls_01, {"Version": "2012-10-17", "Statement": TLS_DENY}) == Status.PASS


@pytest.mark.parametrize("name,statement", [
    ("bucket only", variant(TLS_DENY, Resource=ARN)),
    ("objects only", variant(TLS_DENY, Resource=OBJ)),
    ("some objects", variant(TLS_DENY, Resource=[ARN, f"{OBJ}.json"])),
    ("get only", variant(TLS_DENY, Action="s3:Get*")),
    ("put only", variant(TLS_DENY, Action=["s3:PutObject"])),
    ("allow true", variant(TLS_DENY, Effect="Allow", Condition={"Bool": {"aws:SecureTransport": "true"}})),
    ("one principal", variant(TLS_DENY, Principal={"AWS": "arn:aws:iam::123456789012:root"})),
    ("not principal", variant(TLS_DENY, Principal=None, NotPrincipal={"AWS": ROLE.format("x")})),
    ("true value", variant(TLS_DENY, Condition={"Bool": {"aws:SecureTransport": "true"}})),
    ("narrowed", variant(TLS_DENY, Condition={"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"aws:SourceVpce": "vpce-1"}})),
    ("not action s3", variant(TLS_DENY, Action=None, NotAction="s3:GetObject")),
    ("other bucket", variant(TLS_DENY, Resource=["arn:aws:s3:::other", "arn:aws:s3:::other/*"])),
])
def test_tls01_rejects_near_misses(name: str, statement: dict) -> None:
    assert judge(tls_01, doc(statement)) == Status.FAIL, name


def test_tls01_no_policy_fails_and_denied_read_errors() -> None:
    assert judge(tls_01, None) == Status.FAIL
    b = bucket(None, error="s3:GetBucketPolicy was denied (AccessDenied); grant it to the checking role")
    ctx = Context(policy=repo_policy(), inventory=Inventory(account_id="123456789012", regions=["us-east-1"], buckets={B: b}))
    finding = tls_01.check_bucket(ctx, b)
    assert finding.status == Status.ERROR and "GetBucketPolicy" in finding.reason


def test_tls01_reason_explains_missing_objects() -> None:
    b = bucket(doc(variant(TLS_DENY, Resource=ARN)))
    ctx = Context(policy=repo_policy(), inventory=Inventory(account_id="1", regions=["us-east-1"], buckets={B: b}))
    assert "bucket/*" in tls_01.check_bucket(ctx, b).reason


# --- TLS-02 --------------------------------------------------------------------------------

@pytest.mark.parametrize("statement,expected", [
    (OLD_TLS_DENY, Status.PASS),
    (variant(OLD_TLS_DENY, Condition={"NumericLessThan": {"s3:TlsVersion": 1.2}}), Status.PASS),
    (variant(OLD_TLS_DENY, Condition={"NumericLessThan": {"s3:TlsVersion": "1.3"}}), Status.PASS),
    (variant(OLD_TLS_DENY, Condition={"NumericLessThanEquals": {"s3:TlsVersion": "1.1"}}), Status.PASS),
    (variant(OLD_TLS_DENY, Condition={"NumericLessThan": {"s3:TlsVersion": "1.1"}}), Status.FAIL),
    (variant(OLD_TLS_DENY, Resource=OBJ), Status.FAIL),
    (variant(OLD_TLS_DENY, Effect="Allow", Condition={"NumericGreaterThanEquals": {"s3:TlsVersion": "1.2"}}), Status.FAIL),
    (variant(OLD_TLS_DENY, Condition={"NumericLessThan": {"s3:TlsVersion": "1.2"}, "Bool": {"aws:SecureTransport": "false"}}), Status.FAIL),
])
def test_tls02(statement: dict, expected: Status) -> None:
    assert judge(tls_02, doc(statement)) == expected


# --- MFA-03 --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,statements,expected", [
    ("bool-if-exists with service-role exception", [MFA_DENY], Status.PASS),
    ("s3:* wildcard", [variant(MFA_DENY, Action="s3:*")], Status.PASS),
    ("object wildcard actions", [variant(MFA_DENY, Action=["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*"])], Status.PASS),
    ("bool false plus null check", [variant(MFA_DENY, Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
                                    variant(MFA_DENY, Condition={"Null": {"aws:MultiFactorAuthPresent": "true"}})], Status.PASS),
    ("bool false alone lets keys without MFA through", [variant(MFA_DENY, Condition={"Bool": {"aws:MultiFactorAuthPresent": False}})], Status.FAIL),
    ("reads only", [variant(MFA_DENY, Action="s3:GetObject")], Status.FAIL),
    ("exception for a human role", [variant(MFA_DENY, Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"},
                                                               "ArnNotLike": {"aws:PrincipalArn": ROLE.format("admin")}})], Status.FAIL),
    ("narrowed by vpce", [variant(MFA_DENY, Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"},
                                                     "StringEquals": {"aws:SourceVpce": "vpce-1"}})], Status.FAIL),
    ("bucket resource only", [variant(MFA_DENY, Resource=ARN)], Status.FAIL),
    ("not principal service roles", [variant(MFA_DENY, Principal=None, NotPrincipal={"AWS": [ROLE.format("vigil-backup"), "arn:aws:sts::123456789012:assumed-role/vigil-backup/s"]},
                                             Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}})], Status.PASS),
    ("not principal stranger", [variant(MFA_DENY, Principal=None, NotPrincipal={"AWS": [ROLE.format("ops")]},
                                        Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}})], Status.FAIL),
    ("allow with mfa true is not a deny", [variant(MFA_DENY, Effect="Allow", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})], Status.FAIL),
])
def test_mfa03(name: str, statements: list[dict], expected: Status) -> None:
    assert judge(mfa_03, doc(*statements)) == expected, name


# --- ACC-02 --------------------------------------------------------------------------------

PUBLIC_READ = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": OBJ}


@pytest.mark.parametrize("statement,expected", [
    (PUBLIC_READ, Status.FAIL),
    (variant(PUBLIC_READ, Principal={"AWS": "*"}), Status.FAIL),
    (variant(PUBLIC_READ, Condition={"Bool": {"aws:SecureTransport": "true"}}), Status.FAIL),
    (variant(PUBLIC_READ, Condition={"StringEquals": {"aws:SourceVpce": "vpce-123"}}), Status.PASS),
    (variant(PUBLIC_READ, Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}), Status.PASS),
    (variant(PUBLIC_READ, Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}), Status.PASS),
    (variant(PUBLIC_READ, Condition={"StringNotEquals": {"aws:PrincipalAccount": "111122223333"}}), Status.FAIL),
    (variant(PUBLIC_READ, Condition={"StringEqualsIfExists": {"aws:SourceVpce": "vpce-123"}}), Status.FAIL),
    (variant(PUBLIC_READ, Condition={"StringLike": {"aws:PrincipalArn": "*"}}), Status.FAIL),
    (variant(PUBLIC_READ, Principal={"AWS": "arn:aws:iam::123456789012:root"}), Status.PASS),
    (variant(PUBLIC_READ, Principal=None, NotPrincipal={"AWS": "arn:aws:iam::123456789012:root"}), Status.FAIL),
    (variant(PUBLIC_READ, Effect="Deny"), Status.PASS),
])
def test_acc02(statement: dict, expected: Status) -> None:
    assert judge(acc_02, doc(statement)) == expected


# --- MFA-04 --------------------------------------------------------------------------------

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                 "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}


@pytest.mark.parametrize("condition,expected", [
    ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, True),
    ({"Bool": {"aws:multifactorauthpresent": True}}, True),
    ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}, False),
    ({"Bool": {"aws:MultiFactorAuthPresent": "false"}}, False),
    ({"Bool": {"aws:MultiFactorAuthPresent": ["true", "false"]}}, False),  # OR: lets requests without MFA in
    (None, False),
])
def test_mfa04_trust_policies(condition: dict | None, expected: bool) -> None:
    trust = copy.deepcopy(TRUST)
    if condition is None:
        trust["Statement"][0].pop("Condition")
    else:
        trust["Statement"][0]["Condition"] = condition
    assert mfa_04.judge(trust)[0] is expected


def test_mfa04_second_statement_without_mfa_fails() -> None:
    trust = copy.deepcopy(TRUST)
    trust["Statement"].append({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"}, "Action": "sts:*"})
    ok, reason = mfa_04.judge(trust)
    assert not ok and "user/bob" in reason
