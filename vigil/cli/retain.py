"""`vigil retain`: plan retention (dry run), or apply it with --apply, then verify."""
from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.table import Table

from vigil.cli import common, console
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
    parser.add_argument("--engine", default=os.environ.get("VIGIL_RETAIN_ENGINE") or "local", metavar="local|spark",
                        help="what applies the plan: local (one process, default) or spark (the same plan and code as "
                             "Spark tasks; needs vigil[spark]) (default $VIGIL_RETAIN_ENGINE or local)")
    parser.add_argument("--spark-master", default="local[*]", metavar="URL",
                        help="with --engine spark: the Spark master (default local[*])")
    console.add_output_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console.configure_logging(args.log_level)
    with console.live_progress(args.quiet):
        outcome = retain(RetainOptions(**common.target(args), apply=args.apply, max_delete=args.max_delete,
                                       stores=tuple(args.store or ()), workers=args.workers, lock_bucket=args.lock_bucket,
                                       engine=args.engine, spark_master=args.spark_master))
    show(outcome, quiet=args.quiet)
    return outcome.exit_code


def show(outcome: RetainOutcome, quiet: bool = False) -> None:
    if not quiet:
        print_outcome(outcome, console.make_console())
    print(f"plan: {outcome.plan}")
    if outcome.ledger is not None:
        print(f"ledger: {outcome.ledger}")


def print_outcome(outcome: RetainOutcome, out: Console) -> None:
    """One account's table; for many accounts, each account's under its status."""
    if outcome.accounts is None:
        assert outcome.run is not None
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
