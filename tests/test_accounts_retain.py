"""`vigil retain --accounts-file` and `vigil run --org`: each account with its own retention role, plan and ledger
in accounts/<id>/, an unreachable account an error (nothing changed there), one signed manifest over it all."""
from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from moto import mock_aws
from vigil.evidence import keys

from tests import org_world as world
from tests.aging import written_ago
from tests.builders_s3 import client
from vigil.cli.main import main

POLICY = """version: 1
organization: Org test
regions: {{primary: us-east-1, backup: us-west-2, allowed: [us-east-1, us-west-2]}}
keys:
  evidence: {{source: env, name: VIGIL_TEST_EVIDENCE_KEY}}
categories:
  logs: {{retain: P30D, action: delete}}
stores:
  - {{name: a-logs, kind: s3, bucket: ret-a-logs, category: logs, account: '{a}'}}
  - {{name: b-logs, kind: s3, bucket: ret-b-logs, category: logs, account: '{b}'}}
"""


def seed(account: str, bucket: str) -> None:
    with world.inside(account):
        s3 = client("s3", "us-east-1")
        s3.create_bucket(Bucket=bucket)
        with written_ago(timedelta(days=60)):
            for index in range(3):
                s3.put_object(Bucket=bucket, Key=f"old/{index}.log", Body=b"x")
        s3.put_object(Bucket=bucket, Key="new.log", Body=b"y")


def keys_in(account: str, bucket: str) -> list[str]:
    with world.inside(account):
        return sorted(o["Key"] for o in client("s3", "us-east-1").list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VIGIL_TEST_EVIDENCE_KEY", base64.b64encode(b"k" * 32).decode())
    with mock_aws():
        org = world.create_org(["a", "b", "unreachable"], closed=["closed"])
        for name in ("a", "b", "unreachable"):
            world.role(org.members[name], "vigil-retention")
            world.role(org.members[name], "vigil-audit")
        world.role(world.MANAGEMENT, "vigil-audit")
        world.role(world.MANAGEMENT, "vigil-retention")
        seed(org.members["a"], "ret-a-logs")
        seed(org.members["b"], "ret-b-logs")
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.format(a=org.members["a"], b=org.members["b"]))
        accounts = tmp_path / "accounts.yaml"
        accounts.write_text("".join(f"- account_id: '{org.members[n]}'\n  name: {n}\n" for n in ("a", "b", "unreachable")))
        yield org, policy, accounts, world.central_identity(denied_accounts=[org.members["unreachable"]])


def test_retain_applies_in_each_account_with_the_retention_role(org, tmp_path: Path) -> None:
    org, policy, accounts, central = org
    a, b, unreachable = (org.members[n] for n in ("a", "b", "unreachable"))
    out = tmp_path / "out"
    with world.enforced(central):
        code = main(["retain", "--policy", str(policy), "--accounts-file", str(accounts), "--apply",
                     "--external-id", "ext-9", "--output", str(out)])
    assert code == 1  # the unreachable account
    assert keys_in(a, "ret-a-logs") == ["new.log"] and keys_in(b, "ret-b-logs") == ["new.log"]
    plan = json.loads((out / "retention-plan.json").read_text())
    statuses = {s["id"]: s for s in plan["run"]["accounts"]}
    assert statuses[a]["status"] == statuses[b]["status"] == "ok"
    assert statuses[unreachable]["status"] == "error" and "could not assume" in statuses[unreachable]["reason"]
    assert {(s["account"], s["store"], s["counts"]["delete"]) for s in plan["stores"]} == {(a, "a-logs", 3), (b, "b-logs", 3)}
    assert plan["totals"]["counts"]["delete"] == 6
    for account, store in ((a, "a-logs"), (b, "b-logs")):
        own = json.loads((out / "accounts" / account / "retention-plan.json").read_text())
        assert [s["store"] for s in own["stores"]] == [store]  # never another account's store
        assert (out / "accounts" / account / "ledger.jsonl").is_file()
    assert not (out / "accounts" / unreachable).exists()
    used = [r for n in ("a", "b") for r in world.assume_role_requests(org.members[n]) if r["session"].startswith("vigil-")]
    assert used and all(r["role"].endswith(":role/vigil-retention") and r["external_id"] == "ext-9" for r in used)


def test_run_over_the_org_makes_one_signed_pack_that_verifies(org, tmp_path: Path) -> None:
    org, policy, _accounts, central = org
    private, public = keys.generate(tmp_path / "keys")
    out = tmp_path / "run"
    with world.enforced(central):
        code = main(["run", "--policy", str(policy), "--org", "--signing-key", str(private), "--output", str(out)])
    assert code == 1  # the unreachable account's errors
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    for name in ("a", "b"):
        account = org.members[name]
        assert {f"accounts/{account}/findings.json", f"accounts/{account}/retention-plan.json"} <= listed
    findings = json.loads((out / "findings.json").read_text())
    assert {s["id"]: s["status"] for s in findings["run"]["accounts"]}[org.members["closed"]] == "skipped"
    assert main(["verify", str(out), "--public-key", str(public)]) == 0
    (out / "accounts" / org.members["a"] / "findings.json").write_text("{}")  # a subfolder is covered too
    assert main(["verify", str(out), "--public-key", str(public)]) == 1


def test_the_scheduler_runs_its_jobs_over_the_accounts_it_was_given(org, tmp_path: Path) -> None:
    """`vigil schedule --org`: each scheduled run reaches every account, as `vigil run --org` does."""
    import argparse

    from vigil.cli import schedule
    from vigil.scheduler.logs import EventLog
    from vigil.scheduler.pipeline import JobOptions
    from vigil.scheduler.service import StopFlag

    org, policy, _accounts, central = org
    parser = argparse.ArgumentParser()
    schedule.add_parser(parser.add_subparsers())
    args = parser.parse_args(["schedule", "--policy", str(policy), "--org", "--apply"])
    options = JobOptions.from_args(args)
    assert options.accounts.org and options.accounts.many
    base = tmp_path / "evidence"
    with world.enforced(central):
        code = schedule.scheduled_job(options, base, EventLog("json"), StopFlag(), None)("retain")
    assert code == 1  # the unreachable account's errors
    run = next(base.iterdir())
    for name in ("a", "b"):
        assert (run / "accounts" / org.members[name] / "ledger.jsonl").is_file()
    assert keys_in(org.members["a"], "ret-a-logs") == ["new.log"] and keys_in(org.members["b"], "ret-b-logs") == ["new.log"]


def test_the_scheduler_refuses_a_bad_accounts_file_before_its_first_run(tmp_path: Path, capsys) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("- account_id: nope\n")
    code = main(["schedule", "--policy", str(Path(__file__).parents[1] / "policy.yaml"), "--accounts-file", str(path),
                 "--output", str(tmp_path / "out")])
    assert code == 2 and f"{path}:1: [0].account_id" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing written: the scheduler never started"
