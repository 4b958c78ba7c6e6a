"""`vigil retain`: plan retention (dry run), or apply it with --apply, then verify."""
from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.table import Table

from vigil.cli import common, console
from vigil.engines import ENGINES, EXECUTORS
from vigil.retention.batch_jobs import Job
from vigil.retention.cluster_engine import settings_for
from vigil.retention.engine import RDS_REASON, RetentionRun
from vigil.retention.guard import JUDGED_AT, is_future
from vigil.stages.retain import RetainOptions, RetainOutcome, retain
from vigil.subjects.show import size


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "retain", help="plan retention (dry run); --apply deletes and anonymizes what is past its time",
        description="Plan what is past retention in every store, replica and backup; with --apply, do exactly "
                    "that, write ledger.jsonl, then verify. Changes nothing without --apply.")
    common.add_common(parser)
    common.add_accounts_flags(parser, retention=True)
    parser.add_argument("--apply", action="store_true", help="carry out the plan (default: dry run, nothing changes)")
    parser.add_argument("--max-delete", type=int, metavar="N", help="stop (exit 1, nothing deleted) if the plan deletes more than N")
    parser.add_argument("--store", action="append", metavar="NAME", help="only this store (repeatable)")
    parser.add_argument("--workers", type=common.positive_int, default=16, help=argparse.SUPPRESS)
    common.add_lock_bucket(parser)
    parser.add_argument("--engine", default=os.environ.get("VIGIL_RETAIN_ENGINE") or "local", metavar="|".join(ENGINES),
                        help="what applies the plan: local (one process, default), spark (the same plan and code as "
                             "Spark tasks; needs vigil[spark]), or glue / emr-serverless (the plan's S3 actions as one job "
                             "run on AWS) (default $VIGIL_RETAIN_ENGINE or local)")
    parser.add_argument("--spark-master", default="local[*]", metavar="URL",
                        help="with --engine spark: the Spark master (default local[*])")
    add_executor_flags(parser)
    add_cluster_flags(parser)
    console.add_output_flags(parser)
    parser.set_defaults(handler=run)


