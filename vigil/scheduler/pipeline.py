"""One job = a few stages run in-process through their typed entry points (vigil.stages), all into one folder.

Stages talk to each other only through the folder (findings.json, retention-plan.json,
ledger.jsonl, the evidence pack), exactly as a person chaining the commands would.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil import safe_write
from vigil.accounts.model import AccountsOptions
from vigil.aws import Aws
from vigil.errors import ExitCode, UsageError
from vigil.evidence import keys
from vigil.retention.guard import refuse_future_as_of
from vigil.scheduler.logs import EventLog
from vigil.scheduler.results import RunResult, StageResult, findings_summary, retention_counts
from vigil.stages.check import CheckOptions, check
from vigil.stages.common import parse_as_of, run_stage
from vigil.stages.report import ReportOptions, report
from vigil.stages.requests import ProcessOptions, process
from vigil.stages.retain import RetainOptions, retain
from vigil.stages.verify import VerifyOptions, verify

# What each job runs. Every folder is a complete evidence pack: the report needs the check's
# findings.json, and a failed check still gets its report; verify re-checks the signed pack.
# Only the retain job may apply retention and erase due subject requests; the report job plans
# and counts them (requests: due erase requests erased with --apply, request counts for the report).
STAGES = {
    "run": ("check", "retain", "requests", "report", "verify"),
    "check": ("check", "report", "verify"),
    "retain": ("check", "retain", "requests", "report", "verify"),
    "report": ("check", "retain", "requests", "report", "verify"),
}


@dataclass(frozen=True)
class JobOptions:
    """What a job needs to know; the same for `vigil run`, each scheduled run and the Lambda."""

    policy: str = "policy.yaml"
    endpoint_url: str | None = None
    regions: tuple[str, ...] = ()
    profile: str | None = None
    as_of: datetime | None = None  # None: each stage's own now
    apply: bool = False
    signing_key: str | None = None
    upload: str | None = None  # s3://bucket/prefix: `vigil report` uploads the pack there
    max_delete: int | None = None  # retain stops (exit 1, nothing deleted) above this many deletions
    public_key: str | None = None  # what verify trusts; None: the public half of signing_key (never the pack's own)
    accounts: AccountsOptions = field(default_factory=AccountsOptions)  # --org / --accounts-file: many accounts
    lock_bucket: str | None = None  # also where retention takes its S3 lock object per store

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> JobOptions:
        return cls(
            policy=args.policy, endpoint_url=args.endpoint_url, regions=tuple(args.region or ()),
            profile=args.profile, as_of=parse_as_of(getattr(args, "as_of", None)), apply=bool(args.apply),
            signing_key=args.signing_key or os.environ.get("VIGIL_SIGNING_KEY") or None, upload=args.upload,
            max_delete=args.max_delete, public_key=getattr(args, "public_key", None),
            accounts=AccountsOptions.from_args(args), lock_bucket=getattr(args, "lock_bucket", None),
        )

    def validate(self) -> None:
        """Bad input found before anything runs (exit 2)."""
        if self.upload and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", self.upload):
            raise UsageError(f"--upload {self.upload!r}: expected s3://bucket/prefix")
        if self.max_delete is not None and self.max_delete < 0:
            raise UsageError("--max-delete must be 0 or more")
        refuse_future_as_of(self.as_of, self.apply)
        if self.signing_key and not self.signing_key.startswith("kms:") and not Path(self.signing_key).is_file():
            raise UsageError(f"--signing-key {self.signing_key!r}: no such file")
        if self.public_key:
            keys.load_public(Path(self.public_key))  # a bad key file is bad input now, not a failed verify later

    def trusted_key(self) -> str | bytes | None:
        """The key the job's verify trusts, so that it proves origin: --public-key, else the public
        half of the key the report signs with (a key file, or KMS GetPublicKey)."""
        if self.public_key or not self.signing_key:
            return self.public_key

        def kms_client() -> Any:  # the client the report stage signs with (same profile, endpoint, region)
            aws = Aws(profile=self.profile, endpoint_url=self.endpoint_url)
            return aws.client("kms", aws.session.region_name or "us-east-1")

        signer = keys.load_signer(self.signing_key, kms_client=kms_client)
        return signer.public_key_raw() if signer else None


Stage = Callable[[Any], Any]  # options in, outcome (with .exit_code) out


def stage_call(stage: str, options: JobOptions, run_dir: Path) -> tuple[Stage, Any]:
    """The entry point of one stage and its typed options: every job option reaches the stage,
    or construction fails (a renamed field is a TypeError here, never a flag silently dropped)."""
    target: dict[str, Any] = {"policy": options.policy, "endpoint_url": options.endpoint_url, "regions": options.regions,
              "profile": options.profile, "as_of": options.as_of, "output": run_dir, "accounts": options.accounts}
    if stage == "check":
        return check, CheckOptions(**target)
    if stage == "retain":
        return retain, RetainOptions(**target, apply=options.apply, max_delete=options.max_delete, lock_bucket=options.lock_bucket)
    if stage == "requests":
        return process, ProcessOptions(**target, apply=options.apply, lock_bucket=options.lock_bucket)
    if stage == "report":  # report also uploads the finished pack
        return report, ReportOptions(run_dir, policy=options.policy, signing_key=options.signing_key, upload=options.upload,
                                     endpoint_url=options.endpoint_url, profile=options.profile)
    if stage == "verify":
        return _verify_trusting(options), VerifyOptions(run_dir)
    raise ValueError(f"unknown stage {stage!r}")


def _verify_trusting(options: JobOptions) -> Stage:
    """Verify with the job's own key, so it proves origin; derived inside the stage (a KMS failure fails the stage)."""
    return lambda opts: verify(dataclasses.replace(opts, public_key=options.trusted_key()))


