"""One S3 Batch Operations task (LambdaInvoke, invocation schema 2.0): delete or rewrite one
planned version, unless it is held.

No Batch Operations operation deletes a version, so the job invokes vigil's Lambda per version
(deploy/batch_handler.py). What the job hands over is only the manifest row: the manifest is
`Bucket,Key,VersionId` (keys URL-encoded, as Batch Operations writes them into the task) and
`userArguments` are not read. What to do with the version comes from the policy the Lambda is
packaged with, by the store whose bucket the task names:

* Whole objects (`layout: object` of a delete category): the planner decided expiry from a
  report that may be two days old, so the handler asks S3 again (HeadObject on the version) and
  re-checks what may have changed since: Object Lock retention in force, a legal hold, a policy
  hold, keep_at_least, and (for age-based categories) that the version is past retention; then
  DeleteObject(VersionId).
* Records inside objects (`jsonl`/`csv`, and whole objects of an anonymize category): the
  version is planned again, now, by the planner a listing feeds (plan.Planner, over this one
  version; latest or not is asked with HeadObject), and the action it yields is done by the
  retention rewrite itself (apply.Applier: If-Match on the raw version's ETag, `vigil-replaces`
  on the new version, then the raw version deleted), so the new object is the one
  `vigil retain --apply` writes. An expired noncurrent version is deleted, as the planner says.
  Keys come from the policy's key source (retention/keys.py), closing dates from the subjects
  table; both are read once per container (`Shared`), and a stale copy can only delay a
  deletion, never bring one forward. The one difference from a full run: the planner sees this
  version alone, so an old raw version that still holds held records is refused here even when
  vigil's rewrite carries them on (the next `vigil retain` run deletes it).

Anything held, or no longer due, is a PermanentFailure with the reason; a version already gone
is Succeeded (the goal is reached); throttling is a TemporaryFailure so S3 retries it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import botocore.exceptions

from vigil.aws import Aws
from vigil.errors import UsageError
from vigil.policy import Policy
from vigil.policy.models import S3Store

from .apply import Applier
from .decide import EXPIRED, Rules
from .inventory import FLAG, REPLACES, closed_accounts, s3_locations, subject_from_key
from .keys import RetentionKeys, load_keys
from .model import Location, ObjectEntry, Version
from .plan import Planner, Summary, reads_records
from .records import Unreadable, parse
from .scan import action_of, anonymizer_for, needs_subjects

SUCCEEDED, TEMPORARY, PERMANENT = "Succeeded", "TemporaryFailure", "PermanentFailure"
RETRY = {"SlowDown", "503", "ServiceUnavailable", "InternalError", "500", "RequestTimeout", "Throttling",
         "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
GONE = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}
REWRITES = ("anonymize_object", "rewrite_object")
STALE = "not past retention now: the plan that named it is out of date"
DATASET = ("k-anonymity is judged over the store's whole dataset (verify.scope: dataset): `vigil retain` rewrites "
           "this object with the location's judgement, not a task that sees it alone")

Result = tuple[str, str]


@dataclass
class Shared:
    """What the tasks one Lambda container runs share, read on first use and kept: the retention
    keys (a KMS decrypt each time would cost more than the task) and the accounts' closing dates."""

    policy: Policy
    _keys: RetentionKeys | None = None
    _closed: dict[str, datetime] | None = field(default=None, repr=False)
    _replicas: dict[str, list[S3Store]] | None = None  # replica bucket -> the stores replicated into it

    def stores_in(self, aws: Aws, bucket: str) -> tuple[list[S3Store], str]:
        """The stores a bucket holds, as source or as replica (a replica's job runs in its own region),
        and, when none, the replication rules that could not be read (asked again by the next task)."""
        direct = [s for s in self.policy.s3_stores if s.bucket == bucket]
        if direct:
            return direct, ""
        if self._replicas is not None:
            return self._replicas.get(bucket, []), ""
        replicas: dict[str, list[S3Store]] = {}
        unread = []
        for store in self.policy.s3_stores:
            locations = s3_locations(aws, self.policy, store)
            unread += [f"{loc.bucket}: {loc.error}" for loc in locations if loc.error]
            for loc in locations[1:]:
                replicas.setdefault(loc.bucket, []).append(store)
        if not unread:
            self._replicas = replicas
        return replicas.get(bucket, []), "; ".join(unread)

    def keys(self, aws: Aws) -> RetentionKeys:
        if self._keys is None:
            self._keys = load_keys(self.policy, aws)
        return self._keys

    def closed(self, aws: Aws, store: S3Store) -> dict[str, datetime]:
        if not needs_subjects(self.policy, [store]):
            return {}
        if self._closed is None:
            self._closed = closed_accounts(aws, self.policy)
        return self._closed


