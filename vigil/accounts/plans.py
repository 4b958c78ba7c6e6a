"""What each account of a run reads: its own policy (the run's unless the accounts file names one) and regions."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vigil.policy import Policy

from .model import Account


@dataclass(frozen=True)
class AccountPlan:
    """One account as the run will read it: its own policy (the run's unless the accounts file names one) and regions."""

    account: Account
    policy: Policy
    regions: list[str]


def plan_accounts(accounts: list[Account], policy: Policy, regions: tuple[str, ...] | list[str],
                  load: Callable[[Path], Policy]) -> list[AccountPlan]:
    """Every active account's policy and regions, loaded before anything runs (a bad file is exit 2 up front).
    Regions: the account entry's, else `regions` (--region), else its policy's."""
    loaded: dict[Path, Policy] = {}
    plans = []
    for account in accounts:
        if not account.active:
            continue
        own = policy
        if account.policy is not None:
            own = loaded.setdefault(account.policy, load(account.policy))
        chosen = list(dict.fromkeys(account.regions or regions)) or own.regions_in_scope
        plans.append(AccountPlan(account, own.for_account(account.id), chosen))
    return plans
