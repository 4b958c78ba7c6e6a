"""The requests stage (`vigil subject process`): erase every due erase request (with apply), write the request counts."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil import safe_write
from vigil.aws import Aws
from vigil.checks.waivers import load_checked_policy
from vigil.errors import ExitCode
from vigil.retention.guard import refuse_future_as_of
from vigil.retention.keys import load_keys
from vigil.stages.common import Target, new_run_id
from vigil.subjects import erase as erasing
from vigil.subjects.requests import SUMMARY_FILE, RequestLog, summary


@dataclass(frozen=True)
class ProcessOptions(Target):
    apply: bool = False  # False: count only, nothing is erased
    workers: int = 16
    lock_bucket: str | None = None  # with apply: an S3 lock object per store here too, as retention takes


@dataclass(frozen=True)
class ProcessOutcome:
    directory: Path | None  # None: the policy has no request log, nothing was written
    counts: dict[str, Any] = field(default_factory=dict)
    due: int = 0
    erased: dict[str, bool] = field(default_factory=dict)  # request id -> erase complete
    incomplete: dict[str, list[str]] = field(default_factory=dict)  # request id -> why its answer is incomplete
    apply: bool = False

    @property
    def exit_code(self) -> int:
        return ExitCode.OK if all(self.erased.values()) else ExitCode.FAILED


def process(options: ProcessOptions) -> ProcessOutcome:
    refuse_future_as_of(options.as_of, options.apply)  # before the policy, a folder or AWS
    policy = load_checked_policy(options.policy)
    if policy.requests is None:
        return ProcessOutcome(None, apply=options.apply)
    now = options.when()
    aws = Aws(profile=options.profile, endpoint_url=options.endpoint_url)
    keys = load_keys(policy, aws)  # exit 2 before anything is read or changed
    aws.account_id(policy.regions.primary)  # exit 3 when the environment is broken
    log = RequestLog(aws, policy)
    directory = options.output_dir(new_run_id())
    erased: dict[str, bool] = {}
    incomplete: dict[str, list[str]] = {}
    due = [r for r in log.all() if r.open and r.kind == "erase" and r.received_at <= now]
    for request in due if options.apply else []:
        run = erasing.erase_subject(aws, policy, keys, request.subject, now, directory, new_run_id(), True, options.workers,
                                    lock_bucket=options.lock_bucket)
        erased[request.id] = run.exit_code == 0 or run.nothing_found  # never while the answer is incomplete
        incomplete[request.id] = (run.after or run.found).incomplete
        if erased[request.id]:
            log.complete(request, datetime.now(UTC))
    counts = summary(log.all(), now, policy.requests.deadline.text)
    safe_write.write_text(directory / SUMMARY_FILE, json.dumps(counts, indent=2) + "\n")
    return ProcessOutcome(directory, counts, len(due), erased, incomplete=incomplete, apply=options.apply)
