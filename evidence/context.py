"""From loaded results to what the templates show: plain dicts and lists, no I/O.

Statuses roll up worst-first (fail, error, waived, pass, not applicable) from findings to
controls, to framework references, and to the privacy promises the controls enforce. A fail
or error finding that a waiver in force accepts is shown and counted as `waived` (its real
status stays beside it); the first page (glance.py) is built from the same views.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from vigil.checks.catalogue import Clause, catalogue

from . import charts, glance
from .results import Results

FRAMEWORKS = {"pci_dss_4": "PCI DSS 4.0", "soc2": "SOC 2", "iso27001_2022": "ISO/IEC 27001:2022",
              "gdpr": "GDPR", "aws_config": "AWS Config rule"}
STATUSES = ("pass", "fail", "error", "waived", "not_applicable")
WORST_FIRST = ("fail", "error", "waived", "pass", "not_applicable", "not_evaluated")
RETENTION_KEYS = ("delete", "anonymize", "suppress", "keep", "held", "error")


def worst(statuses: list[str]) -> str:
    present = set(statuses)
    return next((status for status in WORST_FIRST if status in present), "not_evaluated")


def pass_rate(counts: dict[str, int]) -> float | None:
    """Passing / judged findings; a waived failure is judged, and not a pass."""
    judged = sum(int(counts.get(s, 0)) for s in ("pass", "fail", "error", "waived"))
    return int(counts.get("pass", 0)) / judged if judged else None


def observed_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def effective_status(finding: dict[str, Any]) -> str:
    """`waived` for a fail/error finding a waiver in force accepts; the finding's own status otherwise."""
    status = str(finding.get("status", ""))
    return "waived" if status in ("fail", "error") and isinstance(finding.get("waived"), dict) else status


def _waiver_view(waiver: dict[str, Any]) -> dict[str, str]:
    return {key: str(waiver.get(key, "")) for key in ("reason", "owner", "approval", "expires")}


def _fix_view(finding: dict[str, Any]) -> str:
    remediation = finding.get("remediation")
    return str(remediation.get("summary", "")) if isinstance(remediation, dict) else ""


def _finding_view(finding: dict[str, Any]) -> dict[str, Any]:
    evidence = finding.get("evidence") or {}
    api = evidence.get("api", "")
    waived = finding.get("waived")
    return {
        "control": str(finding.get("control", "")),
        "resource": str(finding.get("resource", "")),
        "region": str(finding.get("region", "")),
        "account": str(finding.get("account", "")),
        "status": effective_status(finding),
        "found": str(finding.get("status", "")),  # the status as judged, before any waiver
        "reason": str(finding.get("reason", "")),
        "fix": _fix_view(finding),
        "waiver": _waiver_view(waived) if isinstance(waived, dict) else None,
        "api": ", ".join(map(str, api)) if isinstance(api, list) else str(api),
        "observed": observed_json(evidence.get("observed")),
    }


def _clause_view(clause: Clause) -> dict[str, str]:
    return {"text": clause.text, "notice": clause.notice or "the privacy notice", "section": clause.section}


def not_evaluated_reasons(findings: dict[str, Any]) -> dict[str, str]:
    """control id -> why the run did not evaluate it, as the run recorded it (`not_evaluated` in findings.json)."""
    recorded = findings.get("not_evaluated") or []
    return {str(entry.get("control", "")): str(entry.get("reason", "")) for entry in recorded if isinstance(entry, dict)}


