"""The check stage: read live state, evaluate the catalogue, write findings.json (and any extra formats)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vigil.accounts.sources import resolve
from vigil.aws import Aws
from vigil.checks.accounts import plan_accounts, run_check_accounts
from vigil.checks.catalogue import catalogue
from vigil.checks.formats import write_formats
from vigil.checks.runner import CheckRun, run_check
from vigil.checks.waivers import load_checked_policy
from vigil.errors import UsageError
from vigil.evidence.render import write_html
from vigil.retention.verify import retention_status
from vigil.stages.common import Target, new_run_id


@dataclass(frozen=True)
class CheckOptions(Target):
    controls: tuple[str, ...] = ()  # empty: every control
    formats: tuple[str, ...] = ()  # sarif, junit, oscal, csv, ocsf, asff, html: written beside findings.json


@dataclass(frozen=True)
class CheckOutcome:
    run: CheckRun
    directory: Path
    findings: Path
    extra: dict[str, Path] = field(default_factory=dict)  # format name -> file written

    @property
    def exit_code(self) -> int:
        return self.run.exit_code


def check(options: CheckOptions) -> CheckOutcome:
    policy = load_checked_policy(options.policy)
    only = [c.upper() for c in options.controls] or None
    unknown = sorted(set(only or []) - set(catalogue()))
    if unknown:
        raise UsageError(f"unknown control id {', '.join(unknown)} (see 'vigil controls')")
    aws = Aws(profile=options.profile, endpoint_url=options.endpoint_url)
    run_id = new_run_id()
    if options.accounts.many:
        accounts = resolve(aws, policy.regions.primary, options.accounts)
        plans = plan_accounts(accounts, policy, options.regions, load_checked_policy)
        result = run_check_accounts(aws, policy, accounts, plans, options.when(), run_id, only, retention=retention_status,
                                    parallel=options.accounts.parallel)
    else:
        result = run_check(aws, policy, options.regions_for(policy), options.when(), run_id, only, retention=retention_status)
    directory = options.output_dir(run_id)
    path = result.write(directory)
    document = json.loads(path.read_text(encoding="utf-8"))  # every format reads what findings.json says, as JSON
    extra = write_formats(document, directory, [name for name in options.formats if name != "html"])
    if "html" in options.formats:  # the evidence report's page, unsigned (`vigil report` makes the signed pack)
        extra["html"] = write_html(directory, options.policy)
    return CheckOutcome(result, directory, path, extra)
