"""`vigil check`: read live state, evaluate the catalogue, write findings.json."""
from __future__ import annotations

import argparse
from collections import Counter

from rich.console import Console
from rich.table import Table

from vigil.checks.formats import FORMATS
from vigil.checks.model import Status
from vigil.checks.remediation import for_finding
from vigil.checks.runner import CheckRun
from vigil.checks.selection import SEVERITIES, split
from vigil.cli import common, console
from vigil.cli.findings_view import SHOWN, print_summary, shown_status
from vigil.errors import UsageError
from vigil.stages.check import CheckOptions, CheckOutcome, check

STYLE = {Status.FAIL: "bold red", Status.ERROR: "yellow", Status.PASS: "green", Status.NOT_APPLICABLE: "dim"}


def add_filter_flags(parser: argparse.ArgumentParser, default: object = None) -> None:
    """The control filters `vigil check` and `vigil controls` share (comma-separated or repeated)."""
    parser.add_argument("--severity", action="append", metavar="LIST", default=default,
                        help="only controls of these severities: critical,high,medium,low")
    parser.add_argument("--service", action="append", metavar="LIST", default=default, help="only controls reading these services: s3,iam,...")
    parser.add_argument("--framework", action="append", metavar="LIST", default=default,
                        help="only controls mapped to these frameworks: pci_dss_4,soc2,iso27001_2022,gdpr,aws_config")
    parser.add_argument("--skip-control", action="append", metavar="ID", default=default, help="leave this control out (repeatable)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="read live state and evaluate the control catalogue",
                                   description="Read live AWS state, evaluate every control, write findings.json.")
    common.add_common(parser)
    common.add_accounts_flags(parser)
    parser.add_argument("--control", action="append", metavar="ID", help="evaluate only this control (repeatable)")
    add_filter_flags(parser)
    parser.add_argument("--status", action="append", metavar="LIST",
                        help="show only findings with these statuses: fail,error,waived,pass,not_applicable (what is printed, not what is judged)")
    parser.add_argument("--fail-on", choices=SEVERITIES[:4], metavar="SEVERITY",
                        help="exit 1 only for unwaived fail/error findings of this severity or worse (critical|high|medium|low); default: any")
    parser.add_argument("--baseline", metavar="FINDINGS_JSON", help="exit 1 only for findings that are new since this earlier findings.json")
    parser.add_argument("--validate-only", action="store_true", help="only validate the policy file")
    parser.add_argument("--format", action="append", choices=sorted([*FORMATS, "html"]), default=[], dest="formats",
                        help="also write findings.sarif, .junit.xml, .oscal.json, .csv, .ocsf.json (OCSF Detection Finding), "
                             ".asff.json (AWS Security Hub) or report.html beside findings.json (repeatable)")
    parser.add_argument("--explain", action="store_true",
                        help="print how to fix each failing finding (explanation, AWS CLI commands, Pulumi snippet)")
    console.add_output_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console.configure_logging(args.log_level)
    if args.validate_only:
        policy = common.load(args)
        print(f"{args.policy}: valid ({len(policy.stores)} stores, {len(policy.categories)} categories)")
        return 0
    statuses = split(args.status)
    unknown = sorted(set(statuses) - set(SHOWN))
    if unknown:
        raise UsageError(f"--status {','.join(unknown)}: unknown (known: {', '.join(SHOWN)})")
    options = CheckOptions(**common.target(args), controls=tuple(args.control or ()), formats=tuple(args.formats),
                           severities=split(args.severity), services=split(args.service), frameworks=split(args.framework),
                           skip=tuple(args.skip_control or ()), fail_on=args.fail_on, baseline=args.baseline)
    with console.live_progress(args.quiet):
        outcome = check(options)
    show(outcome, explain=args.explain, quiet=args.quiet, verbose=args.verbose, statuses=statuses, fail_on=args.fail_on)
    return outcome.exit_code


def show(outcome: CheckOutcome, explain: bool = False, quiet: bool = False, verbose: bool = False,
         statuses: tuple[str, ...] = (), fail_on: str | None = None) -> None:
    out = console.make_console()
    document = outcome.document or outcome.run.to_json()
    if not quiet:
        print_summary(out, document, statuses, verbose, outcome.baseline)
        print_waivers(outcome.run, out)
        if explain:
            print_explanations(outcome.run, out)
    print_totals(outcome, out, fail_on)
    out.print(f"findings: {outcome.findings}", markup=False, soft_wrap=True)
    for name, written in outcome.extra.items():
        out.print(f"{name}: {written}", markup=False, soft_wrap=True)


def print_totals(outcome: CheckOutcome, out: Console, fail_on: str | None) -> None:
    result = outcome.run
    counts = Counter(shown_status(f) for f in (outcome.document or result.to_json())["findings"])
    skipped = f", {len(result.not_evaluated)} control(s) not evaluated" if result.not_evaluated else ""
    out.print(
        f"[bold]account {', '.join(a['id'] for a in result.accounts) if result.accounts else result.inventory.account_id}[/], "
        f"regions {', '.join(result.regions)}: "
        f"[green]{counts['pass']} pass[/], [bold red]{counts['fail']} fail[/], [yellow]{counts['error']} error[/], "
        f"[cyan]{counts['waived']} waived[/], [dim]{counts['not_applicable']} not applicable[/]{skipped}")
    if outcome.baseline is not None or fail_on:
        why = " and ".join(filter(None, [f"severity {fail_on} or worse" if fail_on else "",
                                         "new since the baseline" if outcome.baseline is not None else ""]))
        out.print(f"exit {outcome.exit_code}: {len(outcome.counted)} unwaived fail/error finding(s) {why}")


def print_waivers(result: CheckRun, out: Console) -> None:
    """Every waiver with its state, so expired and stale ones get noticed and cleaned up."""
    if not result.waiver_states:
        return
    table = Table(title=f"Waivers ({len(result.waiver_states)})", title_justify="left")
    for column in ("state", "control", "resource", "owner", "expires", "approval", "waives"):
        console.id_column(table, column)
    style = {"active": "cyan", "expired": "bold red", "stale": "yellow"}
    for state in result.waiver_states:
        waiver = state.waiver
        table.add_row(f"[{style[state.state]}]{state.state}[/]", waiver.control, waiver.resource, waiver.owner,
                      waiver.expires.isoformat(), waiver.approval, str(len(state.matches)))
    console.print_table(out, table)


def print_explanations(result: CheckRun, out: Console) -> None:
    """For each fail/error finding not waived: why it matters and how to fix it, resource filled in."""
    from vigil.cli.controls import print_fix

    problems = [f for f in result.findings if f.status in (Status.FAIL, Status.ERROR) and not result.is_waived(f)]
    for finding in sorted(problems, key=lambda f: (f.control, f.resource)):
        fix = for_finding(finding, result.policy, result.inventory.account_id)
        if fix is None:
            continue
        out.rule(f"{finding.control} {finding.status.value}: {finding.resource}", style=STYLE[finding.status])
        out.print(finding.reason, markup=False)
        print_fix(out, fix)
