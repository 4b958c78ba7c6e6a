"""The report's first page: what an auditor needs in thirty seconds, built from the other views.

Signature state and pass rate come from the context itself; this module adds the scope, the
findings that need action (each with its reason and fix), the waived ones, what retention did
(in objects and records, summed from the ledger's outcomes, never in action batches) and the
subject requests still open.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SEVERITY_ORDER = ("critical", "high", "medium", "low")

# Ledger outcome -> what one unit of its `target.count` is (S3 versions, DynamoDB items, recovery points).
COUNTED = {"delete_versions": "object versions deleted", "delete_items": "items deleted",
           "delete_recovery_point": "backup recovery points deleted"}
# Rewrites carry per-record counts (`target.counts`): records transformed, dropped or suppressed inside kept objects.
RECORD_COUNTS = {"anonymize": "records anonymized", "delete": "records deleted", "suppress": "records suppressed (k-anonymity)"}
ORDER = (*COUNTED.values(), *RECORD_COUNTS.values(), "objects rewritten")


def retention_done(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the applied actions did, in objects and records: [{"what": ..., "count": n}] (non-zero only)."""
    done = dict.fromkeys(ORDER, 0)
    for entry in entries:
        if entry.get("phase") != "outcome" or entry.get("outcome") != "ok":
            continue
        action = str(entry.get("action", ""))
        target = entry["target"] if isinstance(entry.get("target"), dict) else {}
        if action in COUNTED:
            done[COUNTED[action]] += int(target.get("count", 0) or 0)
        counts = target.get("counts")
        if isinstance(counts, dict):
            for key, label in RECORD_COUNTS.items():
                done[label] += int(counts.get(key, 0) or 0)
            if action in ("anonymize_object", "rewrite_object"):
                done["objects rewritten"] += 1
    return [{"what": what, "count": count} for what, count in done.items() if count]


def _severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def _accounts(run: dict[str, Any]) -> list[dict[str, str]]:
    listed = run.get("accounts")
    if isinstance(listed, list) and listed:
        return [{"id": str(a.get("id", "")), "name": str(a.get("name") or ""), "status": str(a.get("status") or "ok"),
                 "reason": str(a.get("reason") or "")} for a in listed if isinstance(a, dict)]
    return [{"id": str(run.get("account", "")), "name": "", "status": "ok", "reason": ""}]


def _retention(context: dict[str, Any]) -> dict[str, Any] | None:
    plan, ledger = context["retention"], context["ledger"]
    if plan is None and ledger is None:
        return None
    done = ledger["done"] if ledger else []
    planned = []
    if plan is not None and not plan["applied"]:
        counts = plan["totals"]["counts"]
        planned = [{"what": label, "count": counts[key]} for key, label in
                   (("delete", "to delete"), ("anonymize", "to anonymize"), ("suppress", "to suppress (k-anonymity)"),
                    ("held", "kept under a hold"), ("error", "could not be planned")) if counts.get(key)]
    return {"mode": plan["run"]["mode"] if plan else "apply", "applied": bool(plan["applied"]) if plan else True,
            "verify": plan["verify"] if plan else "not_run", "done": done, "planned": planned,
            "held": plan["totals"]["counts"].get("held", 0) if plan else 0}


def _grouped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (control, status, reason): the same problem on several resources is read once."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault((row["control"], row["status"], row["reason"]), {**row, "resources": []})
        group["resources"].append(row["resource"])
    return sorted(groups.values(), key=lambda g: (g["status"] != "fail", _severity_rank(g["severity"]), g["control"], g["resources"]))


def build(context: dict[str, Any], findings: dict[str, Any]) -> dict[str, Any]:
    run = findings["run"]
    problems: list[dict[str, Any]] = []
    waived: list[dict[str, Any]] = []
    for control in context["controls"]:
        for row in control["problems"]:
            item = {**row, "title": control["title"], "severity": control["severity"]}
            (waived if row["status"] == "waived" else problems).append(item)
    waived.sort(key=lambda f: (f["control"], f["resource"]))
    requests = context["requests"]
    return {
        "accounts": _accounts(run),
        "regions": ", ".join(map(str, run.get("regions") or [])),
        "policy_sha256": str(run.get("policy_sha256", "")),
        "problems": _grouped(problems),
        "problem_findings": len(problems),
        "waived": waived,
        "waiver_states": {state: sum(1 for w in context["waivers"] if w["state"] == state) for state in ("active", "expired", "stale")},
        "retention": _retention(context),
        "requests": None if requests is None else {"open": requests["open"], "overdue": requests["overdue"],
                                                   "received": requests["received"]},
    }
