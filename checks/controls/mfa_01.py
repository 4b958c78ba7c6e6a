"""MFA-01: the root user has MFA (GetAccountSummary AccountMFAEnabled = 1); resource is the account id."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Finding
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import errored, verdict

ID = "MFA-01"


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    account, summary = ctx.inventory.account_id, ctx.inventory.account_summary
    if not summary.ok or summary.value is None:
        yield errored(ID, account, "global", summary)
        return
    enabled = summary.value.get("AccountMFAEnabled")
    reason = "the root user has MFA" if enabled == 1 else "the root user has no MFA device; enable MFA on the root user"
    yield verdict(ID, account, "global", enabled == 1, reason, summary.api, {"AccountMFAEnabled": enabled})
