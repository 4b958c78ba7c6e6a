"""`vigil iam-policy check|retain|subject`: the least-privilege IAM policy a command needs.

The actions are not a hand-kept list: they are the API operations the command's code calls,
read from its source (`vigil.iam_actions`), mapped to IAM actions. Resources are scoped by
who calls: collectors judge every resource in scope ("all" buckets, tables, keys), the
retention code touches only the policy's stores and their replicas (bucket ARNs, object
prefixes, table ARNs). Actions that AWS does not scope (List*, account settings) get "*".
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from vigil.aws import Aws
from vigil.checks.collectors import SERVICES
from vigil.cli import common
from vigil.errors import EnvironmentFailure, UsageError
from vigil.iam_actions import VIA_S3_KMS, CallSite, actions_for, call_sites, imported_modules, module_path
from vigil.policy import Policy

ALL, STORES = "all", "stores"


@dataclass(frozen=True)
class Part:
    """Modules whose calls a command makes, the import closure to follow, and whose resources they touch."""

    entries: tuple[str, ...]
    follow: tuple[str, ...]
    scope: str


def parts(command: str) -> tuple[list[Part], str | None]:
    """The code each command runs; and a note when a command's own module is not built yet."""
    collectors = tuple(f"vigil.checks.collectors.{name}" for name in SERVICES)
    retention = Part(("vigil.cli.retain", "vigil.retention.engine"), ("vigil.cli.retain", "vigil.retention"), STORES)
    base = Part(("vigil.aws",), ("vigil.aws",), ALL)
    if command == "check":
        # the runner imports vigil.retention.verify (read-only) for RET-02
        return [base, Part(collectors, ("vigil.checks.collectors",), ALL),
                Part(("vigil.retention.verify",), ("vigil.retention",), STORES)], None
    if command == "retain":
        return [base, retention], None
    if module_path("vigil.cli.subject"):
        # find/export/erase and the request log: vigil.subjects, which acts through the retention executors
        return [base, Part(("vigil.cli.subject",), ("vigil.cli.subject", "vigil.subjects", "vigil.retention"), STORES)], None
    return [base, retention], "vigil subject is not built yet: this is the retention executors' policy, which it will use"


def sites(command: str) -> list[tuple[CallSite, str]]:
    """Every call site the command's code declares, with the scope of the part it belongs to."""
    found: list[tuple[CallSite, str]] = []
    for part in parts(command)[0]:
        modules: set[str] = set()
        for entry in part.entries:
            modules |= imported_modules(entry, part.follow)
        for module in sorted(modules):
            found.extend((site, part.scope) for site in call_sites(module))
    return found


def actions(command: str) -> list[str]:
    """Every IAM action the command's code calls (what `build` scopes); the Pulumi stack reads it too."""
    return sorted({action for site, _scope in sites(command) for action in actions_for(site.operation)})


def is_object_action(action: str) -> bool:
    return bool(_S3_OBJECT.match(action))


@dataclass
class Targets:
    """What the stores are, for scoping: regions, account, buckets with their object prefixes, tables."""

    regions: list[str]
    account: str
    objects: list[tuple[str, str]]  # (bucket, key prefix), stores and their replicas
    tables: list[str]

    @property
    def buckets(self) -> list[str]:
        return sorted({bucket for bucket, _ in self.objects})


_S3_OBJECT = re.compile(r"^s3:(Get|Put|Delete|Restore|Abort)Object")
_UNSCOPED = {"s3:ListAllMyBuckets", "s3:GetAccountPublicAccessBlock", "dynamodb:ListTables", "kms:ListKeys", "kms:ListAliases"}


def resources(action: str, scope: str, t: Targets) -> tuple[str, tuple[str, ...]]:
    """(statement label, resource ARNs) for one IAM action at one scope."""
    service = action.split(":", 1)[0]
    if action in _UNSCOPED or service not in ("s3", "dynamodb", "kms"):
        return "AccountWide", ("*",)
    if service == "s3" and _S3_OBJECT.match(action):
        if scope == ALL:
            return "AllObjects", ("arn:aws:s3:::*/*",)
        return "StoreObjects", tuple(sorted({f"arn:aws:s3:::{b}/{p}*" for b, p in t.objects}))
    if service == "s3":
        return ("AllBuckets", ("arn:aws:s3:::*",)) if scope == ALL else \
            ("StoreBuckets", tuple(f"arn:aws:s3:::{b}" for b in t.buckets))
    if service == "dynamodb":
        names = ["*"] if scope == ALL else t.tables
        return ("AllTables" if scope == ALL else "StoreTables",
                tuple(f"arn:aws:dynamodb:{r}:{t.account}:table/{n}" for r in t.regions for n in names))
    return "Keys", tuple(f"arn:aws:kms:{r}:{t.account}:key/*" for r in t.regions)


