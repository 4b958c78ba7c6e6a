"""Collecting an S3 Batch Operations job vigil created (`vigil retain --collect JOB_ID`, or the next run).

DescribeJob says whether the job is done. Until it is, nothing is marked done. Once it is
Complete (or Failed or Cancelled), its completion report (AWS's `Report_CSV_20180820`:
`<prefix>/job-<id>/manifest.json` naming result CSVs, each with its MD5) is read into the
ledger: `result` lines of up to 1,000 versions each (keys as keyed hashes, every version with
what happened to it; a lock or hold is `held`, with its reason), then the job's one outcome.
Then verify: each planned version is asked for by id (HeadObject), never by listing the bucket;
a version still there must be one the handler refused because it is held. The next inventory
report re-verifies the rest of the bucket.

A collection killed halfway resumes: the job's result lines already written are counted and the
report's rows (always read in the same order) continue after them.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import botocore.exceptions

from vigil.aws import Aws, describe_error
from vigil.errors import EnvironmentFailure, UsageError

from . import ledger as ledgers
from .batch_jobs import EXECUTOR, BatchExecutor, BatchSettings, Job, create_job, takes
from .keys import RetentionKeys

TERMINAL = ("Complete", "Failed", "Cancelled")
CHUNK = 1000
VERIFY_SLICE = 10_000  # versions asked for at a time
GONE = {"NoSuchVersion", "NoSuchKey", "404", "NotFound"}
# The handler's own result strings (batch_ops.py), which name no key; anything else is reduced to its error code.
OWN_MESSAGES = ("held:", "not past retention", "HeadObject:", "DeleteObject:", "the task names", "already gone", "deleted",
                "rewritten", "skipped:")


def open_jobs(path: Path) -> dict[str, dict[str, Any]]:
    """token -> {intent, job_id, written (result lines)} for every job intent without an outcome."""
    jobs: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return jobs
    for entry in ledgers.read_lines(path):
        token, phase = str(entry.get("action_id")), entry.get("phase")
        if phase == "intent" and (entry.get("target") or {}).get("executor") == EXECUTOR:
            jobs[token] = {"intent": entry, "job_id": None, "written": 0}
        elif token in jobs and phase == "job":
            jobs[token]["job_id"] = entry["target"]["job_id"]
        elif token in jobs and phase == "result":
            jobs[token]["written"] += 1
        elif phase == "outcome":
            jobs.pop(token, None)
    return jobs


def is_batch_intent(intent: dict[str, Any]) -> bool:
    """A job's intent is resolved by collecting the job, never by the listing-based resume."""
    return (intent.get("target") or {}).get("executor") == EXECUTOR


def classify(row: list[str]) -> tuple[str, str]:
    """(deleted | rewritten | held | kept | failed, reason) for one report row. AWS's example rows put the
    HTTP status before the error code although ReportSchema lists them the other way: told apart by content."""
    task, message = row[3], (row[6] if len(row) > 6 else "").strip()
    if task == "succeeded" or task.strip().lower() == "succeeded":
        return ("rewritten", message[:200]) if message.startswith("rewritten") else ("deleted", "")
    if message.startswith("held:"):
        return "held", message[:200]
    if message.startswith("not past retention"):
        return "kept", message[:200]
    code = next((c.strip() for c in row[4:6] if c.strip() and not c.strip().isdigit()), "failed")
    # A message of the handler's own names no key; anything else (a Lambda error) might: the code alone.
    return "failed", message[:200] if message.startswith(OWN_MESSAGES) else code


def _decoded(key: str) -> str:
    """A key as the manifest and the report write it (URL-encoded), decoded; most keys need no decoding."""
    return unquote_plus(key) if "%" in key or "+" in key else key


def report_rows(s3: Any, bucket: str, prefix: str, job_id: str) -> Iterator[list[str]]:
    """Every row of the job's completion report, result files in the report manifest's order."""
    key = f"{prefix.rstrip('/')}/job-{job_id}/manifest.json"
    doc = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if doc.get("Format") != "Report_CSV_20180820":
        raise ValueError(f"s3://{bucket}/{key}: report format {doc.get('Format')!r}, expected Report_CSV_20180820")
    for result in doc.get("Results", []):
        body = s3.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"].read()
        if hashlib.md5(body).hexdigest() != str(result.get("MD5Checksum", "")).lower():  # noqa: S324 - AWS's checksum is MD5
            raise ValueError(f"s3://{result['Bucket']}/{result['Key']}: MD5 does not match the report manifest")
        yield from csv.reader(io.StringIO(body.decode("utf-8")))


