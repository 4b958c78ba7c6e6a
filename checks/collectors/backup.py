"""AWS Backup: vaults with their recovery points, plans with their rules and selections.

moto implements only part of AWS Backup (no selections, no recovery points); what an
endpoint does not implement becomes a fact with that reason, judged as `error`.
"""
from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import BackupPlan, BackupVault, Fact, Inventory


def _list(client: Any, operation: str, field: str, **kwargs: Any) -> list[dict]:
    return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[field]]


def _listing(session: CollectSession, region: str) -> tuple[Fact[list[dict]], Fact[list[dict]]]:
    client = session.aws.client("backup", region)
    vaults = fetch("backup:ListBackupVaults", lambda: _list(client, "list_backup_vaults", "BackupVaultList"))
    plans = fetch("backup:ListBackupPlans", lambda: _list(client, "list_backup_plans", "BackupPlansList"))
    return vaults, plans


def _vault(session: CollectSession, region: str, entry: dict) -> BackupVault:
    client = session.aws.client("backup", region)
    name = entry["BackupVaultName"]
    points = fetch("backup:ListRecoveryPointsByBackupVault",
                   lambda: _list(client, "list_recovery_points_by_backup_vault", "RecoveryPoints", BackupVaultName=name))
    return BackupVault(name, entry["BackupVaultArn"], region, entry, points)


def _selections(client: Any, plan_id: str) -> Fact[list[dict]]:
    listed = fetch("backup:ListBackupSelections", lambda: _list(client, "list_backup_selections", "BackupSelectionsList", BackupPlanId=plan_id))
    if not listed.ok:
        return listed
    selections = []
    for entry in listed.value or []:
        selection_id = entry["SelectionId"]
        got = fetch("backup:GetBackupSelection",
                    lambda sid=selection_id: client.get_backup_selection(BackupPlanId=plan_id, SelectionId=sid)["BackupSelection"])
        if not got.ok:
            return got  # one unreadable selection makes the plan's scope unknown
        selections.append(got.value)
    return Fact("backup:GetBackupSelection", selections)


def _plan(session: CollectSession, region: str, entry: dict) -> BackupPlan:
    client = session.aws.client("backup", region)
    plan_id = entry["BackupPlanId"]
    plan = fetch("backup:GetBackupPlan", lambda: client.get_backup_plan(BackupPlanId=plan_id)["BackupPlan"])
    return BackupPlan(plan_id, entry.get("BackupPlanArn", plan_id), region, plan, _selections(client, plan_id))


def collect(session: CollectSession, inventory: Inventory) -> None:
    listings = {region: session.submit(_listing, session, region) for region in session.regions}
    vault_tasks: list[Future[Any]] = []
    plan_tasks: list[Future[Any]] = []
    for region, future in listings.items():
        vaults, plans = future.result()
        if not vaults.ok:
            inventory.listing_errors[f"backup-vaults:{region}"] = vaults
        if not plans.ok:
            inventory.listing_errors[f"backup:{region}"] = plans
        vault_tasks.extend(session.submit(_vault, session, region, entry) for entry in vaults.value or [])
        plan_tasks.extend(session.submit(_plan, session, region, entry) for entry in plans.value or [])
    for task in vault_tasks:
        vault = task.result()
        inventory.vaults[vault.arn] = vault
    inventory.plans.extend(task.result() for task in plan_tasks)
