"""Flags every command shares (cli.md) and the helpers that interpret them."""
from __future__ import annotations

import argparse
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from vigil.checks.waivers import load_checked_policy
from vigil.errors import UsageError
from vigil.policy import Policy


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default="policy.yaml", metavar="FILE", help="the data-handling policy (default ./policy.yaml)")
    parser.add_argument("--endpoint-url", metavar="URL", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="send every AWS call here (a local emulator); plain http only for loopback")
    parser.add_argument("--region", action="append", metavar="R", help="region in scope (repeatable); default: the policy's regions")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile; the standard credential chain otherwise")
    parser.add_argument("--output", metavar="DIR", help="where files are written; default ./evidence/<run-id>/")
    parser.add_argument("--as-of", metavar="TIMESTAMP", help="evaluate retention as if it were this instant (ISO 8601)")


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def output_dir(args: argparse.Namespace, run_id: str) -> Path:
    path = Path(args.output) if getattr(args, "output", None) else Path("evidence") / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def parse_as_of(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise UsageError(f"--as-of {value!r} is not an ISO 8601 date or timestamp (e.g. 2027-06-01 or 2027-06-01T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def load(args: argparse.Namespace) -> Policy:
    return load_checked_policy(args.policy)


def regions(args: argparse.Namespace, policy: Policy) -> list[str]:
    return list(dict.fromkeys(args.region)) if args.region else policy.regions_in_scope

