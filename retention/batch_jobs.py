"""S3 Batch Operations as the executor of a plan's S3 version deletes (`vigil retain --executor batch-operations`).

Per location (a store bucket, or a replica in its own region) the planned versions become one
CSV manifest (`Bucket,Key,VersionId`, keys URL-encoded) in the batch bucket, and one LambdaInvoke
job (invocation schema 2.0) runs vigil's handler (retention/batch_ops.py) on each version; the
handler asks S3 again and refuses anything held. The ledger gets the job's intent, with the
manifest's SHA-256 and ETag, before the job is created; the job's id when AWS answers; and,
once the job is complete, its results and one outcome (batch_reports.py).

The job's ClientRequestToken is the job action's id, a digest of the plan actions it carries:
a run resumed after a crash asks again with the same token and gets the same job, never a
second one. Without --apply the job is created with ConfirmationRequired, so AWS holds it until
a person confirms it: vigil itself deletes nothing. Anonymizing rewrites go to the same jobs: the
handler plans the one version again and runs the retention rewrite on it (batch_ops.py). Rewrites
judged by dataset-wide k, DynamoDB, recovery points and PostgreSQL stay on the local path.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vigil.aws import Aws
from vigil.engines import BATCH_OPERATIONS, EXECUTORS
from vigil.errors import UsageError

from .keys import RetentionKeys

EXECUTOR = BATCH_OPERATIONS
PREFIX = "vigil/batch/"  # manifests and completion reports, under the batch bucket
FIELDS = ["Bucket", "Key", "VersionId"]
MAX_VERSIONS = 40_000_000  # per job: its manifest stays under PutObject's 5 GB (rows are ~100 bytes)
CONFIRM_NOTE = "held by AWS until a person confirms it (ConfirmationRequired); vigil deleted nothing"


@dataclass(frozen=True)
class BatchSettings:
    """Where the manifests and reports go, the Lambda the job invokes and the role the job runs as.
    `bucket` and an ARN `function` may name `{region}`: a job runs in its bucket's region, so a
    replica elsewhere needs a batch bucket and a function there."""

    bucket: str
    function: str  # a function name (its ARN is built per region) or an ARN
    role_arn: str
    priority: int = 10

    def bucket_in(self, region: str) -> str:
        return self.bucket.replace("{region}", region)

    def function_in(self, region: str, account: str) -> str:
        if self.function.startswith("arn:"):
            return self.function.replace("{region}", region)
        return f"arn:aws:lambda:{region}:{account}:function:{self.function}"


def batch_settings(executor: str, bucket: str | None, function: str | None, role: str | None,
                   priority: int = 10, why: str = f"--executor {EXECUTOR}") -> BatchSettings | None:
    """The executor's settings from flags (exit 2 naming the flag that is missing or wrong); `why`: what asked for it."""
    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if executor == "local":
        return None
    for flag, value in (("--batch-bucket (or VIGIL_BATCH_BUCKET)", bucket), ("--batch-function (or VIGIL_BATCH_FUNCTION)", function),
                        ("--batch-role (or VIGIL_BATCH_ROLE)", role)):
        if not value:
            raise UsageError(f"{why} needs {flag}")
    assert bucket and function and role
    if not role.startswith("arn:aws") or ":role/" not in role:
        raise UsageError(f"--batch-role {role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    if function.startswith("arn:") and ":lambda:" not in function:
        raise UsageError(f"--batch-function {function!r} is not a Lambda function ARN or name")
    if priority < 0:
        raise UsageError("--batch-priority must be 0 or more")
    return BatchSettings(bucket, function, role, priority)


JOB_ACTIONS = ("delete_versions", "anonymize_object", "rewrite_object")


def takes(action: dict[str, Any]) -> bool:
    """The actions a job carries: every S3 version the plan deletes or rewrites, except rewrites judged by
    dataset-wide k (verify.scope: dataset): the handler sees one object, not the location's suppression set."""
    return action["action"] in JOB_ACTIONS and action.get("k_scope") != "dataset"


def versions_of(action: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(key, version id) of every version an S3 action names."""
    return action["objects"] if "objects" in action else [(action["object"], action["version_id"])]


def manifest_lines(bucket: str, versions: Iterable[tuple[str, str]]) -> bytes:
    """Manifest rows; Batch Operations expects URL-encoded keys (the handler decodes them)."""
    return "".join([f"{bucket},{quote(key, safe='/')},{version}\n" for key, version in versions]).encode()


def manifest_line(bucket: str, key: str, version: str) -> bytes:
    return manifest_lines(bucket, [(key, version)])


@dataclass
class Location:
    """One job being assembled: its manifest streamed to a private file, digested as it grows."""

    store: str
    bucket: str
    region: str
    path: Path
    sha256: Any = field(default_factory=hashlib.sha256)
    token: Any = field(default_factory=hashlib.sha256)
    count: int = 0
    size: int = 0

    def add(self, action: dict[str, Any]) -> None:
        lines = manifest_lines(self.bucket, versions_of(action))  # one write and one digest update per action
        with self.path.open("ab") as out:
            out.write(lines)
        self.sha256.update(lines)
        self.token.update(action["action_id"].encode())
        self.count += action.get("count", 1)
        self.size += action.get("bytes", 0)

    @property
    def job_action(self) -> dict[str, Any]:
        """The ledger's action for the whole job; its id is the job's ClientRequestToken."""
        digest = hashlib.sha256(f"{self.store}|{self.bucket}|{self.region}|".encode() + self.token.digest())
        return {"action_id": digest.hexdigest()[:32], "action": "delete_versions", "store": self.store}


def job_target(loc: Location, settings: BatchSettings, etag: str) -> dict[str, Any]:
    token = loc.job_action["action_id"]
    bucket = settings.bucket_in(loc.region)
    return {"location": f"arn:aws:s3:::{loc.bucket}", "region": loc.region, "executor": EXECUTOR,
            "manifest": {"bucket": bucket, "key": f"{PREFIX}manifests/{token}.csv", "sha256": loc.sha256.hexdigest(),
                         "etag": etag},
            "report_prefix": f"{PREFIX}reports", "count": loc.count, "bytes": loc.size}


def create_job(control: Any, account: str, target: dict[str, Any], token: str, settings: BatchSettings,
               confirm: bool) -> str:
    """CreateJob for one location's manifest (the same token always names the same job)."""
    manifest = target["manifest"]
    answer = control.create_job(
        AccountId=account, ConfirmationRequired=confirm, ClientRequestToken=token,
        Operation={"LambdaInvoke": {"FunctionArn": settings.function_in(target["region"], account),
                                    "InvocationSchemaVersion": "2.0", "UserArguments": {"vigil_job": token}}},
        Manifest={"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": FIELDS},
                  "Location": {"ObjectArn": f"arn:aws:s3:::{manifest['bucket']}/{manifest['key']}", "ETag": manifest["etag"]}},
        Report={"Bucket": f"arn:aws:s3:::{manifest['bucket']}", "Format": "Report_CSV_20180820", "Enabled": True,
                "Prefix": target["report_prefix"], "ReportScope": "AllTasks"},
        Priority=settings.priority, RoleArn=settings.role_arn,
        Description=f"vigil retention: {target['count']} planned versions of {target['location'].removeprefix('arn:aws:s3:::')}"[:256])
    return str(answer["JobId"])


@dataclass
class Job:
    """What a run says about one job: in retention-plan.json and on the console."""

    token: str
    store: str
    location: str
    region: str
    count: int
    job_id: str | None = None
    status: str = "New"
    confirmation_required: bool = False
    results: dict[str, int] = field(default_factory=dict)  # deleted / held / kept / failed, once collected
    remaining: int | None = None  # versions still there and not held, once verified
    note: str = ""
    collected: bool = False  # a collection was attempted in this run (pending then is not success)

    @property
    def failed(self) -> bool:
        if self.collected and self.status != "Complete":
            return True
        return bool(self.results.get("failed")) or bool(self.remaining)

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "token": self.token, "store": self.store, "location": self.location,
                "region": self.region, "versions": self.count, "status": self.status,
                "confirmation_required": self.confirmation_required, "results": self.results,
                "verify": None if self.remaining is None else {"status": "fail" if self.remaining else "pass",
                                                               "remaining": self.remaining},
                "note": self.note}


