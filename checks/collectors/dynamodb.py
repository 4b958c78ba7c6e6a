"""DynamoDB: every table in scope with its description, continuous backups and tags."""
from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import Fact, Inventory, Table


def _names(client: Any) -> list[str]:
    return [name for page in client.get_paginator("list_tables").paginate() for name in page["TableNames"]]


def _tags(client: Any, arn: str) -> dict[str, str]:
    pages = client.get_paginator("list_tags_of_resource").paginate(ResourceArn=arn)
    return {tag["Key"]: tag["Value"] for page in pages for tag in page.get("Tags", [])}


def _table(session: CollectSession, region: str, name: str) -> Table:
    client = session.aws.client("dynamodb", region)
    description = fetch("dynamodb:DescribeTable", lambda: client.describe_table(TableName=name)["Table"])
    arn = (description.value or {}).get("TableArn") or f"arn:aws:dynamodb:{region}:{session.aws.account_id(region)}:table/{name}"
    backups = fetch("dynamodb:DescribeContinuousBackups",
                    lambda: client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"])
    tags = fetch("dynamodb:ListTagsOfResource", lambda: _tags(client, arn))
    return Table(name, arn, region, description, backups, tags)


def _listing(session: CollectSession, region: str) -> Fact[list[str]]:
    client = session.aws.client("dynamodb", region)
    return fetch("dynamodb:ListTables", lambda: _names(client))


def collect(session: CollectSession, inventory: Inventory) -> None:
    listings = {region: session.submit(_listing, session, region) for region in session.regions}
    tasks: list[Future[Any]] = []
    for region, future in listings.items():
        names: Fact[list[str]] = future.result()
        if not names.ok:
            inventory.listing_errors[f"dynamodb:{region}"] = names
            continue
        tasks.extend(session.submit(_table, session, region, name) for name in names.value or [])
    for task in tasks:
        table = task.result()
        inventory.tables[table.arn] = table
