"""ACC-02: no bucket policy Allow grants everyone access unless a condition narrows *who*.

Only positive tests on identity/network keys narrow who (aws:SourceVpce, aws:PrincipalOrgID,
...); negated operators, IfExists (absent key passes), ForAllValues (true when the key is
absent) and Null do not. aws:SecureTransport narrows nothing. The values must name a fixed
party, as S3 itself judges a policy public unless it grants to fixed values: `vpce-*`,
`arn:aws:iam::*:role/*` or `0.0.0.0/0` match anyone's endpoint, role or address; a wildcard
after a fixed account (`arn:aws:iam::123456789012:role/*`), org (`o-abc/*`) or role id
(`AROA...:*`) still names that party. Values are OR-ed, so one open value opens the test.
An Allow with NotPrincipal grants everyone but the named principals.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.model import Bucket, BucketFacts, Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import all_buckets_unlisted
from vigil.checks.verdicts import errored, verdict

ID = "ACC-02"
# The S3 facts this control reads, by class of bucket (rows of vigil/s3_facts.py).
READS = BucketFacts.of(every=("policy",))
NARROWING_KEYS = {
    "aws:sourcevpce", "aws:sourcevpc", "aws:principalorgid", "aws:principalorgpaths", "aws:principalaccount",
    "aws:sourceaccount", "aws:sourcearn", "aws:principalarn", "aws:sourceip", "aws:sourceorgid",
    "aws:sourceorgpaths", "aws:userid", "aws:username", "aws:principalservicename",
}


ARN_KEYS = {"aws:principalarn", "aws:sourcearn"}
ORG_PATH_KEYS = {"aws:principalorgpaths", "aws:sourceorgpaths"}
_ROLE_SESSIONS = re.compile(r"^ARO[A-Z0-9]+:\*$")  # aws:userid of every session of one role


def _open(text: str) -> bool:
    return "*" in text or "?" in text


def _names_a_party(key: str, value: str) -> bool:
    """Does this value pin who (a fixed account, org, endpoint, network or identity)?"""
    if key in ARN_KEYS:  # arn:partition:service:region:account:resource
        parts = value.split(":", 5)
        return not _open(value) or (len(parts) == 6 and parts[4] != "" and not _open(":".join(parts[:5])))
    if key in ORG_PATH_KEYS:  # o-org/r-root/ou-.../ : paths under a fixed organization
        return value.startswith("o-") and not _open(value.split("/", 1)[0])
    if key == "aws:userid":
        return not _open(value) or bool(_ROLE_SESSIONS.match(value))
    return not _open(value)


def _covers_every_address(values: tuple[str, ...]) -> bool:
    try:
        networks = [ipaddress.ip_network(v, strict=False) for v in values]
    except ValueError:
        return True  # not an address AWS accepts: it pins nothing we can name
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(v4)) or \
        any(n.prefixlen == 0 for n in ipaddress.collapse_addresses(v6))


def _narrows(condition: iam.Condition) -> bool:
    if (condition.key not in NARROWING_KEYS or condition.negated or condition.if_exists or condition.base == "Null"
            or condition.set_operator == "ForAllValues" or not condition.values):
        return False
    if condition.base == "IpAddress":
        return not _covers_every_address(condition.values)
    return all(_names_a_party(condition.key, value) for value in condition.values)


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


@evaluator(ID, reads=READS)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for bucket in ctx.inventory.buckets.values():
        yield check_bucket(ctx, bucket)
    yield from all_buckets_unlisted(ctx, ID)
