"""BAK-04: each DynamoDB / RDS data store is selected by an AWS Backup plan with a rule that runs
at least daily and copies the recovery point to a vault in the policy's backup region.

`data_stores` (also used by BAK-05) resolves the declared tables and databases, the
`subjects:` table included, to what was found in the regions in scope.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from vigil.checks.context import Context
from vigil.checks.model import DbCluster, DbInstance, Fact, Finding, Table
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import errored, failed, passed

ID = "BAK-04"
DEFAULT_SCHEDULE = "cron(0 5 ? * * *)"  # what AWS Backup uses when a rule names none
LISTED_BY = {"table": "dynamodb:ListTables", "database instance": "rds:DescribeDBInstances",
             "database cluster": "rds:DescribeDBClusters"}


@dataclass
class DataStore:
    kind: str  # "table" | "database instance" | "database cluster"
    name: str
    arn: str
    region: str
    record: Table | DbInstance | DbCluster | None
    listing_error: Fact | None = None  # why a missing store may simply not have been seen

    def missing(self, control: str) -> Finding:
        if self.listing_error is not None:
            return errored(control, self.arn, self.region, self.listing_error)
        return failed(control, self.arn, self.region, f"declared data store {self.kind} {self.name} was not found",
                      LISTED_BY[self.kind], {"declared": self.name, "regions": "in scope"})


def _listing_error(ctx: Context, prefix: str) -> Fact | None:
    return next((f for r in ctx.inventory.regions if (f := ctx.inventory.listing_errors.get(f"{prefix}:{r}"))), None)


def data_stores(ctx: Context) -> list[DataStore]:
    primary, account = ctx.policy.regions.primary, ctx.inventory.account_id
    out = []
    for name, table in ctx.data_tables():
        arn, region = (table.arn, table.region) if table else (ctx.table_arn(name), primary)
        out.append(DataStore("table", name, arn, region, table, _listing_error(ctx, "dynamodb")))
    for store in ctx.rds_stores:
        if store.instance:
            found = [i for i in ctx.inventory.db_instances if i.identifier == store.instance]
            kind, ident, key, part = "database instance", store.instance, "rds", "db"
        else:
            found = [c for c in ctx.inventory.db_clusters if c.identifier == store.cluster]
            kind, ident, key, part = "database cluster", store.cluster or "", "rds-clusters", "cluster"
        record = next((r for r in found if r.region == primary), found[0] if found else None)
        arn, region = (record.arn, record.region) if record else (f"arn:aws:rds:{primary}:{account}:{part}:{ident}", primary)
        out.append(DataStore(kind, ident, arn, region, record, _listing_error(ctx, key)))
    return out


def runs_daily(expression: str | None) -> bool:
    text = (expression or DEFAULT_SCHEDULE).strip()
    cron = re.fullmatch(r"cron\((.+)\)", text)
    if cron:
        fields = cron.group(1).split()
        if len(fields) != 6:
            return False
        _minutes, _hours, day_of_month, month, day_of_week, _year = fields
        return day_of_month in ("*", "?") and day_of_week in ("*", "?") and month == "*"
    rate = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", text)
    if rate:
        n, unit = int(rate.group(1)), rate.group(2)
        return n >= 1 and (unit.startswith("minute") or (unit.startswith("hour") and n <= 24) or (unit.startswith("day") and n == 1))
    return False


def vault_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 else ""


def qualifying_rule(rules: list[dict], backup_region: str) -> dict | None:
    """The first rule that runs at least daily and copies to a vault in the backup region."""
    for rule in rules:
        copies = [c.get("DestinationBackupVaultArn", "") for c in rule.get("CopyActions") or []]
        if runs_daily(rule.get("ScheduleExpression")) and any(vault_region(arn) == backup_region for arn in copies):
            return rule
    return None


def _summary(plan_name: str, rules: list[dict]) -> dict:
    return {"plan": plan_name, "rules": [{"RuleName": r.get("RuleName"), "ScheduleExpression": r.get("ScheduleExpression"),
                                          "CopyTo": [c.get("DestinationBackupVaultArn") for c in r.get("CopyActions") or []]} for r in rules]}


def _unreadable(ctx: Context, region: str) -> Fact | None:
    """Why the plans that could select a store in `region` are not all known."""
    listing = ctx.inventory.listing_errors.get(f"backup:{region}")
    if listing is not None:
        return listing
    for plan in ctx.inventory.plans:
        if plan.region == region and (bad := next((f for f in (plan.plan, plan.selections) if not f.ok), None)):
            return bad
    return None


def _judge(ctx: Context, store: DataStore) -> Finding:
    backup_region = ctx.policy.regions.backup
    apis = ["backup:ListBackupPlans", "backup:GetBackupPlan", "backup:GetBackupSelection"]
    # A plan backs up resources of its own region only.
    plans = [plan for plan, _selection in ctx.plans_for_store.get(store.arn, []) if plan.region == store.region]
    bodies = [(plan.plan.value or {}) for plan in plans]
    observed = [_summary(body.get("BackupPlanName", plan.plan_id), body.get("Rules", [])) for plan, body in zip(plans, bodies, strict=True)]
    for plan, body in zip(plans, bodies, strict=True):
        rule = qualifying_rule(body.get("Rules", []), backup_region)
        if rule is not None:
            schedule = rule.get("ScheduleExpression") or DEFAULT_SCHEDULE
            return passed(ID, store.arn, store.region, f"plan {body.get('BackupPlanName', plan.plan_id)} rule {rule.get('RuleName')} "
                          f"runs {schedule} and copies to {backup_region}", apis, observed)
    problem = _unreadable(ctx, store.region)  # an unreadable plan might be the one that qualifies
    if problem is not None:
        return errored(ID, store.arn, store.region, problem)
    if not plans:
        return failed(ID, store.arn, store.region, f"no AWS Backup plan in {store.region} selects this {store.kind}", apis, observed)
    return failed(ID, store.arn, store.region,
                  f"no rule of the plans that select it both runs at least daily and copies to a vault in {backup_region}", apis, observed)


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for store in data_stores(ctx):
        yield store.missing(ID) if store.record is None else _judge(ctx, store)
