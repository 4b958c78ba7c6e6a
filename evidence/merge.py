"""`vigil merge`: join per-account packs (one `vigil run` per account, e.g. a Step Functions map) into one signed pack.

Each input pack is verified first (signature against the trusted key when one is given,
every digest, every ledger chain); a pack that fails stops the merge and nothing is written,
so a merge never launders tampered evidence. Each pack is copied whole, its own manifest and
signature included, into `accounts/<id>/`; the merged pack's findings.json joins every
account's findings (each naming its account, `run.accounts` listing them) and its
retention-plan.json every account's stores; the report and one manifest over it all follow.
"""
from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil import safe_write
from vigil.errors import UsageError, VigilError
from vigil.timestamps import compact_z

from .manifest import verify_pack, walk_pack
from .results import FINDINGS, PLAN, load_findings

STATUSES = ("pass", "fail", "error", "not_applicable")


class MergeRefused(VigilError):
    """An input pack did not verify: nothing was written (exit 1)."""


def pack_account(document: dict[str, Any]) -> str:
    """The account a pack is about: its one reached account (a run with --accounts-file of one), else its run's."""
    listed = document["run"].get("accounts") or []
    return str(listed[0]["id"]) if len(listed) == 1 else str(document["run"].get("account", ""))


def check_inputs(packs: list[Path], output: Path, public_key: bytes | None) -> dict[str, Path]:
    """Account id -> pack, every pack verified; bad input is exit 2, a pack that fails verification exit 1."""
    by_account: dict[str, Path] = {}
    for pack in packs:
        if not pack.is_dir():
            raise UsageError(f"{pack}: no such directory")
        if pack.resolve() == output.resolve() or output.resolve().is_relative_to(pack.resolve()):
            raise UsageError(f"--output {output} is inside the pack {pack}")
        account = pack_account(load_findings(pack))
        if account in by_account:
            raise UsageError(f"{pack} and {by_account[account]} are both packs of account {account}: merge one per account")
        result = verify_pack(pack, public_key)
        if not result.ok:
            raise MergeRefused(f"{pack} did not verify, nothing was merged:\n  " + "\n  ".join(result.failures))
        if public_key is not None and not result.origin_proven:
            raise MergeRefused(f"{pack} is not signed by the trusted key, nothing was merged")
        by_account[account] = pack
    return by_account


def merged_findings(documents: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
    first = documents[min(documents)]
    findings = [{**f, "account": f.get("account") or account} for account, doc in sorted(documents.items()) for f in doc["findings"]]
    findings.sort(key=lambda f: (f["control"], f["account"], f["resource"]))
    summary = dict.fromkeys(STATUSES, 0)
    for finding in findings:
        summary[finding["status"]] = summary.get(finding["status"], 0) + 1
    runs = [doc["run"] for doc in documents.values()]
    shas = {r.get("policy_sha256") for r in runs}
    return {
        "schema": first["schema"],
        "run": {"id": run_id, "started_at": min(r["started_at"] for r in runs), "finished_at": max(r["finished_at"] for r in runs),
                "account": first["run"]["account"],  # the schema asks for one: the lowest account id of the merge
                "regions": list(dict.fromkeys(region for r in runs for region in r.get("regions", []))),
                "tool_version": first["run"]["tool_version"],
                "policy_sha256": first["run"]["policy_sha256"] if len(shas) == 1 else "0" * 64,
                "policy_file": first["run"].get("policy_file", ""),
                "merged_from": {account: doc["run"]["id"] for account, doc in sorted(documents.items())},
                "accounts": [entry for account, doc in sorted(documents.items())
                             for entry in doc["run"].get("accounts") or [{"id": account, "name": "", "status": "ok", "reason": ""}]]},
        "controls": first["controls"],
        "findings": findings,
        "summary": summary,
        "waivers": [{**w, "account": w.get("account") or account} for account, doc in sorted(documents.items())
                    for w in doc.get("waivers", [])],
    }


def merged_plan(plans: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
    first = plans[min(plans)]
    totals: dict[str, dict[str, int]] = {"counts": {}, "bytes": {}}
    for plan in plans.values():
        for part in ("counts", "bytes"):
            for kind, value in plan.get("totals", {}).get(part, {}).items():
                totals[part][kind] = totals[part].get(kind, 0) + value
    return {"schema": first["schema"], "run": {**first["run"], "id": run_id, "merged_from": {a: p["run"]["id"] for a, p in plans.items()}},
            "stores": [{"account": a, **s} for a, p in sorted(plans.items()) for s in p.get("stores", [])],
            "not_covered": [{"account": a, **n} for a, p in sorted(plans.items()) for n in p.get("not_covered", [])],
            "totals": totals}


def merge_packs(packs: list[Path], output: Path, run_id: str | None = None, public_key: bytes | None = None) -> Path:
    """Verify, copy and join; returns the merged folder (the caller renders and signs it: `write_report`)."""
    by_account = check_inputs(packs, output, public_key)
    if output.exists() and any(output.iterdir()):
        raise UsageError(f"--output {output} is not empty")
    run_id = run_id or compact_z(datetime.now(UTC)) + "-merge"
    safe_write.ensure_dir(output, "--output")
    documents: dict[str, dict[str, Any]] = {}
    plans: dict[str, dict[str, Any]] = {}
    for account, pack in sorted(by_account.items()):
        target = output / "accounts" / account
        for relative in walk_pack(pack).files + ["manifest.json", "manifest.sig"]:
            if (pack / relative).is_file():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(pack / relative, target / relative, follow_symlinks=False)
        documents[account] = json.loads((pack / FINDINGS).read_text(encoding="utf-8"))
        if (pack / PLAN).is_file():
            plans[account] = json.loads((pack / PLAN).read_text(encoding="utf-8"))
    safe_write.write_text(output / FINDINGS, json.dumps(merged_findings(documents, run_id), indent=2) + "\n")
    if plans:
        safe_write.write_text(output / PLAN, json.dumps(merged_plan(plans, run_id), indent=2) + "\n")
    return output
