"""Flags every command shares (cli.md) and the helpers that interpret them."""
from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.accounts import model as accounts_model
from vigil.checks.waivers import load_checked_policy
from vigil.policy import Policy
from vigil.stages import common as stages
from vigil.stages.common import new_run_id

__all__ = ["accounts", "add_accounts_flags", "add_common", "load", "new_run_id", "output_dir", "parse_as_of", "regions", "target"]


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default="policy.yaml", metavar="FILE", help="the data-handling policy (default ./policy.yaml)")
    parser.add_argument("--endpoint-url", metavar="URL", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="send every AWS call here (a local emulator); plain http only for loopback")
    parser.add_argument("--region", action="append", metavar="R", help="region in scope (repeatable); default: the policy's regions")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile; the standard credential chain otherwise")
    parser.add_argument("--output", metavar="DIR", help=f"where files are written; default ./{stages.DEFAULT_OUTPUT}/<run-id>/")
    parser.add_argument("--as-of", metavar="TIMESTAMP", help="evaluate retention as if it were this instant (ISO 8601)")


def add_accounts_flags(parser: argparse.ArgumentParser, retention: bool = False) -> None:
    """cli.md "Many accounts": which accounts, which role in each, how many at once."""
    group = parser.add_argument_group("many accounts (default: one account, the caller's)")
    group.add_argument("--org", action="store_true", help="every ACTIVE member account of the caller's AWS Organization")
    group.add_argument("--accounts-file", metavar="FILE", help="the accounts to reach (YAML list of {account_id, name, role, "
                                                              "external_id, regions, policy}; `vigil accounts list --org` writes one)")
    group.add_argument("--role-name", default=accounts_model.DEFAULT_AUDIT_ROLE, metavar="NAME",
                       help=f"read-only role assumed in each account (default {accounts_model.DEFAULT_AUDIT_ROLE})")
    if retention:
        group.add_argument("--retention-role-name", default=accounts_model.DEFAULT_RETENTION_ROLE, metavar="NAME",
                           help="role retention assumes in each account, able to delete and anonymize "
                                f"(default {accounts_model.DEFAULT_RETENTION_ROLE})")
    group.add_argument("--external-id", metavar="ID", default=os.environ.get("VIGIL_EXTERNAL_ID") or None,
                       help="external id sent with every AssumeRole (or VIGIL_EXTERNAL_ID)")
    group.add_argument("--accounts-parallel", type=positive_int, default=accounts_model.DEFAULT_PARALLEL, metavar="N",
                       help=f"accounts worked at once (default {accounts_model.DEFAULT_PARALLEL})")


def add_lock_bucket(parser: argparse.ArgumentParser) -> None:
    """--lock-bucket: the S3 lock object per store that keeps runs on other machines apart (vigil/locks.py)."""
    parser.add_argument("--lock-bucket", metavar="BUCKET", default=os.environ.get("VIGIL_LOCK_BUCKET") or None,
                        help="with --apply, also take an S3 lock object per store here, so runs on other machines "
                             "never change a store at the same time (default $VIGIL_LOCK_BUCKET)")


def accounts(args: argparse.Namespace) -> accounts_model.AccountsOptions:
    return accounts_model.AccountsOptions.from_args(args)


def positive_int(text: str) -> int:
    """An argparse type for counts that must be at least 1 (`--workers`): bad input, exit 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: at least 1 is needed")
    return value


def target(args: argparse.Namespace) -> dict[str, Any]:
    """The shared flags as the fields of `vigil.stages.common.Target`."""
    return {"policy": args.policy, "endpoint_url": args.endpoint_url, "regions": tuple(args.region or ()),
            "profile": args.profile, "as_of": stages.parse_as_of(args.as_of), "output": args.output,
            "accounts": accounts(args)}


def output_dir(args: argparse.Namespace, run_id: str) -> Path:
    return stages.Target(output=getattr(args, "output", None)).output_dir(run_id)


def parse_as_of(value: str | None) -> datetime:
    """--as-of's instant; now when it is not given."""
    return stages.parse_as_of(value) or datetime.now(UTC)


def load(args: argparse.Namespace) -> Policy:
    return load_checked_policy(args.policy)


def regions(args: argparse.Namespace, policy: Policy) -> list[str]:
    return list(dict.fromkeys(args.region)) if args.region else policy.regions_in_scope
