"""`vigil check --org` over an organization in moto: each finding in its own account, the unreachable
account's errors, the closed account skipped, and the same results whatever --accounts-parallel says."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from moto import mock_aws
from vigil.checks.catalogue import catalogue

from tests import org_world as world
from tests.builders_s3 import bucket_policy, client
from tests.conftest import ROOT
from vigil.cli.main import main
from vigil.policy import load_policy


def org_policy(tmp_path: Path, org: world.Org) -> Path:
    """The repository policy with one S3 store in each reachable member account (and none in the others)."""
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["stores"] = [
        {"name": "ok-billing", "kind": "s3", "bucket": "org-ok-billing", "category": "billing", "account": org.members["ok"]},
        {"name": "bad-billing", "kind": "s3", "bucket": "org-bad-billing", "category": "billing", "account": org.members["bad"]},
    ]
    data.pop("subjects", None)
    data.pop("requests", None)
    data["categories"] = {"billing": data["categories"]["billing"]}
    data["holds"], data["waivers"] = [], []
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def org_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("org")
    with mock_aws():
        org = world.create_org(["ok", "bad", "unreachable"], closed=["closed"])
        path = org_policy(tmp, org)
        policy = load_policy(path)
        for name in ("ok", "bad", "unreachable"):
            world.role(org.members[name], "vigil-audit")
        world.role(world.MANAGEMENT, "vigil-audit")
        for name in ("ok", "bad"):
            world.estate(org.members[name], policy)
        with world.inside(org.members["bad"]):  # the failing control: TLS-01 (no deny of plain HTTP)
            weak = bucket_policy("org-bad-billing", org.members["bad"], policy.access.service_roles)
            weak["Statement"] = [s for s in weak["Statement"] if "aws:SecureTransport" not in json.dumps(s)]
            client("s3", "us-east-1").put_bucket_policy(Bucket="org-bad-billing", Policy=json.dumps(weak))
        keys = world.central_identity(denied_accounts=[org.members["unreachable"]])
        runs = {}
        with world.enforced(keys):
            for parallel in (1, 3):
                out = tmp / f"p{parallel}"
                code = main(["check", "--policy", str(path), "--org", "--external-id", "ext-4711",
                             "--accounts-parallel", str(parallel), "--output", str(out)])
                runs[parallel] = (code, json.loads((out / "findings.json").read_text()), out)
        requests = {name: world.assume_role_requests(account) for name, account in org.members.items()}
    return {"org": org, "runs": runs, "requests": requests}


def test_every_account_has_a_status_and_the_closed_one_is_skipped(org_runs: dict) -> None:
    org, (code, findings, _) = org_runs["org"], org_runs["runs"][3]
    statuses = {a["id"]: a for a in findings["run"]["accounts"]}
    assert set(statuses) == {*org.members.values(), world.MANAGEMENT}
    assert statuses[org.members["ok"]]["status"] == "ok"
    assert statuses[org.members["bad"]]["status"] == "ok"
    assert statuses[org.members["closed"]]["status"] == "skipped"
    assert "SUSPENDED" in statuses[org.members["closed"]]["reason"]
    assert statuses[org.members["unreachable"]]["status"] == "error"
    unreachable = org.members["unreachable"]
    assert f"could not assume arn:aws:iam::{unreachable}:role/vigil-audit" in statuses[unreachable]["reason"]
    assert code == 1


def test_findings_stay_in_their_own_account(org_runs: dict) -> None:
    org, (_, findings, _) = org_runs["org"], org_runs["runs"][3]
    assert all(f["account"] for f in findings["findings"])
    assert not [f for f in findings["findings"] if f["account"] == org.members["closed"]]
    by_resource: dict[str, set[str]] = {}
    for f in findings["findings"]:
        by_resource.setdefault(f["resource"], set()).add(f["account"])
    assert by_resource["arn:aws:s3:::org-ok-billing"] == {org.members["ok"]}
    assert by_resource["arn:aws:s3:::org-bad-billing"] == {org.members["bad"]}
    for resource, accounts in by_resource.items():  # an ARN naming an account is only ever in that account
        for account in org.members.values():
            if f":{account}:" in resource:
                assert accounts == {account}, resource
    def verdicts(bucket: str) -> dict[str, str]:
        return {f["control"]: f["status"] for f in findings["findings"] if f["resource"] == f"arn:aws:s3:::{bucket}"}

    ok, bad = verdicts("org-ok-billing"), verdicts("org-bad-billing")
    assert ok["TLS-01"] == "pass" and bad["TLS-01"] == "fail"  # the one control broken in the bad account
    assert {c: s for c, s in bad.items() if c != "TLS-01"} == {c: s for c, s in ok.items() if c != "TLS-01"}
    assert ok["ENC-02"] == ok["ACC-01"] == ok["RET-01"] == "pass"


def test_the_unreachable_account_has_an_error_for_every_control(org_runs: dict) -> None:
    org, (_, findings, out) = org_runs["org"], org_runs["runs"][3]
    unreachable = org.members["unreachable"]
    mine = [f for f in findings["findings"] if f["account"] == unreachable]
    assert sorted(f["control"] for f in mine) == sorted(catalogue())
    assert {f["status"] for f in mine} == {"error"}
    assert {f["resource"] for f in mine} == {f"arn:aws:iam::{unreachable}:root"}
    assert all("was not checked: could not assume" in f["reason"] and "AccessDenied" in f["reason"] for f in mine)
    own = json.loads((out / "accounts" / unreachable / "findings.json").read_text())
    assert len(own["findings"]) == len(mine)


def test_each_account_has_its_own_folder(org_runs: dict) -> None:
    org, out = org_runs["org"], org_runs["runs"][3][2]
    for name in ("ok", "bad", "unreachable"):
        own = json.loads((out / "accounts" / org.members[name] / "findings.json").read_text())
        assert own["run"]["account"] == org.members[name]
        assert {f["account"] for f in own["findings"]} == {org.members[name]}
    assert not (out / "accounts" / org.members["closed"]).exists()


def test_results_do_not_depend_on_accounts_parallel(org_runs: dict) -> None:
    one, three = org_runs["runs"][1][1], org_runs["runs"][3][1]
    assert one["findings"] == three["findings"]
    assert one["run"]["accounts"] == three["run"]["accounts"]
    assert one["summary"] == three["summary"]


def test_the_external_id_and_session_name_are_sent(org_runs: dict) -> None:
    """moto does not enforce external ids (nor trust policies): this proves vigil sends it, not that AWS checks it."""
    for name in ("ok", "bad"):
        sent = [r for r in org_runs["requests"][name] if r["role"].endswith(":role/vigil-audit")]
        assert sent and all(r["external_id"] == "ext-4711" for r in sent)
        assert all(r["session"].startswith("vigil-") for r in sent)
    assert not [r for r in org_runs["requests"]["closed"] if r["role"].endswith("vigil-audit")]


def test_formats_carry_the_account(org_runs: dict, tmp_path: Path) -> None:
    from xml.etree import ElementTree

    from vigil.checks.formats import write_formats

    org, (_, findings, _) = org_runs["org"], org_runs["runs"][3]
    unreachable = org.members["unreachable"]
    written = write_formats(findings, tmp_path, ["sarif", "junit", "ocsf"])
    sarif = json.loads(written["sarif"].read_text())["runs"][0]["results"]
    assert {r["properties"]["account"] for r in sarif} >= {org.members["bad"], unreachable}
    fingerprints = [r["partialFingerprints"]["vigilFinding/v1"] for r in sarif]
    assert len(fingerprints) == len(set(fingerprints))
    cases = ElementTree.parse(written["junit"]).getroot().iter("testcase")
    names = {c.get("name") for c in cases}
    assert f"{unreachable} arn:aws:iam::{unreachable}:root" in names
    assert f"{org.members['bad']} arn:aws:s3:::org-bad-billing" in names
    ocsf = json.loads(written["ocsf"].read_text())
    by_uid = {(f["cloud"]["account"]["uid"], f["resources"][0]["uid"]) for f in ocsf}
    assert (org.members["bad"], "arn:aws:s3:::org-bad-billing") in by_uid
    assert not any(uid.startswith("arn:aws:s3:::org-bad") and account != org.members["bad"] for account, uid in by_uid)
