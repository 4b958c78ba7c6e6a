"""findings.ocsf.json: OCSF 1.1.0 Detection Findings (class_uid 2004), one per finding, as Prowler's JSON-OCSF.

A JSON array of events. Mapping (https://schema.ocsf.io/1.1.0/classes/detection_finding):
* `status_code` is the check's verdict (PASS, FAIL, ERROR, NOT_APPLICABLE); `status_id` is the
  finding's workflow state: New, or Suppressed for a waived failure (the waiver rides in
  `unmapped.waiver`);
* `severity_id` from the control's severity (Informational for a pass, as nothing needs doing);
* `finding_info.uid` is stable across runs for the same control and resource;
* the observation behind the verdict is the resource's `data`; framework references and the
  quoted promise go to `unmapped` (a Detection Finding has no compliance attribute).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from vigil import __version__

from .fields import account_of, controls_by_id, finding_uid, fix_text, requirements, service_of, waived

OCSF_VERSION = "1.1.0"
CLASS_UID, CATEGORY_UID, ACTIVITY_CREATE = 2004, 2, 1
SEVERITY_ID = {"informational": 1, "info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
STATUS_NEW, STATUS_SUPPRESSED = 1, 3
ACCOUNT_TYPE_AWS = 10  # account.type_id "AWS Account"


def _millis(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def _severity(finding: dict[str, Any], control: dict[str, Any]) -> str:
    return "informational" if finding.get("status") in ("pass", "not_applicable") else str(control.get("severity") or "medium")


def detection_finding(finding: dict[str, Any], control: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    stamp = str(run.get("finished_at") or run.get("started_at"))
    severity = _severity(finding, control)
    account = account_of(finding, run)
    resource = str(finding.get("resource", ""))
    region = str(finding.get("region") or "")
    event: dict[str, Any] = {
        "message": finding.get("reason", ""),
        "metadata": {"event_code": finding.get("control"), "version": OCSF_VERSION, "profiles": ["cloud", "datetime"],
                     "product": {"uid": "vigil", "name": "Vigil", "vendor_name": "Vigil", "version": __version__},
                     "uid": str(run.get("id", ""))},
        "severity_id": SEVERITY_ID.get(severity, 0), "severity": "Informational" if SEVERITY_ID.get(severity) == 1 else severity.capitalize(),
        "status_id": STATUS_SUPPRESSED if waived(finding) else STATUS_NEW,
        "status": "Suppressed" if waived(finding) else "New",
        "status_code": str(finding.get("status", "")).upper(), "status_detail": finding.get("reason", ""),
        "activity_id": ACTIVITY_CREATE, "activity_name": "Create",
        "category_uid": CATEGORY_UID, "category_name": "Findings", "class_uid": CLASS_UID, "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE, "type_name": "Detection Finding: Create",
        "time": _millis(stamp), "time_dt": stamp,
        "finding_info": {"uid": finding_uid(finding, run), "title": control.get("title") or finding.get("control"),
                         "desc": f"Passes when {control.get('passes')}." if control.get("passes") else control.get("title", ""),
                         "types": [service_of(finding, control)], "created_time": _millis(stamp), "created_time_dt": stamp},
        "resources": [{"uid": resource, "name": resource.rsplit("/", 1)[-1].rsplit(":", 1)[-1], "region": region or None,
                       "group": {"name": service_of(finding, control)}, "cloud_partition": "aws",
                       "data": {"evidence": finding.get("evidence")}}],
        "cloud": {"provider": "aws", "region": region or None, "account": {"uid": account, "type_id": ACCOUNT_TYPE_AWS,
                                                                             "type": "AWS Account"}},
        "unmapped": {"compliance": requirements(control), "clause": control.get("clause"),
                     "waiver": finding.get("waived") if waived(finding) else None},
    }
    if fix_text(finding):
        event["remediation"] = {"desc": fix_text(finding)}
    return _without_none(event)


def _without_none(value: Any) -> Any:
    """Absent rather than null, as Prowler writes it (exclude_none)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def to_ocsf(data: dict[str, Any]) -> list[dict[str, Any]]:
    controls = controls_by_id(data)
    return [detection_finding(f, controls.get(str(f.get("control")), {}), data["run"]) for f in data["findings"]]
