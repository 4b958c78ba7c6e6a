"""Bucket policies read by meaning: a table of policies, each verdict reasoned from AWS's
documented policy evaluation logic (the rule each case relies on is cited beside it).

Four families used to be misjudged: (a) statements combine for actions, not only for
resources; (b) a "narrowing" value that matches everyone narrows nothing; (c) IfExists on a
negated exception never widens a deny; (d) aws:MultiFactorAuthAge tests are MFA tests. The
rest are tricky shapes whose verdict must not move. test_policy_documents.py holds the
simpler spellings; nothing here repeats them.

Rules cited (IAM User Guide, "Policy evaluation logic", "IAM JSON policy elements",
"Condition operators"; S3 User Guide, "The meaning of public"):
  DENY-ANY  a request is denied when any Deny statement matches it: statements are independent.
  NOTACTION NotAction / NotResource match everything except what they list.
  CASE      action names are case-insensitive; resource ARNs are case-sensitive.
  AND-OR    operators and keys in one Condition block are AND-ed; values for one key are OR-ed.
  MISSING   a key absent from the request makes a condition false, except: negated operators
            (StringNotEquals, ArnNotLike, ...) and ...IfExists are then true; Null tests presence.
  SETS      ForAllValues is true when the key is absent; ForAnyValue is false.
  AGE       aws:MultiFactorAuthAge is in the request only when MFA was used.
  PRESENT   aws:MultiFactorAuthPresent is "false" for temporary credentials got without MFA,
            absent for long-term access keys.
  PUBLIC    S3 considers a policy public unless it grants only to fixed values (no wildcard)
            of the principal, aws:SourceVpce, aws:SourceArn, aws:SourceAccount, ... or limits
            aws:SourceIp to CIDRs; aws:userid "AROLEID:*" counts as fixed.
  PRINCIPAL the account id in a principal ARN pins the principal to that account.
"""
from __future__ import annotations

import pytest
from vigil.checks.controls import acc_02, mfa_03, tls_01, tls_02
from vigil.checks.model import Status

from tests.test_policy_documents import (
    ARN,
    MFA_DENY,
    OBJ,
    OLD_TLS_DENY,
    PUBLIC_READ,
    ROLE,
    TLS_DENY,
    B,
    doc,
    judge,
    variant,
)

PASS, FAIL = Status.PASS, Status.FAIL
SERVICE_ROLES = [ROLE.format(name) for name in ("vigil-replication", "vigil-backup", "vigil-retention")]
HTTP = {"Bool": {"aws:SecureTransport": "false"}}
NO_MFA = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}


def tls(**changes) -> dict:
    return variant(TLS_DENY, **changes)


def mfa(condition: dict, **changes) -> dict:
    return variant(MFA_DENY, Condition=condition, **changes)


def public(condition: dict) -> dict:
    return variant(PUBLIC_READ, Condition=condition)


