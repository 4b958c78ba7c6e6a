"""What the row-per-finding formats (CSV, OCSF, ASFF) and the console derive from a findings.json finding.

One place for: the finding's AWS service, account, severity and stable id, so every format
names them the same way.
"""
from __future__ import annotations

import hashlib
from typing import Any


def service_of(finding: dict[str, Any], control: dict[str, Any] | None = None) -> str:
    """The ARN's service; for a region- or account-level resource, the service of the API that was read."""
    resource = str(finding.get("resource", ""))
    if resource.startswith("arn:"):
        parts = resource.split(":")
        if len(parts) > 2 and parts[2]:
            return parts[2]
    api = (finding.get("evidence") or {}).get("api")
    first = api[0] if isinstance(api, list) and api else api
    if isinstance(first, str) and ":" in first:
        return first.split(":", 1)[0]
    services = (control or {}).get("services") or []
    return str(services[0]) if services else "account"


def account_of(finding: dict[str, Any], run: dict[str, Any]) -> str:
    return str(finding.get("account") or run.get("account") or "")


def finding_uid(finding: dict[str, Any], run: dict[str, Any]) -> str:
    """Stable across runs for the same (account, control, resource): trackers match findings by it."""
    digest = hashlib.sha256(f"{finding.get('control')}\n{finding.get('resource')}".encode()).hexdigest()[:16]
    region = finding.get("region") or "global"
    return f"vigil-{finding.get('control')}-{account_of(finding, run)}-{region}-{digest}"


def controls_by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(c.get("id")): c for c in data.get("controls") or []}


def waived(finding: dict[str, Any]) -> bool:
    return finding.get("status") in ("fail", "error") and isinstance(finding.get("waived"), dict)


def fix_text(finding: dict[str, Any]) -> str:
    remediation = finding.get("remediation")
    return str(remediation.get("summary", "")) if isinstance(remediation, dict) else ""


def requirements(control: dict[str, Any]) -> list[str]:
    """`framework: ref` for each framework reference the control maps to."""
    return [f"{name}: {ref}" for name, refs in (control.get("frameworks") or {}).items() for ref in refs]
