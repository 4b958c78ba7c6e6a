"""`vigil subject`: find, export and erase one person's data; track their requests.

    vigil subject find ID              every copy: stores, replicas, backups; what erase would do
    vigil subject export ID --output D a package for the person (JSON per store + README.md)
    vigil subject erase ID [--apply]   dry run by default; --apply erases and writes the ledger
    vigil subject request add ID --kind access|erase
    vigil subject request done REQUEST_ID
    vigil subject requests [--all]     open requests with the days left
    vigil subject process [--apply]    (vigil run) erase due requests; write the request counts
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from vigil import safe_write
from vigil.aws import Aws
from vigil.cli import common, console
from vigil.errors import UsageError
from vigil.policy import Policy
from vigil.retention.guard import refuse_future_as_of
from vigil.retention.keys import RetentionKeys, load_keys
from vigil.stages.requests import ProcessOptions, ProcessOutcome, process
from vigil.subjects import erase as erasing
from vigil.subjects.export import export_subject
from vigil.subjects.locate import find_subject
from vigil.subjects.model import Found
from vigil.subjects.requests import KINDS, RequestLog
from vigil.subjects.show import print_found, requests_table
from vigil.timestamps import iso_z

NOT_FOUND = "no data found for subject"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("subject", help="find, export or erase one person's data; track their requests",
                                   description="Subject rights: access and erasure requests, answered within the policy's deadline.")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    sub = parser.add_subparsers(dest="subject_command", metavar="ACTION")

    def command(name: str, help_text: str, handler, subject: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if subject:
            p.add_argument("subject", metavar="ID", help="the subject's id (as stores hold it, e.g. an account id)")
        common.add_common(p)
        p.add_argument("--workers", type=common.positive_int, default=16, help=argparse.SUPPRESS)
        p.set_defaults(handler=handler)
        return p

    find = command("find", "every place the subject's data lives, with counts, bytes, holds and backups", run_find)
    console.add_output_flags(find)
    find.add_argument("--json", action="store_true", help="print JSON (counts and reasons, no keys) instead of a table")
    command("export", "write a package of the subject's data (JSON per store, README.md) into --output DIR", run_export)
    erase = command("erase", "plan erasing the subject's data (dry run); --apply erases every copy and writes the ledger", run_erase)
    erase.add_argument("--apply", action="store_true", help="carry out the erasure (default: dry run, nothing changes)")
    common.add_lock_bucket(erase)
    request = sub.add_parser("request", help="record a request", description="Record a subject-rights request.")
    request_sub = request.add_subparsers(dest="request_command", metavar="ACTION")
    request.set_defaults(handler=lambda args: request.print_help() or 2)
    add = request_sub.add_parser("add", help="record a request received (access or erase) and its deadline")
    add.add_argument("subject", metavar="ID")
    add.add_argument("--kind", required=True, choices=KINDS)
    add.add_argument("--received", metavar="TIMESTAMP", help="when it was received (ISO 8601); default now")
    common.add_common(add)
    add.set_defaults(handler=run_request_add)
    done = request_sub.add_parser("done", help="mark a request answered (e.g. when it was answered outside vigil)")
    done.add_argument("request_id", metavar="REQUEST_ID")
    common.add_common(done)
    done.set_defaults(handler=run_request_done)
    listing = command("requests", "list open requests with the days left before their deadline", run_requests, subject=False)
    listing.add_argument("--all", action="store_true", help="completed requests too")
    process = command("process", "erase every open erase request received by --as-of (with --apply); write the request counts",
                      run_process, subject=False)
    process.add_argument("--apply", action="store_true", help="carry out the erasures (default: count only)")
    common.add_lock_bucket(process)


def _subject(args: argparse.Namespace) -> str:
    subject = (args.subject or "").strip()
    if not subject:
        raise UsageError("the subject id is empty")
    return subject


def _setup(args: argparse.Namespace) -> tuple[Policy, Aws, RetentionKeys]:
    policy = common.load(args)
    aws = Aws(profile=args.profile, endpoint_url=args.endpoint_url)
    keys = load_keys(policy, aws)  # exit 2 before anything is read or changed
    aws.account_id(policy.regions.primary)  # exit 3 when the environment is broken
    return policy, aws, keys


def _request_log(aws: Aws, policy: Policy) -> RequestLog | None:
    """The policy's request log, read once so a missing table is exit 3 before anything changes."""
    if policy.requests is None:
        return None
    log = RequestLog(aws, policy)
    log.all()
    return log


def _not_found(subject: str) -> int:
    print(f"vigil: {NOT_FOUND} {subject!r} in any store, replica or table the policy names")
    return 1


def _say_incomplete(found: Found) -> None:
    """To the operator: each reason the answer may leave some of the person's data out."""
    for reason in found.incomplete:
        print(f"vigil: incomplete: {reason}", file=sys.stderr)


def run_find(args: argparse.Namespace) -> int:
    subject, as_of = _subject(args), common.parse_as_of(args.as_of)
    console.configure_logging(args.log_level)
    policy, aws, keys = _setup(args)
    with console.live_progress(args.quiet or args.json):
        found = find_subject(aws, policy, keys, subject, as_of, args.workers)
    if args.json:
        print(json.dumps({"subject": keys.hash(subject), "complete": not found.incomplete, "incomplete": found.incomplete,
                          "erase": found.erasable, "held": found.held, "copies": found.copies,
                          "stores": [s.to_json() for s in found.stores], "backups": [b.to_json() for b in found.backups]}, indent=2))
    if found.copies == 0 and not found.incomplete:
        return _not_found(subject)
    if not args.json:
        print_found(found, console.make_console(), f"Subject {keys.hash(subject)[:16]}… as of {as_of:%Y-%m-%d %H:%M}Z")
    _say_incomplete(found)
    return 1 if found.incomplete else 0