CASES = [
    # --- (a) statements combine for actions as well as resources ---------------------------------
    pytest.param(tls_01, [tls(Action=None, NotAction="s3:Get*"), tls(Action="s3:Get*")], PASS,
                 id="a-tls01-notaction-plus-action"),  # DENY-ANY + NOTACTION: the two sets make every action
    pytest.param(tls_01, [tls(Action=None, NotAction="s3:Get*"), tls(Action="s3:GetObject")], FAIL,
                 id="a-tls01-notaction-plus-too-little"),  # s3:GetBucketAcl is in neither statement
    pytest.param(tls_01, [tls(Action=None, NotAction="s3:Get*"), tls(Action="s3:Get*", Resource=ARN),
                          tls(Action="s3:Get*", Resource=OBJ)], PASS,
                 id="a-tls01-split-by-action-and-resource"),  # DENY-ANY: every (action, resource) pair has a deny
    pytest.param(tls_01, [tls(Action=None, NotAction="s3:Get*"), tls(Action="s3:Get*", Resource=ARN)], FAIL,
                 id="a-tls01-get-on-objects-missing"),  # s3:GetObject on bucket/* matches no deny
    pytest.param(tls_01, [tls(Action=["s3:Get*", "s3:Put*", "s3:Delete*", "s3:List*"])], FAIL,
                 id="a-tls01-four-families-are-not-all"),  # s3:RestoreObject, s3:AbortMultipartUpload remain
    pytest.param(tls_01, [tls(Action=None, NotAction="S3:GET*"), tls(Action="s3:get*")], PASS,
                 id="a-tls01-action-case-ignored"),  # CASE: S3:GET* and s3:get* name the same actions
    pytest.param(tls_01, [tls(Action=None, NotAction="s3:*Object"), tls(Action=["s3:*Object"])], PASS,
                 id="a-tls01-infix-wildcards"),  # NOTACTION: complement and set again
    pytest.param(tls_01, [tls(Action=None, NotAction="s3:Get*"),
                          tls(Action="s3:Get*", Principal={"AWS": "arn:aws:iam::123456789012:root"})], FAIL,
                 id="a-tls01-second-half-not-for-everyone"),  # the Get* half denies one account only
    pytest.param(tls_01, [tls(Action=None, NotAction="s3:Get*"),
                          tls(Action="s3:Get*", Condition={**HTTP, "StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})], FAIL,
                 id="a-tls01-second-half-narrowed"),  # AND-OR + MISSING: the Get* deny needs the endpoint too
    pytest.param(tls_02, [variant(OLD_TLS_DENY, Action=None, NotAction="s3:Get*"), variant(OLD_TLS_DENY, Action="s3:Get*")], PASS,
                 id="a-tls02-notaction-plus-action"),  # DENY-ANY + NOTACTION
    pytest.param(tls_02, [variant(OLD_TLS_DENY, Action=None, NotAction="s3:Get*"),
                          variant(OLD_TLS_DENY, Action="s3:Get*", Condition={"NumericLessThan": {"s3:TlsVersion": "1.1"}})], FAIL,
                 id="a-tls02-half-lets-tls11-read"),  # TLS 1.1 reads match neither deny
    pytest.param(mfa_03, [mfa(NO_MFA, Resource=f"{ARN}/a*"),
                          mfa(NO_MFA, Resource=None, NotResource=f"{ARN}/a*")], PASS,
                 id="a-mfa03-objects-split-by-notresource"),  # NOTACTION (NotResource): the rest of the objects
    pytest.param(mfa_03, [mfa(NO_MFA, Action=None, NotAction="s3:GetObject"), mfa(NO_MFA, Action="s3:GetObject")], PASS,
                 id="a-mfa03-notaction-plus-action"),  # DENY-ANY + NOTACTION (already passed: stays)
    pytest.param(mfa_03, [mfa(NO_MFA, Action="s3:GetObject"),
                          mfa(NO_MFA, Action=["s3:PutObject", "s3:DeleteObject"], Resource=f"{OBJ[:-1]}private/*")], FAIL,
                 id="a-mfa03-writes-only-under-a-prefix"),  # PutObject outside private/ matches no deny

    # --- (b) values that match everyone narrow nothing ----------------------------------------------
    pytest.param(acc_02, [public({"StringLike": {"aws:SourceVpce": "vpce-*"}})], FAIL,
                 id="b-acc02-any-vpc-endpoint"),  # PUBLIC: anyone can make an endpoint named vpce-...
    pytest.param(acc_02, [public({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}})], FAIL,
                 id="b-acc02-any-role-anywhere"),  # PUBLIC: every account's roles
    pytest.param(acc_02, [public({"StringLike": {"aws:PrincipalOrgID": "o-*"}})], FAIL,
                 id="b-acc02-any-organization"),  # PUBLIC
    pytest.param(acc_02, [public({"StringEquals": {"aws:SourceVpce": ["vpce-1a2b3c4d", "vpce-*"]}})], FAIL,
                 id="b-acc02-one-open-value-among-fixed"),  # AND-OR: values are OR-ed, the open one admits all
    pytest.param(acc_02, [public({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})], FAIL,
                 id="b-acc02-every-ipv4-address"),  # PUBLIC: a CIDR of every address limits nothing
    pytest.param(acc_02, [public({"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}})], FAIL,
                 id="b-acc02-two-halves-of-ipv4"),  # AND-OR: OR-ed halves are the whole space
    pytest.param(acc_02, [public({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}})], FAIL,
                 id="b-acc02-any-bucket-as-source"),  # PUBLIC: anyone's bucket
    pytest.param(acc_02, [public({"StringLike": {"aws:SourceAccount": "1234567890??"}})], FAIL,
                 id="b-acc02-account-with-wildcards"),  # PUBLIC: not a fixed account
    pytest.param(acc_02, [public({"ForAllValues:StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})], FAIL,
                 id="b-acc02-forallvalues-true-when-absent"),  # SETS: requests from the internet have no endpoint
    pytest.param(acc_02, [public({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}})], PASS,
                 id="b-acc02-any-role-of-one-account"),  # PRINCIPAL: still that account only
    pytest.param(acc_02, [public({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*"}})], PASS,
                 id="b-acc02-org-path-under-fixed-org"),  # PUBLIC: the organization is fixed
    pytest.param(acc_02, [public({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-*/*"}})], FAIL,
                 id="b-acc02-org-path-any-org"),  # PUBLIC
    pytest.param(acc_02, [public({"StringLike": {"aws:userid": "AROAEXAMPLEROLEID:*"}})], PASS,
                 id="b-acc02-sessions-of-one-role"),  # PUBLIC: "AROLEID:*" counts as fixed
    pytest.param(acc_02, [public({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})], PASS,
                 id="b-acc02-private-network"),  # PUBLIC: a limited set of CIDRs
    pytest.param(acc_02, [public({"StringLike": {"aws:SourceVpce": "vpce-*"}, "StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}})], PASS,
                 id="b-acc02-open-and-fixed-together"),  # AND-OR: both must hold, the org narrows
    pytest.param(tls_01, [tls(Condition={**HTTP, "StringLikeIfExists": {"aws:PrincipalArn": "*"}})], PASS,
                 id="b-tls01-always-true-extra-condition"),  # MISSING: IfExists passes absent keys, * the rest
    pytest.param(tls_01, [tls(Condition={**HTTP, "StringLike": {"aws:PrincipalArn": "*"}})], FAIL,
                 id="b-tls01-anonymous-escape-plain-stringlike"),  # MISSING: anonymous requests have no PrincipalArn
    pytest.param(mfa_03, [mfa({**NO_MFA, "Null": {"aws:SourceVpce": ["true", "false"]}})], PASS,
                 id="b-mfa03-null-both-ways"),  # MISSING: the key is absent or present, always one
    pytest.param(tls_02, [variant(OLD_TLS_DENY, Condition={"NumericLessThan": {"s3:TlsVersion": "1.2"},
                                                           "ForAllValues:StringLike": {"aws:SourceVpce": "*"}})], PASS,
                 id="b-tls02-forallvalues-star"),  # SETS: true when absent, and * matches any value

    # --- (c) IfExists on a negated exception never widens the deny ---------------------------------------
    pytest.param(mfa_03, [mfa({**NO_MFA, "StringNotEqualsIfExists": {"aws:PrincipalArn": SERVICE_ROLES}})], PASS,
                 id="c-mfa03-stringnotequals-ifexists"),  # MISSING: absent key -> true, the deny applies
    pytest.param(mfa_03, [mfa({**NO_MFA, "ArnNotLikeIfExists": {"aws:PrincipalArn": SERVICE_ROLES}})], PASS,
                 id="c-mfa03-arnnotlike-ifexists"),  # MISSING
    pytest.param(mfa_03, [mfa({**NO_MFA, "StringNotLikeIfExists": {"aws:PrincipalArn": [
        "arn:aws:sts::123456789012:assumed-role/vigil-backup/*", ROLE.format("vigil-backup")]}})], PASS,
                 id="c-mfa03-assumed-role-sessions"),  # PRINCIPAL: the sessions of one allow-listed role
    pytest.param(mfa_03, [mfa({**NO_MFA, "StringNotEqualsIfExists": {"aws:PrincipalArn": [*SERVICE_ROLES, ROLE.format("admin")]}})], FAIL,
                 id="c-mfa03-ifexists-exempts-a-human"),  # the exception names a role the policy does not list
    pytest.param(mfa_03, [mfa({**NO_MFA, "ArnNotLikeIfExists": {"aws:PrincipalArn": ROLE.format("vigil-*")}})], FAIL,
                 id="c-mfa03-exception-wildcard-role"),  # any role called vigil-... is exempt
    pytest.param(mfa_03, [mfa({**NO_MFA, "StringNotEqualsIfExists": {"aws:PrincipalAccount": "123456789012"}})], FAIL,
                 id="c-mfa03-exempts-whole-account"),  # the account's own principals never need MFA
    pytest.param(mfa_03, [mfa({**NO_MFA, "ForAnyValue:StringNotEquals": {"aws:PrincipalArn": SERVICE_ROLES}})], FAIL,
                 id="c-mfa03-foranyvalue-exception"),  # SETS: false when absent, anonymous requests escape
    pytest.param(mfa_03, [mfa({**NO_MFA, "StringEqualsIfExists": {"aws:PrincipalArn": SERVICE_ROLES}})], FAIL,
                 id="c-mfa03-positive-test-is-not-an-exception"),  # AND-OR: the deny then hits the service roles only

    # --- (d) aws:MultiFactorAuthAge tests are MFA tests ----------------------------------------------------
    pytest.param(mfa_03, [mfa({"NumericGreaterThanIfExists": {"aws:MultiFactorAuthAge": "3600"}})], PASS,
                 id="d-mfa03-age-ifexists"),  # AGE + MISSING: no MFA -> no age -> true
    pytest.param(mfa_03, [mfa({"Null": {"aws:MultiFactorAuthAge": "true"}})], PASS,
                 id="d-mfa03-age-null"),  # AGE: absent exactly when MFA was not used
    pytest.param(mfa_03, [mfa({"NumericGreaterThan": {"aws:MultiFactorAuthAge": 3600}})], FAIL,
                 id="d-mfa03-age-without-ifexists"),  # MISSING: no age -> false, only stale MFA is denied
    pytest.param(mfa_03, [mfa({"Null": {"aws:MultiFactorAuthAge": "false"}})], FAIL,
                 id="d-mfa03-age-null-false"),  # denies requests *with* MFA
    pytest.param(mfa_03, [mfa({**NO_MFA, "NumericGreaterThanIfExists": {"aws:MultiFactorAuthAge": "3600"}})], PASS,
                 id="d-mfa03-present-and-age-together"),  # AND-OR: a no-MFA request passes both tests
    pytest.param(mfa_03, [mfa({"Bool": {"aws:MultiFactorAuthPresent": "false"}, "NumericGreaterThanIfExists": {"aws:MultiFactorAuthAge": "3600"}})], FAIL,
                 id="d-mfa03-bool-and-age-together"),  # AND-OR + MISSING: long-term keys fail the Bool test
    pytest.param(mfa_03, [mfa({"NumericGreaterThanIfExists": {"aws:MultiFactorAuthAge": "3600"},
                               "ArnNotLike": {"aws:PrincipalArn": SERVICE_ROLES}})], PASS,
                 id="d-mfa03-age-with-service-exception"),  # MISSING: negated exception, allow-listed roles
    pytest.param(mfa_03, [mfa({"Null": {"aws:MultiFactorAuthAge": "true"}}, Action="s3:GetObject"),
                          mfa(NO_MFA, Action=["s3:PutObject", "s3:DeleteObject"])], PASS,
                 id="d-mfa03-age-for-reads-present-for-writes"),  # DENY-ANY: each action has a full deny
    pytest.param(mfa_03, [mfa({"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
                          mfa({"Null": {"aws:MultiFactorAuthAge": "true"}}, Action="s3:GetObject")], FAIL,
                 id="d-mfa03-age-only-for-reads"),  # PRESENT: long-term keys may still write and delete

    # --- tricky shapes whose verdict stays ------------------------------------------------------------------
    pytest.param(tls_01, [tls(Resource=None, NotResource="arn:aws:s3:::other/*")], PASS,
                 id="t-tls01-notresource-elsewhere"),  # NOTACTION (NotResource): this bucket is included
    pytest.param(tls_01, [tls(Resource=None, NotResource=OBJ)], FAIL,
                 id="t-tls01-notresource-objects"),  # the objects are exactly what it leaves out
    pytest.param(tls_01, [tls(Resource=[ARN.upper(), OBJ.upper()])], FAIL,
                 id="t-tls01-resource-case-matters"),  # CASE: ARNs are case-sensitive
    pytest.param(tls_01, [tls(Action=None, NotAction="ec2:*")], PASS,
                 id="t-tls01-notaction-other-service"),  # NOTACTION: every S3 action is not ec2:*
    pytest.param(tls_01, [tls(Action=None, NotAction="*")], FAIL,
                 id="t-tls01-notaction-everything"),  # NOTACTION: matches no action at all
    pytest.param(tls_01, [tls(Action=None)], FAIL,
                 id="t-tls01-no-action-element"),  # a statement without Action/NotAction matches nothing
    pytest.param(acc_02, [public({"StringLike": {"aws:SourceVpce": "vpce-1a2b3c4d"}})], PASS,
                 id="t-acc02-stringlike-fixed-value"),  # PUBLIC: no wildcard, one endpoint
    pytest.param(acc_02, [public({"StringNotLike": {"aws:SourceVpce": "vpce-1a2b3c4d"}})], FAIL,
                 id="t-acc02-negated-test"),  # MISSING: true without an endpoint, i.e. for the internet
    pytest.param(acc_02, [public({"StringEquals": {"aws:PrincipalTag/team": "data"}})], FAIL,
                 id="t-acc02-tag-anyone-can-set"),  # anyone may tag a principal in their own account
]


@pytest.mark.parametrize("control,statements,expected", CASES)
def test_policy_by_meaning(control, statements: list[dict], expected: Status) -> None:
    assert judge(control, doc(*statements)) == expected


def test_the_table_covers_every_family_several_times() -> None:
    families = [case.id.split("-", 1)[0] for case in CASES]
    assert len(CASES) >= 40
    assert all(families.count(family) >= 4 for family in "abcdt"), families


def test_tls_reason_names_an_action_and_a_resource_left_open() -> None:
    from vigil.checks.context import Context
    from vigil.checks.model import Inventory

    from tests.helpers import repo_policy
    from tests.test_policy_documents import bucket

    b = bucket(doc(tls(Action=None, NotAction="s3:Get*"), tls(Action="s3:Get*", Resource=ARN)))
    ctx = Context(policy=repo_policy(), inventory=Inventory(account_id="1", regions=["us-east-1"], buckets={B: b}))
    reason = tls_01.check_bucket(ctx, b).reason
    assert "its objects (bucket/*)" in reason and "s3:get" in reason and f"{ARN}/" in reason, reason


def test_the_policys_executor_names_are_the_engines_list() -> None:
    """A store's `executor:` accepts exactly what --executor does (vigil/engines.py holds the names once)."""
    from typing import get_args

    from vigil.engines import EXECUTORS
    from vigil.policy.models import S3Store

    (literal, _none) = get_args(S3Store.model_fields["executor"].annotation)
    assert get_args(literal) == EXECUTORS
