"""`vigil check`: read live state, evaluate the catalogue, write findings.json."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from vigil.checks.formats import FORMATS
from vigil.checks.model import Status
from vigil.checks.remediation import for_finding
from vigil.checks.runner import CheckRun
from vigil.cli import common
from vigil.stages.check import CheckOptions, CheckOutcome, check

STYLE = {Status.FAIL: "bold red", Status.ERROR: "yellow", Status.PASS: "green", Status.NOT_APPLICABLE: "dim"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="read live state and evaluate the control catalogue",
                                   description="Read live AWS state, evaluate every control, write findings.json.")
    common.add_common(parser)
    common.add_accounts_flags(parser)
    parser.add_argument("--control", action="append", metavar="ID", help="evaluate only this control (repeatable)")
    parser.add_argument("--validate-only", action="store_true", help="only validate the policy file")
    parser.add_argument("--format", action="append", choices=sorted([*FORMATS, "html"]), default=[], dest="formats",
                        help="also write findings.sarif, .junit.xml, .oscal.json, .csv, .ocsf.json (OCSF Detection Finding), "
                             ".asff.json (AWS Security Hub) or report.html beside findings.json (repeatable)")
    parser.add_argument("--explain", action="store_true",
                        help="print how to fix each failing finding (explanation, AWS CLI commands, Pulumi snippet)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.validate_only:
        policy = common.load(args)
        print(f"{args.policy}: valid ({len(policy.stores)} stores, {len(policy.categories)} categories)")
        return 0
    outcome = check(CheckOptions(**common.target(args), controls=tuple(args.control or ()), formats=tuple(args.formats)))
    show(outcome, explain=args.explain)
    return outcome.exit_code


def show(outcome: CheckOutcome, explain: bool = False) -> None:
    console = Console()
    print_result(outcome.run, console)
    if explain:
        print_explanations(outcome.run, console)
    print(f"findings: {outcome.findings}")
    for name, written in outcome.extra.items():
        print(f"{name}: {written}")


def print_result(result: CheckRun, console: Console) -> None:
    problems = [f for f in result.findings if f.status in (Status.FAIL, Status.ERROR)]
    if problems:
        table = Table(title=f"Findings that need action ({len(problems)})", show_lines=False, expand=False)
        for column in ("control", "status", "resource", "reason"):
            table.add_column(column, overflow="fold")
        for finding in sorted(problems, key=lambda f: (result.is_waived(f), f.status != Status.FAIL, f.control, f.resource)):
            waiver = result.waiver_for(finding)
            if waiver is None:
                table.add_row(finding.control, f"[{STYLE[finding.status]}]{finding.status.value}[/]", finding.resource, finding.reason)
            else:
                table.add_row(finding.control, f"[cyan]waived[/] [dim]({finding.status.value})[/]", finding.resource,
                              f"{finding.reason} [cyan]Waived until {waiver.expires.isoformat()} ({waiver.owner}, "
                              f"{waiver.approval}): {waiver.reason}[/]")
        console.print(table)
    print_waivers(result, console)
    summary = result.summary
    console.print(
        f"[bold]account {result.inventory.account_id}[/], regions {', '.join(result.regions)}: "
        f"[green]{summary['pass']} pass[/], [bold red]{summary['fail']} fail[/], "
        f"[yellow]{summary['error']} error[/], [dim]{summary['not_applicable']} not applicable[/]"
    )


def print_waivers(result: CheckRun, console: Console) -> None:
    """Every waiver with its state, so expired and stale ones get noticed and cleaned up."""
    if not result.waiver_states:
        return
    table = Table(title=f"Waivers ({len(result.waiver_states)})")
    for column in ("state", "control", "resource", "owner", "expires", "approval", "waives"):
        table.add_column(column, overflow="fold")
    style = {"active": "cyan", "expired": "bold red", "stale": "yellow"}
    for state in result.waiver_states:
        waiver = state.waiver
        table.add_row(f"[{style[state.state]}]{state.state}[/]", waiver.control, waiver.resource, waiver.owner,
                      waiver.expires.isoformat(), waiver.approval, str(len(state.matches)))
    console.print(table)


def print_explanations(result: CheckRun, console: Console) -> None:
    """For each fail/error finding not waived: why it matters and how to fix it, resource filled in."""
    from vigil.cli.controls import print_fix

    problems = [f for f in result.findings if f.status in (Status.FAIL, Status.ERROR) and not result.is_waived(f)]
    for finding in sorted(problems, key=lambda f: (f.control, f.resource)):
        fix = for_finding(finding, result.policy, result.inventory.account_id)
        if fix is None:
            continue
        console.rule(f"{finding.control} {finding.status.value}: {finding.resource}", style=STYLE[finding.status])
        console.print(finding.reason, markup=False)
        print_fix(console, fix)
