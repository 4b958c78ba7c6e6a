"""OSCAL 1.1.2 assessment results (JSON) from a findings.json document, for GRC tools.

One result per run. Every finding is an observation (what was examined, how, with which
API); pass/fail/error findings are also OSCAL findings whose target is the control's
objective (`satisfied` / `not-satisfied`; an error is `not-satisfied` with reason `other`).
Each fail/error finding carries a risk: `open` with the remediation as a recommendation, or
`deviation-approved` until the waiver's expiry when a waiver accepts it. The catalogue
itself is a back-matter resource that `import-ap` points at. UUIDs are version 5, derived
from the run id and the finding, so the same findings always give the same document.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil import safe_write
from vigil.timestamps import iso_z

OSCAL_VERSION = "1.1.2"
NAMESPACE = uuid.UUID("6f0b8f4e-3a52-5b8e-9c1d-7a9e2f1c4b60")  # Vigil's namespace for uuid5
STATE = {"pass": ("satisfied", "pass"), "fail": ("not-satisfied", "fail"), "error": ("not-satisfied", "other")}


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(parts)))


def _now() -> str:
    return iso_z(datetime.now(UTC))


def _risk(finding: Mapping[str, Any], key: str) -> dict[str, Any]:
    waived, fix = finding.get("waived"), finding.get("remediation")
    risk: dict[str, Any] = {
        "uuid": _uuid(key, "risk"),
        "title": f"{finding['control']} not met on {finding['resource']}",
        "description": finding["reason"],
        "statement": finding["reason"],
        "status": "deviation-approved" if waived else "open",
    }
    if waived:
        risk["deadline"] = f"{waived['expires']}T23:59:59Z"
        risk["remarks"] = f"Accepted until {waived['expires']} by {waived['owner']} ({waived['approval']}): {waived['reason']}"
    if fix:
        risk["remediations"] = [{
            "uuid": _uuid(key, "remediation"), "lifecycle": "recommendation",
            "title": f"Fix {finding['control']}", "description": fix["summary"],
            "remarks": "AWS CLI:\n" + "\n".join(fix["cli"]) + "\n\nPulumi:\n" + fix["pulumi"],
        }]
    return risk


def to_oscal(findings: Mapping[str, Any]) -> dict[str, Any]:
    """The OSCAL assessment-results document for a findings.json dict (pure)."""
    run = findings.get("run", {})
    run_id = str(run.get("id") or "vigil")
    start, end = run.get("started_at") or _now(), run.get("finished_at") or run.get("started_at") or _now()
    catalogue_uuid = _uuid(run_id, "catalogue")
    observations, results_findings, risks = [], [], []
    for finding in findings.get("findings", []):
        key = "\x1f".join((run_id, finding["control"], finding["resource"]))
        observation_uuid = _uuid(key, "observation")
        api = finding.get("evidence", {}).get("api")
        observations.append({
            "uuid": observation_uuid,
            "title": f"{finding['control']} on {finding['resource']}: {finding['status']}",
            "description": finding["reason"],
            "methods": ["TEST"],
            "types": ["control-objective"],
            "subjects": [{"subject-uuid": _uuid("resource", finding["resource"]), "type": "resource",
                          "title": finding["resource"], "props": [{"name": "resource-id", "value": finding["resource"]}]}],
            "relevant-evidence": [{"description": f"AWS API {', '.join(api) if isinstance(api, list) else api}; "
                                                  f"observed: {json.dumps(finding.get('evidence', {}).get('observed'), default=str)[:2000]}"}],
            "collected": end,
        })
        if finding["status"] not in STATE:
            continue  # not applicable: observed, not judged
        state, reason = STATE[finding["status"]]
        entry: dict[str, Any] = {
            "uuid": _uuid(key, "finding"),
            "title": f"{finding['control']} {finding['resource']}",
            "description": finding["reason"],
            "target": {"type": "objective-id", "target-id": f"{finding['control']}_obj",
                       "status": {"state": state, "reason": reason}},
            "related-observations": [{"observation-uuid": observation_uuid}],
        }
        if finding["status"] != "pass":
            risk = _risk(finding, key)
            risks.append(risk)
            entry["related-risks"] = [{"risk-uuid": risk["uuid"]}]
        results_findings.append(entry)
    result: dict[str, Any] = {
        "uuid": _uuid(run_id, "result"),
        "title": f"vigil check {run_id}",
        "description": f"Vigil run-time control assessment of account {run.get('account', '?')} "
                       f"in {', '.join(run.get('regions', [])) or 'the policy regions'}.",
        "start": start,
        "end": end,
        "reviewed-controls": {"control-selections": [{"include-controls": [
            {"control-id": c["id"]} for c in findings.get("controls", [])]} if findings.get("controls") else {"include-all": {}}]},
        "observations": observations,
        "findings": results_findings,
    }
    if risks:
        result["risks"] = risks
    return {"assessment-results": {
        "uuid": _uuid(run_id, "assessment-results"),
        "metadata": {"title": f"Vigil assessment results {run_id}", "last-modified": end,
                     "version": str(run.get("tool_version") or "0"), "oscal-version": OSCAL_VERSION},
        "import-ap": {"href": f"#{catalogue_uuid}"},
        "results": [result],
        "back-matter": {"resources": [{"uuid": catalogue_uuid, "title": "Vigil control catalogue",
                                       "description": "The controls assessed, each traced to the privacy-notice clause it enforces.",
                                       "remarks": "; ".join(f"{c['id']}: {c['title']}" for c in findings.get("controls", []))}]},
    }}


def write_oscal(findings: dict, path: str | Path) -> Path:
    """Write the OSCAL assessment results for a findings.json dict to `path`."""
    return safe_write.write_text(path, json.dumps(to_oscal(findings), indent=2) + "\n")
