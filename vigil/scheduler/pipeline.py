"""One job = a few stages run in-process through the CLI entry point, all into one folder.

Stages talk to each other only through the folder (findings.json, retention-plan.json,
ledger.jsonl, the evidence pack), exactly as a person chaining the commands would.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from vigil.errors import UsageError
from vigil.scheduler.logs import EventLog
from vigil.scheduler.results import RunResult, StageResult, findings_summary, retention_counts

# What each job runs. Every folder is a complete evidence pack: the report needs the check's
# findings.json, and a failed check still gets its report; verify re-checks the signed pack.
# Only the retain job may apply retention; the report job plans it.
STAGES = {
    "run": ("check", "retain", "requests", "report", "verify"),  # requests: due erase requests (with --apply), request counts
    "check": ("check", "report", "verify"),
    "retain": ("check", "retain", "report", "verify"),
    "report": ("check", "retain", "report", "verify"),
}
STAGE_COMMAND = {"requests": "subject"}  # a stage run by a command of another name
INTERRUPTED = 130  # what vigil.cli.main returns when a stage is interrupted (second signal)


@dataclass(frozen=True)
class JobOptions:
    """What a job needs to know; the same for `vigil run`, each scheduled run and the Lambda."""

    policy: str = "policy.yaml"
    endpoint_url: str | None = None
    regions: tuple[str, ...] = ()
    profile: str | None = None
    as_of: str | None = None
    apply: bool = False
    signing_key: str | None = None
    upload: str | None = None  # s3://bucket/prefix: `vigil report` uploads the pack there
    max_delete: int | None = None  # retain stops (exit 1, nothing deleted) above this many deletions

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> JobOptions:
        return cls(
            policy=args.policy, endpoint_url=args.endpoint_url, regions=tuple(args.region or ()),
            profile=args.profile, as_of=getattr(args, "as_of", None), apply=bool(args.apply),
            signing_key=args.signing_key or os.environ.get("VIGIL_SIGNING_KEY") or None, upload=args.upload,
            max_delete=args.max_delete,
        )

    def validate(self) -> None:
        """Bad input found before anything runs (exit 2)."""
        if self.upload and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", self.upload):
            raise UsageError(f"--upload {self.upload!r}: expected s3://bucket/prefix")
        if self.max_delete is not None and self.max_delete < 0:
            raise UsageError("--max-delete must be 0 or more")
        if self.signing_key and not self.signing_key.startswith("kms:") and not Path(self.signing_key).is_file():
            raise UsageError(f"--signing-key {self.signing_key!r}: no such file")

    def common_flags(self) -> list[str]:
        flags = ["--policy", self.policy]
        if self.endpoint_url:
            flags += ["--endpoint-url", self.endpoint_url]
        for region in self.regions:
            flags += ["--region", region]
        if self.profile:
            flags += ["--profile", self.profile]
        if self.as_of:
            flags += ["--as-of", self.as_of]
        return flags


def stage_argv(stage: str, options: JobOptions, run_dir: Path, accepted: set[str] | None = None) -> list[str]:
    """The command line of one stage. Flags the stage's parser does not know are left out, so a
    command that is still growing its flags never fails on argparse."""
    if stage == "check":
        argv = ["check", *options.common_flags(), "--output", str(run_dir)]
    elif stage == "retain":
        argv = ["retain", *options.common_flags(), "--output", str(run_dir)] + (["--apply"] if options.apply else [])
        argv += ["--max-delete", str(options.max_delete)] if options.max_delete is not None else []
    elif stage == "report":
        argv = ["report", str(run_dir), "--policy", options.policy]
        argv += ["--signing-key", options.signing_key] if options.signing_key else []
        argv += ["--upload", options.upload] if options.upload else []  # report uploads the finished pack
        argv += ["--endpoint-url", options.endpoint_url] if options.endpoint_url else []
        argv += ["--profile", options.profile] if options.profile else []
    elif stage == "verify":
        argv = ["verify", str(run_dir)]
    elif stage == "requests":  # a nested command (`vigil subject process`): its flags are known to be accepted
        argv = ["subject", "process", *options.common_flags(), "--output", str(run_dir)] + (["--apply"] if options.apply else [])
        return argv
    else:
        raise ValueError(f"unknown stage {stage!r}")
    if accepted is None:
        return argv
    if options.max_delete is not None and "--max-delete" not in accepted:
        argv = [a for a in argv if a != "--apply"]  # never apply without the cap that was asked for
    return _only_accepted(argv, accepted)


def _only_accepted(argv: list[str], accepted: set[str]) -> list[str]:
    kept, index = argv[:1], 1
    while index < len(argv):
        item = argv[index]
        takes_value = item.startswith("--") and item not in ("--apply",)
        if item.startswith("--") and item not in accepted:
            index += 2 if takes_value else 1
            continue
        kept.append(item)
        index += 1
    return kept


def available_commands() -> dict[str, set[str]]:
    """The commands this installation has (a stage's module may not exist yet) and their flags."""
    from vigil.cli.main import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {name: {flag for a in sub._actions for flag in a.option_strings} for name, sub in action.choices.items()}
    return {}


def call_cli(argv: list[str], capture: bool) -> tuple[int, str]:
    """Run one command through `vigil.cli.main.main`; returns (exit code, last error line if captured)."""
    from vigil.cli.main import main

    out = io.StringIO()
    redirect = (contextlib.redirect_stdout(out), contextlib.redirect_stderr(out)) if capture else ()
    with contextlib.ExitStack() as stack:
        for ctx in redirect:
            stack.enter_context(ctx)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse rejecting the flags we passed
            code = exc.code if isinstance(exc.code, int) else 2
        except KeyboardInterrupt:
            code = INTERRUPTED
        except Exception as exc:  # main() re-raises under VIGIL_DEBUG; a job still goes on
            print(f"vigil: unexpected error: {type(exc).__name__}: {exc}", file=out if capture else None)
            code = 1
    lines = [line.strip() for line in out.getvalue().splitlines() if line.strip()]
    last_error = max((i for i, line in enumerate(lines) if line.startswith("vigil:")), default=None)
    if not code or last_error is None:
        return int(code), ""
    return int(code), " | ".join(lines[last_error:last_error + 4])[:300]  # the error and its first details


def run_pipeline(job: str, options: JobOptions, run_dir: Path, log: EventLog,
                 should_stop: Callable[[], bool] = lambda: False, run_id: str | None = None) -> RunResult:
    """Run the job's stages into run_dir; the worst exit code wins (see `RunResult.exit_code`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_id or run_dir.name
    result = RunResult(job=job, run_id=run_id, run_dir=str(run_dir), apply=options.apply)
    available = available_commands()
    wrote_record = False
    log.event("run.started", job=job, run_id=run_id, run_dir=str(run_dir), apply=options.apply)
    for stage in STAGES[job]:
        if stage == "report" and not _skip_reason(stage, result, available, options, should_stop):
            _write_record(result, run_dir)  # before the report, so the signed pack holds it
            wrote_record = True
        _run_stage(stage, result, available, options, run_dir, log, should_stop)
    result.finish()
    if not wrote_record:
        _write_record(result, run_dir)
    log.event("run.finished", level="info" if result.exit_code == 0 else "warning", **result.summary_fields())
    return result


def _run_stage(stage: str, result: RunResult, available: dict[str, set[str]], options: JobOptions, run_dir: Path,
               log: EventLog, should_stop: Callable[[], bool]) -> None:
    ids = {"job": result.job, "run_id": result.run_id, "stage": stage}
    reason = _skip_reason(stage, result, available, options, should_stop)
    if reason:
        result.stages.append(StageResult(stage, status=reason))
        log.event("stage.skipped", **ids, reason=reason)
        return
    log.event("stage.started", **ids)
    started = time.monotonic()
    code, message = call_cli(stage_argv(stage, options, run_dir, available.get(stage)), capture=log.fmt == "json")
    status = "ok" if code == 0 else ("abandoned" if code == INTERRUPTED else "failed")
    done = StageResult(stage, status, code, round(time.monotonic() - started, 3), message)
    result.stages.append(done)
    if code in (2, 3) and len(result.ran) == 1:
        result.stopped_early = True  # bad input or a broken environment: nothing later can work
    fields = {k: v for k, v in asdict(done).items() if k != "stage" and v not in ("", None)}
    log.event("stage.finished", level="info" if code == 0 else "warning", **ids, **fields)


def _write_record(result: RunResult, run_dir: Path) -> None:
    """run.json: what the job did so far. Written before the report (never after it), so the
    signed pack covers it and `vigil verify` finds no file the manifest does not list."""
    result.findings = findings_summary(run_dir)
    result.retention = retention_counts(run_dir)
    (run_dir / "run.json").write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def _skip_reason(stage: str, result: RunResult, available: dict[str, set[str]], options: JobOptions,
                 should_stop: Callable[[], bool]) -> str:
    if result.stopped_early:
        return "skipped: an earlier stage could not start the run"
    if should_stop() or result.interrupted:
        return "abandoned: stop requested"
    if STAGE_COMMAND.get(stage, stage) not in available:
        return "skipped: not available"
    if stage == "verify":
        if not options.signing_key:
            return "skipped: the pack is unsigned (no --signing-key)"
        report = next((s for s in result.stages if s.stage == "report"), None)
        if report is None or report.exit_code is None or report.exit_code >= 2:
            return "skipped: no report to verify"
    return ""
