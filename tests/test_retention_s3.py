"""`vigil retain --apply` on each S3 layout: expired data gone in every version and replica,
live data untouched, a second run changes nothing."""
from __future__ import annotations

import csv
import gc
import gzip
import io
import json
from datetime import timedelta
from pathlib import Path

import boto3
from moto import mock_aws
from vigil.retention.inventory import Location, listed_objects
from vigil.retention.ledger import chain_ok, read_lines

from tests.aging import YEAR, written_ago
from tests.test_retention_world import BACKUP, NOW, World, days_ago, iso, jsonl, store_plan
from vigil.aws import Aws

OLD_DAY = (NOW - timedelta(days=200)).replace(hour=12, minute=0, second=0)


def old_logs(n: int, host: int = 7) -> list[dict]:
    return [{"ip": f"203.0.113.{host + i}", "ts": iso(OLD_DAY + timedelta(minutes=i)), "user_agent": "Mozilla/5.0",
             "account_id": f"acct-{i}", "email": f"user{i}@example.com", "path": f"/p/{i}", "status": 200, "cookie": "c"}
            for i in range(n)]


def live_logs(n: int) -> list[dict]:
    return [{"ip": f"198.51.100.{i}", "ts": days_ago(1), "user_agent": "curl", "account_id": f"live-{i}",
             "email": f"live{i}@example.com", "path": "/live", "status": 200} for i in range(n)]


