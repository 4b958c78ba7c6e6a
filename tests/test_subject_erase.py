"""`vigil subject erase`: dry run changes nothing; --apply erases every copy (versions, replicas,
records in shared objects, items), keeps what is held, and leaves everyone else byte-identical."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import boto3
from moto import mock_aws
from vigil.retention.ledger import chain_ok, read_lines
from vigil.retention.locks import S3_TTL, lock_dir, store_resource
from vigil.retention.locks import _name as lock_name

from tests.test_subject_world import REPLICAS, SubjectWorld
from vigil.locks import FileLock, S3Lock
from vigil.policy import load_policy

ANONYMIZED_ROW = re.compile(r"^[0-9a-f]{64},")  # the subject's call record, caller pseudonymized


def _lines(version: dict) -> list[str]:
    body = version["body"]
    return (gzip.decompress(body) if version["key"].endswith(".gz") else body).decode().splitlines()


def _without(estate: dict, subject: str) -> dict:
    """Everyone else's data: objects and items not of `subject`, records of others in shared objects, by bucket+key."""
    out: dict = {}
    for where, entries in estate.items():
        for entry in entries:
            if "key" not in entry:  # a table item
                if subject not in json.dumps(entry):
                    out.setdefault(where, []).append(entry)
                continue
            if entry.get("marker") or f"/{subject}." in entry["key"] or not entry["latest"]:
                continue
            lines = [line for line in _lines(entry) if f'"{subject}"' not in line and not line.startswith(subject + ",")
                     and not ANONYMIZED_ROW.match(line)]
            out.setdefault(where, []).append((entry["key"], lines))
    return out


def test_erase_dry_run_then_apply_everywhere(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=1000)
        before = world.estate()
        assert world.subject("erase", "alice", out=tmp_path / "dry") == 0
        assert world.estate() == before, "a dry run changes nothing"
        plan = json.loads((tmp_path / "dry" / "subject-erase.json").read_text())
        assert plan["run"]["mode"] == "dry-run" and plan["planned"]["erase"] > 0 and "alice" not in json.dumps(plan)
        consent = next(s for s in plan["stores"] if s["store"] == "consent")["targets"]
        assert [(t["action"], len(t["target"]), t["held"][0]["reason"][:17]) for t in consent] == [("keep", 64, "keep_at_least P4Y")]
        contacts = next(s for s in plan["stores"] if s["store"] == "contacts")["targets"]
        assert sorted((t["action"], t["replica"], t["latest"]) for t in contacts) == \
            [("delete", False, False), ("delete", False, True), ("delete", True, False), ("delete", True, True)]

        out = tmp_path / "apply"
        assert world.subject("erase", "alice", "--apply", out=out) == 0
        after = world.estate()
        assert _without(after, "alice") == _without(before, "alice"), "everyone else's data is byte-identical"
        shared = [v for v in after["example-usage-logs"] if v["key"] == "web/shared.jsonl.gz"]
        assert len(shared) == 1 and len(_lines(shared[0])) == 1001  # 1,000 others + bob; the raw version is gone
        assert [v["key"] for v in after["example-contacts"]] == ["contacts/bob.json"] * 2 + ["contacts/carol.json"] * 2
        assert not any("alice" in v["key"] for v in after[REPLICAS["example-contacts"]])
        assert all(len([v for v in after[b] if v["key"] == "web/small.jsonl"]) == 1 for b in ("example-usage-logs", REPLICAS["example-usage-logs"]))
        assert not any("alice" in line for b in ("example-usage-logs", REPLICAS["example-usage-logs"])
                       for v in after[b] for line in _lines(v)), "no version or replica still holds alice's records"
        assert any(v["key"] == "consent/alice.json" for v in after["example-sms-consent"]), "proof of consent is kept"
        rows = [line.split(",") for v in after["example-call-records"] for line in _lines(v)[1:]]
        assert [r[0] for r in rows if r[0] == "bob"] == ["bob"] and len(rows) == 3
        assert all(len(r[0]) == 64 for r in rows if r[0] != "bob"), "call records anonymized: caller pseudonymized"
        assert not any("alice" in json.dumps(i) for t in ("accounts", "referrals") for i in after[t])

        capsys.readouterr()
        assert world.subject("find", "alice", "--json") == 0  # held consent is still there, nothing erasable
        found = json.loads(capsys.readouterr().out)
        assert found["erase"] == 0 and found["held"] == 1

        ledger = out / "ledger.jsonl"
        assert chain_ok(ledger)
        lines = list(read_lines(ledger))
        assert lines and all(len(ln["target"]["subject"]) == 64 for ln in lines)
        assert all(ln["outcome"] == "ok" for ln in lines if ln["phase"] == "outcome")
        assert "alice" not in ledger.read_text()
        report = json.loads((out / "subject-erase.json").read_text())
        assert report["verify"] == {"status": "pass", "remaining": 0, "incomplete": []}
        assert report["complete"] is True and report["incomplete"] == []

        assert world.subject("erase", "alice", "--apply", out=out) == 0  # only the held copy remains: nothing to do
        assert world.estate() == after


def test_unknown_subject_and_held_subject(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=5)
        before = world.estate()
        assert world.subject("erase", "nobody", "--apply", out=tmp_path / "x") == 1
        assert "no data found for subject" in capsys.readouterr().out
        assert world.subject("erase", "carol", "--apply", out=tmp_path / "c") == 0
        assert world.estate() == before, "a legal hold keeps everything of carol"
        assert "legal hold: litigation 2026-17" in capsys.readouterr().out


def test_erase_holds_retentions_locks_so_a_retention_run_and_an_erase_never_change_a_store_together(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """An erase plans from what it reads; a retention run changing the same store at the same time
    would pull versions out from under it (and the reverse). Erase takes the same per-store locks."""
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=10)
        before = world.estate()
        store = FileLock(lock_dir() / f"store-{lock_name('s3:example-contacts')}.lock")
        assert store.acquire()  # a retention run applying to the contacts bucket
        try:
            assert world.subject("erase", "alice", "--apply", out=tmp_path / "blocked") == 3
            assert "changing store 'contacts'" in capsys.readouterr().err
            assert world.estate() == before, "nothing was changed"
            assert world.subject("erase", "alice", out=tmp_path / "dry") == 0, "a dry run changes no store: no store lock"
        finally:
            store.release()

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="vigil-locks")
        policy_store = next(s for s in load_policy(world.policy_path).stores if s.name == "contacts")
        remote = S3Lock(s3, "vigil-locks", f"vigil/locks/store-{lock_name(store_resource(policy_store))}.lock", S3_TTL)
        assert remote.acquire()  # another machine's retention run
        assert world.subject("erase", "alice", "--apply", "--lock-bucket", "vigil-locks", out=tmp_path / "m") == 3
        assert "s3://vigil-locks/" in capsys.readouterr().err and world.estate() == before
        remote.release()
        assert world.subject("erase", "alice", "--apply", "--lock-bucket", "vigil-locks", out=tmp_path / "m2") == 0
        assert world.estate() != before
        assert "Contents" not in s3.list_objects_v2(Bucket="vigil-locks"), "the erase released its lock objects"