def call_stage(stage: str, options: JobOptions, run_dir: Path) -> tuple[int, str, Any]:
    """Run one stage; (exit code, error message, outcome or None). An exception ends the stage, never the job."""
    function, stage_options = stage_call(stage, options, run_dir)
    return run_stage(function, stage_options)


def run_pipeline(job: str, options: JobOptions, run_dir: Path, log: EventLog,
                 should_stop: Callable[[], bool] = lambda: False, run_id: str | None = None,
                 show: Callable[[str, Any], None] | None = None) -> RunResult:
    """Run the job's stages into run_dir; the worst exit code wins (see `RunResult.exit_code`).
    `show(stage, outcome)` is called after each stage that finished (the CLI prints it)."""
    safe_write.ensure_dir(run_dir, "--output")
    run_id = run_id or run_dir.name
    result = RunResult(job=job, run_id=run_id, run_dir=str(run_dir), apply=options.apply)
    wrote_record = False
    log.event("run.started", job=job, run_id=run_id, run_dir=str(run_dir), apply=options.apply)
    for stage in STAGES[job]:
        if stage == "report" and not _skip_reason(stage, result, options, should_stop):
            _write_record(result, run_dir)  # before the report, so the signed pack holds it
            wrote_record = True
        _run_stage(stage, result, options, run_dir, log, should_stop, show)
    result.finish()
    if not wrote_record:
        _write_record(result, run_dir)
    log.event("run.finished", level="info" if result.exit_code == 0 else "warning", **result.summary_fields())
    return result


def _run_stage(stage: str, result: RunResult, options: JobOptions, run_dir: Path, log: EventLog,
               should_stop: Callable[[], bool], show: Callable[[str, Any], None] | None) -> None:
    ids = {"job": result.job, "run_id": result.run_id, "stage": stage}
    reason = _skip_reason(stage, result, options, should_stop)
    if reason:
        result.stages.append(StageResult(stage, status=reason))
        log.event("stage.skipped", **ids, reason=reason)
        return
    log.event("stage.started", **ids)
    started = time.monotonic()
    code, message, outcome = call_stage(stage, options, run_dir)
    if outcome is not None and show is not None:
        show(stage, outcome)
    status = "ok" if code == ExitCode.OK else ("abandoned" if code == ExitCode.INTERRUPTED else "failed")
    done = StageResult(stage, status, code, round(time.monotonic() - started, 3), message)
    result.stages.append(done)
    if code in (ExitCode.USAGE, ExitCode.ENVIRONMENT) and len(result.ran) == 1:
        result.stopped_early = True  # bad input or a broken environment: nothing later can work
    fields = {k: v for k, v in asdict(done).items() if k != "stage" and v not in ("", None)}
    log.event("stage.finished", level="info" if code == 0 else "warning", **ids, **fields)


def _write_record(result: RunResult, run_dir: Path) -> None:
    """run.json: what the job did so far. Written before the report (never after it), so the
    signed pack covers it and `vigil verify` finds no file the manifest does not list."""
    result.findings = findings_summary(run_dir)
    result.retention = retention_counts(run_dir)
    safe_write.write_text(run_dir / "run.json", json.dumps(result.to_json(), indent=2) + "\n")


def _skip_reason(stage: str, result: RunResult, options: JobOptions, should_stop: Callable[[], bool]) -> str:
    if result.stopped_early:
        return "skipped: an earlier stage could not start the run"
    if should_stop() or result.interrupted:
        return "abandoned: stop requested"
    if stage == "verify":
        if not options.signing_key:
            return "skipped: the pack is unsigned (no --signing-key)"
        reported = next((s for s in result.stages if s.stage == "report"), None)
        if reported is None or reported.exit_code is None or reported.exit_code >= ExitCode.USAGE:
            return "skipped: no report to verify"
    return ""
