"""ACC-03 (informational): who can reach each data store, listed for the periodic access review.

The list comes from the store's own configuration: principals named by its bucket policy
Allow statements, its replication role, and the roles the policy file declares for data
access. It never fails; it errors only when the policy could not be read.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.model import BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import errored, passed

ID = "ACC-03"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("policy", "replication"))


def _declared_roles(ctx: Context) -> list[dict]:
    out = []
    for kind, names in (("service", ctx.policy.access.service_roles), ("human", ctx.policy.access.human_roles)):
        for name in names:
            role = ctx.inventory.roles.get(name)
            exists = bool(role and role.trust_policy.ok and role.trust_policy.value is not None)
            arn = role.arn if role else f"arn:aws:iam::{ctx.inventory.account_id}:role/{name}"
            out.append({"principal": arn, "via": f"policy file access.{kind}_roles", "exists": exists})
    return out


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    roles = _declared_roles(ctx)
    for name in ctx.stores_by_bucket:
        bucket = ctx.bucket(name)
        arn = f"arn:aws:s3:::{name}"
        if bucket is None:
            continue  # RES-01 and the other data store controls report the missing bucket
        if not bucket.policy.ok:
            yield errored(ID, arn, bucket.region_name, bucket.policy)
            continue
        reach = list(roles)
        for statement in iam.statements(bucket.policy.value):
            if statement.get("Effect") == "Allow":
                for principal in iam.principals(statement):
                    reach.append({"principal": principal, "via": f"bucket policy {statement.get('Sid') or 'Allow'}",
                                  "actions": iam.as_list(statement.get("Action", statement.get("NotAction")))})
        replication = bucket.replication.value if bucket.replication.ok else None
        if replication and replication.get("Role"):
            reach.append({"principal": replication["Role"], "via": "replication configuration"})
        yield passed(ID, arn, bucket.region_name,
                     f"{len(reach)} principals can reach this store; review them (listed in the evidence)",
                     [bucket.policy.api, bucket.replication.api], reach)
    for _name, table in ctx.data_tables():
        if table is None:
            continue
        yield passed(ID, table.arn, table.region,
                     f"{len(roles)} declared roles reach this table through IAM; review them (listed in the evidence)",
                     "iam:GetRole", roles)
