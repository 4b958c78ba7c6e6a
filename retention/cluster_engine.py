"""`vigil retain --engine glue|emr-serverless`: the plan's S3 actions as one job run on AWS.

The driver plans locally as every engine does. With --apply it writes the cluster-bound actions
(rewrites and version deletes: spark_engine.CLUSTER_ACTIONS) as a slice to the artifacts bucket
(SSE-KMS: --artifacts-kms-key, else the bucket's default KMS key; the slice holds real object
keys, so its contents are never logged, and it is deleted, by version, once the run is over),
with every action's intent in the ledger (one fsync) before the job starts. A "job" ledger line
(fsync'd) names the slice before start_job_run and the run id after it. The run's idempotency
token comes from the run id: a resumed driver first looks the token up (Glue: the run's
--vigil-token argument; EMR Serverless: the run's name, and its clientToken) and polls that run
instead of starting a second. The job (cluster_job.py) writes outcomes in parts next to the
slice; at a terminal state the driver takes them into the ledger. A run that ended FAILED,
STOPPED or TIMEOUT keeps the outcomes it wrote; its other actions stay intents, resolved by the
next run against the stores as after any crash (resume.py), and this run exits 3 naming it.
DynamoDB batches and recovery points run on the driver, through the same Applier.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions

from vigil.aws import Aws, describe_error
from vigil.engines import CLUSTER_ENGINES, EMR, GLUE
from vigil.errors import EnvironmentFailure, UsageError
from vigil.permissions import RUNS_PREFIX  # slices and results, one folder per job run (the IAM grant's scope too)
from vigil.policy import Policy
from vigil.timestamps import iso_z

from . import faults
from . import ledger as ledgers
from .apply import Applier, Stats, hashed_target
from .cluster_job import bucket_key, datasets_json, results_prefix, split_uri, sse_args, write_slice
from .keys import RetentionKeys
from .spark_engine import CLUSTER_ACTIONS

SCRIPT_KEY = "vigil/spark_job.py"  # deploy/spark_job.py, uploaded next to the wheel (infra/components/spark_job.py)
ENV_ARCHIVE_KEY = "vigil/vigil-env.tar.gz"  # EMR Serverless: a venv-pack archive of vigil[spark] for the workers
JOB_LINE = "cluster_job_run"  # the ledger's "job" lines: the slice, the run id, the end state
SUCCEEDED = {GLUE: "SUCCEEDED", EMR: "SUCCESS"}
TERMINAL = {GLUE: {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"}, EMR: {"SUCCESS", "FAILED", "CANCELLED"}}
NEVER_STARTED = "NEVER_STARTED"  # a driver killed before start_job_run: its actions are planned again


@dataclass(frozen=True)
class ClusterSettings:
    engine: str  # glue or emr-serverless
    job: str  # the Glue job's name, or the EMR Serverless application's id
    bucket: str  # the artifacts bucket: the slice and the job's results go under RUNS_PREFIX
    role_arn: str | None = None  # EMR Serverless: the job run's execution role (passed: iam:PassRole)
    kms_key: str | None = None  # SSE-KMS key for the slice and results (None: the bucket's default KMS key)
    timeout: float = 24 * 3600.0  # seconds to poll before exiting 3 (the next run resumes polling)
    poll: float = 30.0

    def script(self) -> str:
        return f"s3://{self.bucket}/{SCRIPT_KEY}"


def settings_for(engine: str, glue_job: str | None, emr_application: str | None, emr_role: str | None,
                 bucket: str | None, kms_key: str | None = None, timeout_minutes: float = 24 * 60,
                 poll_seconds: float = 30.0) -> ClusterSettings | None:
    """The flags a cluster engine needs (exit 2 naming the missing one); None for local and spark."""
    if engine not in CLUSTER_ENGINES:
        return None
    job, flag = (glue_job, "--glue-job NAME (or VIGIL_GLUE_JOB)") if engine == GLUE else \
        (emr_application, "--emr-application ID (or VIGIL_EMR_APPLICATION)")
    missing = [flag] if not job else []
    if engine == EMR and not emr_role:
        missing.append("--emr-role ARN (or VIGIL_EMR_ROLE)")
    if not bucket:
        missing.append("--artifacts-bucket BUCKET (or VIGIL_ARTIFACTS_BUCKET)")
    if missing:
        raise UsageError(f"--engine {engine} needs {' and '.join(missing)}; nothing was changed")
    if timeout_minutes <= 0:
        raise UsageError("--job-timeout must be more than 0 minutes")
    assert job and bucket
    return ClusterSettings(engine, job, bucket, emr_role, kms_key, timeout_minutes * 60, poll_seconds)


def token_for(run_id: str) -> str:
    """The job run's idempotency token: one per retention run (fits EMR's clientToken and name)."""
    return "vigil-" + hashlib.sha256(f"cluster-run:{run_id}".encode()).hexdigest()[:40]


def _job_action(token: str) -> dict[str, str]:
    return {"action_id": token, "action": JOB_LINE, "store": "*"}


class _Jobs:
    """One engine's job-run API: find a run by its token, start one, read its state."""

    def __init__(self, aws: Aws, target: dict[str, Any]):
        self.engine, self.job = target["engine"], target["job"]
        self.client = aws.client("glue" if self.engine == GLUE else "emr-serverless", target["region"])

    def _call(self, what: str, call, **args: Any) -> Any:
        try:
            return call(**args)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise EnvironmentFailure(f"{describe_error(what, exc)}; the plan's actions stay intents in the ledger "
                                     "and the next run with this --output picks the job run up") from None

    def find(self, token: str) -> str | None:
        if self.engine == GLUE:
            pages = self._call("glue:GetJobRuns", lambda: list(
                self.client.get_paginator("get_job_runs").paginate(JobName=self.job)))
            return next((r["Id"] for p in pages for r in p["JobRuns"] if (r.get("Arguments") or {}).get("--vigil-token") == token), None)
        try:
            pages = list(self.client.get_paginator("list_job_runs").paginate(applicationId=self.job))
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":  # no application: no run either
                raise EnvironmentFailure(describe_error("emr-serverless:ListJobRuns", exc)) from None
            return None
        return next((r["id"] for p in pages for r in p["jobRuns"] if r.get("name") == token), None)

    def start(self, token: str, target: dict[str, Any], settings: ClusterSettings) -> str:
        uri, sha = target["slice"], target["sha256"]
        if self.engine == GLUE:
            arguments = {"--vigil-slice": uri, "--vigil-slice-sha256": sha, "--vigil-region": target["region"],
                         "--vigil-token": token}
            return self._call("glue:StartJobRun", self.client.start_job_run, JobName=self.job, Arguments=arguments)["JobRunId"]
        python = "./environment/bin/python"
        submit = (f"--conf spark.archives=s3://{settings.bucket}/{ENV_ARCHIVE_KEY}#environment "
                  f"--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={python} "
                  f"--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON={python} --conf spark.executorEnv.PYSPARK_PYTHON={python}")
        driver = {"sparkSubmit": {"entryPoint": settings.script(), "sparkSubmitParameters": submit,
                                  "entryPointArguments": ["--vigil-slice", uri, "--vigil-slice-sha256", sha,
                                                          "--vigil-region", target["region"]]}}
        return self._call("emr-serverless:StartJobRun", self.client.start_job_run, applicationId=self.job, clientToken=token,
                          name=token, executionRoleArn=settings.role_arn, jobDriver=driver,
                          executionTimeoutMinutes=max(5, int(settings.timeout // 60)))["jobRunId"]

    def state(self, run_id: str) -> tuple[str, str]:
        if self.engine == GLUE:
            run = self._call("glue:GetJobRun", self.client.get_job_run, JobName=self.job, RunId=run_id)["JobRun"]
            return run["JobRunState"], run.get("ErrorMessage") or ""
        run = self._call("emr-serverless:GetJobRun", self.client.get_job_run, applicationId=self.job, jobRunId=run_id)["jobRun"]
        return run["state"], run.get("stateDetails") or ""


@dataclass
class ClusterApplier:
    """Sends the plan's S3 actions to one job run; the ledger, the counts and the rest stay here."""

    local: Applier
    aws: Aws
    policy: Policy
    settings: ClusterSettings
    run_id: str
    as_of: datetime
    closed: dict[str, datetime]
    stores: list[str]
    region: str
    policy_text: str = field(init=False)

    def __post_init__(self) -> None:  # read now, before any intent: the job checks it by its hash
        raw = Path(self.policy.source_path or "").read_bytes()
        if hashlib.sha256(raw).hexdigest() != self.policy.sha256:
            raise UsageError(f"{self.policy.source_path} changed while the plan was made; run again. Nothing was changed")
        self.policy_text = raw.decode("utf-8")

    def run(self, actions: Iterable[dict[str, Any]]) -> Stats:
        token = token_for(self.run_id)
        key = f"{RUNS_PREFIX}{token}/slice.jsonl.gz"
        ledger, driver_side = self.local.ledger, list[dict[str, Any]]()

        def cluster_bound() -> Iterator[dict[str, Any]]:
            for action in actions:
                if action["action"] not in CLUSTER_ACTIONS:
                    driver_side.append(action)
                    continue
                ledger.write("intent", action, hashed_target(action, self.local.keys), sync=False)
                yield action

        s3 = self.aws.client("s3", self.region)
        kms_key = self.settings.kms_key or bucket_key(s3, self.settings.bucket)
        header = {"token": token, "run_id": self.run_id, "as_of": self.as_of.isoformat(), "policy": self.policy_text,
                  "policy_sha256": self.policy.sha256, "key_fingerprint": self.local.keys.fingerprint,
                  "closed": {subject: at.isoformat() for subject, at in self.closed.items()}, "stores": self.stores,
                  "kms_key": kms_key, "datasets": datasets_json(self.local.datasets)}
        with tempfile.TemporaryFile() as handle:  # unnamed: a kill leaves no copy of the real keys behind
            count = write_slice(handle, header, cluster_bound())
            if count:
                ledger.sync()  # every intent on disk before anything can start
                handle.seek(0)
                sha = hashlib.file_digest(handle, "sha256").hexdigest()
                handle.seek(0)
                try:
                    put = s3.put_object(Bucket=self.settings.bucket, Key=key, Body=handle, **sse_args(kms_key))
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                    raise EnvironmentFailure(f"{describe_error('s3:PutObject (the plan slice)', exc)}; no job was started, "
                                             "and the next run plans these actions again") from None
        if count:
            target = {"engine": self.settings.engine, "job": self.settings.job, "region": self.region, "actions": count,
                      "slice": f"s3://{self.settings.bucket}/{key}", "slice_version": put.get("VersionId"), "sha256": sha}
            ledger.write("job", _job_action(token), target, detail={"state": "STARTING"})
            faults.at("cluster.before_start")
            jobs = _Jobs(self.aws, target)
            job_run = jobs.start(token, target, self.settings)  # a new token: only a resumed driver looks it up
            faults.at("cluster.after_start")
            ledger.write("job", _job_action(token), target, detail={"state": "STARTED", "job_run_id": job_run})
        self.local.run(driver_side)  # DynamoDB batches and recovery points, while the job runs
        if count:
            finish(self.aws, self.local, token, target, job_run, self.settings.timeout, self.settings.poll)
        return self.local.stats


def finish(aws: Aws, recorder: Applier, token: str, target: dict[str, Any], job_run: str, timeout: float, poll: float) -> None:
    """Poll the run to a terminal state, take its outcomes into the ledger, remove the slice and results."""
    jobs, deadline = _Jobs(aws, target), time.monotonic() + timeout
    state, message = jobs.state(job_run)
    while state not in TERMINAL[jobs.engine]:
        if time.monotonic() >= deadline:
            raise EnvironmentFailure(
                f"the {jobs.engine} job run {job_run} is still {state} after {timeout / 60:g} minutes; nothing is lost: "
                "its actions stay intents, and the next `vigil retain --apply` with this --output resumes polling it")
        time.sleep(max(0.0, min(poll, deadline - time.monotonic())))
        state, message = jobs.state(job_run)
    s3 = aws.client("s3", target["region"])
    collected = _collect(s3, recorder, target)
    missing = target["actions"] - collected
    detail = {"state": state, "job_run_id": job_run, "outcomes": collected, "missing": missing, "message": message[:500]}
    recorder.ledger.write("job", _job_action(token), target, detail=detail)
    _remove(s3, target)
    if state != SUCCEEDED[jobs.engine] or missing:
        why = f" ({message[:300]})" if message else ""
        raise EnvironmentFailure(
            f"the {jobs.engine} job run {job_run} of {target['job']} ended {state}{why}: {collected} of its {target['actions']} "
            f"actions reported outcomes (in the ledger); the other {missing} stay intents, which the next run resolves "
            "against the stores and plans again")


def _collect(s3, recorder: Applier, target: dict[str, Any]) -> int:
    """The job's results parts into ledger outcomes, for this slice's intents that have none yet."""
    bucket, key = split_uri(target["slice"])
    open_intents = ledgers.dangling(recorder.ledger.path)
    collected = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=results_prefix(key)):
        for part in sorted(page.get("Contents", []), key=lambda o: o["Key"]):
            for line in s3.get_object(Bucket=bucket, Key=part["Key"])["Body"].iter_lines():
                if not line.strip():
                    continue
                result = json.loads(line)
                intent = open_intents.pop(result["action_id"], None)  # None: already has its outcome
                if intent is not None:
                    recorder.record(intent, intent["target"], (result["outcome"], result["detail"], result["done"]))
                    collected += 1
    return collected


def _remove(s3, target: dict[str, Any]) -> None:
    """The slice (its exact version: it holds real keys) and the results parts, once in the ledger."""
    bucket, key = split_uri(target["slice"])
    version = {"VersionId": target["slice_version"]} if target.get("slice_version") else {}
    s3.delete_object(Bucket=bucket, Key=key, **version)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=results_prefix(key)):
        for part in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=part["Key"])


