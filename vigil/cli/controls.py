"""`vigil controls [list]`: the control catalogue (filtered, as a table or JSON); `vigil controls show ID`: one control's card."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vigil.checks.catalogue import catalogue
from vigil.checks.remediation import for_control, remediations
from vigil.checks.selection import Filters, select, split
from vigil.cli.console import id_column, make_console, print_table
from vigil.errors import UsageError


def _list_flags(parser: argparse.ArgumentParser, default: object = None) -> None:
    from vigil.cli.check import add_filter_flags

    add_filter_flags(parser, default)
    parser.add_argument("--format", choices=["table", "json"], default=default if default is not None else "table",
                        help="table (default) or json (the controls as findings.json lists them)")
    parser.add_argument("--findings", metavar="FINDINGS_JSON", default=default,
                        help="a run's findings.json: each control gets its status there (worst finding first)")
    parser.add_argument("--status", action="append", metavar="LIST", default=default,
                        help="with --findings: only controls with these statuses (fail,error,waived,pass,not_applicable,not_evaluated)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("controls", help="list the control catalogue (filters as in 'vigil check'); 'show ID' for one card",
                                   description="List the control catalogue, or show one control's card.")
    _list_flags(parser)
    parser.set_defaults(handler=run_list)
    actions = parser.add_subparsers(dest="controls_action", metavar="ACTION")
    listing = actions.add_parser("list", help="list the controls (the default)", description="List the controls, filtered.")
    _list_flags(listing, default=argparse.SUPPRESS)  # the parent's values stand unless given again here
    listing.set_defaults(handler=run_list)
    show = actions.add_parser("show", help="one control's card: clause, frameworks, what passes, how to fix",
                              description="Show one control's card: the promise it keeps, its frameworks, what passes and how to fix it.")
    show.add_argument("id", metavar="ID", help="the control id, e.g. TLS-01")
    show.set_defaults(handler=run_show)


def run_list(args: argparse.Namespace) -> int:
    controls = catalogue()
    selection = select(controls, Filters((), split(args.severity), split(args.service), split(args.framework), tuple(args.skip_control or ())))
    chosen = [controls[cid] for cid in selection.chosen]
    statuses = control_statuses(args.findings) if args.findings else None
    wanted = split(args.status)
    if wanted and statuses is None:
        raise UsageError("--status needs --findings FINDINGS_JSON: a control's status comes from a run")
    unknown = sorted(set(wanted) - set(ROLLUP))
    if unknown:
        raise UsageError(f"--status {','.join(unknown)}: unknown (known: {', '.join(ROLLUP)})")
    if statuses is not None:
        chosen = [c for c in chosen if not wanted or statuses.get(c.id, "not_evaluated") in wanted]
    if args.format == "json":
        rows = [{**control.to_json(), **({"status": statuses.get(control.id, "not_evaluated")} if statuses is not None else {})}
                for control in chosen]
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"Vigil control catalogue ({len(chosen)} of {len(controls)} controls)", title_justify="left")
    for column in ("id", "severity", "services", *(("status",) if statuses is not None else ())):
        id_column(table, column)
    table.add_column("title")
    table.add_column("scope")
    for control in chosen:
        status = (statuses.get(control.id, "not_evaluated"),) if statuses is not None else ()
        table.add_row(control.id, control.severity, ",".join(control.services), *status, control.title, control.scope)
    print_table(make_console(), table)
    return 0


ROLLUP = ("fail", "error", "waived", "pass", "not_applicable", "not_evaluated")  # worst first


def control_statuses(path: str) -> dict[str, str]:
    """control id -> its worst finding's status in that findings.json (a waived failure counts as waived)."""
    from vigil.cli.findings_view import shown_status

    try:
        findings = json.loads(Path(path).read_text(encoding="utf-8"))["findings"]
        seen: dict[str, list[str]] = {}
        for finding in findings:
            seen.setdefault(str(finding["control"]), []).append(shown_status(finding))
    except FileNotFoundError:
        raise UsageError(f"--findings {path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--findings {path}: not a findings.json ({type(exc).__name__}: {exc})") from None
    return {cid: min(found, key=lambda s: ROLLUP.index(s) if s in ROLLUP else len(ROLLUP)) for cid, found in seen.items()}


def run_show(args: argparse.Namespace) -> int:
    console = make_console()
    control = catalogue().get(args.id.upper())
    if control is None:
        raise UsageError(f"unknown control id {args.id!r} (see 'vigil controls')")
    console.print(f"[bold]{control.id}[/] {control.title}  [dim]({control.severity}; {', '.join(control.services)})[/]")
    console.print(f"scope: {control.scope}\npasses when: {control.passes}", markup=False)
    for clause in (control.clause, *control.also):
        console.print(f"enforces: {clause.cite()}", markup=False)
    for framework, refs in control.frameworks.items():
        console.print(f"{framework}: {', '.join(refs)}", markup=False)
    if control.id in remediations():
        print_fix(console, for_control(control.id))
    return 0


def print_fix(console: Console, fix) -> None:
    """How to fix: the paragraph, the AWS CLI commands, the Pulumi snippet (no markup parsing)."""
    console.print("[bold]how to fix[/]")
    console.print(fix.summary, markup=False)
    console.print("[bold]AWS CLI[/]")
    for command in fix.cli:
        console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
    console.print("[bold]Pulumi[/]")
    for line in fix.pulumi.splitlines():
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
