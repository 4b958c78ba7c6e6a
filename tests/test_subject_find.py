"""`vigil subject find`: every copy in every store kind and replica, counts, holds, unknown ids."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import boto3
from moto import mock_aws

from tests.test_subject_world import SubjectWorld


def test_find_every_copy_and_unknown_subject(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=50)
        boto3.client("backup", region_name="us-west-2").create_backup_plan(BackupPlan={"BackupPlanName": "offsite", "Rules": [
            {"RuleName": "daily", "TargetBackupVaultName": "vault", "ScheduleExpression": "cron(0 5 * * ? *)",
             "Lifecycle": {"DeleteAfterDays": 35}}]})
        capsys.readouterr()
        assert world.subject("find", "alice", "--json") == 0
        found = json.loads(capsys.readouterr().out)
        stores = {s["store"]: s for s in found["stores"]}
        assert stores["contacts"]["copies"] == 4 and stores["contacts"]["replica_copies"] == 2  # 2 versions x source + replica
        assert stores["contacts"]["erase"] == 4
        # shared gz + small (current and older raw version) + nothing from others.jsonl, in the bucket and its replica
        assert stores["web-logs"]["copies"] == 6 and stores["web-logs"]["replica_copies"] == 3
        assert stores["web-logs"]["records"] == 6
        assert stores["call-records"]["records"] == 2 and stores["call-records"]["erase"] == 2
        assert stores["consent"]["erase"] == 0 and stores["consent"]["held"] == 1
        assert stores["consent"]["holds"][0]["reason"] == "keep_at_least P4Y: Consent tracking and proof of consent (003 s.4)"
        assert stores["consent"]["holds"][0]["until"] is not None
        assert stores["referrals"]["erase"] == 1 and stores["subscribers"]["erase"] == 1
        assert stores["billing"]["erase"] == 1
        assert found["subject"] != "alice" and "alice" not in json.dumps(found)  # counts and reasons, no keys
        backups = [b for b in found["backups"] if b["where"] == "plan offsite rule daily"]
        assert backups == [{"where": "plan offsite rule daily", "region": "us-west-2",
                            "until": (date.today() + timedelta(days=35)).isoformat(), "note": backups[0]["note"]}]

        assert world.subject("find", "carol", "--json") == 0
        carol = {s["store"]: s for s in json.loads(capsys.readouterr().out)["stores"]}
        assert all(s["erase"] == 0 for s in carol.values()), "a subject under legal hold has nothing erasable"
        assert carol["contacts"]["holds"][0]["reason"] == "legal hold: litigation 2026-17"

        assert world.subject("find", "nobody-7") == 1
        assert "no data found for subject" in capsys.readouterr().out