def build(command: str, t: Targets) -> dict[str, Any]:
    """The IAM policy document for `command`."""
    scope_of: dict[str, str] = {}
    via_s3: set[str] = set()
    for site, scope in sites(command):
        for action in actions_for(site.operation):
            scope_of[action] = ALL if ALL in (scope, scope_of.get(action)) else scope
        via_s3.update(VIA_S3_KMS.get(site.operation, ()))
    groups: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for action, scope in scope_of.items():
        groups.setdefault(resources(action, scope, t), set()).add(action)
    statements = [{"Sid": label, "Effect": "Allow", "Action": sorted(actions), "Resource": list(arns) if arns != ("*",) else "*"}
                  for (label, arns), actions in sorted(groups.items())]
    if via_s3:  # objects under a customer key: S3 calls KMS for the caller, and only S3 may use this grant
        statements.append({"Sid": "StoreKeysViaS3", "Effect": "Allow", "Action": sorted(via_s3),
                           "Resource": [f"arn:aws:kms:{r}:{t.account}:key/*" for r in t.regions],
                           "Condition": {"StringEquals": {"kms:ViaService": [f"s3.{r}.amazonaws.com" for r in t.regions]}}})
    return {"Version": "2012-10-17", "Statement": statements}


def replicas(aws: Aws, policy: Policy) -> dict[str, list[str]]:
    """Store bucket -> the replica buckets its replication configuration names (read live).

    A bucket without replication (or not created yet) has none; anything else (endpoint
    unreachable, no credentials, access denied) would leave replicas out of the policy, so it
    ends the command with exit 3 instead of printing an incomplete policy.
    """
    aws.account_id(policy.regions.primary)  # pre-flight: a broken environment fails fast, not after retries
    out: dict[str, list[str]] = {}
    s3 = aws.client("s3", policy.regions.primary)
    for bucket in sorted(policy.data_buckets):
        try:
            rules = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"].get("Rules", [])
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("ReplicationConfigurationNotFoundError", "NoSuchBucket"):
                raise EnvironmentFailure(f"cannot read the replication rules of {bucket}: {exc}") from None
            if code == "NoSuchBucket":
                print(f"vigil: {bucket} does not exist yet, so it has no replicas", file=sys.stderr)
            continue
        except botocore.exceptions.BotoCoreError as exc:
            raise EnvironmentFailure(f"cannot read the replication rules of {bucket}: {exc}") from None
        out[bucket] = sorted({r["Destination"]["Bucket"].removeprefix("arn:aws:s3:::") for r in rules if r.get("Destination")})
    return out


def targets(args: argparse.Namespace, policy: Policy) -> Targets:
    copies = replicas(Aws(profile=args.profile, endpoint_url=args.endpoint_url), policy) if args.discover_replicas else {}
    objects = {(s.bucket, s.prefix) for s in policy.s3_stores}
    objects |= {(replica, s.prefix) for s in policy.s3_stores for replica in copies.get(s.bucket, [])}
    objects |= {(bucket, "") for bucket in args.bucket or []}
    tables = set(policy.data_tables)
    requests = getattr(policy, "requests", None)  # vigil subject's request log
    if requests is not None:
        tables.add(requests.table)
    return Targets(common.regions(args, policy), args.account, sorted(objects), sorted(tables))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("iam-policy", help="print the least-privilege IAM policy a command needs",
                                   description="Print the IAM policy JSON that 'vigil check', 'vigil retain' or "
                                               "'vigil subject' needs, derived from the API calls in their code.")
    parser.add_argument("for_command", choices=["check", "retain", "subject"], metavar="check|retain|subject")
    parser.add_argument("--policy", default="policy.yaml", metavar="FILE", help="the data-handling policy (default ./policy.yaml)")
    parser.add_argument("--region", action="append", metavar="R", help="region in scope (repeatable); default: the policy's regions")
    parser.add_argument("--account", default="*", metavar="ID", help="account id for resource ARNs (default *)")
    parser.add_argument("--bucket", action="append", metavar="NAME", help="another bucket the command may touch, e.g. a replica (repeatable)")
    parser.add_argument("--discover-replicas", action="store_true", help="read the stores' replication rules to add their replicas")
    parser.add_argument("--endpoint-url", metavar="URL", help="for --discover-replicas: send the calls here (a local emulator)")
    parser.add_argument("--profile", metavar="NAME", help="for --discover-replicas: AWS profile")
    parser.add_argument("--sources", action="store_true", help="also list, on stderr, the call sites each action comes from")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    policy = common.load(args)
    if args.account != "*" and not re.fullmatch(r"\d{12}", args.account):
        raise UsageError(f"--account {args.account!r} is not a 12-digit account id")
    note = parts(args.for_command)[1]
    if note:
        print(f"vigil: {note}", file=sys.stderr)
    if not args.discover_replicas and not args.bucket:
        print("vigil: the stores' replica buckets are not included; add --discover-replicas or --bucket NAME", file=sys.stderr)
    print(json.dumps(build(args.for_command, targets(args, policy)), indent=2))
    if args.sources:
        for site, scope in sorted(sites(args.for_command)):
            needs = ", ".join(actions_for(site.operation)) or "no permission"
            print(f"{site.operation:45} -> {needs:60} {site.module}:{site.line} ({scope})", file=sys.stderr)
    return 0