class Collector:
    """Resolves a ledger's open jobs: each is pending, or read into results and one outcome, then verified."""

    def __init__(self, aws: Aws, keys: RetentionKeys, settings: BatchSettings | None = None, control: Any = None,
                 workers: int = 16):
        self.aws = aws
        self.keys = keys
        self.settings = settings
        self.control = control or (lambda region: aws.client("s3control", region))
        self.workers = workers

    def collect(self, ledger: ledgers.Ledger, only: str | None = None) -> list[Job]:
        jobs = open_jobs(ledger.path)
        if only is not None:
            jobs = {t: j for t, j in jobs.items() if j["job_id"] == only}
            if not jobs:
                raise UsageError(f"--collect {only}: not a job of {ledger.path} still waiting for its results "
                                 "(use the --output folder of the run that created it)")
        return [self._one(ledger, token, job) for token, job in jobs.items()]

    def _one(self, ledger: ledgers.Ledger, token: str, job: dict[str, Any]) -> Job:
        intent = job["intent"]
        target = intent["target"]
        out = Job(token, intent["store"], target["location"], target["region"], target["count"], job["job_id"], collected=True)
        control = self.control(target["region"])
        account = self.aws.account_id(target["region"])
        if out.job_id is None:  # killed between the intent and AWS's answer: the same token finds (or makes) the job
            if self.settings is None:
                out.status, out.note = "unknown", "its creation was interrupted; run again with --executor batch-operations"
                return out
            self._check_manifest(target)
            confirm = bool((intent.get("detail") or {}).get("confirmation_required", True))
            out.job_id = create_job(control, account, target, token, self.settings, confirm)
            ledger.write("job", intent, {"location": target["location"], "region": target["region"], "job_id": out.job_id},
                         detail={"confirmation_required": confirm, "resumed": True})
        described = control.describe_job(AccountId=account, JobId=out.job_id)["Job"]
        out.status, out.confirmation_required = described["Status"], bool(described.get("ConfirmationRequired"))
        if out.status not in TERMINAL:
            out.note = f"not complete yet ({out.status}); nothing is marked done: collect it again later"
            if out.status == "Suspended" and out.confirmation_required:
                out.note = "waiting for a person to confirm it (ConfirmationRequired); nothing is marked done"
            return out
        held = self._results(ledger, intent, out, job["written"], described)
        out.remaining = self._verify(target, held)
        ok = out.status == "Complete" and not out.results.get("failed") and out.remaining == 0
        done = out.results.get("deleted", 0) + out.results.get("rewritten", 0)  # a rewrite removes its raw version too
        ledger.write("outcome", intent, {**target, "count": done}, "ok" if ok else "failed",
                     {"job_id": out.job_id, "status": out.status, "results": out.results, "verify_remaining": out.remaining,
                      "failure_reasons": [f.get("FailureReason", "") for f in described.get("FailureReasons", [])][:5]})
        return out

    def _results(self, ledger: ledgers.Ledger, intent: dict[str, Any], out: Job, written: int,
                 described: dict[str, Any]) -> set[str]:
        """Writes the report's result lines not yet in the ledger; returns the versions left on purpose."""
        report = described.get("Report") or {}
        bucket = str(report.get("Bucket", "")).removeprefix("arn:aws:s3:::")
        kept: set[str] = set()
        counts = dict.fromkeys(("deleted", "rewritten", "held", "kept", "failed"), 0)
        chunk: dict[str, Any] = {}
        index = 0
        s3 = self.aws.client("s3", out.region)
        rows = report_rows(s3, bucket, report.get("Prefix", ""), str(out.job_id)) if report.get("Enabled") else iter(())
        seen = 0
        try:
            for row in rows:
                status, reason = classify(row)
                version = f"{self.keys.hash(_decoded(row[1]))}:{row[2] or 'null'}"
                counts[status] += 1
                if status in ("held", "kept"):
                    kept.add(version)
                if status == "deleted":
                    chunk.setdefault("deleted", []).append(version)
                else:
                    chunk.setdefault(status, {})[version] = reason
                seen += 1
                if seen % CHUNK == 0:
                    index = self._chunk(ledger, intent, out, index, written, chunk)
                    chunk = {}
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in GONE or seen:
                raise
            # no task ran: AWS writes no report
        if chunk:
            self._chunk(ledger, intent, out, index, written, chunk)
        if seen < out.count:
            counts["failed"] += out.count - seen  # planned versions no task reported: not done
        out.results = counts
        return kept

    @staticmethod
    def _chunk(ledger: ledgers.Ledger, intent: dict[str, Any], out: Job, index: int, written: int, chunk: dict[str, Any]) -> int:
        """One result line of up to CHUNK versions; a resumed collection skips the first `written`."""
        if index >= written:
            ledger.write("result", intent, {"location": out.location, "count": sum(len(v) for v in chunk.values())},
                         detail={"chunk": index, **chunk})
        return index + 1

    def _manifest(self, target: dict[str, Any]) -> Iterator[list[str]]:
        """The job's manifest rows as stored in S3, streamed; ends with an error when its SHA-256 is not
        the one the ledger's intent recorded."""
        manifest = target["manifest"]
        body = self.aws.client("s3", target["region"]).get_object(Bucket=manifest["bucket"], Key=manifest["key"])["Body"]
        digest = hashlib.sha256()
        for line in body.iter_lines(chunk_size=1 << 16, keepends=True):
            digest.update(line)
            yield next(csv.reader([line.decode("utf-8")]))
        if digest.hexdigest() != manifest["sha256"]:
            raise UsageError(f"s3://{manifest['bucket']}/{manifest['key']}: does not match the SHA-256 in the ledger's "
                             "intent; the job is not touched")

    def _check_manifest(self, target: dict[str, Any]) -> None:
        for _row in self._manifest(target):
            pass

    def _verify(self, target: dict[str, Any], kept: set[str]) -> int:
        """Planned versions still there that the handler did not refuse as held: HeadObject by id, no listing;
        the manifest is streamed a slice at a time, so memory stays flat however many versions it names."""
        s3 = self.aws.client("s3", target["region"])

        def left(row: list[str]) -> int:
            key, version = _decoded(row[1]), row[2]
            try:
                s3.head_object(Bucket=row[0], Key=key, VersionId=version)
            except botocore.exceptions.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code"))
                if code in GONE:
                    return 0
                if code not in ("405", "MethodNotAllowed"):  # 405: a delete marker, which is still there
                    raise EnvironmentFailure(f"verify: {describe_error('s3:HeadObject', exc)}; the job stays open, collect it again") from None
            return 0 if f"{self.keys.hash(key)}:{version}" in kept else 1

        remaining = 0
        rows = self._manifest(target)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vigil-batch-verify") as pool:
            while piece := list(islice(rows, VERIFY_SLICE)):
                remaining += sum(pool.map(left, piece))
        return remaining

