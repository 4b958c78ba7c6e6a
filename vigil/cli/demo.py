"""`vigil demo`: an embedded AWS emulator, the project's stack deployed into it with seeded
personal data and three deliberate mistakes, then check, retain (dry run) and report."""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
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
    parser.add_argument("--keep-running", action="store_true",
                        help="after the job, keep the emulator running (until Ctrl-C) and print its endpoint and an export "
                             "line, to try every command against it")
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

    def hold(result: Any) -> None:
        print_results(console, demo, result, out)
        keep_running(console, demo, result, out)

    result = demo.run_demo(_policy_path(args.policy), out, seed_value=args.seed, say=console.print, show=show_stage,
                           hold=hold if args.keep_running else None)
    if not args.keep_running:
        print_results(console, demo, result, out)
    # The check is expected to exit 1 (the deliberate failures); anything else means the demo broke.
    return 0 if result.stages.get("check") in (0, 1) else 1


def export_line(endpoint: str, credentials: dict[str, str], pseudonym_key: str) -> str:
    """What a shell needs to reach the emulator the way the demo did (fake credentials, the demo's key)."""
    values = {"AWS_ENDPOINT_URL": endpoint, **credentials, "VIGIL_PSEUDONYM_KEY": pseudonym_key}
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in values.items())


def keep_running(console: Any, demo: ModuleType, result: Any, out: Path) -> None:
    """Print the endpoint and an export line, then wait (the emulator stays up) until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    # Both signals end the wait (a shell's background job ignores SIGINT unless a handler is set).
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGINT, signal.SIGTERM)}
    console.rule("[bold]Vigil demo: the emulator keeps running")
    console.print(f"endpoint: {result.endpoint}", markup=False, soft_wrap=True)
    console.print("In another shell:", markup=False)
    console.print(f"  {export_line(result.endpoint, demo.DEMO_CREDENTIALS, demo.DEMO_PSEUDONYM_KEY)}", markup=False, soft_wrap=True)
    console.print(f"  vigil check --policy {shlex.quote(str(result.policy))}", markup=False, soft_wrap=True)
    console.print("Press Ctrl-C to stop the emulator (its data is in memory and goes with it).", markup=False)
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    console.print("emulator stopped", markup=False)


def print_results(console: Any, demo: ModuleType, result: Any, out: Path) -> None:
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
