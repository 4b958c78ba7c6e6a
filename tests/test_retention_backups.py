"""Backup recovery points (RET-03): an expired point is planned for deletion; moto has no
recovery points and no DeleteRecoveryPoint, so the listing is stubbed with AWS's documented
shapes and the delete fails as moto fails it: a failed action in the ledger, never a crash."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from botocore.stub import ANY, Stubber
from moto import mock_aws
from vigil.retention.engine import run_retention
from vigil.retention.keys import load_keys
from vigil.retention.ledger import read_lines

from tests.test_retention_world import World
from vigil.aws import Aws
from vigil.policy import load_policy

VAULT = "arn:aws:backup:us-east-1:123456789012:backup-vault:main"


def _point(name: str, created: datetime) -> dict:
    return {"RecoveryPointArn": f"arn:aws:backup:us-east-1:123456789012:recovery-point:{name}", "BackupVaultName": "main",
            "CreationDate": created, "Status": "COMPLETED", "BackupSizeBytes": 1024}


def test_expired_recovery_point_is_planned_and_its_failed_delete_is_recorded(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-billing")
        policy = load_policy(world.policy_path)
        aws = Aws()
        backup = aws.client("backup", "us-east-1")
        stub = Stubber(backup)
        stub.add_response("list_backup_vaults", {"BackupVaultList": [{"BackupVaultName": "main", "BackupVaultArn": VAULT}]}, {"MaxResults": 1})
        stub.add_response("list_recovery_points_by_resource", {"RecoveryPoints": [
            _point("old", datetime(2015, 1, 1, tzinfo=UTC)), _point("new", datetime.now(UTC))]},
            {"ResourceArn": "arn:aws:s3:::example-billing"})
        stub.add_client_error("delete_recovery_point", service_error_code="404", service_message="Not yet implemented",
                              http_status_code=404, expected_params={"BackupVaultName": "main", "RecoveryPointArn": ANY})
        with stub:
            run = run_retention(aws, policy, load_keys(policy, aws), datetime.now(UTC), tmp_path, "r1",
                                apply=True, store_names=["billing"])
        billing = run.summaries[0]
        assert billing.counts["delete"] == 1 and billing.counts["keep"] == 1
        assert run.stats is not None and run.stats.failed == 1
        assert run.exit_code == 1
        outcome = [ln for ln in read_lines(tmp_path / "ledger.jsonl") if ln["phase"] == "outcome"]
        assert outcome[0]["action"] == "delete_recovery_point" and outcome[0]["outcome"] == "failed"
        assert "DeleteRecoveryPoint" in outcome[0]["detail"]
