"""`vigil controls`: list the control catalogue; `vigil controls show ID`: one control's card."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from vigil.checks.catalogue import catalogue
from vigil.checks.remediation import for_control, remediations
from vigil.errors import UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("controls", help="list the control catalogue")
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    parser.add_argument("id", nargs="?", help="control id for 'show'")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    controls = catalogue()
    if args.action == "show":
        control = controls.get((args.id or "").upper())
        if control is None:
            raise UsageError(f"unknown control id {args.id!r} (see 'vigil controls')")
        console.print(f"[bold]{control.id}[/] {control.title}  [dim]({control.severity})[/]")
        console.print(f"scope: {control.scope}\npasses when: {control.passes}")
        for clause in (control.clause, *control.also):
            console.print(f"enforces: {clause.cite()}")
        for framework, refs in control.frameworks.items():
            console.print(f"{framework}: {', '.join(refs)}")
        if control.id in remediations():
            print_fix(console, for_control(control.id))
        return 0
    table = Table(title=f"Vigil control catalogue ({len(controls)} controls)")
    for column in ("id", "severity", "title", "scope"):
        table.add_column(column)
    for control in controls.values():
        table.add_row(control.id, control.severity, control.title, control.scope)
    console.print(table)
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
