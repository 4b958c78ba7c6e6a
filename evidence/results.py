"""Read what the other commands left in a results folder: findings, retention plan, ledger, earlier runs."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import UsageError
from vigil.policy import Policy, PolicyError, load_policy

from . import chain

FINDINGS = "findings.json"
PLAN = "retention-plan.json"
LEDGER = "ledger.jsonl"
REQUESTS = "subject-requests.json"  # subject-rights request counts (`vigil subject process`), no personal data
FINDINGS_KEYS = ("schema", "run", "controls", "findings", "summary")


@dataclass
class PolicyInForce:
    sha256: str
    path: str | None = None
    policy: Policy | None = None  # None when the file is absent, invalid, or not the one in force
    note: str | None = None


@dataclass
class Results:
    directory: Path
    findings: dict[str, Any]
    plan: dict[str, Any] | None = None
    ledger: chain.ChainResult | None = None
    policy: PolicyInForce | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # findings.json of this and earlier runs, oldest first
    requests: dict[str, Any] | None = None

    @property
    def run(self) -> dict[str, Any]:
        return self.findings["run"]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None


def load_findings(directory: Path) -> dict[str, Any]:
    path = directory / FINDINGS
    if not path.is_file():
        raise UsageError(f"{directory}: no {FINDINGS} here (run 'vigil check --output {directory}' first)")
    data = _read_json(path)
    missing = [key for key in FINDINGS_KEYS if not isinstance(data, dict) or key not in data]
    if missing:
        raise UsageError(f"{path}: not a findings file (missing {', '.join(missing)})")
    return data


def load_policy_in_force(path: str | Path | None, sha256: str) -> PolicyInForce:
    """The policy file, when it is the one the run used (same SHA-256); otherwise the hash alone and why."""
    in_force = PolicyInForce(sha256=sha256, path=str(path) if path else None)
    if path is None:
        in_force.note = "no policy file given: only its SHA-256 is shown"
        return in_force
    if not Path(path).is_file():
        in_force.note = f"policy file {path} not found: only its SHA-256 is shown"
        return in_force
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        in_force.note = f"policy file {path} is invalid ({str(exc).splitlines()[0]}): only its SHA-256 is shown"
        return in_force
    if policy.sha256 != sha256:
        in_force.note = (f"policy file {path} (SHA-256 {policy.sha256}) is not the policy this run used: "
                         "its categories are not shown")
        return in_force
    in_force.policy = policy
    return in_force


def load_history(directory: Path, current: dict[str, Any], limit: int = 30) -> list[dict[str, Any]]:
    """This run and earlier ones: sibling folders holding a findings.json, ordered by run.started_at."""
    runs = [current]
    parent = directory.resolve().parent
    for sibling in parent.iterdir():
        if sibling.resolve() == directory.resolve() or not (sibling / FINDINGS).is_file():
            continue
        try:
            data = json.loads((sibling / FINDINGS).read_text(encoding="utf-8"))
            data["run"]["started_at"], data["summary"]["pass"]  # the two fields the trend needs
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a broken neighbour does not stop this report
        runs.append(data)
    runs.sort(key=lambda data: str(data["run"].get("started_at", "")))
    cut = runs.index(current)  # later runs are not "earlier runs" of this one
    return runs[max(0, cut + 1 - limit): cut + 1]


def load_results(directory: Path, policy_path: str | Path | None = None) -> Results:
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    findings = load_findings(directory)
    results = Results(directory=directory, findings=findings)
    if (directory / PLAN).is_file():
        results.plan = _read_json(directory / PLAN)
    if (directory / LEDGER).is_file():
        results.ledger = chain.check_file(directory / LEDGER, keep_entries=True)
    if (directory / REQUESTS).is_file():
        results.requests = _read_json(directory / REQUESTS)
    sha = str(findings["run"].get("policy_sha256", ""))
    if policy_path is not None:
        results.policy = load_policy_in_force(policy_path, sha)
    else:  # ./policy.yaml, then the file the run names: the first that is the policy in force
        tried = [load_policy_in_force(path, sha) for path in dict.fromkeys(["policy.yaml", findings["run"].get("policy_file")]) if path]
        results.policy = next((p for p in tried if p.policy is not None), tried[0])
    results.history = load_history(directory, findings)
    return results