def control_views(findings: dict[str, Any]) -> list[dict[str, Any]]:
    known = catalogue()
    by_control: dict[str, list[dict[str, Any]]] = {}
    for finding in findings["findings"]:
        by_control.setdefault(str(finding.get("control", "")), []).append(_finding_view(finding))
    skipped = not_evaluated_reasons(findings)
    declared = list(findings["controls"])
    listed = {str(control.get("id", "")) for control in declared}
    for cid in sorted(set(by_control) - listed):  # a finding whose control the file does not list still shows
        declared.append(known[cid].to_json() if cid in known else
                        {"id": cid, "title": "(not in the control catalogue)", "severity": "", "clause": "", "frameworks": {}})
    views = []
    for control in declared:
        cid = str(control.get("id", ""))
        rows = sorted(by_control.get(cid, []), key=lambda f: (WORST_FIRST.index(f["status"]) if f["status"] in WORST_FIRST else 9, f["resource"]))
        counts = Counter(row["status"] for row in rows)
        entry = known.get(cid)
        if entry:
            clauses = [_clause_view(c) for c in (entry.clause, *entry.also)]
        else:
            clauses = [{"text": str(control["clause"]), "notice": "", "section": ""}] if control.get("clause") else []
        frameworks = control.get("frameworks") or {}
        views.append({
            "id": cid,
            "title": str(control.get("title", "")),
            "severity": str(control.get("severity", "")),
            "status": worst([row["status"] for row in rows]),
            "counts": {status: counts.get(status, 0) for status in STATUSES},
            "clauses": clauses,
            "frameworks": [(FRAMEWORKS.get(key, key), [str(ref) for ref in refs]) for key, refs in frameworks.items() if refs],
            "findings": rows,
            "problems": [row for row in rows if row["status"] not in ("pass", "not_applicable")],
            "passing": [row for row in rows if row["status"] in ("pass", "not_applicable")],
            "not_evaluated": "" if rows else skipped.get(cid) or (
                "nothing in its scope was found in the accounts and regions checked (scope: "
                f"{control.get('scope') or (entry.scope if entry else 'unknown')})"),
        })
    return views


