"""How to fix each control: the remediation cards of the catalogue, filled in for one finding.

The commands in the cards (`remediation:` of each control in catalogue.yaml) carry `${name}`
placeholders; `for_finding` fills them from the finding's resource ARN (bucket, table, db,
...), its region and the policy's regions. A placeholder that cannot be filled is printed
as `<name>` so the operator sees what to supply and the command never silently targets the
wrong thing.
"""
from __future__ import annotations

import re
from string import Template

from vigil.checks.catalogue import Remediation, catalogue
from vigil.checks.model import Finding

from vigil.policy import Policy


def remediations() -> dict[str, Remediation]:
    """Control id -> its unfilled remediation card."""
    return {control.id: control.remediation for control in catalogue().values()}


# ARN shapes the catalogue's findings use -> the placeholder names they fill.
_ARN_PATTERNS = (
    re.compile(r"^arn:aws[\w-]*:s3:::(?P<bucket>[^/]+)$"),
    re.compile(r"^arn:aws[\w-]*:dynamodb:(?P<region>[^:]+):(?P<account>\d{12}):table/(?P<table>[^/]+)$"),
    re.compile(r"^arn:aws[\w-]*:rds:(?P<region>[^:]+):(?P<account>\d{12}):db:(?P<db>.+)$"),
    re.compile(r"^arn:aws[\w-]*:rds:(?P<region>[^:]+):(?P<account>\d{12}):cluster:(?P<cluster>.+)$"),
    re.compile(r"^arn:aws[\w-]*:iam::(?P<account>\d{12}):user/(?:.*/)?(?P<user>[^/]+)$"),
    re.compile(r"^arn:aws[\w-]*:iam::(?P<account>\d{12}):role/(?:.*/)?(?P<role>[^/]+)$"),
    re.compile(r"^arn:aws[\w-]*:kms:(?P<region>[^:]+):(?P<account>\d{12}):key/(?P<key_id>.+)$"),
    re.compile(r"^arn:aws[\w-]*:backup:(?P<region>[^:]+):(?P<account>\d{12}):backup-vault:(?P<vault>.+)$"),
    re.compile(r"^arn:aws[\w-]*:cloudtrail:(?P<region>[^:]+):(?P<account>\d{12}):trail/(?P<trail>.+)$"),
    re.compile(r"^(?P<account>\d{12})$"),
    re.compile(r"^region:(?P<region>[a-z0-9-]+)$"),
)


class _Placeholders(dict):
    """Known values; anything else renders as <name> for the operator to supply."""

    def __missing__(self, key: str) -> str:
        return f"<{key.replace('_', '-')}>"


def placeholders(resource: str, region: str = "", policy: Policy | None = None, account: str = "") -> dict[str, str]:
    values: dict[str, str] = {"resource": resource}
    for pattern in _ARN_PATTERNS:
        match = pattern.match(resource)
        if match:
            values.update({k: v for k, v in match.groupdict().items() if v})
            break
    if region and "region" not in values:
        values["region"] = region
    if account and "account" not in values:
        values["account"] = account
    if policy is not None:
        values["primary_region"] = policy.regions.primary
        values["backup_region"] = policy.regions.backup
        values.setdefault("region", policy.regions.primary)
    return values


# Placeholders that name one kind of resource: a command needing another kind than the
# finding's does not apply to it (BAK-05 on a table needs no `rds modify-db-instance`).
RESOURCE_KINDS = ("bucket", "table", "db", "cluster", "user", "role", "key_id", "vault", "trail")


def _applies(command: str, values: dict[str, str]) -> bool:
    kinds = {m.group("braced") or m.group("named") for m in Template.pattern.finditer(command)} - {None}
    return not any(kind in RESOURCE_KINDS and kind not in values for kind in kinds)


def fill(text: str, values: dict[str, str]) -> str:
    return Template(text).substitute(_Placeholders(values))


def for_control(control_id: str) -> Remediation:
    """The unfilled card (placeholders shown as <name>), e.g. for `vigil controls show`."""
    entry = remediations()[control_id]
    empty = _Placeholders()
    return Remediation(fill(entry.summary, empty), tuple(fill(c, empty) for c in entry.cli), fill(entry.pulumi, empty))


def for_finding(finding: Finding, policy: Policy | None = None, account: str = "") -> Remediation | None:
    """The remediation with this finding's resource filled in; None for a control without one."""
    entry = remediations().get(finding.control)
    if entry is None:
        return None
    values = placeholders(finding.resource, finding.region, policy, account)
    commands = [c for c in entry.cli if _applies(c, values)] or list(entry.cli)
    return Remediation(fill(entry.summary, values), tuple(fill(c, values) for c in commands), fill(entry.pulumi, values))
