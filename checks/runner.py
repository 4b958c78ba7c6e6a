"""`vigil check` as a function: collect -> evaluate -> findings.json."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.checks.catalogue import catalogue
from vigil.checks.collectors import collect_inventory
from vigil.checks.context import Context
from vigil.checks.model import Finding, Inventory, Status, StoreRetention
from vigil.checks.registry import bucket_facts, evaluate
from vigil.checks.remediation import for_finding
from vigil.checks.waivers import WaiverState, apply_waivers, waiver_json

from vigil import __version__, safe_write
from vigil.aws import Aws
from vigil.policy import Policy
from vigil.timestamps import iso_z as _iso

SCHEMA = "vigil.findings/v1"



@dataclass
class CheckRun:
    run_id: str
    policy: Policy
    regions: list[str]
    started_at: datetime
    finished_at: datetime
    inventory: Inventory
    findings: list[Finding] = field(default_factory=list)
    # (control, resource) -> the waiver in force that accepts that fail/error finding
    waived: dict[tuple[str, str], Any] = field(default_factory=dict)
    waiver_states: list[WaiverState] = field(default_factory=list)
    not_evaluated: dict[str, str] = field(default_factory=dict)  # control id -> why this run left it out (filters)
    # A run over several accounts (vigil.checks.accounts): each account's own run, by account id, and
    # every account's status ({"id", "name", "status", "reason"}); empty for a one-account run.
    parts: dict[str, CheckRun] = field(default_factory=dict)
    accounts: list[dict[str, str]] = field(default_factory=list)

    def waiver_for(self, finding: Finding) -> Any:
        """The waiver in force that accepts this fail/error finding, or None (each account judges its own)."""
        part = self.parts.get(finding.account)
        return part.waiver_for(finding) if part is not None else self.waived.get((finding.control, finding.resource))

    def is_waived(self, finding: Finding) -> bool:
        return self.waiver_for(finding) is not None

    @property
    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for finding in self.findings:
            counts[finding.status.value] += 1
        return counts

    @property
    def exit_code(self) -> int:
        # Waived findings keep their status (and their count in the summary) but do not fail the run.
        return 1 if any(f.status in (Status.FAIL, Status.ERROR) and not self.is_waived(f) for f in self.findings) else 0

    def finding_json(self, finding: Finding) -> dict[str, Any]:
        out = finding.to_json()
        waiver = self.waiver_for(finding)
        if waiver is not None:
            out["waived"] = waiver_json(waiver)
        if finding.status in (Status.FAIL, Status.ERROR):
            part = self.parts.get(finding.account, self)
            fix = for_finding(finding, part.policy, finding.account or part.inventory.account_id)
            if fix is not None:
                out["remediation"] = fix.to_json()
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run": {
                "id": self.run_id,
                "started_at": _iso(self.started_at),
                "finished_at": _iso(self.finished_at),
                "account": self.inventory.account_id,
                "regions": self.regions,
                "tool_version": __version__,
                "policy_sha256": self.policy.sha256,
                "policy_file": self.policy.source_path,
                **({"accounts": self.accounts} if self.accounts else {}),
            },
            "controls": [control.to_json() for control in catalogue().values()],
            "findings": [self.finding_json(f) for f in sorted(self.findings, key=lambda f: (f.control, f.account, f.resource))],
            "summary": self.summary,
            "waivers": [state.to_json() for state in self.waiver_states],
            "not_evaluated": [{"control": cid, "reason": reason} for cid, reason in self.not_evaluated.items()],
        }

    def write(self, directory: Path) -> Path:
        """findings.json; a run over several accounts also writes each account's own in accounts/<id>/."""
        for account_id, part in self.parts.items():
            part.write(safe_write.ensure_dir(directory / "accounts" / account_id))
        path = directory / "findings.json"
        return safe_write.write_text(path, json.dumps(self.to_json(), indent=2, sort_keys=False, default=str) + "\n")


# Reads the retention state RET-02 judges (the retention engine's read-only verify,
# `vigil.retention.verify.retention_status`); passed in because retention sits above checks.
RetentionReader = Callable[[Aws, Policy, Inventory, datetime], Iterable[StoreRetention]]


def run_check(aws: Aws, policy: Policy, regions: list[str], as_of: datetime, run_id: str, only: list[str] | None = None,
              *, retention: RetentionReader | None, workers: int = 32) -> CheckRun:
    """`retention=None` leaves RET-02 not applicable ("retention state was not read in this run").
    Stores that name another account than the one `aws` reaches are not this run's (Policy.for_account)."""
    started = datetime.now(UTC)
    policy = policy.for_account(aws.account_id(policy.regions.primary))
    inventory = collect_inventory(aws, policy, regions, bucket_facts=bucket_facts(only), workers=workers)
    if retention is not None and (only is None or "RET-02" in only):
        inventory.retention = list(retention(aws, policy, inventory, as_of))
    findings = [replace(f, account=inventory.account_id)
                for f in evaluate(Context(policy=policy, inventory=inventory, as_of=as_of), only=only)]
    # Waivers expire by the calendar, not by --as-of (which only moves the retention clock).
    waived, states = apply_waivers(policy.waivers, findings, started.date())
    return CheckRun(run_id, policy, regions, started, datetime.now(UTC), inventory, findings, waived, states)
