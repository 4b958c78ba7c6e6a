"""`vigil report DIR`: render the evidence pack for DIR's results, sign it, optionally upload it."""
from __future__ import annotations

import argparse
import os

from vigil.evidence import keys, upload
from vigil.stages.report import ReportOptions, ReportOutcome, report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="render and sign the evidence pack for a results folder",
        description="Render report.html, report.md and summary.json from DIR's findings.json (and retention-plan.json, "
                    "ledger.jsonl), then write manifest.json and its Ed25519 signature manifest.sig.")
    parser.add_argument("directory", metavar="DIR", help="the results folder (holds findings.json)")
    parser.add_argument("--policy", metavar="FILE",
                        help="the policy the run used, for its categories table (default ./policy.yaml, "
                             "else the file findings.json names; shown only when its SHA-256 is the run's)")
    parser.add_argument("--signing-key", metavar="FILE",
                        help=f"Ed25519 private key (vigil keys generate), or kms:<key id> to sign with AWS KMS; "
                             f"default ${keys.ENV_VAR}. Without a key the pack is written unsigned")
    parser.add_argument("--upload", metavar="s3://BUCKET/PREFIX",
                        help="also upload the pack to this Object-Lock bucket, locked in COMPLIANCE mode")
    parser.add_argument("--retain-days", type=int, default=upload.DEFAULT_RETAIN_DAYS, metavar="N",
                        help=f"with --upload: lock the objects for N days (default {upload.DEFAULT_RETAIN_DAYS})")
    parser.add_argument("--endpoint-url", metavar="URL", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="send AWS calls (upload, KMS) here; plain http only for loopback")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile; the standard credential chain otherwise")
    parser.add_argument("--region", metavar="R", help="region of the evidence bucket and the KMS key")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = ReportOptions(args.directory, policy=args.policy, signing_key=args.signing_key, upload=args.upload,
                            retain_days=args.retain_days, endpoint_url=args.endpoint_url, profile=args.profile,
                            region=args.region)
    outcome = report(options)
    show(outcome)
    return outcome.exit_code


def show(outcome: ReportOutcome) -> None:
    for path in outcome.written:
        print(f"wrote {path}")
    if outcome.signer is None:
        print(f"warning: the pack is UNSIGNED (no --signing-key, no ${keys.ENV_VAR}); 'vigil verify' will report it as unsigned")
    else:
        print(f"signed with {outcome.signer}, fingerprint {outcome.fingerprint}")
    options = outcome.options
    if options.upload:
        print(f"uploaded {len(outcome.uploaded)} files to {options.upload} (Object Lock COMPLIANCE, {options.retain_days} days)")