class BatchRun:
    """What a retention run with `--executor batch-operations` asks of this executor. The engine is
    handed one and never imports these modules: their IAM (s3:CreateJob, iam:PassRole) is granted
    only to the runs that use them (vigil.permissions)."""

    def __init__(self, aws: Aws, keys: RetentionKeys, settings: BatchSettings, apply: bool, control: Any = None,
                 workers: int = 16, stores: frozenset[str] | None = None):
        self.executor = BatchExecutor(aws, keys, settings, apply, control)
        self.collector = Collector(aws, keys, settings, control, workers)
        self.stores = stores  # the stores whose S3 versions go to jobs (their policy's `executor:`); None: every store

    def takes(self, action: dict[str, Any]) -> bool:
        return takes(action) and (self.stores is None or action["store"] in self.stores)

    def collect(self, path: Path, ledger: Callable[[], ledgers.Ledger]) -> list[Job]:
        """Every open job of the ledger at `path` (opened only when there is one), before anything is planned:
        what a done job deleted is then not planned again."""
        if not open_jobs(path):
            return []
        with closing(ledger()) as opened:
            return self.collector.collect(opened)

    def submit(self, ledger: ledgers.Ledger, actions: Iterable[dict[str, Any]], earlier: list[Job],
               reports: dict[str, datetime]) -> list[Job]:
        """`reports`: location ARN -> when the inventory report it was planned from was made. A report older
        than the last collection of a job there still lists what that job deleted: no job from it."""
        busy = {job.location: "an earlier job of this location is still open; collect it first"
                for job in earlier if job.status not in TERMINAL}
        collected = last_collected(ledger.path)
        for location, created in reports.items():
            if location in collected and created < collected[location] and location not in busy:
                busy[location] = (f"its inventory report ({created.isoformat()}) predates the last job collected there "
                                  f"({collected[location].isoformat()}); the next report plans what is left")
        return self.executor.submit(ledger, actions, busy)


def last_collected(path: Path) -> dict[str, datetime]:
    """Location ARN -> when a job there was last collected (its outcome line)."""
    out: dict[str, datetime] = {}
    for entry in ledgers.read_lines(path) if path.exists() else ():
        target = entry.get("target") or {}
        if entry.get("phase") == "outcome" and target.get("executor") == EXECUTOR:
            when = datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00"))
            out[target["location"]] = max(when, out.get(target["location"], when))
    return out
