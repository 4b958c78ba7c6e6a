"""AUD-01: some multi-region CloudTrail trail is logging with log file validation; resource is the account id."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Finding, Trail
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import errored, verdict

ID = "AUD-01"
APIS = ["cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus"]


def _gaps(trail: Trail) -> list[str]:
    gaps = []
    if not trail.description.get("IsMultiRegionTrail"):
        gaps.append("is single-region")
    if not trail.description.get("LogFileValidationEnabled"):
        gaps.append("has no log file validation")
    if trail.status.ok and not (trail.status.value or {}).get("IsLogging"):
        gaps.append("is not logging")
    return gaps


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    account = ctx.inventory.account_id
    trails = ctx.inventory.trails
    observed = [{"TrailARN": t.arn, "IsMultiRegionTrail": t.description.get("IsMultiRegionTrail"),
                 "LogFileValidationEnabled": t.description.get("LogFileValidationEnabled"),
                 "IsLogging": (t.status.value or {}).get("IsLogging") if t.status.ok else None} for t in trails]
    good = [t for t in trails if t.status.ok and not _gaps(t)]
    if good:
        yield verdict(ID, account, "global", True, f"trail {good[0].name} is multi-region, logging and validates its log files", APIS, observed)
        return
    # A trail we could not read, or a region we could not list, might be the one that passes.
    unknown = [t.status for t in trails if not t.status.ok and not _gaps(t)]
    unknown += [f for r in ctx.inventory.regions if (f := ctx.inventory.listing_errors.get(f"cloudtrail:{r}"))]
    if unknown:
        yield errored(ID, account, "global", unknown[0])
        return
    if not trails:
        reason = "no CloudTrail trail exists; create a multi-region trail with log file validation and start logging"
    else:
        reason = "no trail qualifies: " + "; ".join(f"{t.name} {', '.join(_gaps(t))}" for t in trails)
    yield verdict(ID, account, "global", False, reason, APIS, observed)
