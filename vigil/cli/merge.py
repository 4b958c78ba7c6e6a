"""`vigil merge PACK... --output DIR`: join per-account evidence packs into one signed pack."""
from __future__ import annotations

import argparse
from pathlib import Path

from vigil.evidence import keys
from vigil.evidence.merge import merge_packs
from vigil.evidence.render import write_report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge", help="join per-account evidence packs into one signed pack",
        description="Verify each pack (one `vigil run` per account), copy each whole into accounts/<id>/, join their "
                    "findings and retention plans, then render and sign one pack. A pack that does not verify stops "
                    "the merge (exit 1) and nothing is written.")
    parser.add_argument("packs", nargs="+", metavar="PACK", help="an evidence pack folder (one per account)")
    parser.add_argument("--output", required=True, metavar="DIR", help="the merged pack (a new or empty folder)")
    parser.add_argument("--public-key", metavar="FILE", help="the key every input pack must be signed with (signing.pub)")
    parser.add_argument("--signing-key", metavar="FILE", help="signs the merged pack (a key file or kms:<key>; or VIGIL_SIGNING_KEY)")
    parser.add_argument("--policy", metavar="FILE", help="the policy the runs used, for the report's categories table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    trusted = keys.load_public(Path(args.public_key)) if args.public_key else None
    output = merge_packs([Path(p) for p in args.packs], Path(args.output), public_key=trusted)
    written = write_report(output, args.policy, args.signing_key)
    print(f"merged {len(args.packs)} packs into {output} ({len(written)} files written)")
    return 0
