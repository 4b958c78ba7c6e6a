"""A small, realistic results folder (findings, retention plan, ledger) in the formats the other
commands write: used by the tests and to draw docs/report.png before a demo run exists.

`vigil demo` produces real packs; this is input data only, judged by nothing.
"""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vigil.checks.catalogue import catalogue

from vigil import __version__, safe_write
from vigil.timestamps import iso_z

from .chain import GENESIS

ACCOUNT = "123456789012"
BUCKETS = ["example-contacts", "example-billing", "example-usage-logs", "example-call-records", "example-sms-consent"]


def _observation(control: str, bucket: str, status: str) -> tuple[str | list[str], Any]:
    if control.startswith("TLS"):
        statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                     "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        return "s3:GetBucketPolicy", {"Version": "2012-10-17", "Statement": [statement] if status == "pass" else []}
    if control.startswith("ENC"):
        algorithm = "aws:kms" if status == "pass" else "AES256"
        return "s3:GetBucketEncryption", {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}]}
    if control.startswith("BAK"):
        return ["s3:GetBucketVersioning", "s3:GetBucketReplication"], {"Status": "Enabled" if status == "pass" else "Suspended"}
    return f"s3:Get{control.replace('-', '')}", {"bucket": bucket, "setting": status == "pass"}


def findings(run_id: str, started: datetime, failing: int = 3, policy_sha256: str | None = None) -> dict[str, Any]:
    """Every catalogue control, with a finding per bucket; `failing` of every ten fail, one errors (access denied)."""
    controls = [control.to_json() for control in catalogue().values()]
    rows = []
    for index, control in enumerate(catalogue().values()):
        for number, bucket in enumerate(BUCKETS[: 1 + index % 3]):
            slot = (index * 3 + number) % 10
            status = "fail" if slot < failing else "error" if slot == 9 else "not_applicable" if slot == 8 else "pass"
            api, observed = _observation(control.id, bucket, status)
            reason = {
                "pass": f"{bucket} meets {control.id}: {control.passes}.",
                "fail": f"{bucket} does not meet {control.id}: expected {control.passes}.",
                "error": f"could not read {bucket}: AccessDenied on {api if isinstance(api, str) else api[0]}.",
                "not_applicable": f"{bucket} is not in scope of {control.id} ({control.scope}).",
            }[status]
            rows.append({"control": control.id, "resource": f"arn:aws:s3:::{bucket}", "region": "us-east-1",
                         "status": status, "reason": reason, "evidence": {"api": api, "observed": observed}})
    summary = {status: sum(1 for row in rows if row["status"] == status) for status in ("pass", "fail", "error", "not_applicable")}
    return {
        "schema": "vigil.findings/v1",
        "run": {"id": run_id, "started_at": iso_z(started), "finished_at": iso_z(started + timedelta(seconds=42)),
                "account": ACCOUNT, "regions": ["us-east-1", "us-west-2"], "tool_version": __version__,
                "policy_sha256": policy_sha256 or hashlib.sha256(b"sample policy").hexdigest()},
        "controls": controls,
        "findings": rows,
        "summary": summary,
    }


def _counts(delete: int, anonymize: int, suppress: int, keep: int, held: int, error: int) -> dict[str, int]:
    return {"delete": delete, "anonymize": anonymize, "suppress": suppress, "keep": keep, "held": held, "error": error}


def retention_plan(run_id: str, as_of: datetime, policy_sha256: str, mode: str = "apply") -> dict[str, Any]:
    stores: list[dict[str, Any]] = [
        {"store": "contacts", "kind": "s3", "category": "contact", "action": "delete", "resource": "arn:aws:s3:::example-contacts",
         "region": "us-east-1", "replicas": ["arn:aws:s3:::example-contacts-replica"],
         "counts": _counts(12, 0, 0, 140, 2, 0), "bytes": _counts(24576, 0, 0, 286720, 4096, 0),
         "holds": [{"reason": "Litigation hold LH-2026-07", "until": "2027-03-01", "count": 2}], "errors": [],
         "verify": {"status": "pass", "remaining": 0}},
        {"store": "web-logs", "kind": "s3", "category": "usage_logs", "action": "anonymize", "resource": "arn:aws:s3:::example-usage-logs",
         "region": "us-east-1", "replicas": [], "counts": _counts(0, 5210, 37, 880, 0, 1),
         "bytes": _counts(0, 2_310_000, 16_400, 390_000, 0, 512),
         "holds": [], "errors": [{"object": "hmac:9f2c4e1a", "reason": "AccessDenied on s3:PutObject"}],
         "verify": {"status": "fail", "remaining": 1}},
        {"store": "referrals", "kind": "dynamodb", "category": "marketing", "action": "delete",
         "resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/referrals", "region": "us-east-1", "replicas": [],
         "counts": _counts(31, 0, 0, 410, 0, 0), "bytes": _counts(6200, 0, 0, 82000, 0, 0), "holds": [], "errors": [],
         "verify": {"status": "pass", "remaining": 0}},
    ]
    totals = {key: {name: sum(store[key][name] for store in stores) for name in stores[0][key]} for key in ("counts", "bytes")}
    return {"schema": "vigil.retention-plan/v1",
            "run": {"id": run_id, "as_of": iso_z(as_of), "policy_sha256": policy_sha256, "tool_version": __version__, "mode": mode},
            "stores": stores, "totals": totals}


def ledger_bytes(entries: list[dict[str, Any]]) -> bytes:
    """Chain entries as the ledger does: seq from 0, prev = SHA-256 of the previous line's bytes."""
    lines, prev = [], GENESIS
    for seq, entry in enumerate(entries):
        line = json.dumps({"seq": seq, **entry, "prev": prev}, sort_keys=True, separators=(",", ":")).encode()
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    return b"".join(line + b"\n" for line in lines)


def ledger(run_id: str, started: datetime, actions: int = 4) -> bytes:
    entries: list[dict[str, Any]] = []
    for number in range(actions):
        ts = iso_z(started + timedelta(seconds=number))
        action = "delete" if number % 2 == 0 else "anonymize"
        common: dict[str, Any] = {"ts": ts, "run_id": run_id, "action_id": f"a{number:04d}", "action": action, "store": "contacts",
                  "target": f"hmac:{hashlib.sha256(str(number).encode()).hexdigest()[:16]}"}
        entries.append({**common, "phase": "intent", "outcome": None, "detail": None})
        entries.append({**common, "phase": "outcome", "outcome": "done", "detail": {"versions": 2}})
    return ledger_bytes(entries)


def write_sample(directory: Path, run_id: str = "20261101T020000Z-a1b2c3", started: datetime | None = None,
                 policy_sha256: str | None = None, failing: int = 3, with_retention: bool = True) -> Path:
    """Write findings.json (and retention-plan.json, ledger.jsonl) into `directory`."""
    started = started or datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    safe_write.ensure_dir(directory)
    data = findings(run_id, started, failing, policy_sha256)
    safe_write.write_text(directory / "findings.json", json.dumps(data, indent=2) + "\n")
    if with_retention:
        plan = retention_plan(run_id, started, data["run"]["policy_sha256"])
        safe_write.write_text(directory / "retention-plan.json", json.dumps(plan, indent=2) + "\n")
        safe_write.write_bytes(directory / "ledger.jsonl", ledger(run_id, started))
    return directory
