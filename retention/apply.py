"""Apply executes planned actions and nothing else, writing each to the ledger before and after.

Deletes are permanent (every version id), 1,000 keys per DeleteObjects, retried on throttling
and on per-key errors; DynamoDB deletes go 25 per BatchWriteItem with unprocessed items
retried. Anonymize rewrites the object (same key, encryption, tags and metadata kept, plus the
vigil flag) and then permanently deletes the raw version it replaced.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import botocore.exceptions

from vigil import progress
from vigil.aws import Aws, describe_error

from . import faults, items
from .anonymize import new_body, rewrite
from .dataset_k import DatasetJudgement
from .inventory import FLAG, REPLACES, subject_from_key, subject_matcher
from .keys import RetentionKeys
from .model import Version
from .plan_items import key_text
from .records import parse

RETRYABLE = {"SlowDown", "Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable", "RequestTimeout",
             "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
ATTEMPTS = 5
CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"}
CHANGED = "the object changed since the plan was made (a concurrent writer); it is left as written and planned again"


@dataclass
class Stats:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    done: dict[str, int] = field(default_factory=dict)  # action kind -> units done


def hashed_target(action: dict[str, Any], keys: RetentionKeys) -> dict[str, Any]:
    """What the ledger and actions file say about the target: keyed hashes and counts only."""
    kind = action["action"]
    if kind == "delete_versions":
        versions = [f"{keys.hash(key)}:{version}" for key, version in action["objects"]]
        return {"location": f"arn:aws:s3:::{action['location']}", "versions": versions, "count": action["count"], "bytes": action["bytes"]}
    if kind in ("anonymize_object", "rewrite_object"):
        return {"location": f"arn:aws:s3:::{action['location']}", "object": keys.hash(action["object"]),
                "version": action["version_id"], "counts": action["counts"], **_climbed(action),
                **({"k_scope": "dataset"} if action.get("k_scope") else {})}
    if kind == "delete_items":
        return {"location": action["location"], "items": [keys.hash(k) for k in action["items"]], "count": action["count"]}
    if kind == "anonymize_items":
        return {"location": action["location"], "items": [keys.hash(k) for k in action["items"]], "count": action["count"],
                "counts": action["counts"], **_climbed(action)}
    return {"recovery_point": action.get("recovery_point"), "count": 1}


def _climbed(action: dict[str, Any]) -> dict[str, Any]:
    """The batch's generalization ladder rung (kanon.py), when it climbed one: in the plan and the ledger."""
    return {"generalization": action["generalization"]} if action.get("generalization") else {}


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _follows(s3, bucket: str, key: str, new_version: str, raw_version: str) -> bool:
    """Whether `new_version` is the key's latest and came straight after `raw_version`: nothing
    (no other version, no delete marker) was written between the read and the write."""
    answer = s3.list_object_versions(Bucket=bucket, Prefix=key, MaxKeys=50)
    versions = [v for v in answer.get("Versions", []) if v["Key"] == key]  # newest first, as S3 lists a key's versions
    ids = [v["VersionId"] for v in versions]
    if ids[:2] != [new_version, raw_version]:
        return False
    raw_time = versions[1]["LastModified"]
    return not any(m["Key"] == key and m["LastModified"] >= raw_time for m in answer.get("DeleteMarkers", []))


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2 ** attempt, 2.0))


