"""RET-02 through `vigil check`: the retention verify is the one evaluator for check and retain."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from moto import mock_aws
from vigil.checks.context import Context
from vigil.checks.model import Inventory, Status
from vigil.checks.registry import evaluate
from vigil.retention.verify import retention_status

from tests.test_retention_s3 import live_logs, old_logs
from tests.test_retention_world import BACKUP, KEY_B64, World, jsonl
from vigil.aws import Aws
from vigil.policy import load_policy


def _ret02(world: World) -> dict[str, object]:
    """What `vigil check` does for RET-02 (the retention reader it is given, then the registry), minus the other collectors."""
    policy = load_policy(world.policy_path)
    as_of = datetime.now(UTC)
    inventory = Inventory(account_id="123456789012", regions=policy.regions_in_scope)
    inventory.retention = list(retention_status(Aws(), policy, inventory, as_of))
    return {f.resource: f for f in evaluate(Context(policy, inventory, as_of), only=["RET-02"])}


def test_ret02_fails_on_expired_records_in_store_and_replica_then_passes_after_apply(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-usage-logs", replica="example-usage-logs-replica")
        world.put("example-usage-logs", "web/a.jsonl", jsonl(old_logs(6) + live_logs(1)))
        world.put("example-usage-logs-replica", "web/a.jsonl", jsonl(old_logs(6)), region=BACKUP)
        world.bucket("example-billing")
        world.put("example-billing", "inv/1.json", "{}")

        findings = _ret02(world)
        source, replica = findings["arn:aws:s3:::example-usage-logs"], findings["arn:aws:s3:::example-usage-logs-replica"]
        assert source.status == Status.FAIL and source.evidence.observed["expired"] == 6
        assert replica.status == Status.FAIL and replica.region == BACKUP and replica.evidence.observed["expired"] == 6
        assert "days ago" in source.reason
        assert findings["arn:aws:s3:::example-billing"].status == Status.PASS
        assert findings["arn:aws:s3:::example-call-records"].status == Status.ERROR  # bucket missing: unreadable, not passed
        text = json.dumps([f.to_json() for f in findings.values()])
        assert "web/a.jsonl" not in text and "acct-" not in text and "203.0.113" not in text

        code, _, _ = world.retain("--apply", "--store", "web-logs")
        assert code == 0
        findings = _ret02(world)
        assert findings["arn:aws:s3:::example-usage-logs"].status == Status.PASS
        assert findings["arn:aws:s3:::example-usage-logs-replica"].status == Status.PASS


def test_ret02_judges_anonymizing_stores_without_the_keys(tmp_path: Path, monkeypatch) -> None:
    """The check may run without the pseudonymize key: raw records past retention still fail,
    and records vigil anonymized (with the key) still pass."""
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-usage-logs")
        world.put("example-usage-logs", "web/a.jsonl", jsonl(old_logs(6) + live_logs(1)))
        monkeypatch.delenv("VIGIL_PSEUDONYM_KEY")
        source = _ret02(world)["arn:aws:s3:::example-usage-logs"]
        assert source.status == Status.FAIL and source.evidence.observed["expired"] == 6

        monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", KEY_B64)
        assert world.retain("--apply", "--store", "web-logs")[0] == 0
        monkeypatch.delenv("VIGIL_PSEUDONYM_KEY")
        source = _ret02(world)["arn:aws:s3:::example-usage-logs"]
        assert source.status == Status.PASS, source.reason
