"""`vigil verify DIR`: check an evidence pack offline (signature, digests, files, ledger chain)."""
from __future__ import annotations

import argparse
from pathlib import Path

from vigil.errors import UsageError
from vigil.evidence import keys
from vigil.evidence.manifest import verify_pack


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify", help="check an evidence pack's signature, digests and ledger chain",
        description="Check the manifest signature, every file's SHA-256, that no file is missing or extra, "
                    "and the ledger's hash chain. Offline; needs only the public key. Exit 0 when all holds, 1 otherwise.")
    parser.add_argument("directory", metavar="DIR", help="the evidence pack")
    parser.add_argument("--public-key", metavar="FILE",
                        help="the signer's public key (signing.pub); without it only integrity, not origin, is proven")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    public = keys.load_public(Path(args.public_key)) if args.public_key else None
    result = verify_pack(directory, public)
    for failure in result.failures:
        print(f"FAIL  {failure}")
    for note in result.notes:
        print(f"note  {note}")
    checked = f"{result.files_checked} files, {result.ledger_lines} ledger lines checked"
    if result.ok:
        proven = "integrity and origin" if result.origin_proven else "integrity only (not origin)"
        print(f"OK    {directory}: {checked}; {proven} proven")
        return 0
    print(f"FAILED {directory}: {len(result.failures)} problem(s); {checked}")
    return 1
