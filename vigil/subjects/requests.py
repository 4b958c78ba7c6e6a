"""The subject-rights request log: a DynamoDB table the policy names (`requests.table`).

One item per request: id, subject, kind (access | erase), received_at, deadline, and
completed_at once answered. Evidence gets counts only (`summary`), never a subject.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.exceptions

from vigil.aws import Aws
from vigil.errors import EnvironmentFailure, UsageError
from vigil.policy import Policy
from vigil.retention.transforms import parse_time
from vigil.timestamps import iso_z as _iso

KINDS = ("access", "erase")
SUMMARY_FILE = "subject-requests.json"



@dataclass
class Request:
    id: str
    subject: str
    kind: str
    received_at: datetime
    deadline: datetime
    completed_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.completed_at is None

    def days_left(self, now: datetime) -> int:
        return (self.deadline - now).days if self.deadline >= now else -((now - self.deadline).days + 1)

    def item(self) -> dict[str, Any]:
        out = {"id": {"S": self.id}, "subject": {"S": self.subject}, "kind": {"S": self.kind},
               "received_at": {"S": _iso(self.received_at)}, "deadline": {"S": _iso(self.deadline)},
               "status": {"S": "open" if self.open else "done"}}
        if self.completed_at is not None:
            out["completed_at"] = {"S": _iso(self.completed_at)}
        return out

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Request:
        def text(name: str) -> str:
            return item.get(name, {}).get("S", "")
        return cls(text("id"), text("subject"), text("kind"), parse_time(text("received_at")), parse_time(text("deadline")),
                   parse_time(text("completed_at")))


class RequestLog:
    def __init__(self, aws: Aws, policy: Policy):
        if policy.requests is None:
            raise UsageError("the policy has no 'requests:' section (e.g. requests: {deadline: P30D, table: vigil-requests})")
        self.config = policy.requests
        self.client = aws.client("dynamodb", policy.regions.primary)
        self.table = policy.requests.table

    def _call(self, api: str, fn, **kwargs) -> Any:
        try:
            return fn(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise EnvironmentFailure(f"the request log table '{self.table}' does not exist (policy requests.table)") from None
            raise EnvironmentFailure(f"dynamodb:{api} on the request log '{self.table}' failed: {exc}") from None

    def add(self, subject: str, kind: str, received: datetime) -> Request:
        if kind not in KINDS:
            raise UsageError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
        request = Request(f"req-{received:%Y%m%d}-{secrets.token_hex(4)}", subject, kind, received, self.config.deadline.after(received))
        self._call("PutItem", self.client.put_item, TableName=self.table, Item=request.item())
        return request

    def all(self) -> list[Request]:
        out, args = [], {"TableName": self.table}
        while True:
            page = self._call("Scan", self.client.scan, **args)
            out += [Request.from_item(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return sorted(out, key=lambda r: (r.deadline, r.id))
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def complete(self, request: Request, when: datetime) -> None:
        request.completed_at = when
        self._call("UpdateItem", self.client.update_item, TableName=self.table, Key={"id": {"S": request.id}},
                   UpdateExpression="SET completed_at = :c, #s = :d", ExpressionAttributeNames={"#s": "status"},
                   ExpressionAttributeValues={":c": {"S": _iso(when)}, ":d": {"S": "done"}})

    def complete_open(self, subject: str, kind: str, when: datetime) -> int:
        done = 0
        for request in self.all():
            if request.open and request.subject == subject and request.kind == kind:
                self.complete(request, when)
                done += 1
        return done


def summary(requests: list[Request], now: datetime, deadline: str) -> dict[str, Any]:
    """Counts for the evidence report: no ids, no subjects."""
    completed = [r for r in requests if not r.open]
    on_time = [r for r in completed if r.completed_at is not None and r.completed_at <= r.deadline]
    open_ = [r for r in requests if r.open]
    overdue_open = [r for r in open_ if r.deadline < now]
    by_kind = {kind: sum(1 for r in requests if r.kind == kind) for kind in KINDS}
    return {"schema": "vigil.subject-requests/v1", "as_of": _iso(now), "deadline": deadline,
            "received": len(requests), "by_kind": by_kind, "completed": len(completed), "on_time": len(on_time),
            "completed_late": len(completed) - len(on_time), "open": len(open_), "overdue": len(overdue_open),
            "overdue_total": len(overdue_open) + len(completed) - len(on_time)}
