"""`vigil run`: check, retain (dry run unless --apply), report and verify as one job, one folder."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigil.cli import common, console
from vigil.scheduler.logs import LOG_FORMATS, EventLog
from vigil.scheduler.metrics import record_run_logged
from vigil.scheduler.pipeline import JobOptions, run_pipeline
from vigil.stages.common import DEFAULT_OUTPUT


def add_job_flags(parser: argparse.ArgumentParser) -> None:
    """Flags `vigil run` and `vigil schedule` share."""
    parser.add_argument("--apply", action="store_true", help="let retention change data (default: plan only, a dry run)")
    parser.add_argument("--max-delete", type=int, metavar="N", help="retention stops, deleting nothing, if a plan deletes more than N")
    parser.add_argument("--signing-key", metavar="FILE", help="Ed25519 key that signs the evidence pack (or VIGIL_SIGNING_KEY)")
    parser.add_argument("--public-key", metavar="FILE",
                        help="the signer's public key (signing.pub) the job's verify trusts; default: the public half of "
                             "--signing-key, so the verify proves origin, never trusting the key recorded in the pack")
    parser.add_argument("--upload", metavar="S3URL", help="have the report upload each pack to this Object-Lock bucket (s3://bucket/prefix)")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text", help="event log on stderr: text (default) or json lines")
    parser.add_argument("--metrics-file", metavar="PATH", help="write Prometheus textfile metrics here after each run")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="check, retain, report and verify as one job",
                                   description="Run check, retain (a dry run unless --apply), report and verify as one "
                                               "job into one folder. Exit code: the worst stage's (cli.md).")
    common.add_common(parser)
    common.add_accounts_flags(parser, retention=True)
    add_job_flags(parser)
    console.add_output_flags(parser)
    parser.set_defaults(handler=run)


def show_stage(stage: str, outcome: Any) -> None:
    """A stage's outcome printed as its own command prints it."""
    from vigil.cli import check, report, retain, subject, verify

    if stage == "check":
        check.show(outcome)
    elif stage == "retain":
        retain.show(outcome)
    elif stage == "requests":
        subject.show_process(outcome)
    elif stage == "report":
        report.show(outcome)
    elif stage == "verify":
        verify.show(outcome)


def stage_printer(log_format: str) -> Callable[[str, Any], None] | None:
    """Text logs go to a person: each stage's output too. JSON logs go to a collector: events only."""
    return show_stage if log_format == "text" else None


def run(args: argparse.Namespace) -> int:
    options = JobOptions.from_args(args)
    common.load(args)  # a bad policy file is bad input: exit 2 before any folder is made
    options.validate()
    run_id = common.new_run_id()
    run_dir = Path(args.output) if args.output else DEFAULT_OUTPUT / run_id
    log = EventLog(args.log_format)
    console.configure_logging(args.log_level)
    with console.live_progress(args.quiet):
        result = run_pipeline("run", options, run_dir, log, run_id=run_id, show=None if args.quiet else stage_printer(args.log_format))
    if args.metrics_file:
        record_run_logged(Path(args.metrics_file), result, log)
    return result.exit_code
