"""`vigil retain --engine spark` against `--engine local`: the same plan on two identical moto
worlds gives the same objects, items, ledger outcomes and verify results (Spark in local mode, its
tasks doing their S3 I/O with boto3 against the loopback moto server)."""
from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from vigil.retention.ledger import chain_ok, read_lines

from tests.aging import YEAR, written_ago
from tests.conftest import _reset
from tests.inventory_reports import write_report
from tests.test_retention_dynamodb import SESSIONS, session
from tests.test_retention_s3 import closed_accounts_contacts, live_logs, old_logs
from tests.test_retention_world import BACKUP, NOW, PRIMARY, World, days_ago, jsonl, store_plan

STORES = ("web-logs", "call-records", "contacts", "billing", "consent", "referrals", "sessions", "referral-log")
BUCKETS = (("example-usage-logs", PRIMARY), ("example-usage-logs-replica", BACKUP), ("example-call-records", PRIMARY),
           ("example-contacts", PRIMARY), ("example-contacts-replica", BACKUP), ("example-billing", PRIMARY),
           ("example-sms-consent", PRIMARY), ("example-referral-log", PRIMARY))
TABLES = ("accounts", "referrals", "sessions")
LOCKED_UNTIL = NOW + timedelta(days=3650)


def _hold(data: dict[str, Any]) -> None:
    """The repository policy plus a policy hold, billing planned from its S3 Inventory report, an
    anonymizing DynamoDB store (sessions) and JSON lines whose expired records are deleted (referral-log)."""
    data["holds"] = [{"reason": "litigation 2026-17", "subjects": ["carol", "held"], "until": "2031-01-01"}]
    billing = next(s for s in data["stores"] if s["name"] == "billing")
    billing["inventory"] = {"bucket": "example-inventory", "prefix": "inventory", "config_id": "all"}
    data["categories"]["sessions"] = dict(SESSIONS)
    data["stores"].append({"name": "sessions", "kind": "dynamodb", "table": "sessions", "category": "sessions",
                           "timestamp_attribute": "ts", "subject_attribute": "account_id"})
    data["stores"].append({"name": "referral-log", "kind": "s3", "bucket": "example-referral-log", "category": "marketing",
                           "layout": "jsonl", "timestamp_field": "ts", "subject_field": "referrer"})


