"""AUD-02: access to a data store bucket is logged: server access logging, or CloudTrail S3 data events.

A trail covers a bucket when it is logging, records events in the bucket's region (multi-region
or home region), and a basic selector's S3 object values (or an advanced selector on
AWS::S3::Object data events with no ARN narrowing) include the bucket's store prefixes.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Evidence, Finding, Status, Trail
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, missing_bucket
from vigil.checks.verdicts import errored, failed, passed

ID = "AUD-02"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("logging",))
S3_OBJECT = "AWS::S3::Object"
ALL_BUCKETS = ("arn:aws:s3", "arn:aws:s3:::")


def _value_covers(value: str, objects: list[str]) -> bool:
    return value in ALL_BUCKETS or all(target.startswith(value) for target in objects)


def _basic_covers(selectors: list[dict], objects: list[str]) -> bool:
    for selector in selectors:
        for resource in selector.get("DataResources", []) or []:
            if resource.get("Type") == S3_OBJECT and any(_value_covers(v, objects) for v in resource.get("Values", []) or []):
                return True
    return False


def _advanced_covers(selectors: list[dict]) -> bool:
    for selector in selectors:
        fields = {f.get("Field"): f for f in selector.get("FieldSelectors", []) or []}
        category = fields.get("eventCategory", {}).get("Equals", [])
        types = fields.get("resources.type", {}).get("Equals", [])
        if "Data" in category and S3_OBJECT in types and "resources.ARN" not in fields:
            return True
    return False


def trail_covers(trail: Trail, bucket: Bucket, objects: list[str]) -> bool:
    """Does this trail record S3 data events for every object ARN prefix in `objects`?"""
    if not trail.status.ok or not (trail.status.value or {}).get("IsLogging"):
        return False
    if not trail.description.get("IsMultiRegionTrail") and trail.home_region != bucket.region_name:
        return False
    if not trail.event_selectors.ok:
        return False
    selectors = trail.event_selectors.value or {}
    return _basic_covers(selectors.get("EventSelectors") or [], objects) or _advanced_covers(
        selectors.get("AdvancedEventSelectors") or []
    )


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    region = bucket.region_name
    logging = bucket.logging
    if logging.ok and logging.value:
        return passed(ID, bucket.arn, region,
                      f"bucket {bucket.name} has server access logging to {logging.value.get('TargetBucket')}",
                      logging.api, {"LoggingEnabled": logging.value})
    prefixes = [store.prefix for store in ctx.stores_by_bucket.get(bucket.name, [])] or [""]
    objects = [f"{bucket.arn}/{prefix}" for prefix in prefixes]
    apis = [logging.api, "cloudtrail:GetEventSelectors", "cloudtrail:GetTrailStatus"]
    for trail in ctx.inventory.trails:
        if trail_covers(trail, bucket, objects):
            return passed(ID, bucket.arn, region, f"CloudTrail trail {trail.name} records S3 data events for {bucket.name}",
                          apis, {"LoggingEnabled": logging.value, "Trail": trail.arn,
                                 "EventSelectors": trail.event_selectors.value})
    unreadable = [f for f in [logging] + [t.event_selectors for t in ctx.inventory.trails] + [t.status for t in ctx.inventory.trails] if not f.ok]
    unreadable += [f for key, f in ctx.inventory.listing_errors.items() if key.startswith("cloudtrail")]
    observed = {"LoggingEnabled": logging.value if logging.ok else None, "Trails": [t.arn for t in ctx.inventory.trails]}
    if unreadable:
        if len(unreadable) == 1 and unreadable[0] is logging:
            return errored(ID, bucket.arn, region, logging)
        return Finding(ID, bucket.arn, region, Status.ERROR,
                       f"access logging of {bucket.name} could not be established: " + "; ".join(str(f.error) for f in unreadable),
                       Evidence(apis, observed))
    return failed(ID, bucket.arn, region,
                  f"bucket {bucket.name} has no server access logging and no logging CloudTrail trail records its "
                  "S3 data events; turn on server access logging", apis, observed)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield check_bucket(ctx, bucket) if bucket else missing_bucket(ctx, ID, name)
