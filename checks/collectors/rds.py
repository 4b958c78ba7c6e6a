"""RDS: instances and clusters, each with the parameters of its (cluster) parameter group.

Parameter groups are read once per group, however many databases share them.
"""
from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import DbCluster, DbInstance, Fact, Inventory

# moto has no default parameter groups: DescribeDBParameters answers an empty list and
# DescribeDBClusterParameters DBParameterGroupNotFound. The first gives empty parameters
# (TLS-03 then says the group returned none); the second an error fact naming the group.
NOT_FOUND = "DBParameterGroupNotFound"
LISTING_KEYS = {"instance": "rds:{region}", "cluster": "rds-clusters:{region}"}


def _list(client: Any, operation: str, field: str) -> list[dict]:
    return [item for page in client.get_paginator(operation).paginate() for item in page[field]]


def _parameters(client: Any, api: str, operation: str, group_arg: str, group: str) -> Fact[dict[str, str]]:
    def read() -> dict[str, str]:
        pages = client.get_paginator(operation).paginate(**{group_arg: group})
        return {p["ParameterName"]: p["ParameterValue"] for page in pages for p in page["Parameters"] if "ParameterValue" in p}

    fact = fetch(api, read, absent=[NOT_FOUND])
    if fact.ok and fact.value is None:
        return Fact(api, error=f"{api}: parameter group {group} was not found ({NOT_FOUND}); its TLS setting cannot be read")
    return fact


def _listing(session: CollectSession, region: str) -> tuple[Fact[list[dict]], Fact[list[dict]]]:
    client = session.aws.client("rds", region)
    instances = fetch("rds:DescribeDBInstances", lambda: _list(client, "describe_db_instances", "DBInstances"))
    clusters = fetch("rds:DescribeDBClusters", lambda: _list(client, "describe_db_clusters", "DBClusters"))
    return instances, clusters


def _instance_group(entry: dict) -> str | None:
    groups = entry.get("DBParameterGroups") or []
    return groups[0].get("DBParameterGroupName") if groups else None


def collect(session: CollectSession, inventory: Inventory) -> None:
    listings = {region: session.submit(_listing, session, region) for region in session.regions}
    groups: dict[tuple[str, str, str], Future] = {}  # (region, kind, group) -> Future[Fact]
    found: list[tuple[str, str, dict]] = []  # (region, kind, entry)

    def group_fact(region: str, kind: str, name: str | None) -> tuple[str, str, str] | None:
        if not name:
            return None
        key = (region, kind, name)
        if key not in groups:
            client = session.aws.client("rds", region)
            if kind == "instance":
                groups[key] = session.submit(_parameters, client, "rds:DescribeDBParameters", "describe_db_parameters", "DBParameterGroupName", name)
            else:
                groups[key] = session.submit(_parameters, client, "rds:DescribeDBClusterParameters", "describe_db_cluster_parameters", "DBClusterParameterGroupName", name)
        return key

    for region, future in listings.items():
        instances, clusters = future.result()
        for kind, fact in (("instance", instances), ("cluster", clusters)):
            if not fact.ok:
                inventory.listing_errors[LISTING_KEYS[kind].format(region=region)] = fact
                continue
            found.extend((region, kind, entry) for entry in fact.value or [])

    keys = []
    for region, kind, entry in found:
        name = _instance_group(entry) if kind == "instance" else entry.get("DBClusterParameterGroup")
        keys.append(group_fact(region, kind, name))

    for (region, kind, entry), key in zip(found, keys, strict=True):
        api = "rds:DescribeDBParameters" if kind == "instance" else "rds:DescribeDBClusterParameters"
        parameters = groups[key].result() if key else Fact(api, error=f"{api}: the database names no parameter group")
        if kind == "instance":
            inventory.db_instances.append(DbInstance(entry["DBInstanceIdentifier"], entry["DBInstanceArn"], region, entry, parameters))
        else:
            inventory.db_clusters.append(DbCluster(entry["DBClusterIdentifier"], entry["DBClusterArn"], region, entry, parameters))
