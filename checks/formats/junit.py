"""JUnit XML for CI test reports: one testsuite per control, one testcase per finding.

fail -> <failure>, error -> <error> (could not be evaluated), not_applicable -> <skipped>.
A waived fail/error finding is <skipped> with the waiver in its message (it does not fail
the run either), and its real status stays in the testcase's properties.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any


def _testcase(finding: Mapping[str, Any], suite: str, many: bool = False) -> tuple[ET.Element, str]:
    """`many`: a run over several accounts, where the test's name starts with the account (one bucket name, two accounts)."""
    name = f"{finding['account']} {finding['resource']}" if many and finding.get("account") else finding["resource"]
    case = ET.Element("testcase", {"classname": f"vigil.{finding['control']}", "name": name, "time": "0"})
    props = ET.SubElement(case, "properties")
    for name in ("account", "status", "region") if finding.get("account") else ("status", "region"):
        ET.SubElement(props, "property", {"name": name, "value": str(finding.get(name, ""))})
    status, reason = finding["status"], finding["reason"]
    waived = finding.get("waived")
    detail = {"evidence": finding.get("evidence"), "remediation": finding.get("remediation")}
    body = json.dumps({k: v for k, v in detail.items() if v is not None}, indent=2, default=str)
    if waived and status in ("fail", "error"):
        ET.SubElement(case, "skipped", {"message": f"waived until {waived['expires']} ({waived['owner']}, "
                                                   f"{waived['approval']}): {waived['reason']}; real status {status}: {reason}"})
        return case, "skipped"
    if status == "fail":
        ET.SubElement(case, "failure", {"message": reason, "type": f"{finding['control']} {suite}"}).text = body
    elif status == "error":
        ET.SubElement(case, "error", {"message": reason, "type": "not evaluated"}).text = body
    elif status == "not_applicable":
        ET.SubElement(case, "skipped", {"message": f"not applicable: {reason}"})
        return case, "skipped"
    return case, status


def to_junit(data: Mapping[str, Any]) -> str:
    """The JUnit XML text for a findings.json document."""
    controls = {c["id"]: c for c in data.get("controls", [])}
    run = data.get("run", {})
    root = ET.Element("testsuites", {"name": f"vigil check {run.get('id', '')}".strip()})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    by_control: dict[str, list[Mapping[str, Any]]] = {}
    for finding in data.get("findings", []):
        by_control.setdefault(finding["control"], []).append(finding)
    for control_id, findings in by_control.items():
        control = controls.get(control_id, {})
        suite = ET.SubElement(root, "testsuite", {"name": f"{control_id} {control.get('title', '')}".strip()})
        if run.get("started_at"):
            suite.set("timestamp", run["started_at"])
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for finding in findings:
            case, outcome = _testcase(finding, control.get("severity", ""), many=bool(run.get("accounts")))
            suite.append(case)
            counts["tests"] += 1
            counts["failures"] += outcome == "fail"
            counts["errors"] += outcome == "error"
            counts["skipped"] += outcome == "skipped"
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
