"""`vigil retain` over many accounts: each account's plan and ledger in accounts/<id>/, one plan file for the run.

Retention assumes its own role in each account (default `vigil-retention`, able to delete and
anonymize), never the read-only audit role, and never one identity for both: a leaked check
role then deletes nothing. Sessions refresh themselves (vigil.accounts.sessions), so an apply
that outlives the one-hour limit of a chained role keeps going. `--max-delete` holds for each
account's plan. An account whose role cannot be assumed, or whose keys cannot be read, is an
error in the plan's `accounts` list and the run exits 1; nothing is changed there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil import __version__, safe_write
from vigil.accounts.fanout import for_each, per_account_workers
from vigil.accounts.model import ERROR, OK, Account
from vigil.accounts.plans import AccountPlan
from vigil.accounts.sessions import Unreachable, assume
from vigil.aws import Aws
from vigil.errors import VigilError
from vigil.policy import Policy
from vigil.timestamps import iso_z as iso

from .engine import PLAN_FILE, SCHEMA, RetentionRun, run_retention
from .keys import load_keys
from .plan import KINDS


@dataclass
class AccountsRetention:
    run_id: str
    as_of: datetime
    policy: Policy
    apply: bool
    parts: dict[str, RetentionRun] = field(default_factory=dict)  # by account id, the accounts that ran
    accounts: list[dict[str, str]] = field(default_factory=list)  # every account's status

    @property
    def exit_code(self) -> int:
        failed = any(a["status"] == ERROR for a in self.accounts) or any(p.exit_code for p in self.parts.values())
        return 1 if failed else 0

    def to_json(self) -> dict[str, Any]:
        """The run's retention-plan.json: every account's stores (each naming its account), totals over all."""
        counts, size = dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0)
        stores = []
        for account_id, part in self.parts.items():
            for kind in KINDS:
                counts[kind] += part.totals["counts"][kind]
                size[kind] += part.totals["bytes"][kind]
            stores += [{"account": account_id, **s.to_json()} for s in part.summaries]
        return {
            "schema": SCHEMA,
            "run": {"id": self.run_id, "as_of": iso(self.as_of), "policy_sha256": self.policy.sha256,
                    "tool_version": __version__, "mode": "apply" if self.apply else "dry-run", "accounts": self.accounts},
            "stores": stores,
            "not_covered": [{"account": a, **n} for a, p in self.parts.items() for n in p.to_json()["not_covered"]],
            "totals": {"counts": counts, "bytes": size},
        }

    def write(self, directory: Path) -> Path:
        return safe_write.write_text(directory / PLAN_FILE, json.dumps(self.to_json(), indent=2) + "\n")


def run_retention_accounts(base: Aws, policy: Policy, accounts: list[Account], plans: list[AccountPlan], as_of: datetime,
                           directory: Path, run_id: str, *, apply: bool, max_delete: int | None,
                           store_names: list[str] | None, parallel: int, workers: int = 16,
                           lock_bucket: str | None = None) -> AccountsRetention:
    result = AccountsRetention(run_id, as_of, policy, apply)
    each = min(workers, per_account_workers(parallel, len(plans)))

    def one(plan: AccountPlan) -> tuple[dict[str, str], RetentionRun | None]:
        account = plan.account
        try:
            aws = assume(base, account, run_id, plan.policy.regions.primary, retention=True, max_pool=max(each, 8))
            keys = load_keys(plan.policy, aws)
        except (Unreachable, VigilError) as exc:
            return account.status(ERROR, f"nothing was planned or changed: {exc}"), None
        names = [n for n in store_names or [] if any(s.name == n for s in plan.policy.stores)] or None
        if store_names and names is None:
            return account.status(OK, "none of the --store names is a store of this account"), None
        folder = safe_write.ensure_dir(directory / "accounts" / account.id)
        run = run_retention(aws, plan.policy, keys, as_of, folder, run_id, apply=apply, max_delete=max_delete,
                            store_names=names, workers=each, lock_bucket=lock_bucket)
        return account.status(OK if run.exit_code == 0 else ERROR, "" if run.exit_code == 0 else "retention failed in this account: see its plan"), run

    done = {plan.account.id: outcome for plan, outcome in zip(plans, for_each(plans, parallel, one), strict=True)}
    result.accounts = [done[a.id][0] if a.id in done else a.skipped() for a in accounts]
    result.parts = {account_id: run for account_id, (_, run) in sorted(done.items()) if run is not None}
    result.write(directory)
    return result
