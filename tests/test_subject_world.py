"""A moto world for the subject-rights tests: the repository policy with every store made
searchable for a subject, replicas written by hand (moto does not replicate), and helpers
to run `vigil subject ...` and read every version of every store back."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from tests.test_retention_world import BACKUP, PRIMARY, World, days_ago, jsonl
from vigil.cli.main import main

REPLICAS = {"example-contacts": "example-contacts-replica", "example-usage-logs": "example-usage-logs-replica"}
HEADER = ["caller", "callee", "caller_ip", "started_at", "card_number", "duration"]


def searchable(data: dict[str, Any]) -> None:
    """Every store names where the subject is: by key, by record field, by item attribute."""
    stores = {s["name"]: s for s in data["stores"]}
    stores["web-logs"]["subject_field"] = "account_id"
    stores["call-records"]["subject_field"] = "caller"
    stores["consent"]["subject_from_key"] = "consent/{subject}.json"
    stores["billing"]["subject_from_key"] = "invoices/{subject}.json"
    stores["referrals"]["subject_attribute"] = "referrer"
    data["holds"] = [{"reason": "litigation 2026-17", "subjects": ["carol"], "until": "2031-01-01"}]
    data["requests"] = {"deadline": "P30D", "table": "vigil-requests"}


def log(subject: str, i: int, ip: str | None = None, day: float = 1) -> dict[str, Any]:
    return {"ip": ip or f"198.51.{i % 250}.{i % 200}", "ts": days_ago(day), "user_agent": "Mozilla/5.0",
            "account_id": subject, "email": f"{subject}@example.com", "path": f"/p/{i}", "status": 200}


def csv_text(rows: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in [HEADER, *rows]) + "\n"


def cdr(caller: str, i: int) -> list[str]:
    return [caller, f"+1555{i:04d}", f"192.0.2.{i % 250}", days_ago(3), f"41111111{i:08d}", str(i)]


class SubjectWorld(World):
    def __init__(self, tmp_path: Path, monkeypatch, endpoint: str | None = None, change=None):
        def both(data):
            searchable(data)
            if change:
                change(data)
        super().__init__(tmp_path, monkeypatch, both, endpoint)

    def build(self, others: int = 1000) -> None:
        """alice (the subject), bob and carol (held) in every store; `others` more people in one shared gz object."""
        self.create_all()
        for who in ("alice", "bob", "carol"):
            self.account(who, email=f"{who}@example.com")
            self.ddb.put_item(TableName="referrals", Item={"referral_id": {"S": f"ref-{who}"}, "referrer": {"S": who},
                                                           "friend": {"S": "friend@example.com"}, "created_at": {"S": days_ago(10)}})
            for bucket in ("example-contacts", REPLICAS["example-contacts"]):
                region = BACKUP if bucket.endswith("replica") else PRIMARY
                self.put(bucket, f"contacts/{who}.json", json.dumps({"name": who, "v": 1}), region=region)
                self.put(bucket, f"contacts/{who}.json", json.dumps({"name": who, "v": 2}), region=region)
            self.put("example-sms-consent", f"consent/{who}.json", json.dumps({"opt_in": days_ago(30), "method": "sms"}))
            self.put("example-billing", f"invoices/{who}.json", json.dumps({"total": 12}))
        shared = [log(f"user-{i:04d}", i) for i in range(others)]
        shared.insert(others // 2, log("alice", 9999))
        shared.append(log("bob", 1))
        body = gzip.compress(jsonl(shared).encode(), mtime=0)
        small = jsonl([log("alice", 1), log("bob", 2), log("carol", 3)])
        for bucket, region in (("example-usage-logs", PRIMARY), (REPLICAS["example-usage-logs"], BACKUP)):
            self.put(bucket, "web/shared.jsonl.gz", body, region=region)
            self.put(bucket, "web/small.jsonl", jsonl([log("alice", 7)]), region=region)  # an older raw version
            self.put(bucket, "web/small.jsonl", small, region=region)
            self.put(bucket, "web/others.jsonl", jsonl([log("bob", 4)]), region=region)
        self.put("example-call-records", "cdr/2026.csv", csv_text([cdr("alice", 1), cdr("bob", 2), cdr("alice", 3)]))

    def create_all(self) -> None:
        """Every store of the policy, empty (buckets versioned, replicas configured), and the request log."""
        self.bucket("example-contacts", replica=REPLICAS["example-contacts"])
        self.bucket("example-usage-logs", replica=REPLICAS["example-usage-logs"])
        for name in ("example-billing", "example-call-records", "example-sms-consent"):
            self.bucket(name)
        self.table("accounts", "account_id")
        self.table("referrals", "referral_id")
        self.request_table()

    def request_table(self) -> None:
        self.ddb.create_table(TableName="vigil-requests", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")

    def subject(self, *args: str, out: Path | None = None) -> int:
        endpoint = ["--endpoint-url", self.endpoint] if self.endpoint else []
        output = ["--output", str(out)] if out else []
        return main(["subject", *args, "--policy", str(self.policy_path), *endpoint, *output])

    def estate(self) -> dict[str, list[dict[str, Any]]]:
        buckets = {b: PRIMARY for b in ("example-contacts", "example-usage-logs", "example-billing", "example-call-records",
                                        "example-sms-consent")}
        buckets.update({r: BACKUP for r in REPLICAS.values()})
        out: dict[str, list[dict[str, Any]]] = {b: self.versions(b, region) for b, region in buckets.items()}
        for table in ("accounts", "referrals"):
            out[table] = sorted(self.items(table), key=lambda i: json.dumps(i, sort_keys=True))
        return out
