"""BAK-03: copies of personal data are protected like their source.

Each replica bucket of a data store must itself pass ENC-01, ENC-02, TLS-01, TLS-02, ACC-01
and BAK-01 (judged by those controls' own per-bucket rules); each backup vault holding a
data store's recovery points must be encrypted with a customer-managed KMS key. The finding
names the copy, not its source.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from vigil.checks.context import Context
from vigil.checks.controls import acc_01, bak_01, enc_01, enc_02, tls_01, tls_02
from vigil.checks.model import BackupVault, Bucket, BucketFacts, Evidence, Finding, Status
from vigil.checks.registry import evaluator
from vigil.checks.scope import bucket_arn

ID = "BAK-03"
# The per-bucket rule of each control a replica must pass, judged exactly as on its source.
_RULE_MODULES = (enc_01, enc_02, tls_01, tls_02, acc_01, bak_01)
BUCKET_RULES: dict[str, Callable[[Context, Bucket], Finding]] = {module.ID: module.check_bucket for module in _RULE_MODULES}
SUB_CONTROLS = tuple(BUCKET_RULES)
# A replica is read for what those rules read on a data store; the stores for their replication rules.
READS = BucketFacts(
    stores=frozenset({"replication"}),
    replicas=frozenset().union(*(m.READS.every | m.READS.stores for m in _RULE_MODULES)),
)


def check_replica(ctx: Context, bucket: Bucket, sources: list[str]) -> Finding:
    results = {control: rule(ctx, bucket) for control, rule in BUCKET_RULES.items()}
    failed = [c for c, f in results.items() if f.status == Status.FAIL]
    errors = [c for c, f in results.items() if f.status == Status.ERROR]
    observed = {control: {"status": f.status.value, "reason": f.reason, "observed": f.evidence.observed}
                for control, f in results.items()}
    apis = sorted({api for f in results.values() for api in ([f.evidence.api] if isinstance(f.evidence.api, str) else f.evidence.api)})
    of = f"replica {bucket.name} of {', '.join(sources)}"
    if failed:
        details = "; ".join(f"{c}: {results[c].reason}" for c in failed)
        return Finding(ID, bucket.arn, bucket.region_name, Status.FAIL,
                       f"{of} is less protected than its source: fails {', '.join(failed)} ({details})",
                       Evidence(apis, observed))
    if errors:
        details = "; ".join(f"{c}: {observed[c]['reason']}" for c in errors)
        return Finding(ID, bucket.arn, bucket.region_name, Status.ERROR,
                       f"{of} could not be fully evaluated: {details}", Evidence(apis, observed))
    return Finding(ID, bucket.arn, bucket.region_name, Status.PASS,
                   f"{of} passes {', '.join(SUB_CONTROLS)} like its source", Evidence(apis, observed))


def check_vault(ctx: Context, vault: BackupVault, stores: set[str]) -> Finding:
    reference = vault.description.get("EncryptionKeyArn")
    observed = {"EncryptionKeyArn": reference, "Stores": sorted(stores)}
    what = f"backup vault {vault.name} (holding {', '.join(sorted(stores))})"
    if not reference:
        return Finding(ID, vault.arn, vault.region, Status.FAIL,
                       f"{what} names no encryption key; recreate it with a customer-managed KMS key",
                       Evidence("backup:ListBackupVaults", observed))
    result = enc_02.judge_key(ctx, vault.arn, vault.region, what, reference, ["backup:ListBackupVaults"], observed)
    return Finding(ID, result.resource, result.region, result.status, result.reason, result.evidence)


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for replica, sources in ctx.replicas.items():
        bucket = ctx.bucket(replica)
        if bucket is None:
            yield Finding(ID, bucket_arn(replica), "", Status.ERROR,
                          f"replica bucket {replica} of {', '.join(sources)} is not visible to this account, "
                          "so its protection cannot be checked", Evidence("s3:ListBuckets", None))
        else:
            yield check_replica(ctx, bucket, sources)
    for arn, stores in ctx.data_store_vaults.items():
        vault = ctx.inventory.vaults.get(arn)
        if vault is None:
            region = arn.split(":")[3] if arn.count(":") >= 3 else ""
            yield Finding(ID, arn, region, Status.ERROR,
                          f"backup vault {arn} holds copies of {', '.join(sorted(stores))} but was not found in the "
                          "regions in scope, so its encryption cannot be checked", Evidence("backup:ListBackupVaults", None))
        else:
            yield check_vault(ctx, vault, stores)
