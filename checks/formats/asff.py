"""findings.asff.json: AWS Security Finding Format, ready for `securityhub batch-import-findings`.

A JSON array, one finding per (control, resource), as Prowler's JSON-ASFF. Field limits from
the ASFF reference (Title 256, Description 1024, Recommendation text 512 characters, at most
32 related requirements) are applied here, so Security Hub accepts every finding. The verdict
is `Compliance.Status` (PASSED, FAILED, WARNING when it could not be evaluated, NOT_AVAILABLE
when it does not apply); a waived failure keeps FAILED with `Workflow.Status` SUPPRESSED and the
waiver in `Note` and `ProductFields`.
"""
from __future__ import annotations

from typing import Any

from vigil import __version__

from .fields import account_of, controls_by_id, finding_uid, fix_text, requirements, waived

SCHEMA_VERSION = "2018-10-08"
TYPES = ["Software and Configuration Checks/Industry and Regulatory Standards"]
COMPLIANCE = {"pass": "PASSED", "fail": "FAILED", "error": "WARNING", "not_applicable": "NOT_AVAILABLE"}
# ASFF resource types by ARN service and resource kind; anything else is "Other".
RESOURCE_TYPES = {("s3", ""): "AwsS3Bucket", ("dynamodb", "table"): "AwsDynamoDbTable", ("kms", "key"): "AwsKmsKey",
                  ("iam", "user"): "AwsIamUser", ("iam", "role"): "AwsIamRole", ("rds", "db"): "AwsRdsDbInstance",
                  ("rds", "cluster"): "AwsRdsDbCluster", ("backup", "backup-vault"): "AwsBackupBackupVault",
                  ("cloudtrail", "trail"): "AwsCloudTrailTrail"}


def resource_type(resource: str) -> str:
    if resource.isdigit():
        return "AwsAccount"
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return "Other"
    kind = parts[5].split("/", 1)[0].split(":", 1)[0] if parts[2] != "s3" else ""
    return RESOURCE_TYPES.get((parts[2], kind), "Other")


def _cut(text: Any, limit: int) -> str:
    value = str(text or "")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def security_finding(finding: dict[str, Any], control: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    account = account_of(finding, run)
    region = str(finding.get("region") or "")
    home = region if region and region != "global" else str((run.get("regions") or ["us-east-1"])[0])
    stamp = str(run.get("finished_at") or run.get("started_at"))
    status = str(finding.get("status", ""))
    severity = str(control.get("severity") or "medium")
    label = "INFORMATIONAL" if status in ("pass", "not_applicable") or severity == "info" else severity.upper()
    related = requirements(control)[:32]
    out: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_uid(finding, run),
        "ProductArn": f"arn:aws:securityhub:{home}:{account}:product/{account}/default",
        "ProductName": "Vigil", "CompanyName": "Vigil",
        "GeneratorId": f"vigil-{finding.get('control')}",
        "AwsAccountId": account,
        "Types": TYPES,
        "FirstObservedAt": stamp, "CreatedAt": stamp, "UpdatedAt": stamp,
        "Severity": {"Label": label},
        "Title": _cut(f"{finding.get('control')} {control.get('title', '')}".strip(), 256),
        "Description": _cut(finding.get("reason") or control.get("title"), 1024),
        "Resources": [{"Type": resource_type(str(finding.get("resource", ""))), "Id": str(finding.get("resource", "")),
                       "Partition": "aws", **({"Region": region} if region and region != "global" else {})}],
        "Compliance": {"Status": COMPLIANCE.get(status, "NOT_AVAILABLE"), **({"RelatedRequirements": related} if related else {})},
        "Workflow": {"Status": "SUPPRESSED" if waived(finding) else "RESOLVED" if status == "pass" else "NEW"},
        "RecordState": "ACTIVE",
        "ProductFields": {"vigil/ProviderName": "Vigil", "vigil/ProviderVersion": __version__, "vigil/Control": str(finding.get("control")),
                          "vigil/RunId": str(run.get("id", ""))},
    }
    if fix_text(finding):
        out["Remediation"] = {"Recommendation": {"Text": _cut(fix_text(finding), 512)}}
    if waived(finding):
        waiver = finding["waived"]
        out["Note"] = {"Text": _cut(f"Waived until {waiver.get('expires')} ({waiver.get('approval')}): {waiver.get('reason')}", 512),
                       "UpdatedBy": _cut(waiver.get("owner") or "vigil", 512), "UpdatedAt": stamp}
        out["ProductFields"].update({f"vigil/Waiver{key.capitalize()}": str(waiver.get(key, ""))
                                     for key in ("reason", "owner", "approval", "expires")})
    return out


def to_asff(data: dict[str, Any]) -> list[dict[str, Any]]:
    controls = controls_by_id(data)
    return [security_finding(f, controls.get(str(f.get("control")), {}), data["run"]) for f in data["findings"]]
