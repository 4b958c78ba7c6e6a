"""findings.csv: one row per finding, the columns Prowler users filter on, for spreadsheets and BI tools.

RFC 4180 (comma separated, quoted where needed). Every value comes from AWS or the policy, so a
cell that a spreadsheet would read as a formula (leading =, +, -, @, tab or CR) gets a leading
apostrophe: opening the file never runs anything.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from .fields import account_of, controls_by_id, finding_uid, fix_text, requirements, service_of, waived

COLUMNS = ("TIMESTAMP", "ACCOUNT_UID", "REGION", "FINDING_UID", "PROVIDER", "CHECK_ID", "CHECK_TITLE", "SERVICE_NAME",
           "SEVERITY", "STATUS", "STATUS_EXTENDED", "MUTED", "RESOURCE_UID", "REMEDIATION_RECOMMENDATION_TEXT",
           "COMPLIANCE", "WAIVER_REASON", "WAIVER_OWNER", "WAIVER_APPROVAL", "WAIVER_EXPIRES")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(data: dict[str, Any]) -> str:
    run, controls = data["run"], controls_by_id(data)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for finding in data["findings"]:
        control = controls.get(str(finding.get("control")), {})
        waiver = finding.get("waived") if waived(finding) else {}
        row = (run.get("finished_at") or run.get("started_at"), account_of(finding, run), finding.get("region"),
               finding_uid(finding, run), "aws", finding.get("control"), control.get("title", ""), service_of(finding, control),
               control.get("severity", ""), str(finding.get("status", "")).upper(), finding.get("reason"),
               "true" if waiver else "false", finding.get("resource"), fix_text(finding), " | ".join(requirements(control)),
               waiver.get("reason"), waiver.get("owner"), waiver.get("approval"), waiver.get("expires"))
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()
