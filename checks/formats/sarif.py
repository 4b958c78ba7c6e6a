"""SARIF 2.1.0 for code-scanning UIs (GitHub, Azure DevOps): one rule per control, one result
per fail/error finding, level by the control's severity.

Pure functions: `to_sarif(findings)` for deploy-time checks (Finding objects), and
`sarif_from_findings(data)` for a findings.json document. Cloud resources have no source line,
so each result points at the policy file (what declares the stores) as its physical location
and names the resource ARN as a logical location; a stable fingerprint per (control,
resource) lets the code-scanning UI track one alert across runs. A waived finding is still
reported, with an accepted external suppression carrying the waiver's justification.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vigil.checks.catalogue import Control, catalogue
from vigil.checks.model import Finding
from vigil.checks.remediation import remediations

from vigil import __version__

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub ranks alerts by this CVSS-like score (critical >= 9.0, high >= 7.0, medium >= 4.0).
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
REPORTED = ("fail", "error")


def _rule(control: dict[str, Any]) -> dict[str, Any]:
    fix = remediations().get(control["id"])
    help_text = fix.summary if fix else control.get("passes", control["title"])
    help_md = help_text
    if fix:
        help_md += "\n\n**AWS CLI**\n\n```sh\n" + "\n".join(fix.cli) + "\n```\n\n**Pulumi**\n\n```python\n" + fix.pulumi + "\n```"
    tags = ["security", "privacy", *(f"{name}:{ref}" for name, refs in control.get("frameworks", {}).items() for ref in refs)]
    return {
        "id": control["id"],
        "name": "".join(word.capitalize() for word in control["title"].replace("-", " ").split()[:8]),
        "shortDescription": {"text": control["title"]},
        "fullDescription": {"text": f"Passes when {control.get('passes', control['title'])}. Enforces {control['clause']}"},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": LEVEL.get(control["severity"], "warning")},
        "properties": {"tags": tags, "security-severity": SECURITY_SEVERITY.get(control["severity"], "5.0"),
                       "precision": "very-high", "problem.severity": control["severity"]},
    }


def _fingerprint(control: str, resource: str, account: str = "") -> str:
    """Per (control, resource); in a run over many accounts per account too (a store missing in two accounts is two alerts)."""
    return hashlib.sha256(f"{control}\n{resource}".encode() + (f"\n{account}".encode() if account else b"")).hexdigest()


def _result(finding: dict[str, Any], index: int, control: dict[str, Any], artifact_uri: str, many: bool = False) -> dict[str, Any]:
    status = finding["status"]
    account = str(finding.get("account") or "") if many else ""
    text = f"{finding['resource']}: {finding['reason']}" if status == "fail" else \
        f"{finding['resource']}: could not be evaluated: {finding['reason']}"
    result: dict[str, Any] = {
        "ruleId": finding["control"],
        "ruleIndex": index,
        "level": LEVEL.get(control["severity"], "warning"),
        "kind": "fail",
        "message": {"text": text},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": artifact_uri}, "region": {"startLine": 1}},
            "logicalLocations": [{"name": finding["resource"].rsplit(":", 1)[-1].rsplit("/", 1)[-1] or finding["resource"],
                                  "fullyQualifiedName": finding["resource"], "kind": "resource"}],
        }],
        "partialFingerprints": {"vigilFinding/v1": _fingerprint(finding["control"], finding["resource"], account)},
        "properties": {"status": status, "resource": finding["resource"], "region": finding.get("region", ""),
                       "api": finding.get("evidence", {}).get("api"),
                       **({"account": finding["account"]} if finding.get("account") else {})},
    }
    waived = finding.get("waived")
    if waived:
        result["suppressions"] = [{
            "kind": "external", "status": "accepted",
            "justification": f"{waived['reason']} (owner {waived['owner']}, approval {waived['approval']}, expires {waived['expires']})",
        }]
    return result


def _repo_relative(path: str) -> str:
    """Code scanning matches locations to repository files: a path under the working directory is made relative."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def sarif_from_findings(data: Mapping[str, Any], artifact_uri: str | None = None, tool_version: str | None = None) -> dict[str, Any]:
    """A SARIF log for a findings.json document (its `controls` become the rules)."""
    controls = list(data.get("controls") or [c.to_json() for c in catalogue().values()])
    index = {control["id"]: i for i, control in enumerate(controls)}
    run = data.get("run", {})
    uri = artifact_uri or _repo_relative(run.get("policy_file") or "policy.yaml")
    results = [
        _result(f, index[f["control"]], controls[index[f["control"]]], uri, many=bool(run.get("accounts")))
        for f in data.get("findings", []) if f["status"] in REPORTED and f["control"] in index
    ]
    sarif_run: dict[str, Any] = {
        "tool": {"driver": {"name": "Vigil", "version": tool_version or run.get("tool_version") or __version__,
                            "rules": [_rule(c) for c in controls]}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if run.get("id"):
        sarif_run["automationDetails"] = {"id": f"vigil/check/{run['id']}"}
        sarif_run["invocations"] = [{"executionSuccessful": True, "startTimeUtc": run["started_at"], "endTimeUtc": run["finished_at"]}]
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [sarif_run]}


def to_sarif(findings: Iterable[Finding], controls: Mapping[str, Control] | None = None, *,
             waived: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
             artifact_uri: str = "Pulumi.yaml", tool_version: str | None = None) -> dict[str, Any]:
    """SARIF for Finding objects (deploy-time checks): pure, no I/O.

    `waived` maps (control, resource) to {"reason", "owner", "approval", "expires"}.
    """
    items = []
    for finding in findings:
        item = finding.to_json()
        if waived and (finding.control, finding.resource) in waived:
            item["waived"] = dict(waived[(finding.control, finding.resource)])
        items.append(item)
    chosen = controls if controls is not None else catalogue()
    document = {"controls": [control.to_json() for control in chosen.values()], "findings": items}
    return sarif_from_findings(document, artifact_uri=artifact_uri, tool_version=tool_version)
