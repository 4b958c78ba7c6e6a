"""BAK-02: an enabled replication rule copies all of a data store bucket's objects to the backup region."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Evidence, Finding, Status
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, enabled, filter_prefix, missing_bucket
from vigil.checks.verdicts import errored, failed, passed

ID = "BAK-02"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("replication",))


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.replication
    region = bucket.region_name
    backup = ctx.policy.regions.backup
    if not fact.ok:
        return errored(ID, bucket.arn, region, fact)
    config = fact.value
    if not config:
        return failed(ID, bucket.arn, region,
                      f"bucket {bucket.name} has no replication configuration; replicate all objects to a bucket in {backup}",
                      fact.api, None)
    problems: list[str] = []
    unknown: list[str] = []
    destinations: dict[str, str | None] = {}
    apis = {fact.api}  # and where each destination's region came from (the listing, or GetBucketLocation)
    for rule in config.get("Rules", []):
        label = rule.get("ID") or "(unnamed)"
        if not enabled(rule):
            problems.append(f"rule {label} is not enabled")
            continue
        if filter_prefix(rule) != "":
            problems.append(f"rule {label} copies only part of the bucket (its filter narrows by prefix, tag or size)")
            continue
        target_name = rule.get("Destination", {}).get("Bucket", "").removeprefix("arn:aws:s3:::")
        target = ctx.bucket(target_name)
        if target is None:
            unknown.append(f"rule {label} replicates to bucket {target_name}, which is not visible to this account")
            continue
        if not target.region.ok:
            unknown.append(f"rule {label}: the region of {target_name} could not be read ({target.region.error})")
            continue
        destinations[target_name] = target.region_name
        apis.add(target.region.api)
        if target.region_name == backup:
            return passed(ID, bucket.arn, region,
                          f"bucket {bucket.name} replicates all objects to {target_name} in {backup}",
                          sorted(apis), {"ReplicationConfiguration": config, "DestinationRegions": destinations})
        problems.append(f"rule {label} replicates to {target_name} in {target.region_name}, not the backup region {backup}")
    observed = {"ReplicationConfiguration": config, "DestinationRegions": destinations}
    if unknown:
        return Finding(ID, bucket.arn, region, Status.ERROR,
                       f"bucket {bucket.name}: " + "; ".join(unknown), Evidence(sorted(apis), observed))
    detail = "; ".join(problems) or "it has no rules"
    return failed(ID, bucket.arn, region,
                  f"bucket {bucket.name} does not replicate all objects to {backup}: {detail}", sorted(apis), observed)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield check_bucket(ctx, bucket) if bucket else missing_bucket(ctx, ID, name)
