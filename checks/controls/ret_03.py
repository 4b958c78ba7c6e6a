"""RET-03: a backup vault that holds data stores keeps recovery points no longer than the
longest retention of the categories it holds, plus the policy's grace period.

Judged on the plan rules and copy actions that put data-store backups into the vault
(Lifecycle.DeleteAfterDays; none means kept forever) and on the recovery points found
there (CreationDate older than the limit at the as-of time). Recovery points that cannot
be read are reported in the reason and evidence; the verdict then rests on the lifecycle.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from vigil.checks.context import Context
from vigil.checks.model import BackupPlan, Evidence, Finding, Status
from vigil.checks.registry import evaluator
from vigil.checks.scope import listing_errors
from vigil.checks.verdicts import not_applicable, verdict

ID = "RET-03"
APIS = ["backup:GetBackupPlan", "backup:ListRecoveryPointsByBackupVault"]


def store_categories(ctx: Context, arn: str) -> set[str]:
    if arn.startswith("arn:aws:s3:::"):
        return {s.category for s in ctx.stores_by_bucket.get(arn.removeprefix("arn:aws:s3:::"), [])}
    if ":dynamodb:" in arn:
        return {s.category for s in ctx.stores_by_table.get(arn.rsplit("/", 1)[-1], [])}
    ident = arn.rsplit(":", 1)[-1]
    return {s.category for s in ctx.rds_stores if ident in (s.instance, s.cluster)}


def limit_days(ctx: Context, categories: set[str]) -> int | None:
    """Longest retention + grace in whole days; None when some category is kept forever."""
    longest = ctx.policy.longest_retention_days(categories)
    return None if longest is None else longest + ctx.policy.grace.approx_days()


def lifecycles(ctx: Context, vault_arn: str, region: str, name: str, stores: set[str]) -> list[tuple[str, int | None]]:
    """(where, DeleteAfterDays) for each plan rule or copy action that puts these stores' backups in the vault."""
    plans: dict[str, BackupPlan] = {}
    for store in stores:
        for plan, _selection in ctx.plans_for_store.get(store, []):
            plans[plan.arn] = plan
    out = []
    for plan in plans.values():
        body = plan.plan.value or {}
        for rule in body.get("Rules", []):
            where = f"plan {body.get('BackupPlanName', plan.plan_id)} rule {rule.get('RuleName')}"
            if plan.region == region and rule.get("TargetBackupVaultName") == name:
                out.append((where, (rule.get("Lifecycle") or {}).get("DeleteAfterDays")))
            for copy in rule.get("CopyActions") or []:
                if copy.get("DestinationBackupVaultArn") == vault_arn:
                    out.append((f"{where} copy", (copy.get("Lifecycle") or {}).get("DeleteAfterDays")))
    return out


def _age_days(created: object, as_of: datetime) -> float | None:
    if isinstance(created, str):
        created = datetime.fromisoformat(created.replace("Z", "+00:00"))
    if not isinstance(created, datetime):
        return None
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    return (as_of - created).total_seconds() / 86400


def _judge(ctx: Context, vault_arn: str, stores: set[str]) -> Finding:
    vault = ctx.inventory.vaults.get(vault_arn)
    region = vault.region if vault else vault_arn.split(":")[3]
    name = vault.name if vault else vault_arn.rsplit(":", 1)[-1]
    categories = set().union(*(store_categories(ctx, s) for s in stores))
    if not categories:
        return not_applicable(ID, vault_arn, region, "the vault holds no store with a retention category", APIS, {"stores": sorted(stores)})
    limit = limit_days(ctx, categories)
    rules = lifecycles(ctx, vault_arn, region, name, stores)
    observed: dict = {"stores": sorted(stores), "categories": sorted(categories), "limit_days": limit,
                      "lifecycle": [{"rule": w, "DeleteAfterDays": d} for w, d in rules]}
    if limit is None:
        return verdict(ID, vault_arn, region, True, "it holds a category kept forever, so no backup is kept too long", APIS, observed)
    problems = [f"{w} keeps recovery points forever (no DeleteAfterDays)" if d is None else f"{w} keeps them {d} days"
                for w, d in rules if d is None or d > limit]
    note = ""
    if vault is None:
        note = "; the vault itself was not collected, so its recovery points were not read"
    elif not vault.recovery_points.ok:
        note = f"; recovery points could not be read ({vault.recovery_points.error}), judged on the plan lifecycle"
        observed["recovery_points_error"] = vault.recovery_points.error
    else:
        old = [p for p in vault.recovery_points.value or [] if p.get("ResourceArn") in ctx.data_store_arns
               and (age := _age_days(p.get("CreationDate"), ctx.as_of)) is not None and age > limit]
        observed["expired_recovery_points"] = [p.get("RecoveryPointArn") for p in old]
        if old:
            problems.append(f"{len(old)} recovery point(s) are older than {limit} days")
    if problems:
        return verdict(ID, vault_arn, region, False, f"backups outlive the {limit}-day limit (longest retention + grace): "
                       + "; ".join(problems) + note, APIS, observed)
    return verdict(ID, vault_arn, region, True, f"recovery points are deleted within {limit} days (longest retention + grace){note}",
                   APIS, observed)


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    # vaults or plans of a region unknown: its vaults cannot be judged (one finding per region: the registry keeps the first)
    yield from listing_errors(ctx, ID, (("backup-vaults", "backup-vault:*"), ("backup", "backup-vault:*")))
    judged = ctx.data_store_vaults
    for vault_arn, stores in sorted(judged.items()):
        yield _judge(ctx, vault_arn, stores)
    # Vaults fed by plans whose selections are unknown may hold data stores: say we cannot tell.
    by_name = {(v.region, v.name): arn for arn, v in ctx.inventory.vaults.items()}
    for plan in ctx.inventory.plans:
        problem = next((f for f in (plan.plan, plan.selections) if not f.ok), None)
        if problem is None:
            continue
        for rule in (plan.plan.value or {}).get("Rules", []):
            targets = [by_name.get((plan.region, rule.get("TargetBackupVaultName", "")))]
            targets += [c.get("DestinationBackupVaultArn") for c in rule.get("CopyActions") or []]
            for arn in [t for t in targets if t and t not in judged]:
                yield Finding(ID, arn, arn.split(":")[3], Status.ERROR,
                              f"cannot tell whether this vault holds data-store backups: {problem.error}", Evidence(problem.api, None))