def pending_jobs(path: Path) -> dict[str, dict[str, Any]]:
    """token -> the last "job" line of each job run this folder's ledger started and never finished."""
    last: dict[str, dict[str, Any]] = {}
    if path.exists():
        for entry in ledgers.read_lines(path):
            if entry.get("phase") == "job" and entry.get("action") == JOB_LINE:  # Batch Operations jobs have their own
                last[entry["action_id"]] = entry
    return {token: line for token, line in last.items()
            if line["detail"]["state"] not in TERMINAL[line["target"]["engine"]] | {NEVER_STARTED}}


def finish_pending(aws: Aws, keys: RetentionKeys, path: Path, run_id: str, policy_sha256: str, engine: str,
                   settings: ClusterSettings | None) -> int:
    """Before a run plans (any engine): poll the job runs a killed driver left in this folder's ledger
    and take their outcomes (a run is found by its token, so none is started twice). Returns the
    outcomes taken into the ledger."""
    pending = pending_jobs(path)
    if not pending:
        return 0
    timeout, poll = (settings.timeout, settings.poll) if settings else (ClusterSettings.timeout, ClusterSettings.poll)
    ledger = ledgers.Ledger(path, run_id, policy_sha256, keys.fingerprint, engine)
    try:
        recorder = Applier(aws, keys, ledger, lambda name: (), workers=1)
        _finish_all(aws, recorder, pending, timeout, poll)
    finally:
        ledger.close()
    stats = recorder.stats
    return stats.ok + stats.failed + stats.skipped


def _finish_all(aws: Aws, recorder: Applier, pending: dict[str, dict[str, Any]], timeout: float, poll: float) -> None:
    ledger = recorder.ledger
    for token, line in pending.items():
        target = line["target"]
        job_run = line["detail"].get("job_run_id") or _Jobs(aws, target).find(token)
        if job_run is None:  # killed before the start: the slice is stale, its actions are planned again
            ledger.write("job", _job_action(token), target, detail={"state": NEVER_STARTED, "at": iso_z(datetime.now(UTC))})
            _remove(aws.client("s3", target["region"]), target)
            continue
        if not line["detail"].get("job_run_id"):
            ledger.write("job", _job_action(token), target, detail={"state": "STARTED", "job_run_id": job_run})
        finish(aws, recorder, token, target, job_run, timeout, poll)
