"""The console summary after a check, from findings.json: tables by severity and by service, the
failing findings grouped by root cause, and (with --verbose) the passing ones.

A root cause is what one fix repairs: failures on one resource (a missing or misconfigured
bucket fails about ten controls) are one cause listing its controls; errors with the same
reason (an API the caller may not read) are one cause listing where it struck.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from vigil.checks.formats.fields import controls_by_id, service_of
from vigil.checks.gate import is_new
from vigil.checks.selection import SEVERITIES
from vigil.cli.console import id_column, print_table

SHOWN = ("fail", "error", "waived", "pass", "not_applicable")
STYLE = {"fail": "bold red", "error": "yellow", "waived": "cyan", "pass": "green", "not_applicable": "dim"}


def shown_status(finding: dict[str, Any]) -> str:
    return "waived" if finding.get("status") in ("fail", "error") and finding.get("waived") else str(finding.get("status"))


def counts_table(title: str, rows: list[str], findings: list[tuple[str, dict[str, Any]]]) -> Table:
    """One row per key (severity or service), one column per status, totals below."""
    table = Table(title=title, title_justify="left")
    id_column(table, title.split()[-1])
    columns = ("pass", "fail", "error", "waived")
    for column in columns:
        table.add_column(column, justify="right")
    counts = Counter((key, shown_status(f)) for key, f in findings)
    for key in rows:
        cells = [counts[(key, c)] for c in columns]
        table.add_row(key, *[f"[{STYLE[c]}]{n}[/]" if n and c != "pass" else str(n) for c, n in zip(columns, cells, strict=True)])
    table.add_section()
    table.add_row("total", *[str(sum(counts[(key, c)] for key in rows)) for c in columns])
    return table


@dataclass
class Cause:
    title: str
    status: str  # fail or error
    severity: str
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def controls(self) -> list[str]:
        return sorted({str(f["control"]) for f in self.findings})


def causes(findings: list[dict[str, Any]], controls: dict[str, dict[str, Any]]) -> list[Cause]:
    """Unwaived failures grouped by resource, errors by reason; worst severity first."""
    grouped: dict[tuple[str, str], Cause] = {}
    for finding in findings:
        status = str(finding.get("status"))
        if status not in ("fail", "error") or finding.get("waived"):
            continue
        key = (status, str(finding["resource"]) if status == "fail" else str(finding.get("reason")))
        cause = grouped.setdefault(key, Cause(key[1], status, "low"))
        cause.findings.append(finding)
        severity = str(controls.get(str(finding["control"]), {}).get("severity", "low"))
        if severity in SEVERITIES and SEVERITIES.index(severity) < SEVERITIES.index(cause.severity):
            cause.severity = severity
    return sorted(grouped.values(), key=lambda c: (c.status != "fail", SEVERITIES.index(c.severity), -len(c.findings), c.title))


def print_causes(console: Console, document: dict[str, Any], baseline: set | None) -> None:
    def say(*objects: Any, **options: Any) -> None:  # a cause's line is never wrapped inside an ARN
        console.print(*objects, soft_wrap=True, **options)

    found = causes(document["findings"], controls_by_id(document))
    if not found:
        return
    total = sum(len(c.findings) for c in found)
    say(f"\n[bold]Failing findings by root cause[/] ({total} finding(s), {len(found)} cause(s))")
    run = document["run"]
    for number, cause in enumerate(found, start=1):
        new = sum(1 for f in cause.findings if is_new(f, run, baseline))
        tag = f" [magenta]{new} new[/]" if new else ""
        if cause.status == "fail":
            say(f"{number}. [{STYLE['fail']}]fail[/] ({cause.severity}) ", end="")
            say(cause.title, markup=False, end="")
            say(f": {len(cause.findings)} control(s) {', '.join(cause.controls)}{tag}")
            reasons = {str(f.get("reason", "")) for f in cause.findings}
            if len(reasons) == 1:  # one cause, one sentence (a missing bucket fails every control the same way)
                say("     " + reasons.pop(), markup=False)
                continue
            for finding in sorted(cause.findings, key=lambda f: f["control"]):
                say(f"     {finding['control']}: ", end="")
                say(str(finding.get("reason", "")), markup=False)
        else:
            say(f"{number}. [{STYLE['error']}]error[/] ({cause.severity}) ", end="")
            say(cause.title, markup=False, end="")
            say(f" ({len(cause.findings)} finding(s)){tag}")
            for finding in sorted(cause.findings, key=lambda f: (f["control"], f["resource"])):
                say(f"     {finding['control']} ", end="")
                say(str(finding["resource"]), markup=False)


def findings_table(title: str, findings: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    id_column(table, "control")
    table.add_column("status", no_wrap=True)
    id_column(table, "resource")
    table.add_column("reason", overflow="fold")
    for finding in sorted(findings, key=lambda f: (SHOWN.index(shown_status(f)), f["control"], f["resource"])):
        status = shown_status(finding)
        reason = str(finding.get("reason", ""))
        if status == "waived":
            w = finding["waived"]
            reason += f" (waived until {w.get('expires')} by {w.get('owner')}, {w.get('approval')}: {w.get('reason')})"
        table.add_row(str(finding["control"]), f"[{STYLE[status]}]{status}[/]", str(finding["resource"]), reason)
    return table


def print_summary(console: Console, document: dict[str, Any], statuses: tuple[str, ...], verbose: bool, baseline: set | None) -> None:
    controls = controls_by_id(document)
    findings = document["findings"]
    by_severity = [(str(controls.get(f["control"], {}).get("severity", "")), f) for f in findings]
    print_table(console, counts_table("Findings by severity", [s for s in SEVERITIES if any(k == s for k, _ in by_severity)], by_severity))
    by_service = [(service_of(f, controls.get(f["control"])), f) for f in findings]
    print_table(console, counts_table("Findings by service", sorted({k for k, _ in by_service}), by_service))
    wanted = statuses or (("fail", "error", "waived", "pass", "not_applicable") if verbose else ("fail", "error", "waived"))
    if not statuses or {"fail", "error"} & set(statuses):
        print_causes(console, {**document, "findings": [f for f in findings if shown_status(f) in wanted]}, baseline)
    rest = [f for f in findings if shown_status(f) in wanted and shown_status(f) not in ("fail", "error")]
    if rest:
        print_table(console, findings_table(f"Other findings shown ({', '.join(s for s in wanted if s not in ('fail', 'error'))})", rest))
