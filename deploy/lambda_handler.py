"""AWS Lambda entry point for Vigil's scheduled job (EventBridge rules invoke it; see lambda_schedule.py).

The event says which job: {"job": "check" | "retain" | "report" | "run"} (default "run").
Everything else comes from the function's environment, so an event can never turn on deletion:
  VIGIL_POLICY       the policy file (default: policy.yaml packaged beside this handler)
  VIGIL_APPLY        "true": the retain and run jobs apply retention (default: plan only)
  VIGIL_MAX_DELETE   retention deletes nothing if a plan would delete more than this
  VIGIL_UPLOAD       s3://bucket/prefix of the Object-Lock evidence bucket (the report uploads there)
  VIGIL_SIGNING_KEY  a key file, or kms:<key id> (vigil report signs with AWS KMS)
  VIGIL_LOCK_BUCKET  take an S3 lock per job kind, so overlapping invocations never both run
  VIGIL_REGIONS      comma-separated regions in scope (default: the policy's)
  VIGIL_WORK_DIR     where run folders are written (default /tmp/vigil; the only writable place)
Returns the run summary. Exit 2 (bad input) or 3 (environment) raise, so the invocation
counts as failed and CloudWatch's Errors metric and alarms see it; exit 1 (a failed control)
is a result and is returned.
"""
from __future__ import annotations

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from vigil.retention.engine import LEDGER_FILE
from vigil.retention.ledger import dangling

from vigil.aws import Aws
from vigil.errors import ExitCode, UsageError
from vigil.locks import S3Lock
from vigil.policy import load_policy
from vigil.scheduler.logs import EventLog
from vigil.scheduler.pipeline import STAGES, JobOptions, run_pipeline
from vigil.stages.common import new_run_id

HERE = Path(__file__).resolve().parent
RUN_FOLDER = re.compile(r"^\d{8}T\d{6}Z-[a-z]+-[0-9a-f]+$")


class JobFailed(RuntimeError):
    """The job could not do its work (exit 2 or 3); raised so Lambda records an error."""


def options_from_env(job: str) -> JobOptions:
    regions = tuple(r.strip() for r in os.environ.get("VIGIL_REGIONS", "").split(",") if r.strip())
    return JobOptions(
        policy=os.environ.get("VIGIL_POLICY") or str(HERE / "policy.yaml"),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        regions=regions,
        apply=os.environ.get("VIGIL_APPLY", "").lower() == "true" and job in ("retain", "run"),
        signing_key=os.environ.get("VIGIL_SIGNING_KEY") or None,
        upload=os.environ.get("VIGIL_UPLOAD") or None,
        max_delete=_int_env("VIGIL_MAX_DELETE"),
        lock_bucket=os.environ.get("VIGIL_LOCK_BUCKET") or None,
    )


def _int_env(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise UsageError(f"{name}={text!r} is not a whole number")
    return int(text)


def handler(event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
    job = str((event or {}).get("job", "run"))
    log = EventLog("json")
    if job not in STAGES:
        log.event("job.rejected", level="error", job=job, reason="unknown job")
        raise JobFailed(f"unknown job {job!r} (one of {', '.join(STAGES)})")
    options = options_from_env(job)
    options.validate()
    work = Path(os.environ.get("VIGIL_WORK_DIR", "/tmp/vigil"))
    unfinished = _tidy_earlier_runs(work, job, options.apply)
    if unfinished is not None:  # a run of this job killed mid-apply: resumed in its own folder, on its own ledger
        run_id = unfinished.name
    else:
        stamp, _, token = new_run_id().partition("-")
        run_id = f"{stamp}-{job}-{token}"
    lock = _lock(options, job)
    if lock is not None and not lock.acquire():
        log.event("job.skipped", level="warning", job=job, reason=f"another run holds s3://{lock.bucket}/{lock.key}")
        return {"job": job, "skipped": True}
    try:
        result = run_pipeline(job, options, work / run_id, log, run_id=run_id)
    finally:
        if lock is not None:
            lock.release()
    summary = result.summary_fields()
    if result.exit_code in (ExitCode.USAGE, ExitCode.ENVIRONMENT):
        raise JobFailed(f"vigil {job} exited {result.exit_code}: {[s.message for s in result.stages if s.message]}")
    return summary


def _tidy_earlier_runs(work: Path, job: str, apply: bool) -> Path | None:
    """A warm container keeps /tmp: earlier run folders go (their packs were uploaded), but a
    ledger never does. A folder whose ledger still has intents without outcomes (a run killed
    mid-apply) is returned, newest first, for an applying run of the same job to resume in place;
    any other ledger stays where it is, beside the new run, and the rest of its folder goes."""
    unfinished = None
    if not work.is_dir():
        return None
    for folder in sorted(work.iterdir(), key=lambda p: p.name, reverse=True):  # run folders sort by time
        if not (folder.is_dir() and RUN_FOLDER.match(folder.name)):
            continue
        ledger = folder / LEDGER_FILE
        if not ledger.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            continue
        if unfinished is None and apply and f"-{job}-" in folder.name and dangling(ledger):
            unfinished = folder
            continue
        for item in folder.iterdir():
            if item != ledger:
                shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
    return unfinished


def _lock(options: JobOptions, job: str) -> S3Lock | None:
    bucket = os.environ.get("VIGIL_LOCK_BUCKET")
    if not bucket:
        return None
    region = options.regions[0] if options.regions else load_policy(options.policy).regions.primary
    s3 = Aws(endpoint_url=options.endpoint_url).client("s3", region)
    name = "retain" if options.apply else job  # every job that applies retention shares one lock
    return S3Lock(s3, bucket, f"vigil/locks/{name}.lock", timedelta(minutes=15))  # a Lambda lives 15 minutes at most
