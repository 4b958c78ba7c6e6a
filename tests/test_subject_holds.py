"""What erase must keep is kept (Object Lock, legal holds on others in an old shared version), and
anonymize-category records of the subject are anonymized when they reach k, removed when not."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from moto import mock_aws

from tests.test_retention_world import jsonl
from tests.test_subject_world import SubjectWorld, log


def test_object_lock_legal_hold_and_retention_are_kept(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.create_all()
        world.s3["us-east-1"].delete_bucket(Bucket="example-billing")
        world.bucket("example-billing", lock=True)
        until = datetime.now(UTC) + timedelta(days=400)
        world.put("example-billing", "invoices/alice.json", "{}", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
        world.put("example-contacts", "contacts/alice.json", "{}")
        before = world.estate()["example-billing"]
        assert world.subject("erase", "alice", "--apply", out=tmp_path / "e") == 0
        assert world.estate()["example-billing"] == before, "Object Lock retention: kept"
        assert world.estate()["example-contacts"] == [], "the unlocked copy is erased"
        text = capsys.readouterr().out
        assert "S3 Object Lock COMPLIANCE retention" in text and until.date().isoformat() in text
        plan = json.loads((tmp_path / "e" / "subject-erase.json").read_text())
        billing = next(s for s in plan["stores"] if s["store"] == "billing")
        assert billing["held"] == 1 and billing["erase"] == 0

        world.s3["us-east-1"].put_object_legal_hold(Bucket="example-billing", Key="invoices/alice.json",
                                                     LegalHold={"Status": "ON"})
        capsys.readouterr()
        assert world.subject("find", "alice", "--json") == 0
        found = json.loads(capsys.readouterr().out)
        assert found["erase"] == 0 and found["held"] == 1


def test_old_shared_version_with_held_records_is_kept_and_anonymize_reaches_k(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.create_all()
        old = jsonl([log("alice", 1), log("carol", 2)])  # carol is under a legal hold
        world.put("example-usage-logs", "web/a.jsonl", old)
        world.put("example-usage-logs", "web/a.jsonl", jsonl([log("carol", 2)]))
        many = [log("alice", i, ip="203.0.113.9", day=2) for i in range(6)] + [log("bob", 9)]
        world.put("example-usage-logs", "web/b.jsonl", jsonl(many))
        assert world.subject("erase", "alice", "--apply", out=tmp_path / "e") == 0
        versions = [v for v in world.estate()["example-usage-logs"] if v["key"] == "web/a.jsonl"]
        assert len(versions) == 2 and any(v["body"] == old.encode() for v in versions), \
            "an older version that also holds held data is never deleted"
        plan = json.loads((tmp_path / "e" / "subject-erase.json").read_text())
        logs = next(s for s in plan["stores"] if s["store"] == "web-logs")
        assert logs["holds"] and "legal hold: litigation 2026-17" in logs["holds"][0]["reason"]
        b = [json.loads(line) for line in world.current("example-usage-logs", "web/b.jsonl").decode().splitlines()]
        anonymized = [r for r in b if r.get("ip") == "203.0.113.0/24"]
        assert len(anonymized) == 6 and all(len(r["account_id"]) == 64 and r["email"] == "[REDACTED]" for r in anonymized)
        assert "user_agent" not in anonymized[0]
        assert b[-1] == log("bob", 9) | {"ts": b[-1]["ts"]} and b[-1]["account_id"] == "bob"


def test_deleting_category_rewrites_shared_objects_and_never_resurrects_older_versions(tmp_path: Path, monkeypatch) -> None:
    def deleting(data):
        next(s for s in data["stores"] if s["name"] == "web-logs")["category"] = "marketing"
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch, change=deleting)
        world.create_all()
        world.put("example-usage-logs", "web/mixed.jsonl", jsonl([log("alice", 1), log("bob", 2)]))
        world.put("example-usage-logs", "web/alone.jsonl", jsonl([log("alice", 3)]))
        world.put("example-usage-logs", "web/over.jsonl", jsonl([log("bob", 4)]))
        world.put("example-usage-logs", "web/over.jsonl", jsonl([log("alice", 5)]))  # overwrote bob's older object
        assert world.subject("erase", "alice", "--apply", out=tmp_path / "e") == 0
        state = {(v["key"], v["latest"]): v["body"] for v in world.estate()["example-usage-logs"]}
        assert state[("web/mixed.jsonl", True)] == jsonl([log("bob", 2)]).encode()
        assert ("web/alone.jsonl", True) not in state, "an object that was only alice's is deleted"
        assert state[("web/over.jsonl", True)] == b"", "rewritten empty: bob's older version does not become current"
        assert state[("web/over.jsonl", False)] == jsonl([log("bob", 4)]).encode()
        assert len(state) == 3
