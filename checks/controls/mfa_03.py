"""MFA-03: a data store's objects cannot be read, written or deleted without MFA.

A qualifying statement is a Deny for everyone (or NotPrincipal naming only allow-listed
service roles) whose conditions are MFA tests plus, optionally, exceptions that name only the
policy's `access.service_roles`; qualifying statements together must cover the three object
actions on every object (split by action or by resource as they like). Requests without
MFA come in two kinds: aws:MultiFactorAuthPresent is "false" (temporary credentials got
without MFA), or absent (long-term access keys). `Bool false` catches only the first, so the
second needs `BoolIfExists false` or a `Null true`. aws:MultiFactorAuthAge is present only
when MFA was used, so `NumericGreaterThanIfExists` on it, or `Null true`, catches both.
Conditions in one statement must all hold (AND): it catches the kinds every test catches.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.iam_policy import S3_OBJECT_READ_WRITE_DELETE, Condition
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import data_store_buckets, missing_bucket
from vigil.checks.verdicts import errored, verdict

ID = "MFA-03"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(stores=("policy",))
KEY = "aws:multifactorauthpresent"
AGE = "aws:multifactorauthage"
NO_MFA = frozenset({"false", "absent"})
EXCEPTION_OPERATORS = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:(iam|sts)::(\d{12}|\*):(role/(?:[\w+=,.@*-]+/)*|assumed-role/)(?P<name>[\w+=,.@-]+)(/.*)?$")


def _service_role(arn: str, allowed: set[str]) -> bool:
    match = _ROLE_ARN.match(arn)
    return match is not None and match.group("name") in allowed


def _mfa_cases(condition: Condition) -> frozenset[str] | None:
    """Which requests without MFA an MFA test catches ("false", "absent"); None: not an MFA test."""
    if condition.key not in (KEY, AGE):
        return None
    values = [v.lower() for v in condition.values]
    if condition.set_operator:
        return frozenset()  # set operators on single-valued keys: nothing to rely on
    if condition.key == KEY:
        if iam.is_bool(condition, KEY, "false", allow_if_exists=False, among=True):
            return frozenset({"false"})
        if iam.is_bool(condition, KEY, "false", among=True):
            return NO_MFA  # IfExists: an absent key passes the test
        return frozenset({"absent"}) if condition.base == "Null" and values == ["true"] else frozenset()
    # The age is absent whenever MFA was not used, whatever aws:MultiFactorAuthPresent says.
    if condition.base == "Null" and values == ["true"]:
        return NO_MFA
    too_old = condition.base in ("NumericGreaterThan", "NumericGreaterThanEquals")
    if too_old and condition.if_exists and values and all(iam.number(v) is not None for v in values):
        return NO_MFA
    return frozenset()  # e.g. NumericGreaterThan without IfExists: false when the age is absent


def _exception(condition: Condition, allowed: set[str]) -> str | None:
    """None when this condition only exempts allow-listed service roles; otherwise why it narrows the deny.

    A negated test on aws:PrincipalArn is true for every other principal, and true when the key
    is absent (anonymous requests), with or without IfExists: the deny still applies to them.
    """
    if condition.key != "aws:principalarn" or condition.base not in EXCEPTION_OPERATORS or condition.set_operator:
        return f"its condition {condition.operator} {condition.key} narrows the deny"
    outsiders = [v for v in condition.values if not _service_role(v, allowed)]
    return f"its exception names {', '.join(outsiders)}, which is not in access.service_roles" if outsiders else None


def _qualifies(statement: dict, allowed: set[str]) -> tuple[frozenset[str], str | None]:
    """(kinds of no-MFA requests denied, why not) for one statement; statements without an MFA test are not about MFA-03."""
    tests = [c for c in iam.conditions(statement) if c.key in (KEY, AGE)]
    if statement.get("Effect") != "Deny" or not tests:
        return frozenset(), None
    if "NotPrincipal" in statement:
        names = [p.split(":", 1)[1] for p in iam.principals(statement)]
        if not names or not all(_service_role(n, allowed) for n in names):
            return frozenset(), "its NotPrincipal exempts principals that are not allow-listed service roles"
    elif not iam.principal_is_everyone(statement):
        return frozenset(), None
    cases = NO_MFA
    for condition in iam.conditions(statement):
        caught = _mfa_cases(condition)
        if caught is not None:
            cases &= caught
        elif not iam.always_true(condition) and (problem := _exception(condition, allowed)):
            return frozenset(), problem
    return cases, None


def check_bucket(ctx: Context, bucket: Bucket) -> Finding:
    fact = bucket.policy
    if not fact.ok:
        return errored(ID, bucket.arn, bucket.region_name, fact)
    allowed = set(ctx.policy.access.service_roles)
    denying: list[tuple[dict, frozenset[str]]] = []
    problems: list[str] = []
    for statement in iam.statements(fact.value):
        cases, problem = _qualifies(statement, allowed)
        if problem:
            problems.append(problem)
        if cases:
            denying.append((statement, cases))
    gaps: dict[str, set[str]] = {}
    for case in sorted(NO_MFA):
        statements = [s for s, cases in denying if case in cases]
        for action, _object in iam.uncovered(statements, S3_OBJECT_READ_WRITE_DELETE, [f"{bucket.arn}/*"]):
            gaps.setdefault(action, set()).add(case)
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


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for name, bucket in data_store_buckets(ctx):
        yield missing_bucket(ctx, ID, name) if bucket is None else check_bucket(ctx, bucket)
