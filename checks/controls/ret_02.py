"""RET-02: nothing past its retention (plus grace) remains in a data store or its replicas.

The facts come from the retention engine's read-only verify (`vigil.retention.verify`), the
same code `vigil retain` uses after applying: one evaluator, two callers. Findings carry
counts, ages and keyed hashes only, never keys or subject ids.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from vigil.checks.context import Context
from vigil.checks.model import BucketFacts, Evidence, Finding, Status, StoreRetention
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import failed, not_applicable, passed

from vigil.timestamps import parse_iso_z

CONTROL = "RET-02"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("replication", "object_lock"), replicas=("object_lock",))  # what the retention verify reuses


def _age_days(oldest: str | None, as_of: datetime) -> int | None:
    if not oldest:
        return None
    start = parse_iso_z(oldest)
    return max((as_of - start).days, 0)


def _merge(statuses: Iterable[StoreRetention]) -> dict[str, list[StoreRetention]]:
    """Several stores may share one bucket (different prefixes): one finding per resource."""
    out: dict[str, list[StoreRetention]] = {}
    for status in statuses:
        out.setdefault(status.resource, []).append(status)
    return out


def findings_for(statuses: Iterable[StoreRetention], as_of: datetime) -> list[Finding]:
    out = []
    for resource, group in _merge(statuses).items():
        region = group[0].region
        api = sorted({a for s in group for a in ([s.api] if isinstance(s.api, str) else s.api)})
        errors = [f"{s.store}: {s.error}" for s in group if s.error]
        observed = {
            "stores": [s.store for s in group],
            "scanned": sum(s.scanned for s in group),
            "expired": sum(s.expired for s in group),
            "held": sum(s.held for s in group),
            "oldest_expired": min((s.oldest_expired for s in group if s.oldest_expired), default=None),
            "samples": [h for s in group for h in s.samples][:5],
        }
        if errors:
            out.append(Finding(CONTROL, resource, region, Status.ERROR, "; ".join(errors), Evidence(api, observed)))
        elif observed["expired"]:
            age = _age_days(observed["oldest_expired"], as_of)
            reason = (f"{observed['expired']} object versions, records or items are past retention plus grace "
                      f"(oldest clock started {age} days ago); run 'vigil retain --apply'")
            out.append(failed(CONTROL, resource, region, reason, api, observed))
        else:
            held = f"; {observed['held']} held (legal hold, Object Lock or keep_at_least)" if observed["held"] else ""
            out.append(passed(CONTROL, resource, region, f"nothing past retention plus grace among {observed['scanned']} scanned{held}", api, observed))
    return out


@evaluator(CONTROL, reads=READS)
def evaluate(ctx: Context) -> list[Finding]:
    if ctx.inventory.retention:
        return findings_for(ctx.inventory.retention, ctx.as_of)
    arns = [f"arn:aws:s3:::{b}" for b in ctx.stores_by_bucket] + [ctx.table_arn(s.table) for s in ctx.policy.dynamodb_stores]
    return [not_applicable(CONTROL, arn, ctx.policy.regions.primary, "retention state was not read in this run")
            for arn in dict.fromkeys(arns)]
