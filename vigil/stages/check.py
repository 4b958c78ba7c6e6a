"""The check stage: read live state, evaluate the catalogue, write findings.json (and any extra formats)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.accounts.plans import plan_accounts
from vigil.accounts.sources import resolve
from vigil.aws import Aws
from vigil.checks import gate
from vigil.checks.accounts import run_check_accounts
from vigil.checks.catalogue import catalogue
from vigil.checks.formats import write_formats
from vigil.checks.runner import CheckRun, run_check
from vigil.checks.selection import Filters, select
from vigil.checks.waivers import load_checked_policy
from vigil.evidence.render import write_html
from vigil.retention.verify import retention_status
from vigil.stages.common import Target, new_run_id


@dataclass(frozen=True)
class CheckOptions(Target):
    controls: tuple[str, ...] = ()  # empty: every control
    formats: tuple[str, ...] = ()  # sarif, junit, oscal, csv, ocsf, asff, html: written beside findings.json
    severities: tuple[str, ...] = ()  # only controls of these severities
    services: tuple[str, ...] = ()  # only controls reading these AWS services
    frameworks: tuple[str, ...] = ()  # only controls mapped to these frameworks
    skip: tuple[str, ...] = ()  # controls left out
    fail_on: str | None = None  # exit 1 only for unwaived fail/error findings of this severity or worse
    baseline: str | Path | None = None  # exit 1 only for findings not already fail/error in this findings.json


@dataclass(frozen=True)
class CheckOutcome:
    run: CheckRun
    directory: Path
    findings: Path
    extra: dict[str, Path] = field(default_factory=dict)  # format name -> file written
    document: dict[str, Any] = field(default_factory=dict)  # findings.json as written
    counted: list[dict[str, Any]] = field(default_factory=list)  # the findings that decide the exit code
    baseline: set[tuple[str, str, str]] | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.counted else 0


def check(options: CheckOptions) -> CheckOutcome:
    policy = load_checked_policy(options.policy)
    selection = select(catalogue(), Filters(options.controls, options.severities, options.services, options.frameworks, options.skip))
    baseline = gate.load_baseline(options.baseline) if options.baseline else None  # bad input before any AWS call
    aws = Aws(profile=options.profile, endpoint_url=options.endpoint_url)
    run_id = new_run_id()
    only = list(selection.chosen) if selection.skipped else None
    if options.accounts.many:
        accounts = resolve(aws, policy.regions.primary, options.accounts)
        plans = plan_accounts(accounts, policy, options.regions, load_checked_policy)
        result = run_check_accounts(aws, policy, accounts, plans, options.when(), run_id, only, retention=retention_status,
                                    parallel=options.accounts.parallel)
    else:
        result = run_check(aws, policy, options.regions_for(policy), options.when(), run_id, only, retention=retention_status)
    result.not_evaluated = selection.skipped
    directory = options.output_dir(run_id)
    path = result.write(directory)
    document = json.loads(path.read_text(encoding="utf-8"))  # every format reads what findings.json says, as JSON
    extra = write_formats(document, directory, [name for name in options.formats if name != "html"])
    if "html" in options.formats:  # the evidence report's page, unsigned (`vigil report` makes the signed pack)
        extra["html"] = write_html(directory, options.policy)
    return CheckOutcome(result, directory, path, extra, document, gate.counted(document, options.fail_on, baseline), baseline)
