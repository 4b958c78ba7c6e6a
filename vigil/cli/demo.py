"""`vigil demo`: an embedded AWS emulator, the project's stack deployed into it with seeded
personal data and three deliberate mistakes, then check, retain (dry run) and report."""
from __future__ import annotations

import argparse
from collections import defaultdict
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from vigil.cli import check, common
from vigil.cli.console import make_console
from vigil.cli.run import show_stage as show_job_stage
from vigil.errors import UsageError
from vigil.subjects.show import print_found


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="deploy the stack into an embedded emulator, seed data, break three things, run the job",
        description="Start moto on loopback, deploy infra/ into it, seed fake personal data, break three resources "
                    "on purpose, then run check, retain (dry run) and report into one folder. No cloud account needed.")
    parser.add_argument("--policy", default=None, metavar="FILE", help="the policy to deploy (default ./policy.yaml, else the repository's)")
    parser.add_argument("--output", metavar="DIR", help="the run folder (default ./evidence-out/demo-<run-id>/)")
    parser.add_argument("--seed", type=int, default=7, help="seed for the fake data (same seed, same data)")
    parser.set_defaults(handler=run)


DEMO_EXTRA = ("moto", "flask", "werkzeug", "pulumi", "pulumi_aws", "pulumi_policy")  # what `vigil[demo]` installs


def _policy_path(value: str | None) -> Path:
    """--policy, else ./policy.yaml, else the example policy shipped with the demo (package data)."""
    if value:
        return Path(value)
    here = Path("policy.yaml")
    return here if here.exists() else Path(str(resources.files("vigil.demo").joinpath("policy.yaml")))


def _load_demo() -> ModuleType:
    """The demo module; without the `demo` extra (moto, Pulumi) a plain message and exit 2, not a traceback."""
    try:
        from vigil.demo import run as demo
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in DEMO_EXTRA:
            raise
        raise UsageError(f"vigil demo needs its extra ({exc.name} is not installed): pip install 'vigil[demo]'") from None
    return demo


def show_stage(stage: str, outcome: Any) -> None:
    """Each stage's outcome as its own command prints it; the check with its explanations."""
    if stage == "check":
        check.show(outcome, explain=True)
    elif stage == "subject erase":
        print_found(outcome.found, make_console(), f"Erase subject {outcome.subject_hash[:16]}…: dry run (nothing changed)")
    else:
        show_job_stage(stage, outcome)


def run(args: argparse.Namespace) -> int:
    demo = _load_demo()
    console = make_console()
    out = Path(args.output) if args.output else Path("evidence-out") / f"demo-{common.new_run_id()}"
    result = demo.run_demo(_policy_path(args.policy), out, seed_value=args.seed, say=console.print, show=show_stage)

    console.rule("[bold]Vigil demo: results")
    all_findings = demo.findings(out)
    deliberate = {(b.control, b.resource) for b in result.broken}
    fails = [f for f in all_findings if f["status"] == "fail"]
    console.print(f"[bold]{len(fails)} failed[/] (the three deliberate mistakes are expected):")
    for f in fails:
        tag = "[green]deliberate[/]" if (f["control"], f["resource"]) in deliberate else "[red]unexpected[/]"
        waived = f.get("waived")
        note = f" [cyan](waived until {waived['expires']} by {waived['owner']}, {waived['approval']})[/]" if waived else ""
        console.print(f"  {tag} {f['control']} {f['resource']}: {f['reason']}{note}")
    missing = deliberate - {(f["control"], f["resource"]) for f in fails}
    for control, resource in sorted(missing):
        console.print(f"  [yellow]not caught[/] {control} {resource} (is its evaluator or collector in place?)")
    errors: dict[str, list[str]] = defaultdict(list)
    for f in all_findings:
        if f["status"] == "error":
            errors[f["reason"]].append(f"{f['control']} {f['resource']}")
    if errors:
        console.print(f"[bold]{sum(map(len, errors.values()))} could not be evaluated[/] (the emulator lacks these APIs; on AWS they are read normally):")
        for reason, where in sorted(errors.items()):
            console.print(f"  [yellow]error[/] {reason} ({len(where)}: {', '.join(sorted(where)[:3])}{' ...' if len(where) > 3 else ''})")
    if result.deploy and result.deploy.failed:
        console.print("[bold]resources the emulator refused at deploy time[/] (AWS accepts them):")
        for resource, reason in result.deploy.failed:
            console.print(f"  {resource.type} {resource.name}: {reason.splitlines()[0][:200]}")
    if result.deploy and result.deploy.skipped:
        console.print("[bold]resource types the demo does not apply[/]: " + ", ".join(sorted({r.type for r in result.deploy.skipped})))
    console.print(f"stages: {', '.join(f'{name} exit {code}' for name, code in result.stages.items())}")
    console.print(f"timings (s): {', '.join(f'{k} {v}' for k, v in result.timings.items())}")
    console.print(f"[bold]results:[/] {out.resolve()}  (findings.json, retention-plan.json, report.html, report.md, manifest.json)")
    subject_plan = out.parent / f"{out.name}-subject" / "subject-erase.json"
    if subject_plan.exists():
        console.print(f"[bold]erase plan for the demo's open request:[/] {subject_plan.resolve()}")
    # The check is expected to exit 1 (the deliberate failures); anything else means the demo broke.
    return 0 if result.stages.get("check") in (0, 1) else 1
