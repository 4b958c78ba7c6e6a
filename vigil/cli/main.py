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
COMMANDS = ("check", "retain", "anonymize", "report", "verify", "run", "schedule", "keys", "demo", "controls", "policy", "subject", "iam_policy", "accounts", "merge")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="Keep privacy promises on AWS, and prove it.")
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"vigil.cli.{name}").add_parser(subparsers)
    _own_usage(parser)
    return parser


def _own_usage(parser: argparse.ArgumentParser) -> None:
    """Each (sub)command records itself, so a stray argument is reported with its own usage, not `vigil`'s."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.set_defaults(usage_parser=sub)
                _own_usage(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, stray = parser.parse_known_args(argv)
    if stray:
        getattr(args, "usage_parser", parser).error(f"unrecognized arguments: {' '.join(stray)}")
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