def framework_views(controls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per framework: each reference with the controls mapped to it and their rolled-up status."""
    views = []
    others = [label for c in controls for label, _ in c["frameworks"] if label not in FRAMEWORKS.values()]
    for label in [*FRAMEWORKS.values(), *dict.fromkeys(others)]:  # known frameworks first, then any others the file names
        refs: dict[str, list[tuple[str, str]]] = {}
        for control in controls:
            for framework, values in control["frameworks"]:
                if framework == label:
                    for ref in values:
                        refs.setdefault(ref, []).append((control["id"], control["status"]))
        if not refs:
            continue
        rows = [{"ref": ref, "status": worst([s for _, s in members]), "controls": members} for ref, members in sorted(refs.items())]
        counts = Counter(row["status"] for row in rows)
        views.append({"label": label, "refs": rows, "counts": {s: counts.get(s, 0) for s in WORST_FIRST}})
    return views


def promise_views(controls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each clause of the privacy notice, quoted, with the controls that enforce it."""
    promises: dict[str, dict[str, Any]] = {}
    for control in controls:
        for clause in control["clauses"]:
            promise = promises.setdefault(clause["text"], {**clause, "controls": []})
            promise["controls"].append(control)
    for number, promise in enumerate(promises.values(), start=1):
        promise["status"] = worst([c["status"] for c in promise["controls"]])
        promise["number"] = number
        for control in promise["controls"]:  # each control links to the promises it keeps, by number
            for clause in control["clauses"]:
                if clause["text"] == promise["text"]:
                    clause["promise"] = number
    return list(promises.values())


def retention_view(plan: dict[str, Any] | None, policy_sha256: str = "") -> dict[str, Any] | None:
    if not plan:
        return None
    run = plan.get("run") or {}
    stores: list[dict[str, Any]] = []
    for store in plan.get("stores") or []:
        counts, sizes = store.get("counts") or {}, store.get("bytes") or {}
        verify = store.get("verify") or {}
        stores.append({
            "store": str(store.get("store", "")), "kind": str(store.get("kind", "")),
            "category": str(store.get("category", "")), "action": str(store.get("action", "")),
            "resource": str(store.get("resource", "")), "region": str(store.get("region", "")),
            "replicas": [str(r if not isinstance(r, dict) else r.get("resource", r)) for r in store.get("replicas") or []],
            "counts": {key: int(counts.get(key, 0) or 0) for key in RETENTION_KEYS},
            "bytes": {key: int(sizes.get(key, 0) or 0) for key in RETENTION_KEYS},
            "holds": [{"reason": str(h.get("reason", "")), "until": str(h.get("until") or ""),
                       "count": int(h.get("count", 0) or 0)} for h in store.get("holds") or []],
            "errors": [{"object": str(e.get("object", "")), "reason": str(e.get("reason", ""))} for e in store.get("errors") or []],
            "verify": {"status": str(verify.get("status", "not_run")), "remaining": int(verify.get("remaining", 0) or 0)},
            "unnamed": {str(k): int(v or 0) for k, v in (store.get("unnamed_fields") or {}).items()},
        })
    totals = plan.get("totals") or {}
    applied = str(run.get("mode", "")) == "apply"
    return {
        "run": {key: str(run.get(key, "")) for key in ("id", "as_of", "policy_sha256", "tool_version", "mode")},
        "applied": applied,
        "stores": stores,
        "totals": {"counts": {k: int((totals.get("counts") or {}).get(k, 0) or 0) for k in RETENTION_KEYS},
                   "bytes": {k: int((totals.get("bytes") or {}).get(k, 0) or 0) for k in RETENTION_KEYS}},
        "verify": worst_verify([s["verify"]["status"] for s in stores]),
        "not_covered": [{"store": str(n.get("store", "")), "reason": str(n.get("reason", ""))}
                        for n in plan.get("not_covered") or [] if isinstance(n, dict)],
        "other_policy": bool(run.get("policy_sha256")) and str(run.get("policy_sha256")) != policy_sha256,
    }


def worst_verify(statuses: list[str]) -> str:
    return "fail" if "fail" in statuses else "pass" if statuses and all(s == "pass" for s in statuses) else "not_run"


def ledger_view(results: Results) -> dict[str, Any] | None:
    ledger = results.ledger
    if ledger is None:
        return None
    outcomes = Counter((str(e.get("action", "")), str(e.get("outcome", ""))) for e in ledger.entries if e.get("phase") == "outcome")
    intents = sum(1 for e in ledger.entries if e.get("phase") == "intent")
    return {"lines": ledger.lines, "ok": ledger.ok, "failures": ledger.failures, "head": ledger.head, "intents": intents,
            "outcomes": [{"action": a, "outcome": o, "count": n} for (a, o), n in sorted(outcomes.items())],
            "unfinished": intents - sum(outcomes.values()), "done": glance.retention_done(ledger.entries)}


def requests_view(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Subject-rights requests: counts only (the file holds no ids or subjects, and none are shown)."""
    if not isinstance(data, dict):
        return None
    number = {k: int(data.get(k, 0) or 0) for k in ("received", "completed", "on_time", "completed_late", "open", "overdue")}
    kinds = data["by_kind"] if isinstance(data.get("by_kind"), dict) else {}
    return {**number, "by_kind": {str(k): int(v or 0) for k, v in kinds.items()},
            "deadline": str(data.get("deadline", "")), "as_of": str(data.get("as_of", ""))}


def policy_view(results: Results) -> dict[str, Any]:
    in_force = results.policy
    assert in_force is not None
    categories = []
    if in_force.policy is not None:
        policy = in_force.policy
        for name, category in policy.categories.items():
            categories.append({
                "name": name, "description": category.description or "", "retain": category.retain.text,
                "after": category.after or "", "action": category.action or "keep",
                "keep_at_least": category.keep_at_least.text if category.keep_at_least else "",
                "anonymize": [f"{field}: {transform}" for field, transform in (category.anonymize or {}).items()],
                "k": category.verify.k if category.verify else "",
                "basis": category.basis or "",
                "stores": [store.name for store in policy.stores if store.category == name],
            })
    return {"sha256": in_force.sha256, "path": in_force.path or "", "note": in_force.note or "",
            "organization": in_force.policy.organization if in_force.policy else "", "categories": categories}


def trend_view(results: Results) -> dict[str, Any]:
    points = [charts.Point(str(run["run"].get("id", "")), pass_rate(run["summary"])) for run in results.history]
    rows = [{"id": p.label, "started_at": str(run["run"].get("started_at", "")),
             "rate": "" if p.value is None else f"{p.value * 100:.1f}%"} for p, run in zip(points, results.history, strict=True)]
    return {"rows": rows, "svg": charts.line_chart(points, "trend-chart", "Pass rate over runs (pass / judged findings)")}


def account_matrix(findings: dict[str, Any], controls: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A run over many accounts: control x account, each cell the worst status there (linking to that account's
    failures), and each account's fail/error findings; None for a one-account run."""
    listed = [a for a in findings["run"].get("accounts") or [] if isinstance(a, dict)]
    if not listed:
        return None
    reached = [a for a in listed if a.get("status") != "skipped"]
    by_cell: dict[tuple[str, str], list[str]] = {}
    problems: dict[str, list[dict[str, Any]]] = {str(a["id"]): [] for a in reached}
    for finding in findings["findings"]:
        account = str(finding.get("account", ""))
        by_cell.setdefault((str(finding["control"]), account), []).append(effective_status(finding))
        if finding.get("status") in ("fail", "error") and account in problems:
            problems[account].append(_finding_view(finding))
    rows = [{"id": c["id"], "title": c["title"],
             "cells": [{"account": str(a["id"]), "status": worst(by_cell.get((c["id"], str(a["id"])), [])),
                        "count": len(by_cell.get((c["id"], str(a["id"])), []))} for a in reached]} for c in controls]
    return {"accounts": listed, "reached": reached, "rows": rows,
            "problems": {k: sorted(v, key=lambda f: (f["control"], f["resource"])) for k, v in problems.items()}}


def waiver_views(findings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every waiver of the policy with its state (active, expired, stale) and what it matches."""
    views = []
    for entry in findings.get("waivers") or []:
        if not isinstance(entry, dict):
            continue
        views.append({**{key: str(entry.get(key, "")) for key in ("policy_key", "control", "resource", "reason", "owner",
                                                                   "approval", "expires", "state")},
                      "matches": [str(m) for m in entry.get("matches") or []]})
    return views


def build(results: Results, signing: dict[str, Any]) -> dict[str, Any]:
    findings = results.findings
    controls = control_views(findings)
    counted = Counter(effective_status(f) for f in findings["findings"])
    summary = {status: int(counted.get(status, 0)) for status in STATUSES}
    rate = pass_rate(summary)
    bars = [charts.Bar(c["id"], c["counts"]) for c in controls]
    context = {
        "run": {key: str(value) if not isinstance(value, list) else ", ".join(map(str, value))
                for key, value in findings["run"].items()},
        "signing": signing,
        "summary": summary,
        "not_evaluated": [{"id": c["id"], "title": c["title"], "reason": c["not_evaluated"]} for c in controls if c["not_evaluated"]],
        "pass_rate": "" if rate is None else f"{rate * 100:.1f}%",
        "control_status": Counter(c["status"] for c in controls),
        "controls": controls,
        "waivers": waiver_views(findings),
        "frameworks": framework_views(controls),
        "promises": promise_views(controls),
        "retention": retention_view(results.plan, str(findings["run"].get("policy_sha256", ""))),
        "ledger": ledger_view(results),
        "requests": requests_view(results.requests),
        "policy": policy_view(results),
        "trend": trend_view(results),
        "summary_svg": charts.bar_chart(bars, "summary-chart", "Findings per control by status"),
        "statuses": STATUSES,
        "accounts": account_matrix(findings, controls),
    }
    context["glance"] = glance.build(context, findings)
    return context


def summary_json(context: dict[str, Any]) -> dict[str, Any]:
    """summary.json: the verdicts at a glance, for dashboards and other tools."""
    retention = context["retention"]
    ledger = context["ledger"]
    return {
        "schema": "vigil.summary/v1",
        "run": context["run"],
        "signed": bool(context["signing"]["signed"]),
        "signing_key_fingerprint": context["signing"]["fingerprint"] or None,
        "findings": context["summary"],  # fail and error count the findings no waiver accepts; waived ones apart
        "not_evaluated": {entry["id"]: entry["reason"] for entry in context["not_evaluated"]},
        "pass_rate": pass_rate(context["summary"]),
        "controls": {c["id"]: c["status"] for c in context["controls"]},
        "frameworks": {f["label"]: {r["ref"]: r["status"] for r in f["refs"]} for f in context["frameworks"]},
        "waivers": [{key: w[key] for key in ("control", "resource", "state", "reason", "owner", "approval", "expires", "matches")}
                    for w in context["waivers"]],
        "waived": [{"control": f["control"], "resource": f["resource"], "status": f["found"], **f["waiver"]}
                   for c in context["controls"] for f in c["findings"] if f["waiver"] and f["status"] == "waived"],
        "retention": None if retention is None else {"mode": retention["run"]["mode"], "verify": retention["verify"],
                                                      "totals": retention["totals"]},
        "ledger": None if ledger is None else {"lines": ledger["lines"], "chain_ok": ledger["ok"], "head": ledger["head"],
                                               "done": ledger["done"]},
        "policy_sha256": context["policy"]["sha256"],
        "requests": context.get("requests"),
    }
