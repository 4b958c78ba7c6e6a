"""DeleteObjects per-key errors: a throttled key is retried, a denied one is reported, not retried.
(Stubbed responses shaped as AWS documents DeleteObjects; moto never throttles.)"""
from __future__ import annotations

from pathlib import Path

from botocore.stub import Stubber
from vigil.retention.apply import Applier
from vigil.retention.keys import RetentionKeys
from vigil.retention.ledger import Ledger, read_lines

from vigil.aws import Aws

KEYS = RetentionKeys(evidence=b"e" * 32)


def _action(n: int) -> dict:
    objects = [[f"k{i}", f"v{i}"] for i in range(n)]
    return {"action_id": "a1", "action": "delete_versions", "store": "billing", "location": "example-billing",
            "region": "us-east-1", "objects": objects, "count": n, "bytes": 0}


def _expect(stub: Stubber, keys: list[int], errors: dict[int, str]) -> None:
    stub.add_response("delete_objects", {
        "Deleted": [{"Key": f"k{i}", "VersionId": f"v{i}"} for i in keys if i not in errors],
        "Errors": [{"Key": f"k{i}", "VersionId": f"v{i}", "Code": code, "Message": code} for i, code in errors.items()]},
        {"Bucket": "example-billing", "Delete": {"Objects": [{"Key": f"k{i}", "VersionId": f"v{i}"} for i in keys], "Quiet": True}})


def test_throttled_keys_are_retried_and_denied_keys_reported(tmp_path: Path) -> None:
    aws = Aws()
    stub = Stubber(aws.client("s3", "us-east-1"))
    _expect(stub, [0, 1, 2, 3], {2: "SlowDown", 3: "AccessDenied"})
    _expect(stub, [2], {})  # only the throttled key comes back
    ledger = Ledger(tmp_path / "ledger.jsonl", "r")
    with stub:
        Applier(aws, KEYS, ledger, lambda name: None, workers=2).run([_action(4)])
    stub.assert_no_pending_responses()
    ledger.close()
    intent, outcome = list(read_lines(tmp_path / "ledger.jsonl"))
    assert intent["phase"] == "intent" and intent["target"]["count"] == 4
    assert outcome["outcome"] == "failed" and outcome["target"]["count"] == 3
    assert outcome["detail"] == {"deleted": 3, "errors": {"AccessDenied": 1}}
    assert "k0" not in (tmp_path / "ledger.jsonl").read_text()
