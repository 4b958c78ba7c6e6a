"""`vigil`: the command line. Each command lives in its own module with add_parser/run."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from vigil import __version__
from vigil.errors import ExitCode
from vigil.stages.common import failure, unexpected

# Command modules, in the order `vigil --help` lists them. Each is imported only when the
# parser is built, so `vigil --version` stays quick.
COMMANDS = ("check", "retain", "report", "verify", "run", "schedule", "keys", "demo", "controls", "policy", "subject", "iam_policy", "accounts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="Keep privacy promises on AWS, and prove it.")
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"vigil.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return ExitCode.USAGE
    try:
        return int(args.handler(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:  # never a traceback for users; VIGIL_DEBUG=1 shows it
        if unexpected(exc) and os.environ.get("VIGIL_DEBUG"):
            raise
        code, message = failure(exc)
        print(f"vigil: {message}" + (" (set VIGIL_DEBUG=1 for details)" if unexpected(exc) else ""), file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
