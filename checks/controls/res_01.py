"""RES-01: every copy of personal data (data store, replica, backup vault) lives in an allowed region."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import BucketFacts, Evidence, Fact, Finding, Status
from vigil.checks.registry import evaluator
from vigil.checks.scope import bucket_arn, data_store_buckets, missing_bucket, missing_table
from vigil.checks.verdicts import errored, verdict

ID = "RES-01"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("replication",))  # the regions come with the listing; replicas are found through replication


def check_region(ctx: Context, resource: str, what: str, region: str, api: str | list[str]) -> Finding:
    allowed = ctx.policy.regions.allowed
    ok = region in allowed
    reason = (f"{what} is in {region}, an allowed region" if ok else
              f"{what} is in {region}, which the policy does not allow ({', '.join(allowed)}); move it")
    return verdict(ID, resource, region, ok, reason, api, {"Region": region, "Allowed": list(allowed)})


def check_bucket(ctx: Context, name: str, what: str) -> Finding:
    bucket = ctx.bucket(name)
    if bucket is None:
        return Finding(ID, bucket_arn(name), "", Status.ERROR,
                       f"{what} is not visible to this account, so its region cannot be checked",
                       Evidence("s3:ListBuckets", None))
    if not bucket.region.ok:
        return errored(ID, bucket.arn, "", bucket.region)
    return check_region(ctx, bucket.arn, what, bucket.region_name, bucket.region.api)


def _vault_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield check_bucket(ctx, name, f"data store bucket {name}") if bucket else missing_bucket(ctx, ID, name)
    for replica, sources in ctx.replicas.items():
        yield check_bucket(ctx, replica, f"replica bucket {replica} of {', '.join(sources)}")
    for name, table in ctx.data_tables():
        if table is None:
            yield missing_table(ctx, ID, name)
        elif not table.region:
            yield errored(ID, table.arn, "", Fact("dynamodb:DescribeTable", error="the table's region is unknown"))
        else:
            yield check_region(ctx, table.arn, f"data store table {name}", table.region, "dynamodb:ListTables")
    for arn in ctx.data_store_vaults:
        vault = ctx.inventory.vaults.get(arn)
        # The vault's ARN names its region even when the vault itself was not listed.
        region = vault.region if vault else _vault_region(arn)
        yield check_region(ctx, arn, f"backup vault {vault.name if vault else arn}", region, "backup:ListBackupVaults")