def add_executor_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("S3 Batch Operations (buckets too large to delete from one machine)")
    group.add_argument("--executor", metavar="|".join(EXECUTORS),
                       help="what deletes and rewrites planned S3 versions: local or batch-operations (one S3 Batch "
                            "Operations job per bucket and region, invoking vigil's Lambda; without --apply each job "
                            "waits for a person to confirm it) (default: each store's executor: in the policy, else local)")
    group.add_argument("--batch-bucket", metavar="BUCKET",
                       help="where job manifests and completion reports go, under vigil/batch/ ({region} in the name: "
                            "one bucket per region) (default $VIGIL_BATCH_BUCKET)")
    group.add_argument("--batch-function", metavar="NAME|ARN",
                       help="the Lambda the jobs invoke (deploy/batch_handler.py); a name is looked up in each job's "
                            "region (default $VIGIL_BATCH_FUNCTION)")
    group.add_argument("--batch-role", metavar="ARN",
                       help="the IAM role S3 Batch Operations runs the jobs as (default $VIGIL_BATCH_ROLE)")
    group.add_argument("--batch-priority", type=int, default=10, metavar="N", help="the jobs' priority (default 10)")
    group.add_argument("--collect", metavar="JOB_ID",
                       help="read this job's completion report into the ledger of --output, then verify its versions "
                            "(exit 1 while it is not complete)")


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    group = parser.add_argument_group("--engine glue | emr-serverless (a job run on AWS; README: 'Retention on Spark')")
    group.add_argument("--glue-job", metavar="NAME", default=env("VIGIL_GLUE_JOB"), help="the Glue job (default $VIGIL_GLUE_JOB)")
    group.add_argument("--emr-application", metavar="ID", default=env("VIGIL_EMR_APPLICATION"),
                       help="the EMR Serverless application (default $VIGIL_EMR_APPLICATION)")
    group.add_argument("--emr-role", metavar="ARN", default=env("VIGIL_EMR_ROLE"),
                       help="the EMR Serverless job run's execution role (default $VIGIL_EMR_ROLE)")
    group.add_argument("--artifacts-bucket", metavar="BUCKET", default=env("VIGIL_ARTIFACTS_BUCKET"),
                       help="where the plan slice and the job's results go, SSE-KMS, under vigil/runs/ "
                            "(default $VIGIL_ARTIFACTS_BUCKET)")
    group.add_argument("--artifacts-kms-key", metavar="KEY", default=env("VIGIL_ARTIFACTS_KMS_KEY"),
                       help="the KMS key for them (default $VIGIL_ARTIFACTS_KMS_KEY, else the bucket's default KMS key)")
    group.add_argument("--job-timeout", metavar="MINUTES", type=float, default=24 * 60,
                       help="stop polling after this long (exit 3; the next run resumes polling) (default 1440)")
    group.add_argument("--job-poll-seconds", type=float, default=30.0, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    console.configure_logging(args.log_level)
    cluster = settings_for(args.engine, args.glue_job, args.emr_application, args.emr_role, args.artifacts_bucket,
                           args.artifacts_kms_key, args.job_timeout, args.job_poll_seconds)
    with console.live_progress(args.quiet):
        outcome = retain(RetainOptions(**common.target(args), apply=args.apply, max_delete=args.max_delete,
                                       stores=tuple(args.store or ()), workers=args.workers, lock_bucket=args.lock_bucket,
                                       engine=args.engine, spark_master=args.spark_master, executor=args.executor,
                                       batch_bucket=args.batch_bucket, batch_function=args.batch_function,
                                       batch_role=args.batch_role, batch_priority=args.batch_priority, collect=args.collect,
                                       cluster=cluster))
    show(outcome, quiet=args.quiet)
    return outcome.exit_code


def show(outcome: RetainOutcome, quiet: bool = False) -> None:
    if not quiet:
        print_outcome(outcome, console.make_console())
    if outcome.collected:
        print_jobs(outcome.collected, console.make_console())
    else:
        print(f"plan: {outcome.plan}")
    if outcome.ledger is not None:
        print(f"ledger: {outcome.ledger}")


def print_outcome(outcome: RetainOutcome, out: Console) -> None:
    """One account's table; for many accounts, each account's under its status."""
    if outcome.accounts is None:
        if outcome.run is not None:
            print_result(outcome.run, out)
        return
    for status in outcome.accounts.accounts:
        part = outcome.accounts.parts.get(status["id"])
        out.rule(f"account {status['id']} {status['name']}: {status['status']}")
        if status["reason"]:
            out.print(status["reason"], markup=False)
        if part is not None:
            print_result(part, out)


def print_result(result: RetentionRun, out: Console) -> None:
    mode = "apply" if result.apply else "dry run (nothing changed)"
    table = Table(title=f"Retention as of {result.as_of:%Y-%m-%d %H:%M}Z: {mode}")
    console.id_column(table, "store")
    console.id_column(table, "category")
    for column in ("rule", "oldest due", "delete", "anonymize", "suppress", "keep", "held", "error", "verify"):
        table.add_column(column, justify="right" if column in ("delete", "anonymize", "suppress", "keep", "held", "error") else "left")
    for s in result.summaries:
        category = result.policy.categories[s.category]
        rule = "kept forever" if category.retain.forever else (
            f"{s.action} after {category.retain}" + (" from account closed" if category.after else ""))
        oldest = f"{(result.as_of - s.oldest_expired).days} days old" if s.oldest_expired else "-"
        cells = [f"{s.counts[k]} ({size(s.bytes[k])})" if s.counts[k] else "0" for k in ("delete", "anonymize", "suppress", "keep", "held", "error")]
        verify = s.verify["status"] + (f" ({s.verify['remaining']} left)" if s.verify["remaining"] else "")
        table.add_row(s.store, s.category, rule, oldest, *cells, verify)
    console.print_table(out, table)
    if is_future(result.as_of):
        out.print(f"[cyan]preview of a future instant: {JUDGED_AT}[/]")
    for s in result.summaries:
        for hold in s.to_json()["holds"]:
            until = f"until {hold['until']}" if hold["until"] else "until released"
            out.print(f"  [cyan]{s.store}[/]: {hold['count']} held, {hold['reason']} ({until})")
        if s.unnamed:
            fields = ", ".join(f"{name} ({n})" for name, n in sorted(s.unnamed.items()))
            out.print(f"  [cyan]{s.store}[/]: fields the category does not name, dropped from anonymized records: {fields}")
        for error in s.errors[:5]:
            out.print(f"  [yellow]{s.store}[/]: {error['object'][:16]}… {error['reason']}")
    for name in result.not_covered:
        out.print(f"  [yellow]{name}[/]: not covered by retention (RDS): {RDS_REASON}")
    if result.max_delete_exceeded:
        out.print(f"[bold red]the plan deletes {result.deletes}, more than --max-delete; nothing was deleted[/]")
    if result.stats is not None:
        st = result.stats
        out.print(f"actions: {st.ok} ok, {st.failed} failed, {st.skipped} skipped" + (f"; {result.resumed} resumed from the ledger" if result.resumed else ""))
    print_jobs(result.batch_jobs, out)


def print_jobs(jobs: list[Job], out: Console) -> None:
    """Each S3 Batch Operations job this run created or collected."""
    for job in jobs:
        where = job.location.removeprefix("arn:aws:s3:::")
        results = ", ".join(f"{n} {what}" for what, n in job.results.items() if n)
        verify = "" if job.remaining is None else f"; verify {'fail' if job.remaining else 'pass'} ({job.remaining} left)"
        out.print(f"  batch job [cyan]{job.job_id or '-'}[/] {where} ({job.region}): {job.count} versions, {job.status}"
                  + (f"; {results}" if results else "") + verify + (f"; {job.note}" if job.note else ""), markup=True)