class Applier:
    def __init__(self, aws: Aws, keys: RetentionKeys, ledger, context: Callable[[str], tuple], workers: int = 16,
                 datasets: dict[tuple[str, str], DatasetJudgement] | None = None):
        self.aws = aws
        self.datasets = datasets or {}  # (store, bucket) -> its dataset-wide k judgement (verify.scope: dataset)
        self.keys = keys
        self.ledger = ledger
        self.context = context  # store name -> (store, rules, anonymizer)
        self.workers = workers
        self.stats = Stats()
        self._tables: dict[str, threading.Lock] = {}
        self._tables_lock = threading.Lock()

    def run(self, actions: Iterable[dict[str, Any]]) -> Stats:
        """Run actions concurrently (across prefixes and stores), one per worker in flight: each
        holds up to 1,000 keys, so a deeper queue would only grow memory, not throughput."""
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vigil-apply") as pool:
            running: set[Future] = set()
            for action in actions:
                running.add(pool.submit(self.one, action))
                if len(running) >= self.workers:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()
            for future in running:
                future.result()
        return self.stats

    def one(self, action: dict[str, Any]) -> None:
        target = hashed_target(action, self.keys)
        self.ledger.write("intent", action, target)
        self.record(action, target, self.execute(action))

    def execute(self, action: dict[str, Any]) -> tuple[str, Any, int]:
        """The action itself, no ledger: (outcome, detail, units done). Every engine runs this
        same code (the Spark engine inside its tasks: spark_engine.py)."""
        try:
            return getattr(self, action["action"])(action)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            return "failed", describe_error(action["action"], exc), 0
        except Exception as exc:  # one bad action must not stop the others; it is recorded
            return "failed", f"{type(exc).__name__}: {exc}", 0

    def record(self, action: dict[str, Any], target: dict[str, Any], result: tuple[str, Any, int]) -> None:
        """The outcome line and the counts, once the action has run (here or in a Spark task)."""
        outcome, detail, done = result
        if "count" in target:
            target = {**target, "count": done}
        self.ledger.write("outcome", action, target, outcome, detail)
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        self.stats.done[action["action"]] = self.stats.done.get(action["action"], 0) + done
        progress.advance()

    # --- S3 ----------------------------------------------------------------------------

    def _delete(self, bucket: str, region: str, objects: list[dict[str, str]]) -> tuple[int, dict[str, int]]:
        """DeleteObjects, 1,000 keys a call; keys that fail with a retryable code are tried again.
        Returns (versions deleted, error code -> count of versions that could not be deleted)."""
        s3 = self.aws.client("s3", region)
        deleted, codes = 0, dict[str, int]()
        for start in range(0, len(objects), 1000):
            todo = objects[start:start + 1000]
            for attempt in range(ATTEMPTS):
                errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": todo, "Quiet": True}).get("Errors", [])
                deleted += len(todo) - len(errors)
                failed = {(e["Key"], e.get("VersionId")): e["Code"] for e in errors}
                retry = [o for o in todo if failed.get((o["Key"], o["VersionId"])) in RETRYABLE]
                if not retry or attempt == ATTEMPTS - 1:
                    for code in failed.values():
                        codes[code] = codes.get(code, 0) + 1
                    break
                for code in (c for c in failed.values() if c not in RETRYABLE):  # final: not worth retrying
                    codes[code] = codes.get(code, 0) + 1
                todo = retry
                _backoff(attempt)
        return deleted, codes

    def delete_versions(self, action: dict[str, Any]):
        objects = [{"Key": key, "VersionId": version} for key, version in action["objects"]]
        deleted, codes = self._delete(action["location"], action["region"], objects)
        if codes:
            return "failed", {"deleted": deleted, "errors": codes}, deleted
        return "ok", {"deleted": deleted}, deleted

    def anonymize_object(self, action: dict[str, Any]):
        """Rewrite the raw version's records, written only over that exact version (If-Match on its
        ETag, and checked after the write: an ETag names content, not a version); on any conflict
        the object is left to the concurrent writer and planned again. Then the raw version goes,
        unless a record in it could not be read (it stays, and verify counts it as left)."""
        store, rules, anonymizer = self.context(action["store"])
        bucket, key, version_id = action["location"], action["object"], action["version_id"]
        s3 = self.aws.client("s3", action["region"])
        current = s3.head_object(Bucket=bucket, Key=key)
        if current.get("VersionId", "null") != version_id:
            return "skipped", CHANGED, 0
        answer = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)
        version = Version(key, version_id, True, False, answer["LastModified"], int(answer.get("ContentLength", 0)))
        version.parsed = parse(answer["Body"].read(), key, store.layout, store.timestamp_field, store.subject_field)
        metadata = dict(answer.get("Metadata") or {})
        remove = action["action"] == "rewrite_object"
        dataset = self.datasets.get((action["store"], bucket)) if action.get("k_scope") == "dataset" else None
        if action.get("k_scope") == "dataset" and dataset is None:
            return "failed", "the plan judged k over the dataset, but this run has no judgement for the location", 0
        result = rewrite(rules, store, version, anonymizer, FLAG in metadata, remove,
                         subject_from_key(subject_matcher(store), key), dataset)
        counts = {k: result.n(k) for k in ("anonymize", "suppress", "delete", "keep")}
        if counts != action["counts"] or result.generalization != action.get("generalization", {}):
            return "skipped", {"reason": "the object's records differ from the plan", "planned": action["counts"], "found": counts}, 0
        put: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": new_body(result, version, store), "IfMatch": answer["ETag"]}
        if not remove:
            metadata[FLAG] = "1"
        metadata[REPLACES] = version_id
        put["Metadata"] = metadata
        for source, dest in (("ContentType", "ContentType"), ("ServerSideEncryption", "ServerSideEncryption"),
                             ("SSEKMSKeyId", "SSEKMSKeyId"), ("ContentEncoding", "ContentEncoding")):
            if answer.get(source):
                put[dest] = answer[source]
        tags = s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version_id).get("TagSet", [])
        if tags:
            put["Tagging"] = urlencode({t["Key"]: t["Value"] for t in tags})
        faults.at("rewrite.before_put", s3=s3, bucket=bucket, key=key)
        try:
            written = s3.put_object(**put)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in CONFLICT:
                return "skipped", CHANGED, 0
            raise
        new_version = written.get("VersionId", "null")
        if not _follows(s3, bucket, key, new_version, version_id):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=new_version)  # derived data: the writer's version is current again
            return "skipped", CHANGED, 0
        faults.at("rewrite.before_raw_delete", s3=s3, bucket=bucket, key=key)
        detail = {"new_version": new_version, **counts}
        done = counts["anonymize"] + counts["suppress"] + counts["delete"]
        if result.unreadable:
            return "ok", {**detail, "raw_version_deleted": False,
                          "raw_version_kept": f"{result.unreadable} records in it could not be read"}, done
        # The raw version is now noncurrent; remove it for good so the raw records are gone.
        deleted, codes = self._delete(bucket, action["region"], [{"Key": key, "VersionId": version_id}])
        detail["raw_version_deleted"] = deleted == 1
        return ("failed" if codes else "ok"), ({**detail, "errors": codes} if codes else detail), done

    rewrite_object = anonymize_object

    # --- DynamoDB, Backup --------------------------------------------------------------

    def delete_items(self, action: dict[str, Any]):
        client = self.aws.client("dynamodb", action["region"])
        requests = [{"DeleteRequest": {"Key": json.loads(key)}} for key in action["items"]]
        left = 0
        for start in range(0, len(requests), 25):
            todo = requests[start:start + 25]
            for attempt in range(ATTEMPTS + 3):
                answer = client.batch_write_item(RequestItems={action["location"]: todo})
                todo = answer.get("UnprocessedItems", {}).get(action["location"], [])
                if not todo:
                    break
                _backoff(attempt)
            left += len(todo)
        done = len(requests) - left
        return ("failed", {"unprocessed": left, "deleted": done}, done) if left else ("ok", {"deleted": done}, done)

    def anonymize_items(self, action: dict[str, Any]):
        """One batch as one transaction: every item unchanged since the plan, or nothing is written."""
        store, _, anonymizer = self.context(action["store"])
        table, client = action["location"], self.aws.client("dynamodb", action["region"])
        keys = [json.loads(k) for k in action["items"]]
        found = self._get_items(client, table, keys)
        raws = [found.get(k) for k in action["items"]]
        changed = sum(1 for raw, d in zip(raws, action["digests"], strict=True) if raw is None or items.digest(raw) != d)
        if changed:
            return "skipped", f"{changed} of {len(keys)} items changed since the plan; the batch is planned again", 0
        suppress = set(action["suppress"])
        writes: list[dict[str, Any]] = []
        moved = set()
        present = [raw for raw in raws if raw is not None]  # all of them: a missing item counted as changed above
        for index, (key, raw) in enumerate(zip(keys, present, strict=True)):
            new = None if index in suppress else items.anonymized_item(anonymizer, raw, action.get("generalization"))
            entries = items.writes(table, key, raw, new, store.timestamp_attribute)
            if len(entries) == 2:
                moved.add(len(writes) + 1)  # the Put to a new key
            writes += entries
        for attempt in range(ATTEMPTS):
            try:
                with self._table(action["region"], table):
                    client.transact_write_items(TransactItems=writes, ClientRequestToken=action["action_id"])
                return "ok", dict(action["counts"]), len(keys)
            except botocore.exceptions.ClientError as exc:
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                failed = next(((i, c) for i, c in enumerate(reasons) if c not in (None, "None")), None)
                if failed and failed[1] == "ConditionalCheckFailed":
                    if failed[0] in moved:
                        return "failed", "an anonymized key collides with an existing item; the batch was not written", 0
                    return "skipped", "an item changed while the batch was written; the batch is planned again", 0
                code = exc.response.get("Error", {}).get("Code")
                retryable = code in RETRYABLE or (failed and failed[1] in ("TransactionConflict", "ThrottlingError"))
                if not retryable or attempt == ATTEMPTS - 1:
                    raise
                _backoff(attempt)
        raise AssertionError("unreachable")

    def _table(self, region: str, table: str) -> threading.Lock:
        """One transaction at a time per table: concurrent ones would only contend for its write
        capacity (and the emulator's transactions are not thread-safe)."""
        with self._tables_lock:
            return self._tables.setdefault(f"{region}/{table}", threading.Lock())

    def _get_items(self, client, table: str, keys: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Key text -> the item as it is now (consistent reads, 100 keys a call, unprocessed keys retried)."""
        names = list(keys[0]) if keys else []
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 100):
            todo: list[dict[str, Any]] = keys[start:start + 100]
            for attempt in range(ATTEMPTS + 3):
                answer = client.batch_get_item(RequestItems={table: {"Keys": todo, "ConsistentRead": True}})
                for raw in answer.get("Responses", {}).get(table, []):
                    out[key_text({n: raw[n] for n in names if n in raw})] = raw
                todo = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                if not todo:
                    break
                _backoff(attempt)
        return out

    def delete_recovery_point(self, action: dict[str, Any]):
        client = self.aws.client("backup", action["region"])
        try:
            client.delete_recovery_point(BackupVaultName=action["vault"], RecoveryPointArn=action["recovery_point"])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            return "failed", describe_error("backup:DeleteRecoveryPoint", exc), 0
        return "ok", None, 1
