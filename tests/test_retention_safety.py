"""What retention must never do: touch locked, held or too-young data, change anything in a
dry run or without its keys, or let one unreadable bucket fail the other stores."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import botocore.awsrequest
import botocore.handlers
from moto import mock_aws
from vigil.evidence import sample
from vigil.evidence.render import write_report

from tests.aging import YEAR, written_ago
from tests.test_retention_world import NOW, World, days_ago, jsonl, store_plan
from vigil.policy import Duration

SIX_YEARS = (NOW + timedelta(days=6 * 366)).date().isoformat()


def test_object_lock_legal_hold_and_keep_at_least_survive(tmp_path: Path, monkeypatch) -> None:
    def young_guard(data):
        data["categories"]["contact"]["keep_at_least"] = "P1Y"
    with mock_aws():
        world = World(tmp_path, monkeypatch, young_guard)
        world.bucket("example-sms-consent", lock=True)
        locked_until = NOW + timedelta(days=3650)
        with written_ago(6 * YEAR):
            world.put("example-sms-consent", "c/locked.json", "{}", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=locked_until)
            world.put("example-sms-consent", "c/legal.json", "{}", ObjectLockLegalHoldStatus="ON")
            world.put("example-sms-consent", "c/plain.json", "{}")
        code, plan, _ = world.retain("--apply", "--store", "consent")
        consent = store_plan(plan, "consent")
        assert code == 0, consent
        assert consent["counts"]["delete"] == 1 and consent["counts"]["held"] == 2
        assert {h["reason"]: h["until"] for h in consent["holds"]} == {
            "S3 Object Lock COMPLIANCE retention": locked_until.date().isoformat(), "S3 Object Lock legal hold": None}
        assert sorted(v["key"] for v in world.versions("example-sms-consent")) == ["c/legal.json", "c/locked.json"]

        world.table("accounts", "account_id")
        world.account("dora", closed_at="2020-01-01T00:00:00Z")
        world.bucket("example-contacts")
        world.put("example-contacts", "contacts/dora.json", "{}")  # closed long ago, but written today
        code, plan, _ = world.retain("--apply", "--store", "contacts")
        contacts = store_plan(plan, "contacts")
        assert contacts["counts"] == {**contacts["counts"], "held": 1, "delete": 0}
        assert contacts["holds"][0]["reason"] == "keep_at_least P1Y"
        written = world.s3["us-east-1"].head_object(Bucket="example-contacts", Key="contacts/dora.json")["LastModified"]
        assert contacts["holds"][0]["until"] == Duration.parse("P1Y").after(written).date().isoformat()
        assert world.versions("example-contacts")


def _full_state(world: World) -> dict:
    return {"logs": world.versions("example-usage-logs"), "billing": world.versions("example-billing"),
            "referrals": sorted(json.dumps(i, sort_keys=True) for i in world.items("referrals"))}


def test_dry_run_changes_nothing(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-usage-logs")
        world.bucket("example-billing")
        world.table("referrals", "id")
        old = [{"ip": "203.0.113.9", "ts": days_ago(200), "path": "/"}] * 6
        world.put("example-usage-logs", "web/x.jsonl", jsonl(old))
        world.put("example-usage-logs", "web/x.jsonl", jsonl(old + old[:1]))
        world.put("example-billing", "inv/1.json", "{}")
        world.ddb.put_item(TableName="referrals", Item={"id": {"S": "r1"}, "created_at": {"S": days_ago(500)}})
        before = _full_state(world)
        code, plan, out = world.retain("--store", "web-logs", "--store", "billing", "--store", "referrals", "--as-of", SIX_YEARS)
        assert code == 0 and plan["run"]["mode"] == "dry-run"
        assert plan["totals"]["counts"]["anonymize"] == 7 and plan["totals"]["counts"]["delete"] == 6 + 1  # the old raw version's records, the referral (billing: P7Y)
        assert _full_state(world) == before
        assert not (out / "ledger.jsonl").exists()
        actions = [json.loads(line) for line in (out / "retention-plan.actions.jsonl").read_text().splitlines()]
        assert {a["action"] for a in actions} == {"anonymize_object", "delete_versions", "delete_items"}
        assert "web/x.jsonl" not in (out / "retention-plan.actions.jsonl").read_text()


def test_missing_pseudonymize_key_is_exit_2_and_changes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-billing")
        world.put("example-billing", "inv/1.json", "{}")
        monkeypatch.delenv("VIGIL_PSEUDONYM_KEY")
        code, plan, out = world.retain("--apply", "--store", "billing")
        assert code == 2 and plan == {}
        assert "VIGIL_PSEUDONYM_KEY" in capsys.readouterr().err
        assert len(world.versions("example-billing")) == 1


def test_dynamodb_items_deleted_by_age_and_by_closed_account(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.table("referrals", "id")
        world.table("accounts", "account_id")
        for i in range(60):  # more than one BatchWriteItem (25)
            world.ddb.put_item(TableName="referrals", Item={"id": {"S": f"old{i}"}, "created_at": {"S": days_ago(400)}})
        world.ddb.put_item(TableName="referrals", Item={"id": {"S": "new"}, "created_at": {"S": days_ago(10)}})
        world.account("gone", closed_at="2020-01-01T00:00:00Z", email="g@example.com")
        world.account("recent", closed_at=days_ago(30))
        world.account("open")
        code, plan, out = world.retain("--apply", "--store", "referrals", "--store", "subscribers")
        assert code == 0, plan
        assert [i["id"]["S"] for i in world.items("referrals")] == ["new"]
        assert sorted(i["account_id"]["S"] for i in world.items("accounts")) == ["open", "recent"]
        assert store_plan(plan, "referrals")["counts"]["delete"] == 60
        assert store_plan(plan, "subscribers")["verify"]["status"] == "pass"
        assert "gone" not in (out / "ledger.jsonl").read_text()


def _deny_listing(bucket: str) -> list[tuple]:
    """AWS's answer to a denied ListObjectVersions on `bucket`, given by botocore before any request
    leaves (moto's process-wide IAM enforcement proved flaky under a parallel run)."""
    def remember(params, context, **_kwargs):
        context["listed_bucket"] = params.get("Bucket")

    def deny(model, context, **_kwargs):
        if context.get("listed_bucket") == bucket:
            return (botocore.awsrequest.AWSResponse("", 403, {}, None),
                    {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}, "ResponseMetadata": {"HTTPStatusCode": 403}})
        return None
    return [("before-parameter-build.s3.ListObjectVersions", remember), ("before-call.s3.ListObjectVersions", deny)]


