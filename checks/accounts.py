"""`vigil check` over many accounts: a pool over accounts, each running the one-account check in its own session.

An account whose role cannot be assumed, or whose every read is denied, is never silently
missing: it gets one `error` finding per control on `arn:aws:iam::<id>:root`, with the reason
in words. Accounts not ACTIVE are listed as skipped. Each account keeps its own run (its
policy, waivers and findings, written to accounts/<id>/); the run's findings.json joins them.
"""
from __future__ import annotations

from datetime import UTC, datetime

from vigil.checks.catalogue import catalogue
from vigil.checks.model import Evidence, Finding, Inventory, Status
from vigil.checks.runner import CheckRun, RetentionReader, run_check
from vigil.checks.waivers import ACTIVE, EXPIRED, STALE, WaiverState, apply_waivers

from vigil.accounts.fanout import for_each, per_account_workers
from vigil.accounts.model import ERROR, OK, Account
from vigil.accounts.plans import AccountPlan
from vigil.accounts.sessions import Unreachable, assume
from vigil.aws import Aws
from vigil.policy import Policy


def denied_everywhere(inventory: Inventory) -> str | None:
    """When every listing the check makes was denied (the role reads nothing), the first denial; else None."""
    needed = ["s3", "iam", *(f"{service}:{region}" for region in inventory.regions for service in ("kms", "dynamodb"))]
    errors = [inventory.listing_errors.get(key) for key in needed]
    if all(fact is not None and "denied" in (fact.error or "") for fact in errors):
        return errors[0].error if errors[0] is not None else None
    return None


def unreachable_run(plan: AccountPlan, run_id: str, only: list[str] | None, reason: str) -> CheckRun:
    """The account's run when it could not be read: an error per control, resource its root."""
    account, now = plan.account, datetime.now(UTC)
    label = f"account {account.id}" + (f" ({account.name})" if account.name else "")
    findings = [Finding(control, account.root, plan.policy.regions.primary, Status.ERROR,
                        f"{label} was not checked: {reason}", Evidence("sts:AssumeRole", {"role": account.role_arn()}),
                        account=account.id)
                for control in (only or list(catalogue()))]
    waived, states = apply_waivers(plan.policy.waivers, findings, now.date())
    return CheckRun(run_id, plan.policy, plan.regions, now, now, Inventory(account.id, plan.regions), findings, waived, states)


def merge_waiver_states(parts: list[CheckRun]) -> list[WaiverState]:
    """Each waiver once: expired, active when it waives something in any account, else stale."""
    by_index: dict[int, list[WaiverState]] = {}
    for part in parts:
        for state in part.waiver_states:
            by_index.setdefault(state.index, []).append(state)
    merged = []
    for index, states in sorted(by_index.items()):
        matches = tuple(sorted({m for s in states for m in s.matches}))
        kind = EXPIRED if states[0].state == EXPIRED else (ACTIVE if any(s.state == ACTIVE for s in states) else STALE)
        merged.append(WaiverState(index, states[0].waiver, kind, matches))
    return merged


def run_check_accounts(base: Aws, policy: Policy, accounts: list[Account], plans: list[AccountPlan], as_of: datetime,
                       run_id: str, only: list[str] | None = None, *, retention: RetentionReader | None,
                       parallel: int) -> CheckRun:
    """One run over `accounts` (all of them, for the status list); `plans` are the active ones to read."""
    started = datetime.now(UTC)
    caller = base.account_id(policy.regions.primary)
    workers = per_account_workers(parallel, len(plans))

    def one(plan: AccountPlan) -> tuple[dict[str, str], CheckRun]:
        try:
            aws = assume(base, plan.account, run_id, plan.policy.regions.primary, max_pool=workers)
        except Unreachable as exc:
            return plan.account.status(ERROR, str(exc)), unreachable_run(plan, run_id, only, str(exc))
        part = run_check(aws, plan.policy, plan.regions, as_of, run_id, only, retention=retention, workers=workers)
        denied = denied_everywhere(part.inventory)
        if denied is not None:
            reason = f"every read was denied ({denied})"
            return plan.account.status(ERROR, reason), unreachable_run(plan, run_id, only, reason)
        return plan.account.status(OK), part

    done = {plan.account.id: result for plan, result in zip(plans, for_each(plans, parallel, one), strict=True)}
    statuses = [done[a.id][0] if a.id in done else a.skipped() for a in accounts]
    parts = {account_id: part for account_id, (_, part) in sorted(done.items())}
    regions = list(dict.fromkeys(r for plan in plans for r in plan.regions)) or policy.regions_in_scope
    findings = [f for part in parts.values() for f in part.findings]
    return CheckRun(run_id, policy, regions, started, datetime.now(UTC), Inventory(caller, regions), findings,
                    {}, merge_waiver_states(list(parts.values())), parts=parts, accounts=statuses)