class BatchExecutor:
    """Builds each location's manifest from the plan's delete actions and creates its job."""

    def __init__(self, aws: Aws, keys: RetentionKeys, settings: BatchSettings, apply: bool, control: Any = None):
        self.aws = aws
        self.keys = keys
        self.settings = settings
        self.apply = apply
        self.control = control or (lambda region: aws.client("s3control", region))  # tests: a stand-in for s3control only
        self.jobs: list[Job] = []

    def submit(self, ledger: Any, actions: Iterable[dict[str, Any]], busy: dict[str, str] | None = None) -> list[Job]:
        """One job per location with planned versions (none without); `busy`: location ARN -> why no job
        is made there now (an earlier job still open, or a plan from a report older than its results)."""
        busy = busy or {}
        with tempfile.TemporaryDirectory(prefix="vigil-batch-") as scratch:
            os.chmod(scratch, 0o700)  # the manifests hold real keys until uploaded
            filling: dict[tuple[str, str, str], Location] = {}
            locations: list[Location] = []
            for action in actions:
                where = (action["store"], action["location"], action["region"])
                if where not in filling or filling[where].count >= MAX_VERSIONS:  # a very large location: more jobs
                    filling[where] = Location(*where, Path(scratch) / f"{len(locations)}.csv")
                    locations.append(filling[where])
                filling[where].add(action)
            for loc in locations:
                if f"arn:aws:s3:::{loc.bucket}" in busy:
                    self.jobs.append(Job(loc.job_action["action_id"], loc.store, f"arn:aws:s3:::{loc.bucket}", loc.region,
                                         loc.count, note=busy[f"arn:aws:s3:::{loc.bucket}"]))
                    continue
                self.jobs.append(self._one(ledger, loc))
        return self.jobs

    def _one(self, ledger: Any, loc: Location) -> Job:
        action = loc.job_action
        token = action["action_id"]
        bucket, key = self.settings.bucket_in(loc.region), f"{PREFIX}manifests/{token}.csv"
        s3 = self.aws.client("s3", loc.region)
        with loc.path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        etag = str(s3.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
        target = job_target(loc, self.settings, etag)
        confirm = not self.apply
        ledger.write("intent", action, target, detail={"confirmation_required": confirm})  # on disk before the job exists
        job_id = create_job(self.control(loc.region), self.aws.account_id(loc.region), target, token, self.settings, confirm)
        ledger.write("job", action, {"location": target["location"], "region": loc.region, "job_id": job_id},
                     detail={"confirmation_required": confirm})
        return Job(token, loc.store, target["location"], loc.region, loc.count, job_id, "Suspended" if confirm else "New",
                   confirm, note=CONFIRM_NOTE if confirm else "")