def run_export(args: argparse.Namespace) -> int:
    subject, as_of = _subject(args), common.parse_as_of(args.as_of)
    if not args.output:
        raise UsageError("export needs --output DIR (where the package is written)")
    policy, aws, keys = _setup(args)
    requests = _request_log(aws, policy)
    found = find_subject(aws, policy, keys, subject, as_of, args.workers, export=True)
    if found.copies == 0 and not found.incomplete:
        return _not_found(subject)
    written = export_subject(policy, found, Path(args.output), datetime.now(UTC))
    for path in written:
        print(f"wrote {path}")
    _say_incomplete(found)  # the package's README says the same to the person
    if requests is not None and not found.incomplete:
        requests.complete_open(subject, "access", datetime.now(UTC))
    return 1 if found.incomplete else 0


def run_erase(args: argparse.Namespace) -> int:
    subject, as_of = _subject(args), common.parse_as_of(args.as_of)
    refuse_future_as_of(as_of, args.apply)
    policy, aws, keys = _setup(args)
    requests = _request_log(aws, policy)  # an unreachable request log fails here, before anything changes
    out_dir = Path(args.output) if args.output else erasing.default_output(keys.hash(subject))
    safe_write.ensure_dir(out_dir, "--output")
    run = erasing.erase_subject(aws, policy, keys, subject, as_of, out_dir, common.new_run_id(), args.apply, args.workers,
                                 lock_bucket=args.lock_bucket)
    if run.nothing_found and not run.resumed:
        return _not_found(subject)
    out = console.make_console()
    mode = "apply" if args.apply else "dry run (nothing changed)"
    print_found(run.found, out, f"Erase subject {run.subject_hash[:16]}…: {mode}")
    if run.stats is not None:
        out.print(f"actions: {run.stats.ok} ok, {run.stats.failed} failed, {run.stats.skipped} skipped"
                      + (f"; {run.resumed} resumed from the ledger" if run.resumed else ""))
    if args.apply:
        out.print(f"verify: {run.verify['status']}" + (f" ({run.verify['remaining']} left)" if run.verify["remaining"] else ""))
        if run.exit_code == 0 and requests is not None:
            requests.complete_open(subject, "erase", datetime.now(UTC))
    _say_incomplete(run.after or run.found)
    print(f"plan: {out_dir / erasing.PLAN_FILE}")
    if args.apply and run.stats is not None:
        print(f"ledger: {out_dir / erasing.LEDGER_FILE}")
    return 0 if run.nothing_found else run.exit_code


def run_request_add(args: argparse.Namespace) -> int:
    subject = _subject(args)
    received = common.parse_as_of(args.received)
    policy = common.load(args)
    aws = Aws(profile=args.profile, endpoint_url=args.endpoint_url)
    request = RequestLog(aws, policy).add(subject, args.kind, received)
    print(f"{request.id}: {request.kind} request received {iso_z(request.received_at)}, due by {iso_z(request.deadline)}")
    return 0


def run_request_done(args: argparse.Namespace) -> int:
    policy = common.load(args)
    log = RequestLog(Aws(profile=args.profile, endpoint_url=args.endpoint_url), policy)
    request = next((r for r in log.all() if r.id == args.request_id), None)
    if request is None:
        raise UsageError(f"no request {args.request_id!r} in the request log (see 'vigil subject requests --all')")
    done_at = request.completed_at
    if done_at is None:
        done_at = common.parse_as_of(args.as_of)
        log.complete(request, done_at)
    print(f"{request.id}: done {iso_z(done_at)}" + (" (on time)" if done_at <= request.deadline else " (late)"))
    return 0


def run_requests(args: argparse.Namespace) -> int:
    now = common.parse_as_of(args.as_of)
    policy = common.load(args)
    requests = RequestLog(Aws(profile=args.profile, endpoint_url=args.endpoint_url), policy).all()
    shown = requests if args.all else [r for r in requests if r.open]
    console.print_table(console.make_console(), requests_table(shown, now))
    return 0


def run_process(args: argparse.Namespace) -> int:
    """The `vigil run` hook: due erase requests erased (--apply), counts for the report."""
    outcome = process(ProcessOptions(**common.target(args), apply=args.apply, workers=args.workers,
                                           lock_bucket=args.lock_bucket))
    show_process(outcome)
    return outcome.exit_code


def show_process(outcome: ProcessOutcome) -> None:
    if outcome.directory is None:
        print("no 'requests:' section in the policy: no subject requests to process")
        return
    for request_id, done in outcome.erased.items():
        why = "; ".join(outcome.incomplete.get(request_id, []))
        print(f"{request_id}: erase {'done' if done else 'not complete'}" + (f" (incomplete: {why})" if why else ""))
    counts = outcome.counts
    print(f"requests: {counts['received']} received, {counts['completed']} completed ({counts['on_time']} on time), "
          f"{counts['open']} open, {counts['overdue']} overdue; {outcome.due} erase request(s) due"
          + ("" if outcome.apply else " (dry run)"))