def test_jsonl_and_gz_with_replica_anonymized_everywhere(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-usage-logs", replica="example-usage-logs-replica")
        mixed = jsonl(old_logs(6) + live_logs(2))
        gz_body = gzip.compress(jsonl(old_logs(5, host=40)).encode())
        for region, bucket in ((None, "example-usage-logs"), (BACKUP, "example-usage-logs-replica")):
            kw = {"region": region} if region else {}
            world.put(bucket, "web/a.jsonl", jsonl(old_logs(6)), **kw)  # an older raw version
            world.put(bucket, "web/a.jsonl", mixed, Tagging="team=web", ContentType="application/x-ndjson", **kw)
            world.put(bucket, "web/b.jsonl.gz", gz_body, **kw)
        world.put("example-usage-logs", "other/untouched.jsonl", jsonl(old_logs(6)))  # outside the store's prefix

        code, plan, out = world.retain("--apply", "--store", "web-logs")
        assert code == 0, plan
        logs = store_plan(plan, "web-logs")
        assert logs["replicas"] == ["arn:aws:s3:::example-usage-logs-replica"]
        assert logs["verify"] == {"status": "pass", "remaining": 0}
        assert logs["counts"]["anonymize"] == 2 * (6 + 5)
        assert logs["unnamed_fields"] == {"cookie": 2 * (6 + 5)}, "a field the category does not name is reported"
        for region, bucket in (("us-east-1", "example-usage-logs"), (BACKUP, "example-usage-logs-replica")):
            versions = [v for v in world.versions(bucket, region) if v["key"].startswith("web/")]
            assert [v["key"] for v in versions] == ["web/a.jsonl", "web/b.jsonl.gz"], "raw versions must be gone"
            a = [json.loads(line) for line in world.current(bucket, "web/a.jsonl", region).decode().splitlines()]
            assert a[:6] == [{"ip": "203.0.113.0/24", "account_id": a[i]["account_id"], "email": "[REDACTED]",
                              "ts": iso(OLD_DAY.replace(hour=0)), "path": f"/p/{i}", "status": 200} for i in range(6)]
            assert all(len(r["account_id"]) == 64 for r in a[:6])
            assert a[6:] == live_logs(2), "live records are untouched"
            b = gzip.decompress(world.current(bucket, "web/b.jsonl.gz", region)).decode().splitlines()
            assert len(b) == 5 and all(json.loads(line)["ip"] == "203.0.113.0/24" for line in b)
            assert all(v["metadata"].get("vigil-anonymized") for v in versions)
            s3 = world.s3[region]
            assert s3.get_object_tagging(Bucket=bucket, Key="web/a.jsonl")["TagSet"] == [{"Key": "team", "Value": "web"}]
            assert s3.head_object(Bucket=bucket, Key="web/a.jsonl")["ContentType"] == "application/x-ndjson"
        assert world.s3["us-east-1"].list_object_versions(Bucket="example-usage-logs", Prefix="other/")["Versions"]

        ledger = out / "ledger.jsonl"
        assert chain_ok(ledger)
        text = ledger.read_text()
        assert "web/a.jsonl" not in text and "acct-1" not in text and "203.0.113" not in text
        lines = list(read_lines(ledger))
        assert {ln["phase"] for ln in lines} == {"intent", "outcome"}
        assert all(ln["outcome"] == "ok" for ln in lines if ln["phase"] == "outcome")

        before = world.versions("example-usage-logs")
        code, plan, out2 = world.retain("--apply", "--store", "web-logs")
        assert code == 0
        assert store_plan(plan, "web-logs")["counts"]["anonymize"] == 0
        assert world.versions("example-usage-logs") == before, "a second run changes nothing"


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_csv_mixed_object_rewritten_and_malformed_rows_kept(tmp_path: Path, monkeypatch) -> None:
    header = ["caller", "callee", "caller_ip", "started_at", "card_number", "duration", "notes"]
    old = ["+15550001", "+15550002", "192.0.2.55", days_ago(700), "4111111111111111", "61", "private note"]
    live = ["+15550003", "+15550004", "192.0.2.66", days_ago(3), "4000000000000002", "12", "fresh"]
    broken = ["+15550005", "+15550006", "192.0.2.77"]  # missing columns: reported, never lost
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-call-records")
        kms = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        world.s3["us-east-1"].put_bucket_encryption(Bucket="example-call-records", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms}}]})
        world.put("example-call-records", "cdr/2025.csv", _csv([header, old, live, broken]))
        world.put("example-call-records", "cdr/notime.csv", _csv([header, old[:3] + ["", *old[4:]]]))
        code, plan, _ = world.retain("--apply", "--store", "call-records")
        calls = store_plan(plan, "call-records")
        assert code == 1, "malformed rows are errors (reported, skipped)"
        assert calls["counts"]["anonymize"] == 1 and calls["counts"]["error"] == 2
        assert any("missing column" in e["reason"] for e in calls["errors"])
        assert any("timestamp" in e["reason"] for e in calls["errors"])
        assert all("cdr/" not in e["object"] for e in calls["errors"])
        rows = list(csv.reader(io.StringIO(world.current("example-call-records", "cdr/2025.csv").decode())))
        assert rows[0] == header
        assert rows[1][0] != old[0] and len(rows[1][0]) == 64 and rows[1][2] == "192.0.2.0/24"
        assert rows[1][3].endswith(":00:00Z") and rows[1][4] == "************1111" and rows[1][5] == "61" and rows[1][6] == ""
        assert rows[2] == live and rows[3] == broken
        head = world.s3["us-east-1"].head_object(Bucket="example-call-records", Key="cdr/2025.csv")
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == kms
        # rewritten object, its raw version (kept: a row in it could not be read), untouched notime.csv
        assert len(world.versions("example-call-records")) == 3
        assert any("raw version is kept" in e["reason"] for e in calls["errors"])
        assert calls["verify"]["status"] == "fail", "the raw version's expired row is still there"
        assert world.current("example-call-records", "cdr/notime.csv").decode().splitlines()[1].startswith("+15550001")


def test_whole_objects_after_account_closed_with_replica_and_hold(tmp_path: Path, monkeypatch) -> None:
    def hold(data):
        data["holds"] = [{"reason": "litigation 2026-17", "subjects": ["carol"], "until": "2031-01-01"}]
    with mock_aws():
        world = World(tmp_path, monkeypatch, hold)
        closed_accounts_contacts(world)

        code, plan, _ = world.retain("--apply", "--store", "contacts")
        contacts = store_plan(plan, "contacts")
        assert code == 0, contacts
        assert contacts["counts"]["delete"] == 3 and contacts["counts"]["held"] == 1 and contacts["counts"]["keep"] == 2
        assert contacts["holds"] == [{"reason": "legal hold: litigation 2026-17", "until": "2031-01-01", "count": 1}]
        assert sorted(v["key"] for v in world.versions("example-contacts")) == ["contacts/bob.json", "contacts/carol.json"]
        assert [v["key"] for v in world.versions("example-contacts-replica", BACKUP)] == ["contacts/bob.json"]

        code, plan, _ = world.retain("--store", "contacts", "--as-of", "2031-06-01")
        assert store_plan(plan, "contacts")["counts"]["delete"] == 1, "the hold has lapsed by then: carol would go"


