"""TLS-03: every RDS database forces TLS through its parameter group.

Instances outside a cluster are judged on their DB parameter group, clusters on their
cluster parameter group (an instance inside a cluster is judged through its cluster).
PostgreSQL and SQL Server need `rds.force_ssl` = 1; MySQL and MariaDB
`require_secure_transport` = ON (or 1); Aurora likewise by engine family.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Fact, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import rds_listing_errors
from vigil.checks.verdicts import errored, not_applicable, verdict

ID = "TLS-03"
FORCE_SSL = ("rds.force_ssl", {"1"})
SECURE_TRANSPORT = ("require_secure_transport", {"ON", "1"})


def required_parameter(engine: str) -> tuple[str, set[str]] | None:
    engine = engine.lower()
    if engine in ("postgres", "aurora-postgresql") or engine.startswith("sqlserver"):
        return FORCE_SSL
    if engine in ("mysql", "mariadb", "aurora-mysql", "aurora"):
        return SECURE_TRANSPORT
    return None


def judge(engine: str, group: str | None, parameters: dict[str, str]) -> tuple[bool, str]:
    name, accepted = required_parameter(engine) or ("", set())
    value = parameters.get(name)
    if value is not None and value.upper() in accepted:
        return True, f"parameter group {group} sets {name} = {value}"
    if not parameters:
        return False, (f"parameter group {group} returned no parameters, so {name} is not set "
                       f"(the endpoint may lack default parameter groups); use a group with {name} = {sorted(accepted)[0]}")
    shown = "unset" if value is None else value
    return False, f"parameter group {group} has {name} = {shown}; set it to {sorted(accepted)[0]} to refuse plain-text connections"


def _judge_one(kind: str, arn: str, region: str, engine: str, group: str | None, parameters: Fact) -> Finding:
    api = "rds:DescribeDBParameters" if kind == "instance" else "rds:DescribeDBClusterParameters"
    if required_parameter(engine) is None:
        return not_applicable(ID, arn, region, f"engine {engine} forces TLS through an option group or engine setting, not a parameter",
                              api, {"Engine": engine})
    if not parameters.ok:
        return errored(ID, arn, region, parameters)
    ok, reason = judge(engine, group, parameters.value or {})
    name = required_parameter(engine)[0]  # type: ignore[index]
    return verdict(ID, arn, region, ok, reason, api,
                   {"Engine": engine, "ParameterGroup": group, name: (parameters.value or {}).get(name)})


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    yield from rds_listing_errors(ctx, ID)
    for instance in ctx.inventory.db_instances:
        d = instance.description
        if d.get("DBClusterIdentifier"):
            yield not_applicable(ID, instance.arn, instance.region,
                                 f"judged through its cluster {d['DBClusterIdentifier']}'s parameter group", "rds:DescribeDBInstances")
            continue
        groups = d.get("DBParameterGroups") or [{}]
        yield _judge_one("instance", instance.arn, instance.region, d.get("Engine", ""), groups[0].get("DBParameterGroupName"),
                         instance.parameters)
    for cluster in ctx.inventory.db_clusters:
        d = cluster.description
        yield _judge_one("cluster", cluster.arn, cluster.region, d.get("Engine", ""), d.get("DBClusterParameterGroup"), cluster.parameters)
