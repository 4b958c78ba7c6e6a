"""MFA-03: a data store's objects cannot be read, written or deleted without MFA.

A qualifying statement is a Deny for everyone (or NotPrincipal naming only allow-listed
service roles) on the bucket's objects whose conditions are one MFA test plus, optionally,
exceptions that name only the policy's `access.service_roles`. `Bool false` catches
requests that say "no MFA" but not requests without the key (long-term keys), so the
"absent" case needs `BoolIfExists false` or a `Null true` statement as well.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.iam_policy import S3_OBJECT_READ_WRITE_DELETE, Condition
from vigil.checks.model import Bucket, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, missing_bucket
from vigil.checks.verdicts import errored, verdict

ID = "MFA-03"
KEY = "aws:multifactorauthpresent"
EXCEPTION_OPERATORS = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:(iam|sts)::(\d{12}|\*):(role/(?:[\w+=,.@*-]+/)*|assumed-role/)(?P<name>[\w+=,.@-]+)(/.*)?$")


def _service_role(arn: str, allowed: set[str]) -> bool:
    match = _ROLE_ARN.match(arn)
    return bool(match) and match.group("name") in allowed


def _mfa_cases(condition: Condition) -> set[str]:
    """Which requests an MFA condition catches: "false" (key says no MFA), "absent" (no key)."""
    if condition.key != KEY:
        return set()
    if iam.is_bool(condition, KEY, "false", allow_if_exists=False, among=True):
        return {"false"}
    if iam.is_bool(condition, KEY, "false", among=True):
        return {"false", "absent"}
    if condition.base == "Null" and [v.lower() for v in condition.values] == ["true"]:
        return {"absent"}
    return set()


def _qualifies(statement: dict, bucket: str, allowed: set[str]) -> tuple[set[str], str | None]:
    """(cases caught, why not) for one statement; statements that do not test MFA are not about MFA-03."""
    if statement.get("Effect") != "Deny" or not any(c.key == KEY for c in iam.conditions(statement)):
        return set(), None
    if "NotPrincipal" in statement:
        names = [p.split(":", 1)[1] for p in iam.principals(statement)]
        if not names or not all(_service_role(n, allowed) for n in names):
            return set(), "its NotPrincipal exempts principals that are not allow-listed service roles"
    elif not iam.principal_is_everyone(statement):
        return set(), None
    if not iam.applies_to_all_objects(statement, bucket):
        return set(), None
    cases: set[str] = set()
    mfa_conditions = 0
    for condition in iam.conditions(statement):
        caught = _mfa_cases(condition)
        if caught:
            cases |= caught
            mfa_conditions += 1
        elif condition.key == "aws:principalarn" and condition.base in EXCEPTION_OPERATORS and not condition.if_exists:
            outsiders = [v for v in condition.values if not _service_role(v, allowed)]
            if outsiders:
                return set(), f"its exception names {', '.join(outsiders)}, which is not in access.service_roles"
        else:
            return set(), f"its condition {condition.operator} {condition.key} narrows the deny"
    if mfa_conditions != 1:
        return set(), None if mfa_conditions == 0 else "it combines several MFA tests, which must all hold at once"
    return cases, None


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.policy
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    allowed = set(ctx.policy.access.service_roles)
    covered: dict[str, set[str]] = {action: set() for action in S3_OBJECT_READ_WRITE_DELETE}
    problems: list[str] = []
    for statement in iam.statements(fact.value):
        cases, problem = _qualifies(statement, bucket.name, allowed)
        if problem:
            problems.append(problem)
        for action in S3_OBJECT_READ_WRITE_DELETE:
            if cases and iam.applies_to_action(statement, action):
                covered[action] |= cases
    gaps = {action: {"false", "absent"} - cases for action, cases in covered.items() if cases != {"false", "absent"}}
    if not gaps:
        return verdict(ID, bucket.arn, bucket.region_name, True,
                       "object reads, writes and deletes are denied without MFA (only allow-listed service roles are exempt)",
                       fact.api, fact.value)
    if problems:
        reason = f"the MFA deny does not hold: {problems[0]}"
    elif all(cases == {"absent"} for cases in gaps.values()):
        reason = ("requests without the aws:MultiFactorAuthPresent key (long-term access keys) are not denied: "
                  "use BoolIfExists, or add a Null check")
    else:
        reason = "no deny stops " + ", ".join(
            f"{action} ({' or '.join(sorted(missing))} MFA)" for action, missing in sorted(gaps.items())
        )
    return verdict(ID, bucket.arn, bucket.region_name, False, reason, fact.api, fact.value)


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield missing_bucket(ctx, ID, name) if bucket is None else check_bucket(ctx, bucket)
