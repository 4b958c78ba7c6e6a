"""ACC-02: no bucket policy Allow grants everyone access unless a condition narrows *who*.

Only positive tests on identity/network keys narrow who (aws:SourceVpce, aws:PrincipalOrgID,
...); negated operators, IfExists (absent key passes) and Null do not. aws:SecureTransport
narrows nothing. An Allow with NotPrincipal grants everyone but the named principals.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.model import Bucket, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import all_buckets_unlisted
from vigil.checks.verdicts import errored, verdict

ID = "ACC-02"
NARROWING_KEYS = {
    "aws:sourcevpce", "aws:sourcevpc", "aws:principalorgid", "aws:principalorgpaths", "aws:principalaccount",
    "aws:sourceaccount", "aws:sourcearn", "aws:principalarn", "aws:sourceip", "aws:sourceorgid",
    "aws:sourceorgpaths", "aws:userid", "aws:username", "aws:principalservicename",
}


def _narrows(condition: iam.Condition) -> bool:
    return (
        condition.key in NARROWING_KEYS
        and not condition.negated
        and not condition.if_exists
        and condition.base != "Null"
        and bool(condition.values)
        and all(value.strip("*?") for value in condition.values)
    )


def public_statements(document: dict | None) -> list[dict]:
    out = []
    for statement in iam.statements(document):
        if statement.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in statement or iam.principal_is_everyone(statement):
            if not any(_narrows(c) for c in iam.conditions(statement)):
                out.append(statement)
    return out


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.policy
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    public = public_statements(fact.value)
    if not public:
        reason = "the bucket has no policy" if fact.value is None else "no Allow statement grants access to everyone"
        return verdict(ID, bucket.arn, bucket.region_name, True, reason, fact.api, fact.value)
    first = public[0]
    sid = first.get("Sid") or "an Allow statement"
    actions = ", ".join(map(str, iam.as_list(first.get("Action", first.get("NotAction"))))) or "actions"
    return verdict(ID, bucket.arn, bucket.region_name, False,
                   f"{sid} grants {actions} to everyone with no condition that narrows who "
                   "(e.g. aws:SourceVpce, aws:PrincipalOrgID); remove it or add such a condition",
                   fact.api, fact.value)


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for bucket in ctx.inventory.buckets.values():
        yield check_bucket(ctx, bucket)
    yield from all_buckets_unlisted(ctx, ID)