def _answer(api: str, exc: botocore.exceptions.ClientError) -> Result:
    """A failed call's result for Batch Operations: a vanished version is done, throttling is retried."""
    code = _code(exc)
    if code in GONE:
        return SUCCEEDED, "already gone"
    if code in RETRY:
        return TEMPORARY, f"{api}: {code}"
    return PERMANENT, f"{api}: {code or exc}"


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _store_of(stores: list[S3Store], key: str) -> S3Store | None:
    """The store whose prefix holds the key (the longest, when a bucket holds several stores)."""
    found = [s for s in stores if key.startswith(s.prefix)]
    return max(found, key=lambda s: len(s.prefix)) if found else None


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def run_task(aws: Aws, policy: Policy, task: dict[str, Any], now: datetime, region: str,
             shared: Shared | None = None) -> Result:
    """(resultCode, resultString) for one schema-2.0 task."""
    bucket = task.get("s3Bucket") or str(task.get("s3BucketArn", "")).removeprefix("arn:aws:s3:::")
    key = unquote_plus(task.get("s3Key") or "", encoding="utf-8")  # Batch Operations URL-encodes keys
    version = task.get("s3VersionId")
    if not bucket or not key or not version:
        return PERMANENT, "the task names no bucket, key or version id: vigil deletes only named versions"
    shared = shared or Shared(policy)
    stores, unread = shared.stores_in(aws, bucket)
    store = _store_of(stores, key)
    if store is None:
        return PERMANENT, f"{bucket}: the key is in no store of the policy, nor in a replica of one" + (
            f" whose replication could be read ({unread})" if unread else "")
    s3 = aws.client("s3", region)
    try:
        head = s3.head_object(Bucket=bucket, Key=key, VersionId=version)
    except botocore.exceptions.ClientError as exc:
        return _answer("HeadObject", exc)
    category = policy.category_of(store)
    if reads_records(store, category):
        try:
            return _records(aws, shared, store, Location(store.name, bucket, region), key, version, head, now)
        except botocore.exceptions.ClientError as exc:
            return _answer(exc.operation_name, exc)
        except UsageError as exc:  # a key the policy names cannot be read: no task of this job can run
            return PERMANENT, str(exc)
    rules = Rules.for_store(policy, store.name, category, now, {})
    subject = subject_from_key(store.key_pattern(), key)
    created = _utc(head.get("LastModified"))
    held = rules.held(created, subject, key, head.get("ObjectLockMode"), _utc(head.get("ObjectLockRetainUntilDate")),
                      head.get("ObjectLockLegalHoldStatus") == "ON")
    if held is not None:
        return PERMANENT, f"held: {held[0]}" + (f" until {held[1].isoformat()}" if held[1] else "")
    if category.after is None and rules.decide(created, subject, key).verdict != EXPIRED:
        return PERMANENT, STALE
    return _delete(s3, bucket, key, version)


def _delete(s3: Any, bucket: str, key: str, version: str) -> Result:
    try:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    except botocore.exceptions.ClientError as exc:
        return _answer("DeleteObject", exc)
    return SUCCEEDED, "deleted"


