"""`vigil schedule`: run check, retain and report on the policy's `schedule:` until stopped."""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from datetime import timedelta
from pathlib import Path

from vigil import safe_write
from vigil.accounts.sources import load_accounts_file
from vigil.aws import Aws
from vigil.cli import common
from vigil.cli.run import add_job_flags, stage_printer
from vigil.errors import EnvironmentFailure, UsageError
from vigil.locks import Locks, S3Lock
from vigil.scheduler.logs import EventLog
from vigil.scheduler.metrics import record_run_logged
from vigil.scheduler.phrases import phrases_of
from vigil.scheduler.pipeline import JobOptions, run_pipeline
from vigil.scheduler.service import Job, Service, StopFlag
from vigil.scheduler.state import State
from vigil.stages.common import DEFAULT_OUTPUT


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schedule", help="run the jobs on the policy's schedule until stopped",
        description="Run each job (check, retain, report) on the policy's schedule: section, in UTC, one folder "
                    "per run under --output (default ./evidence). Retention applies changes only with --apply. "
                    "SIGTERM or SIGINT ends it cleanly (exit 0).")
    common.add_common(parser)
    common.add_accounts_flags(parser, retention=True)
    add_job_flags(parser)
    parser.add_argument("--state-file", metavar="FILE", help="last run times and heartbeat (default OUTPUT/.vigil/schedule-state.json)")
    parser.add_argument("--lock-dir", metavar="DIR", help="where the per-job lock files live (default: beside the state file)")
    parser.add_argument("--lock-bucket", metavar="BUCKET", help="also take an S3 lock object here, so replicas never run a job twice")
    parser.add_argument("--lock-prefix", metavar="PREFIX", default="vigil/locks/", help="key prefix of the S3 lock objects")
    parser.add_argument("--lock-ttl-hours", type=float, default=6.0, metavar="H",
                        help="an S3 lock older than this is taken over (its holder died); longer than any run (default 6)")
    parser.add_argument("--run-now", action="store_true", help="run every job once at start, then follow the schedule")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.as_of:
        raise UsageError("--as-of fixes the time of one run; 'vigil schedule' runs on the real clock (use 'vigil run')")
    policy = common.load(args)
    phrases = phrases_of(policy.schedule)
    options = JobOptions.from_args(args)
    options.validate()
    check_accounts(options)
    if args.lock_ttl_hours <= 0:
        raise UsageError("--lock-ttl-hours must be positive")
    base = safe_write.ensure_dir(Path(args.output) if args.output else DEFAULT_OUTPUT, "--output")  # a file: exit 2
    state_path = Path(args.state_file) if args.state_file else base / ".vigil" / "schedule-state.json"
    log = EventLog(args.log_format)
    stop = StopFlag()
    locks = Locks(Path(args.lock_dir) if args.lock_dir else state_path.parent, s3_lock=None)
    state = State(state_path)
    try:  # fail now, not at the first run hours later
        locks.lock_dir.mkdir(parents=True, exist_ok=True)
        state.save()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write the scheduler's state or locks ({state_path}, {locks.lock_dir}): {exc}") from None
    if args.lock_bucket:
        s3 = Aws(profile=args.profile, endpoint_url=args.endpoint_url).client("s3", policy.regions.primary)
        ttl = timedelta(hours=args.lock_ttl_hours)
        locks.s3_lock = lambda kind: S3Lock(s3, args.lock_bucket, f"{args.lock_prefix}{kind}.lock", ttl)
    job = scheduled_job(options, base, log, stop, Path(args.metrics_file) if args.metrics_file else None)
    # The policy's times are UTC, and the `schedule` library reads the local clock: make it UTC.
    os.environ["TZ"] = "UTC"
    time.tzset()
    service = Service(phrases, job, state, locks, log, stop=stop)
    restore = stop.install()
    try:
        return service.serve(run_now=args.run_now)
    finally:
        restore()


def check_accounts(options: JobOptions) -> None:
    """A bad --accounts-file or flag combination is exit 2 now, not at the first run hours later."""
    accounts = options.accounts
    if accounts.org and accounts.file is not None:
        raise UsageError("--org and --accounts-file choose the accounts two ways: give one")
    if accounts.file is not None:
        load_accounts_file(accounts.file, accounts)


def scheduled_job(options: JobOptions, base: Path, log: EventLog, stop: StopFlag, metrics_file: Path | None) -> Job:
    """The job the scheduler calls: one pipeline run into a new folder; retention applies only
    in the retain job, and only when the scheduler was started with --apply."""

    def job(kind: str) -> int:
        run_id = common.new_run_id()
        stamp, _, token = run_id.partition("-")
        run_options = dataclasses.replace(options, apply=options.apply and kind == "retain")
        result = run_pipeline(kind, run_options, base / f"{stamp}-{kind}-{token}", log,
                              should_stop=lambda: stop.requested, run_id=f"{stamp}-{kind}-{token}",
                              show=stage_printer(log.fmt))
        if metrics_file is not None:
            record_run_logged(metrics_file, result, log)
        return result.exit_code

    return job
