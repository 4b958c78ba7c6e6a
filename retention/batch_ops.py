"""One S3 Batch Operations task (LambdaInvoke, invocation schema 2.0): delete one planned version,
unless it is held.

No Batch Operations operation deletes a version, so the job invokes vigil's Lambda per version
(deploy/batch_handler.py). The planner decided expiry from a report that may be two days old, so
the handler asks S3 again (HeadObject on the version) and re-checks what may have changed since:
Object Lock retention in force, a legal hold, a policy hold, keep_at_least, and (for age-based
categories) that the version is past retention. Anything held is a PermanentFailure with the
reason; a version already gone is Succeeded (the goal is reached); throttling is a
TemporaryFailure so S3 retries it.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import botocore.exceptions

from vigil.aws import Aws
from vigil.policy import Policy
from vigil.policy.models import S3Store

from .decide import EXPIRED, Rules
from .inventory import subject_from_key

SUCCEEDED, TEMPORARY, PERMANENT = "Succeeded", "TemporaryFailure", "PermanentFailure"
RETRY = {"SlowDown", "503", "ServiceUnavailable", "InternalError", "500", "RequestTimeout", "Throttling"}
GONE = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}


def _answer(api: str, exc: botocore.exceptions.ClientError) -> tuple[str, str]:
    """A failed call's result for Batch Operations: a vanished version is done, throttling is retried."""
    code = _code(exc)
    if code in GONE:
        return SUCCEEDED, "already gone"
    if code in RETRY:
        return TEMPORARY, f"{api}: {code}"
    return PERMANENT, f"{api}: {code or exc}"


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _store_of(policy: Policy, bucket: str) -> S3Store | None:
    return next((s for s in policy.stores if isinstance(s, S3Store) and s.bucket == bucket), None)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def run_task(aws: Aws, policy: Policy, task: dict[str, Any], now: datetime, region: str) -> tuple[str, str]:
    """(resultCode, resultString) for one schema-2.0 task."""
    bucket = task.get("s3Bucket") or str(task.get("s3BucketArn", "")).removeprefix("arn:aws:s3:::")
    key = unquote_plus(task.get("s3Key") or "", encoding="utf-8")  # Batch Operations URL-encodes keys
    version = task.get("s3VersionId")
    if not bucket or not key or not version:
        return PERMANENT, "the task names no bucket, key or version id: vigil deletes only named versions"
    store = _store_of(policy, bucket)
    if store is None:
        return PERMANENT, f"bucket {bucket} is not a store in the policy"
    s3 = aws.client("s3", region)
    try:
        head = s3.head_object(Bucket=bucket, Key=key, VersionId=version)
    except botocore.exceptions.ClientError as exc:
        return _answer("HeadObject", exc)
    category = policy.category_of(store)
    rules = Rules.for_store(policy, store.name, category, now, {})
    subject = subject_from_key(store.key_pattern(), key)
    created = _utc(head.get("LastModified"))
    held = rules.held(created, subject, key, head.get("ObjectLockMode"), _utc(head.get("ObjectLockRetainUntilDate")),
                      head.get("ObjectLockLegalHoldStatus") == "ON")
    if held is not None:
        return PERMANENT, f"held: {held[0]}" + (f" until {held[1].isoformat()}" if held[1] else "")
    if category.after is None and rules.decide(created, subject, key).verdict != EXPIRED:
        return PERMANENT, "not past retention now: the plan that named it is out of date"
    try:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    except botocore.exceptions.ClientError as exc:
        return _answer("DeleteObject", exc)
    return SUCCEEDED, "deleted"


def handle(aws: Aws, policy: Policy, event: dict[str, Any], now: datetime, region: str) -> dict[str, Any]:
    """The schema-2.0 response for one invocation (S3 sends one task per invocation today; all are answered)."""
    results = []
    for task in event.get("tasks", []):
        try:
            code, text = run_task(aws, policy, task, now, region)
        except botocore.exceptions.BotoCoreError as exc:  # a network hiccup: S3 retries the task
            code, text = TEMPORARY, f"{type(exc).__name__}: {exc}"
        results.append({"taskId": task.get("taskId"), "resultCode": code, "resultString": text[:1000]})
    return {"invocationSchemaVersion": event.get("invocationSchemaVersion", "2.0"), "treatMissingKeysAs": PERMANENT,
            "invocationId": event.get("invocationId"), "results": results}