def _records(aws: Aws, shared: Shared, store: S3Store, loc: Location, key: str, version_id: str,
             head: dict[str, Any], now: datetime) -> Result:
    """A version whose records are read: planned again now, then rewritten or deleted as the plan says."""
    policy, keys = shared.policy, shared.keys(aws)
    category = policy.category_of(store)
    rules = Rules.for_store(policy, store.name, category, now, shared.closed(aws, store))
    s3 = aws.client("s3", loc.region)
    latest = s3.head_object(Bucket=loc.bucket, Key=key).get("VersionId", "null") == version_id
    answer = s3.get_object(Bucket=loc.bucket, Key=key, VersionId=version_id)
    metadata = answer.get("Metadata") or {}
    version = Version(key, version_id, latest, False, _utc(answer["LastModified"]) or now, int(answer.get("ContentLength", 0)),
                      head.get("ObjectLockMode"), _utc(head.get("ObjectLockRetainUntilDate")),
                      head.get("ObjectLockLegalHoldStatus") == "ON", FLAG in metadata, metadata.get(REPLACES))
    try:
        version.parsed = parse(answer["Body"].read(), key, store.layout, store.timestamp_field, store.subject_field)
    except Unreadable as exc:
        return PERMANENT, f"object could not be read: {exc}"
    anonymizer = anonymizer_for(policy, store, keys)
    summary = Summary(store.name, store.kind, store.category, action_of(category), f"arn:aws:s3:::{loc.bucket}", loc.region)
    planner = Planner(rules, store, keys, summary, anonymizer)
    for action in planner.object(loc, ObjectEntry(key, [version])) + planner.flush():
        if action["action"] in REWRITES and category.verify is not None and category.verify.scope == "dataset":
            return PERMANENT, DATASET  # the planner here sees this object alone: it would judge k over it only
        if action["action"] in REWRITES:
            applier = Applier(aws, keys, None, lambda _name: (store, rules, anonymizer), workers=1)
            return _rewritten(*getattr(applier, action["action"])(action))
        if action["action"] == "delete_versions" and [key, version_id] in action["objects"]:
            return _delete(s3, loc.bucket, key, version_id)
    return PERMANENT, _why_not(summary)


def _rewritten(outcome: str, detail: Any, _done: int) -> Result:
    """The retention rewrite's outcome as a task result (apply.Applier.anonymize_object)."""
    if outcome == "ok":
        counts = ", ".join(f"{kind} {detail[kind]}" for kind in ("anonymize", "suppress", "delete", "keep"))
        kept = "" if detail.get("raw_version_deleted") else f"; raw version kept: {detail.get('raw_version_kept', '')}"
        return SUCCEEDED, f"rewritten as version {detail['new_version']} ({counts}){kept}"
    if outcome == "skipped":  # a concurrent writer, or records that differ from the plan: the next run plans it
        return PERMANENT, f"skipped: {detail if isinstance(detail, str) else detail.get('reason', detail)}"
    errors = detail.get("errors", {}) if isinstance(detail, dict) else {}
    if errors and set(errors) <= RETRY:  # rewritten, the raw version's delete throttled: a retry deletes it
        return TEMPORARY, f"rewritten; the raw version's delete failed: {errors}"
    return PERMANENT, f"failed: {detail}"


def _why_not(summary: Summary) -> str:
    """Why the planner, asked now, has nothing to do with this version."""
    if summary.holds:
        reason, (_count, until) = next(iter(sorted(summary.holds.items())))
        return f"held: {reason}" + (f" until {until.isoformat()}" if until else "")
    if summary.errors:
        return f"not handled: {summary.errors[0]['reason']}"
    return STALE


def handle(aws: Aws, policy: Policy, event: dict[str, Any], now: datetime, region: str,
           shared: Shared | None = None) -> dict[str, Any]:
    """The schema-2.0 response for one invocation (S3 sends one task per invocation today; all are answered)."""
    shared = shared or Shared(policy)
    results = []
    for task in event.get("tasks", []):
        try:
            code, text = run_task(aws, policy, task, now, region, shared)
        except botocore.exceptions.BotoCoreError as exc:  # a network hiccup: S3 retries the task
            code, text = TEMPORARY, f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # one bad task is reported for that task, never a crashed invocation
            code, text = PERMANENT, f"{type(exc).__name__}: {exc}"
        results.append({"taskId": task.get("taskId"), "resultCode": code, "resultString": text[:1000]})
    return {"invocationSchemaVersion": event.get("invocationSchemaVersion", "2.0"), "treatMissingKeysAs": PERMANENT,
            "invocationId": event.get("invocationId"), "results": results}
