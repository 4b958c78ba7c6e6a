"""Run time (moto): TLS-01, TLS-02, MFA-03, MFA-04, ACC-02, ACC-03 pass, fail and error on live state."""
from __future__ import annotations

import json

import botocore.exceptions
import pytest
from moto import mock_aws
from vigil.checks.collectors import collect_inventory
from vigil.checks.context import Context
from vigil.checks.model import Status
from vigil.checks.registry import evaluate

from tests.helpers import finding, repo_policy, run_checks
from tests.test_policy_documents import MFA_DENY, OLD_TLS_DENY, TLS_DENY, TRUST
from vigil.aws import Aws

CONTROLS = ["TLS-01", "TLS-02", "MFA-03", "ACC-02", "ACC-03", "MFA-04"]
B = "example-contacts"


def _retarget(statement: dict, bucket: str) -> dict:
    return json.loads(json.dumps(statement).replace("example-contacts", bucket))


def _bucket(s3, name: str, statements: list[dict] | None) -> None:
    s3.create_bucket(Bucket=name)
    if statements is not None:
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [_retarget(s, name) for s in statements]}))


@pytest.fixture
def aws():
    with mock_aws():
        yield


def _status(findings, control: str, bucket: str) -> Status:
    return finding(findings, control, f"arn:aws:s3:::{bucket}").status


def test_compliant_data_store_bucket_passes(aws) -> None:
    import boto3
    _bucket(boto3.client("s3", region_name="us-east-1"), B, [TLS_DENY, OLD_TLS_DENY, MFA_DENY])
    findings = run_checks(repo_policy(), only=CONTROLS)
    for control in ("TLS-01", "TLS-02", "MFA-03", "ACC-02", "ACC-03"):
        assert _status(findings, control, B) == Status.PASS, control


def test_broken_policies_fail(aws) -> None:
    import boto3
    s3 = boto3.client("s3", region_name="us-east-1")
    _bucket(s3, B, [dict(TLS_DENY, Resource=f"arn:aws:s3:::{B}"),  # bucket only: objects reachable over HTTP
                    dict(OLD_TLS_DENY, Condition={"NumericLessThan": {"s3:TlsVersion": "1.1"}}),
                    dict(MFA_DENY, Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
                    {"Sid": "Public", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{B}/*"}])
    _bucket(s3, "example-billing", None)
    findings = run_checks(repo_policy(), only=CONTROLS)
    for control in ("TLS-01", "TLS-02", "MFA-03", "ACC-02"):
        assert _status(findings, control, B) == Status.FAIL, control
    assert "bucket/*" in finding(findings, "TLS-01", f"arn:aws:s3:::{B}").reason
    assert "long-term access keys" in finding(findings, "MFA-03", f"arn:aws:s3:::{B}").reason
    # no policy at all: TLS fails, nothing public
    assert _status(findings, "TLS-01", "example-billing") == Status.FAIL
    assert _status(findings, "ACC-02", "example-billing") == Status.PASS


def test_non_store_buckets_are_judged_by_all_bucket_controls_only(aws) -> None:
    import boto3
    _bucket(boto3.client("s3", region_name="us-east-1"), "unrelated-bucket", None)
    findings = run_checks(repo_policy(), only=CONTROLS)
    assert _status(findings, "TLS-01", "unrelated-bucket") == Status.FAIL
    assert not [f for f in findings if f.control in ("TLS-02", "MFA-03") and f.resource.endswith("unrelated-bucket")]


def test_denied_policy_read_is_an_error_for_that_bucket_only(aws) -> None:
    import boto3
    s3 = boto3.client("s3", region_name="us-east-1")
    _bucket(s3, B, [TLS_DENY])
    _bucket(s3, "example-billing", [TLS_DENY])
    client = Aws()

    def deny(params, **_):
        if params.get("Bucket") == B:
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetBucketPolicy")

    client.session.events.register("before-parameter-build.s3.GetBucketPolicy", deny)
    policy = repo_policy()
    findings = evaluate(Context(policy, collect_inventory(client, policy, policy.regions_in_scope)), only=CONTROLS)
    tls = finding(findings, "TLS-01", f"arn:aws:s3:::{B}")
    assert tls.status == Status.ERROR and "s3:GetBucketPolicy was denied" in tls.reason
    assert _status(findings, "TLS-01", "example-billing") == Status.PASS


def test_human_role_trust_policy(aws) -> None:
    import boto3
    iam = boto3.client("iam", region_name="us-east-1")
    findings = run_checks(repo_policy(), only=["MFA-04"])
    assert finding(findings, "MFA-04", "role/data-steward").status == Status.FAIL  # declared but missing
    iam.create_role(RoleName="data-steward", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert finding(run_checks(repo_policy(), only=["MFA-04"]), "MFA-04", "role/data-steward").status == Status.PASS
    weak = json.loads(json.dumps(TRUST))
    weak["Statement"][0]["Condition"] = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}
    iam.update_assume_role_policy(RoleName="data-steward", PolicyDocument=json.dumps(weak))
    assert finding(run_checks(repo_policy(), only=["MFA-04"]), "MFA-04", "role/data-steward").status == Status.FAIL


def test_access_review_lists_principals(aws) -> None:
    import boto3
    grant = {"Sid": "Analytics", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/analytics"},
             "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{B}/*"}
    _bucket(boto3.client("s3", region_name="us-east-1"), B, [TLS_DENY, grant])
    review = finding(run_checks(repo_policy(), only=["ACC-03"]), "ACC-03", f"arn:aws:s3:::{B}")
    assert review.status == Status.PASS
    assert "AWS:arn:aws:iam::123456789012:role/analytics" in [entry["principal"] for entry in review.evidence.observed]
