"""`vigil iam-policy check|retain|subject`: the least-privilege IAM policy a command needs.

The document comes from `vigil.permissions` (actions derived from the code that calls AWS,
resources scoped to the policy's stores); this module reads the flags and, with
--discover-replicas, the stores' replication rules.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

from vigil.aws import Aws
from vigil.cli import common
from vigil.errors import UsageError
from vigil.iam_actions import actions_for
from vigil.permissions import COMMANDS, ENGINES, EXECUTORS, JOB_LOCKS, Part, Targets, build, discover_replicas, sites
from vigil.policy import Policy
from vigil.retention.postgres.grants import sql_grants


def targets(args: argparse.Namespace, policy: Policy) -> Targets:
    copies = discover_replicas(Aws(profile=args.profile, endpoint_url=args.endpoint_url), policy) if args.discover_replicas else {}
    return Targets.of(policy, common.regions(args, policy), args.account, copies, args.bucket or (), lock_bucket=args.lock_bucket,
                      batch_bucket=args.batch_bucket, batch_role=args.batch_role,
                      artifacts_bucket=args.artifacts_bucket, glue_job=args.glue_job,
                      emr_application=args.emr_application, emr_role=args.emr_role)


def parts_for(command: str, lock_bucket: str | None) -> tuple[Part, ...]:
    """The command's parts; with a lock bucket, retain and subject erase also take their S3 lock objects there."""
    parts = COMMANDS[command]
    return (*parts, JOB_LOCKS) if lock_bucket and command != "check" else parts


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("iam-policy", help="print the least-privilege IAM policy a command needs",
                                   description="Print the IAM policy JSON that 'vigil check', 'vigil retain' or "
                                               "'vigil subject' needs, derived from the API calls in their code.")
    parser.add_argument("for_command", choices=["check", "retain", "subject"], metavar="check|retain|subject")
    parser.add_argument("--policy", default="policy.yaml", metavar="FILE", help="the data-handling policy (default ./policy.yaml)")
    parser.add_argument("--region", action="append", metavar="R", help="region in scope (repeatable); default: the policy's regions")
    parser.add_argument("--account", default="*", metavar="ID", help="account id for resource ARNs (default *)")
    parser.add_argument("--bucket", action="append", metavar="NAME", help="another bucket the command may touch, e.g. a replica (repeatable)")
    parser.add_argument("--discover-replicas", action="store_true", help="read the stores' replication rules to add their replicas")
    parser.add_argument("--lock-bucket", metavar="BUCKET", default=os.environ.get("VIGIL_LOCK_BUCKET") or None,
                        help="retain and subject: the bucket of their S3 lock objects (--lock-bucket of those commands; "
                             "default $VIGIL_LOCK_BUCKET)")
    parser.add_argument("--endpoint-url", metavar="URL", default=os.environ.get("AWS_ENDPOINT_URL") or None,
                        help="for --discover-replicas: send the calls here (a local emulator; default $AWS_ENDPOINT_URL)")
    parser.add_argument("--profile", metavar="NAME", help="for --discover-replicas: AWS profile")
    parser.add_argument("--executor", choices=sorted(EXECUTORS), default="local", metavar="|".join(EXECUTORS),
                        help="retain only: with batch-operations, also S3 Batch Operations (s3:CreateJob, iam:PassRole, the batch bucket)")
    parser.add_argument("--batch-bucket", metavar="BUCKET", help="with --executor batch-operations: its bucket ({region}: one per region)")
    parser.add_argument("--batch-role", metavar="ARN", help="with --executor batch-operations: the role its jobs run as")
    parser.add_argument("--engine", choices=list(ENGINES), default="local", metavar="|".join(ENGINES),
                        help="retain: with glue or emr-serverless, also the driver's calls (start and poll the job run, "
                             "the slice and results under vigil/runs/ in --artifacts-bucket)")
    parser.add_argument("--glue-job", metavar="NAME", help="--engine glue: the Glue job")
    parser.add_argument("--emr-application", metavar="ID", help="--engine emr-serverless: the application")
    parser.add_argument("--emr-role", metavar="ARN", help="--engine emr-serverless: the execution role it passes")
    parser.add_argument("--artifacts-bucket", metavar="BUCKET", help="--engine glue|emr-serverless: the artifacts bucket")
    parser.add_argument("--sources", action="store_true", help="also list, on stderr, the call sites each action comes from")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    policy = common.load(args)
    if args.account != "*" and not re.fullmatch(r"\d{12}", args.account):
        raise UsageError(f"--account {args.account!r} is not a 12-digit account id")
    if not args.discover_replicas and not args.bucket:
        print("vigil: the stores' replica buckets are not included; add --discover-replicas or --bucket NAME", file=sys.stderr)
    parts = parts_for(args.for_command, args.lock_bucket) + EXECUTORS[args.executor] + ENGINES[args.engine]
    if args.executor != "local" and (args.for_command != "retain" or not args.batch_bucket or not args.batch_role):
        raise UsageError(f"--executor {args.executor} is for 'retain', with --batch-bucket and --batch-role")
    if ENGINES[args.engine]:
        if args.for_command != "retain":
            raise UsageError(f"--engine {args.engine} is a flag of 'vigil iam-policy retain'")
        named = {"glue": (args.glue_job, "--glue-job"), "emr-serverless": (args.emr_application, "--emr-application")}[args.engine]
        missing = [flag for value, flag in (named, (args.artifacts_bucket, "--artifacts-bucket")) if not value]
        missing += ["--emr-role"] if args.engine == "emr-serverless" and not args.emr_role else []
        if missing:
            raise UsageError(f"--engine {args.engine} needs {' and '.join(missing)}")
    print(json.dumps(build(parts, targets(args, policy)), indent=2))
    if args.for_command != "check":
        for line in sql_grants(policy):  # the database user's side of least privilege
            print(line, file=sys.stderr)
    if args.sources:
        for site, scope in sorted(sites(parts)):
            needs = ", ".join(actions_for(site.operation)) or "no permission"
            print(f"{site.operation:45} -> {needs:60} {site.module}:{site.line} ({scope})", file=sys.stderr)
    return 0
