"""`vigil`: the command line. Each command lives in its own module with add_parser/run."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from vigil import __version__
from vigil.errors import VigilError
from vigil.policy import PolicyError

# Command modules, in the order `vigil --help` lists them. A module may be absent while its
# feature is being built; the command then does not appear.
COMMANDS = ("check", "retain", "report", "verify", "run", "schedule", "keys", "demo", "controls", "policy", "subject", "iam_policy")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="Keep privacy promises on AWS, and prove it.")
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vigil.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vigil.cli.{name}":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except PolicyError as exc:
        print(f"vigil: invalid policy file\n{exc}", file=sys.stderr)
        return 2
    except VigilError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vigil: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for users; VIGIL_DEBUG=1 shows it
        if os.environ.get("VIGIL_DEBUG"):
            raise
        print(f"vigil: unexpected error: {type(exc).__name__}: {exc} (set VIGIL_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
