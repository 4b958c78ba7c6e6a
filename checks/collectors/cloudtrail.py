"""CloudTrail: every trail visible from the regions in scope (deduplicated), with status and selectors.

DescribeTrails includes shadow trails, so a multi-region trail whose home region is outside
the regions in scope is still seen; trails are deduplicated by ARN and their status and event
selectors are read once per trail, in its home region.
"""
from __future__ import annotations

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import Fact, Inventory, Trail


def _listing(session: CollectSession, region: str) -> Fact[list[dict]]:
    client = session.aws.client("cloudtrail", region)
    return fetch("cloudtrail:DescribeTrails", lambda: client.describe_trails(includeShadowTrails=True)["trailList"])


def _trail(session: CollectSession, region: str, entry: dict) -> Trail:
    arn = entry["TrailARN"]
    home = entry.get("HomeRegion") or region
    client = session.aws.client("cloudtrail", home)
    status = fetch("cloudtrail:GetTrailStatus", lambda: _strip(client.get_trail_status(Name=arn)))
    selectors = fetch("cloudtrail:GetEventSelectors", lambda: _strip(client.get_event_selectors(TrailName=arn)))
    return Trail(entry.get("Name", arn.rsplit("/", 1)[-1]), arn, home, entry, status, selectors)


def _strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def collect(session: CollectSession, inventory: Inventory) -> None:
    listings = {region: session.submit(_listing, session, region) for region in session.regions}
    seen: set[str] = set()
    tasks = []
    for region, future in listings.items():
        fact = future.result()
        if not fact.ok:
            inventory.listing_errors[f"cloudtrail:{region}"] = fact
            continue
        for entry in fact.value or []:
            if entry["TrailARN"] not in seen:
                seen.add(entry["TrailARN"])
                tasks.append(session.submit(_trail, session, region, entry))
    inventory.trails.extend(task.result() for task in tasks)