@mock_aws
def test_access_denied_on_one_bucket_fails_that_store_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, *_deny_listing("example-billing")])
    world = World(tmp_path, monkeypatch)
    world.bucket("example-billing")
    world.bucket("example-sms-consent")
    with written_ago(8 * YEAR):
        world.put("example-billing", "inv/1.json", "{}")
        world.put("example-sms-consent", "c/1.json", "{}")
    code, plan, _ = world.retain("--apply", "--store", "billing", "--store", "consent")
    assert code == 1
    billing, consent = store_plan(plan, "billing"), store_plan(plan, "consent")
    assert billing["counts"]["error"] == 1 and "denied" in billing["errors"][0]["reason"]
    assert billing["verify"]["status"] == "fail"
    assert consent["counts"]["delete"] == 1 and consent["verify"] == {"status": "pass", "remaining": 0}
    assert world.versions("example-sms-consent") == []


def test_rds_stores_are_named_as_not_covered_in_the_plan_and_the_report(tmp_path: Path, monkeypatch, capsys) -> None:
    def with_rds(data):
        data["stores"].append({"name": "crm", "kind": "rds", "instance": "crm-db", "category": "contact"})
    with mock_aws():
        world = World(tmp_path, monkeypatch, with_rds)
        world.bucket("example-billing")
        code, plan, out = world.retain("--store", "crm", "--store", "billing")
        assert code == 0
        assert [s["store"] for s in plan["stores"]] == ["billing"]
        assert plan["not_covered"][0]["store"] == "crm" and "database" in plan["not_covered"][0]["reason"]
        assert "crm: not covered by retention (RDS)" in capsys.readouterr().out
        (out / "findings.json").unlink(missing_ok=True)
        sample.write_sample(out, with_retention=False)
        write_report(out, world.policy_path)
        html = (out / "report.html").read_text()
        assert "<strong>crm</strong>: not covered by retention" in html
        assert "crm: not covered by retention" in (out / "report.md").read_text()
