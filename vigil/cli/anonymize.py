"""`vigil anonymize`: a category's transforms and k-anonymity applied to a local file or stream."""
from __future__ import annotations

import argparse
import sys

from vigil.cli import common
from vigil.retention.stream import DEFAULT_BATCH
from vigil.stages.anonymize import STDIO, AnonymizeOptions, AnonymizeOutcome, anonymize


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "anonymize", help="anonymize a local JSONL or CSV file (or stdin) with a category's transforms and k",
        description="Apply the category's anonymize transforms and its verify k-anonymity to local data, exactly "
                    "as retention rewrites an object. IN and OUT are files (.gz read and written transparently) "
                    "or '-' / absent for stdin and stdout. Counts go to stderr, never the data.")
    parser.add_argument("--category", required=True, metavar="NAME", help="the policy category whose transforms apply")
    parser.add_argument("--policy", default="policy.yaml", metavar="FILE", help="the data-handling policy (default ./policy.yaml)")
    parser.add_argument("--format", choices=("jsonl", "csv"), help="record layout (default: csv for a .csv[.gz] input, else jsonl)")
    parser.add_argument("--batch", type=common.positive_int, default=DEFAULT_BATCH, metavar="N",
                        help=f"records judged together for k (default {DEFAULT_BATCH}, or the whole input when smaller)")
    parser.add_argument("input", nargs="?", default=STDIO, metavar="IN", help="input file (default: stdin)")
    parser.add_argument("output", nargs="?", default=STDIO, metavar="OUT", help="output file (default: stdout)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    outcome = anonymize(AnonymizeOptions(category=args.category, policy=args.policy, format=args.format,
                                         batch=args.batch, input=args.input, output=args.output))
    report(outcome)
    return outcome.exit_code


def report(outcome: AnonymizeOutcome) -> None:
    c = outcome.counts
    print(f"vigil anonymize: {c.records_in} in, {c.records_out} out, {c.suppressed} suppressed (k), "
          f"{c.unreadable} unreadable, {c.refused_batches} of {c.batches} batches refused ({c.refused_records} records)",
          file=sys.stderr)
    if c.unnamed:
        fields = ", ".join(f"{name} ({n})" for name, n in sorted(c.unnamed.items()))
        print(f"  fields the category does not name, dropped: {fields}", file=sys.stderr)
    for rung, batches in sorted(c.generalized.items()):
        print(f"  generalized by the ladder: {rung} ({batches} of {c.batches} batches)", file=sys.stderr)
    for problem in c.problems:
        print(f"  {problem}", file=sys.stderr)
    hidden = c.unreadable + c.refused_batches - len(c.problems)
    if hidden > 0:
        print(f"  ... and {hidden} more", file=sys.stderr)
