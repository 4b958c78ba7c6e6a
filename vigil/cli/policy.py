"""`vigil policy validate`: check a policy file without touching AWS."""
from __future__ import annotations

import argparse

from vigil.checks.waivers import load_checked_policy


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("policy", help="work with the policy file")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    validate = actions.add_parser("validate", help="validate a policy file (exit 2 on any error)")
    validate.add_argument("file", nargs="?", default="policy.yaml")
    validate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    policy = load_checked_policy(args.file)
    print(f"{args.file}: valid (schema version {policy.version}; {len(policy.categories)} categories, "
          f"{len(policy.stores)} stores; sha256 {policy.sha256})")
    return 0
