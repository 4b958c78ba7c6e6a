"""`vigil verify DIR`: check an evidence pack offline (signature, digests, files, ledger chain)."""
from __future__ import annotations

import argparse

from vigil.stages.verify import VerifyOptions, VerifyOutcome, verify


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
    outcome = verify(VerifyOptions(args.directory, args.public_key))
    show(outcome)
    return outcome.exit_code


def show(outcome: VerifyOutcome) -> None:
    """Failures first; success words only when nothing failed; origin claimed only with a trusted key."""
    result, directory = outcome.result, outcome.directory
    for failure in result.failures:
        print(f"FAIL  {failure}")
    for note in result.notes:
        print(f"note  {note}")
    checked = f"{result.files_checked} files, {result.ledger_lines} ledger lines checked"
    if not result.ok:
        print(f"FAILED {directory}: {len(result.failures)} problem(s); {checked}. Do not rely on this pack.")
    elif result.origin_proven:
        print(f"OK    {directory}: {checked}; signed by the key you gave (fingerprint {result.fingerprint}): "
              "integrity and origin proven")
    else:
        print(f"OK    {directory}: {checked}; integrity only: the signature was checked with the key recorded in the pack "
              f"itself (fingerprint {result.fingerprint})")
        print("ORIGIN NOT PROVEN: anyone who changed the pack could have re-signed it with a key of their own. "
              "Pass --public-key with the signer's signing.pub, obtained from the signer, to prove who signed.")
