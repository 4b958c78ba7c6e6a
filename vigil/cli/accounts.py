"""`vigil accounts list`: the accounts a run with the same flags would reach, as an accounts file to review and freeze."""
from __future__ import annotations

import argparse
import sys

from vigil.accounts.sources import resolve, to_yaml
from vigil.aws import Aws
from vigil.cli import common


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("accounts", help="list the accounts of an AWS Organization as an accounts file",
                                   description="Print the accounts --org (or --accounts-file) reaches, as an accounts file: "
                                               "`vigil accounts list --org > accounts.yaml` freezes the list for review.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print the accounts as YAML (accounts not ACTIVE as comments)")
    listing.add_argument("--endpoint-url", metavar="URL", help="send every AWS call here (a local emulator)")
    listing.add_argument("--profile", metavar="NAME", help="AWS profile; the standard credential chain otherwise")
    listing.add_argument("--region", default="us-east-1", help="region of the Organizations call (default us-east-1)")
    common.add_accounts_flags(listing)
    listing.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = common.accounts(args)
    if not options.many:
        print("vigil accounts list: give --org or --accounts-file", file=sys.stderr)
        return 2
    aws = Aws(profile=args.profile, endpoint_url=args.endpoint_url)
    aws.account_id(args.region)  # a broken environment is exit 3 before anything else
    sys.stdout.write(to_yaml(resolve(aws, args.region, options)))
    return 0