def test_billing_objects_expire_by_as_of_and_max_delete_stops_the_run(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-billing")
        with written_ago(8 * YEAR):
            for i in range(5):
                world.put("example-billing", f"inv/{i}.json", "{}")
                world.put("example-billing", f"inv/{i}.json", '{"v": 2}')
        a_year_after_writing = (NOW - 7 * YEAR).date().isoformat()  # a past --as-of is allowed with --apply
        code, plan, _ = world.retain("--apply", "--store", "billing", "--as-of", a_year_after_writing)
        assert code == 0 and store_plan(plan, "billing")["counts"]["keep"] == 10
        before = world.versions("example-billing")
        code, plan, out = world.retain("--apply", "--store", "billing", "--max-delete", "9")
        assert code == 1 and plan["totals"]["counts"]["delete"] == 10
        assert world.versions("example-billing") == before and not (out / "ledger.jsonl").exists()
        code, plan, _ = world.retain("--apply", "--store", "billing", "--max-delete", "10")
        assert code == 0 and world.versions("example-billing") == []
        assert store_plan(plan, "billing")["bytes"]["delete"] == 5 * (2 + 8)


def test_batch_over_max_suppression_is_refused_and_written_untouched(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-usage-logs")
        outlier = {**old_logs(1)[0], "ip": "192.0.2.1"}  # alone in its class: 1 of 6 (17%) > max_suppression 5%
        body = jsonl(old_logs(5) + [outlier])
        world.put("example-usage-logs", "web/small.jsonl", body)
        code, plan, out = world.retain("--apply", "--store", "web-logs")
        logs = store_plan(plan, "web-logs")
        assert code == 1
        assert logs["counts"]["anonymize"] == 0 and logs["counts"]["error"] == 6
        assert any("k-anonymity" in e["reason"] and "max_suppression" in e["reason"] for e in logs["errors"])
        assert logs["verify"] == {"status": "fail", "remaining": 6}
        assert world.current("example-usage-logs", "web/small.jsonl").decode() == body
        assert len(world.versions("example-usage-logs")) == 1

        world.put("example-usage-logs", "web/small.jsonl", jsonl(old_logs(20) + [outlier]))  # 1 of 21 (5%): suppressed
        code, plan, _ = world.retain("--apply", "--store", "web-logs")
        logs = store_plan(plan, "web-logs")
        assert code == 0 and logs["counts"]["suppress"] == 1 and logs["counts"]["anonymize"] == 20
        lines = world.current("example-usage-logs", "web/small.jsonl").decode().splitlines()
        assert len(lines) == 20 and "192.0.2" not in "".join(lines)


def test_bad_json_line_is_reported_and_kept_byte_for_byte(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-usage-logs")
        bad = '{"ip": "203.0.113.5", "ts": '  # truncated line
        world.put("example-usage-logs", "web/bad.jsonl", jsonl(old_logs(6)) + bad + "\n")
        world.put("example-usage-logs", "web/notgz.jsonl.gz", b"this is not gzip")
        code, plan, _ = world.retain("--apply", "--store", "web-logs")
        logs = store_plan(plan, "web-logs")
        assert code == 1 and logs["counts"]["anonymize"] == 6 and logs["counts"]["error"] == 2
        reasons = " ".join(e["reason"] for e in logs["errors"])
        assert "not JSON" in reasons and "corrupt gzip" in reasons
        lines = world.current("example-usage-logs", "web/bad.jsonl").decode().splitlines()
        assert lines[-1] == bad and all(json.loads(line)["ip"] == "203.0.113.0/24" for line in lines[:-1])
        assert world.current("example-usage-logs", "web/notgz.jsonl.gz") == b"this is not gzip"
        raw = [v for v in world.versions("example-usage-logs") if v["key"] == "web/bad.jsonl" and not v["latest"]]
        assert len(raw) == 1 and bad.encode() in raw[0]["body"], "the raw version stays while a record in it is unreadable"
        assert logs["verify"]["status"] == "fail" and logs["verify"]["remaining"] >= 7  # 6 raw expired records + the unread .gz


def test_whole_objects_anonymized_by_subject_from_key_with_a_held_subject(tmp_path: Path, monkeypatch) -> None:
    def anonymize_contacts(data):
        data["categories"]["contact"].update(action="anonymize", anonymize={"name": "redact", "country": "keep"})
        data["holds"] = [{"reason": "case 9", "subjects": ["carol"]}]
    with mock_aws():
        world = World(tmp_path, monkeypatch, anonymize_contacts)
        world.table("accounts", "account_id")
        for name in ("alice", "carol"):
            world.account(name, closed_at="2020-01-01T00:00:00Z")
        world.account("bob")
        world.bucket("example-contacts")
        for name in ("alice", "bob", "carol"):
            world.put("example-contacts", f"contacts/{name}.json", json.dumps({"name": name, "email": f"{name}@x.example", "country": "NL"}))
        code, plan, _ = world.retain("--apply", "--store", "contacts")
        contacts = store_plan(plan, "contacts")
        assert code == 0, contacts
        assert (contacts["counts"]["anonymize"], contacts["counts"]["held"], contacts["counts"]["keep"]) == (1, 1, 1)
        assert json.loads(world.current("example-contacts", "contacts/alice.json")) == {"name": "[REDACTED]", "country": "NL"}
        for name in ("bob", "carol"):
            assert json.loads(world.current("example-contacts", f"contacts/{name}.json"))["name"] == name
        assert len(world.versions("example-contacts")) == 3
        code, plan, _ = world.retain("--apply", "--store", "contacts")
        assert code == 0 and store_plan(plan, "contacts")["counts"]["anonymize"] == 0, "a second run changes nothing"


def test_a_key_whose_versions_span_pages_is_listed_once_with_all_of_them() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="paged")
        s3.put_bucket_versioning(Bucket="paged", VersioningConfiguration={"Status": "Enabled"})
        for key, versions in (("a", 2), ("b", 4), ("c", 1)):
            for i in range(versions):
                s3.put_object(Bucket="paged", Key=key, Body=f"{i}".encode())
        s3.delete_object(Bucket="paged", Key="c")  # a delete marker on the last page
        entries = list(listed_objects(Aws(), Location("s", "paged", "us-east-1"), "", page_size=3))
        assert [(e.key, len(e.versions)) for e in entries] == [("a", 2), ("b", 4), ("c", 2)]
        for entry in entries:
            assert entry.versions[0].is_latest and sum(v.is_latest for v in entry.versions) == 1
            assert len({v.version_id for v in entry.versions}) == len(entry.versions)
        assert entries[2].versions[0].delete_marker


def test_a_listed_version_is_held_by_its_entry_alone() -> None:
    """Once the consumer lets an entry go, nothing of the listing keeps its versions (whose records
    are read into them): the page's list held every version of a 1,000-key page, records and all,
    until the next page, so planning kept ~12 MB per 10,000-record object (bench/RESULTS.md)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="held")
        for key in ("a", "b", "c"):
            s3.put_object(Bucket="held", Key=key, Body=b"{}")
        listing = listed_objects(Aws(), Location("s", "held", "us-east-1"), "")
        entry = next(listing)
        version = entry.versions[0]
        others = [r for r in gc.get_referrers(version) if r is not entry.versions and isinstance(r, list)]
        assert others == [], "a list of the listing still holds the version"
        assert [e.key for e in listing] == ["b", "c"]


def closed_accounts_contacts(world) -> None:
    """Contacts of two closed accounts (alice, carol) and an open one (bob), with an older version,
    a delete marker and a replica: whole objects retained from account_closed."""
    world.table("accounts", "account_id")
    world.account("alice", closed_at="2020-01-01T00:00:00Z")
    world.account("bob")
    world.account("carol", closed_at="2020-01-01T00:00:00Z")
    world.bucket("example-contacts", replica="example-contacts-replica")
    for name in ("alice", "bob", "carol"):
        world.put("example-contacts", f"contacts/{name}.json", json.dumps({"name": name, "v": 1}))
    world.put("example-contacts", "contacts/alice.json", json.dumps({"name": "alice", "v": 2}))
    world.s3["us-east-1"].delete_object(Bucket="example-contacts", Key="contacts/alice.json")  # a delete marker too
    for name in ("alice", "bob"):
        world.put("example-contacts-replica", f"contacts/{name}.json", json.dumps({"name": name}), region=BACKUP)
