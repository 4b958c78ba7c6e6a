"""`vigil keys generate --out DIR`: an Ed25519 key pair for signing evidence packs."""
from __future__ import annotations

import argparse
from pathlib import Path

from vigil.evidence import keys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="manage the keys that sign evidence packs",
                                   description="Manage the Ed25519 keys that sign evidence packs.")
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    generate = actions.add_parser("generate", help="write a new key pair (refuses to overwrite)",
                                  description="Write DIR/signing.key (mode 0600) and DIR/signing.pub. Never overwrites.")
    generate.add_argument("--out", required=True, metavar="DIR", help="folder for signing.key and signing.pub")
    generate.set_defaults(handler=run)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def run(args: argparse.Namespace) -> int:
    private_path, public_path = keys.generate(Path(args.out))
    public = keys.load_public(public_path)
    print(f"private key: {private_path} (mode 0600; keep it secret, use it with --signing-key or {keys.ENV_VAR})")
    print(f"public key:  {public_path} (give it to auditors: vigil verify DIR --public-key {public_path.name})")
    print(f"fingerprint: {keys.fingerprint(public)}")
    return 0