def build(world: World) -> None:
    """Every store kind the retention scenario covers: JSON lines and gzip with an older raw version
    and a replica, CSV with a row that cannot be read (its raw version is kept), whole objects of
    closed accounts with a replica, a delete marker and a policy hold; a store planned from an S3
    Inventory report (with a version gone since the report and one written after it); a bucket with
    Object Lock (versions under COMPLIANCE and GOVERNANCE retention, a legal hold); DynamoDB items
    deleted (referrals) and anonymized with a suppression and a held subject (sessions); JSON lines and
    gzip whose expired records are cut out (a rewrite) or all expired (a delete), one held."""
    world.bucket("example-usage-logs", replica="example-usage-logs-replica")
    for region, bucket in ((PRIMARY, "example-usage-logs"), (BACKUP, "example-usage-logs-replica")):
        world.put(bucket, "web/a.jsonl", jsonl(old_logs(6)), region=region)
        world.put(bucket, "web/a.jsonl", jsonl(old_logs(6) + live_logs(2)), region=region, Tagging="team=web",
                  ContentType="application/x-ndjson")
        world.put(bucket, "web/b.jsonl.gz", gzip.compress(jsonl(old_logs(5, host=40)).encode()), region=region)
    world.bucket("example-call-records")
    rows = [["caller", "callee", "caller_ip", "started_at", "card_number", "duration", "notes"],
            ["+15550001", "+15550002", "192.0.2.55", days_ago(700), "4111111111111111", "61", "private"],
            ["+15550003", "+15550004", "192.0.2.66", days_ago(3), "4000000000000002", "12", "fresh"],
            ["+15550005", "+15550006", "192.0.2.77"]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    world.put("example-call-records", "cdr/2025.csv", out.getvalue())
    closed_accounts_contacts(world)
    _billing_from_a_report(world)
    _object_lock(world)
    _tables(world)
    _referral_log(world)


def _referral_log(world: World) -> None:
    world.bucket("example-referral-log")
    def referral(referrer: str, age: float) -> dict[str, Any]:
        return {"ts": days_ago(age), "referrer": referrer, "recipient": f"friend-of-{referrer}"}
    world.put("example-referral-log", "2025/mixed.jsonl", jsonl([referral("alice", 500), referral("bob", 20),
                                                                referral("carol", 700), referral("bob", 800)]))
    world.put("example-referral-log", "2025/mixed.jsonl.gz", gzip.compress(jsonl(
        [referral("bob", 900), referral("alice", 3)]).encode()), ContentEncoding="identity", Tagging="kind=gz")
    world.put("example-referral-log", "2024/expired.jsonl", jsonl([referral("alice", 600), referral("bob", 601)]))


def _billing_from_a_report(world: World) -> None:
    world.bucket("example-billing")
    world.bucket("example-inventory")
    with written_ago(8 * YEAR):
        gone = world.put("example-billing", "invoices/alice/gone.json", "{}")
        world.put("example-billing", "invoices/alice/2018.json", json.dumps({"total": 12}), ContentType="application/json")
        world.put("example-billing", "invoices/carol/2018.json", json.dumps({"total": 7}))  # held
    world.put("example-billing", "invoices/bob/new.json", json.dumps({"total": 3}))
    write_report(world.s3[PRIMARY], "example-billing", "example-inventory", "all", datetime.now(UTC))
    with written_ago(8 * YEAR):
        world.put("example-billing", "invoices/dora/after-the-report.json", "{}")  # waits for the next report
    world.s3[PRIMARY].delete_object(Bucket="example-billing", Key="invoices/alice/gone.json", VersionId=gone)


def _object_lock(world: World) -> None:
    world.bucket("example-sms-consent", lock=True)
    with written_ago(6 * YEAR):
        world.put("example-sms-consent", "consent/alice.json", "{}", ObjectLockMode="COMPLIANCE",
                  ObjectLockRetainUntilDate=LOCKED_UNTIL)
        world.put("example-sms-consent", "consent/bob.json", "{}", ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=LOCKED_UNTIL)
        world.put("example-sms-consent", "consent/dora.json", "{}", ObjectLockLegalHoldStatus="ON")
        world.put("example-sms-consent", "consent/erin.json", json.dumps({"opt_in": True}))
        world.put("example-sms-consent", "consent/erin.json", json.dumps({"opt_in": False}))
    world.put("example-sms-consent", "consent/frank.json", "{}")  # too young


def _tables(world: World) -> None:
    world.table("referrals", "referral_id")
    for rid, referrer, age in (("r1", "alice", 400), ("r2", "bob", 500), ("r3", "carol", 600), ("r4", "bob", 10)):
        world.ddb.put_item(TableName="referrals", Item={"referral_id": {"S": rid}, "referrer": {"S": referrer},
                                                        "recipient": {"S": f"friend-of-{referrer}"},
                                                        "created_at": {"S": days_ago(age)}})
    world.table("sessions", "session_id")
    for item in (session("a1", "203.0.113.7", 40), session("a2", "203.0.113.99", 41), session("a3", "203.0.113.8", 50),
                 session("b1", "198.51.100.4", 45), session("b2", "198.51.100.5", 60, account="acct-2"),
                 session("lonely", "192.0.2.1", 70), session("fresh", "203.0.113.7", 3),
                 session("kept", "203.0.113.7", 90, account="held")):
        world.ddb.put_item(TableName="sessions", Item=item)


def objects(world: World) -> dict[str, list]:
    """Every version's key, place, body, metadata, content headers, tags and Object Lock state, and
    every DynamoDB item; version ids differ between worlds, so they and the metadata naming them
    are left out."""
    state: dict[str, list] = {}
    for bucket, region in BUCKETS:
        s3, rows = world.s3[region], []
        answer = s3.list_object_versions(Bucket=bucket)
        for v in answer.get("Versions", []):
            got = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            tags = s3.get_object_tagging(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["TagSet"]
            rows.append({"key": v["Key"], "latest": v["IsLatest"], "body": got["Body"].read().decode("latin-1"),
                         "metadata": {k: val for k, val in got.get("Metadata", {}).items() if k != "vigil-replaces"},
                         "tags": sorted((t["Key"], t["Value"]) for t in tags),
                         **{h: str(got.get(h)) for h in ("ContentType", "ContentEncoding", "ServerSideEncryption",
                                                        "ObjectLockMode", "ObjectLockRetainUntilDate",
                                                        "ObjectLockLegalHoldStatus")}})
        rows += [{"key": m["Key"], "latest": m["IsLatest"], "marker": True} for m in answer.get("DeleteMarkers", [])]
        state[bucket] = sorted(json.dumps(r, sort_keys=True) for r in rows)
    for table in TABLES:
        state[table] = sorted(json.dumps(i, sort_keys=True) for i in world.items(table))
    return state


def _strip(value: Any) -> Any:
    """A ledger field without what names a version or a time (those differ between worlds)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ("new_version", "version")}
    if isinstance(value, list):
        return sorted(_strip(v) if not isinstance(v, str) else v.split(":", 1)[0] for v in value)
    return value


def outcomes(out: Path) -> list:
    ledger = out / "ledger.jsonl"
    if not ledger.exists():
        return []
    assert chain_ok(ledger)
    lines = list(read_lines(ledger))
    return sorted(json.dumps([ln["phase"], ln["action"], ln["store"], ln.get("outcome"), _strip(ln["target"]),
                              _strip(ln["detail"])], sort_keys=True, default=str) for ln in lines)


def scenario(world: World, engine: str) -> dict[str, Any]:
    build(world)
    args = ["--apply", *[a for s in STORES for a in ("--store", s)], "--engine", engine]
    code, plan, out = world.retain(*args)
    first = {"code": code, "objects": objects(world), "ledger": outcomes(out),
             "verify": {s: store_plan(plan, s)["verify"] for s in STORES},
             "counts": {s: store_plan(plan, s)["counts"] for s in STORES}}
    assert plan["run"]["engine"] == engine
    assert {ln["engine"] for ln in read_lines(out / "ledger.jsonl")} == {engine}
    code, plan, out = world.retain(*args)  # idempotence: the second run has nothing left to do
    first["again"] = {"code": code, "objects": objects(world), "ledger": outcomes(out),
                      "verify": {s: store_plan(plan, s)["verify"] for s in STORES},
                      "counts": {s: store_plan(plan, s)["counts"] for s in STORES}}
    return first


@pytest.mark.spark
def test_local_and_spark_engines_give_the_same_objects_ledger_and_verify(tmp_path: Path, monkeypatch, moto_server,
                                                                          spark_session) -> None:
    for name in ("local", "spark"):
        (tmp_path / name).mkdir()
    local = scenario(World(tmp_path / "local", monkeypatch, _hold, endpoint=moto_server), "local")
    _reset(moto_server)  # the second, identical world
    tracker = spark_session.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup(None))
    spark = scenario(World(tmp_path / "spark", monkeypatch, _hold, endpoint=moto_server), "spark")
    tasks = [sum(tracker.getStageInfo(stage).numTasks for stage in tracker.getJobInfo(job).stageIds)
             for job in sorted(set(tracker.getJobIdsForGroup(None)) - jobs)]
    # One Spark job per batch of actions (each run's S3 actions fit in one), its tasks side by side:
    # toLocalIterator() ran one single-task job per partition, one after another.
    assert len(tasks) == 2 and tasks[0] > 1, tasks
    counts = local["counts"]
    assert counts["web-logs"]["anonymize"] == 2 * (6 + 5) and counts["contacts"]["delete"] == 3
    assert counts["consent"] == {**counts["consent"], "delete": 2, "held": 3}, "Object Lock and the legal hold hold"
    assert counts["billing"] == {**counts["billing"], "delete": 2, "held": 1}, "planned from the inventory report"
    assert counts["referrals"] == {**counts["referrals"], "delete": 2, "held": 1}
    assert counts["sessions"] == {**counts["sessions"], "anonymize": 5, "suppress": 1, "held": 1}
    assert counts["referral-log"] == {**counts["referral-log"], "delete": 5, "keep": 2, "held": 1}
    assert any('"rewrite_object"' in line and '"outcome"' in line for line in local["ledger"])
    assert local["verify"]["web-logs"] == {"status": "pass", "remaining": 0}
    assert local["verify"]["call-records"]["status"] == "fail", "the raw version with the unreadable row is kept"
    assert local["verify"]["billing"] == {"status": "fail", "remaining": 1}, "written after the report: the next one"
    assert any('"anonymize_object"' in line and '"outcome"' in line for line in local["ledger"])
    assert {json.loads(line)[2] for line in local["ledger"]} == set(STORES), "every store acted on"
    for part in ("code", "objects", "ledger", "verify", "counts", "again"):
        assert spark[part] == local[part], part
    assert spark["again"]["objects"] == spark["objects"], "a second run changes nothing"
    # The report is the same one, so the second run plans billing's two versions again; both are gone,
    # which counts as done (issue 19) on either engine, and nothing else is planned.
    assert {json.loads(line)[2] for line in spark["again"]["ledger"]} == {"billing"}


def _tmp_world(tmp_path: Path, monkeypatch) -> World:
    world = World(tmp_path, monkeypatch)
    world.bucket("example-billing")
    return world


def test_a_dry_run_plan_names_its_engine(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = _tmp_world(tmp_path, monkeypatch)
        assert world.retain("--store", "billing")[1]["run"]["engine"] == "local"
        monkeypatch.setenv("VIGIL_RETAIN_ENGINE", "spark")
        code, plan, _ = world.retain("--store", "billing")
        assert code == 0 and plan["run"]["engine"] == "spark", "the environment variable chooses the engine"


def test_spark_without_pyspark_exits_2_naming_the_extra(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if it were not installed
    with mock_aws():
        world = _tmp_world(tmp_path, monkeypatch)
        code, plan, out = world.retain("--apply", "--store", "billing", "--engine", "spark")
    assert code == 2 and plan == {} and not out.exists()
    assert "pip install 'vigil[spark]'" in capsys.readouterr().err


def test_an_unknown_engine_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("VIGIL_RETAIN_ENGINE", "dask")
    with mock_aws():
        code, plan, _ = _tmp_world(tmp_path, monkeypatch).retain("--store", "billing")
    assert code == 2 and plan == {}
    assert "expected one of local, spark" in capsys.readouterr().err
