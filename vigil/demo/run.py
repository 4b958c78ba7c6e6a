"""The demo, start to finish: emulator, deploy, seed, break, then check, retain, report, verify."""
from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vigil import safe_write
from vigil.aws import Aws
from vigil.demo import breakage, database, seed
from vigil.demo.deployer import EmulatorMocks, Outcome
from vigil.demo.emulator import DEMO_CREDENTIALS, emulator, load_aws_managed_policies, set_root_mfa
from vigil.evidence import keys
from vigil.infra.components.iam import BACKUP_MANAGED_POLICIES
from vigil.infra.mocks import declare_stack
from vigil.infra.settings import StackSettings
from vigil.policy import Policy, load_policy
from vigil.policy.models import Requests
from vigil.retention.keys import load_keys
from vigil.stages.check import CheckOptions, check
from vigil.stages.common import Target, new_run_id, run_stage
from vigil.stages.report import ReportOptions, report
from vigil.stages.requests import ProcessOptions, process
from vigil.stages.retain import RetainOptions, retain
from vigil.stages.verify import VerifyOptions, verify
from vigil.subjects.erase import EraseRun, erase_subject
from vigil.subjects.requests import RequestLog
from vigil.timestamps import iso_z

DEMO_PSEUDONYM_KEY = base64.b64encode(b"vigil-demo-pseudonym-key-32bytes").decode()  # demo only, never for real data


@dataclass
class DemoRun:
    out: Path
    endpoint: str = ""
    policy: Path | None = None  # the demo's copy of the policy (beside the pack), what later commands take
    deploy: Outcome | None = None
    seeded: seed.Seeded | None = None
    broken: list[breakage.Breakage] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)  # stage -> exit code
    timings: dict[str, float] = field(default_factory=dict)


def demo_environment() -> None:
    """Fake credentials only: nothing in the demo can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(DEMO_CREDENTIALS)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["VIGIL_PSEUDONYM_KEY"] = DEMO_PSEUDONYM_KEY  # fake data, demo key: never a real key here


DEMO_ACCOUNTS = 40  # the PostgreSQL table's calls are made by ACC-00001 .. ACC-00040
DEMO_SUBJECT = "ACC-00005"  # a seeded account whose erase request the demo records and plans
WAIVED_USER = "demo-intern"  # one deliberate failure is also an accepted, expiring risk


DEMO_REQUESTS = Requests()  # the request log the demo adds when the policy names none: vigil-requests, P30D


def with_request_log(policy: Policy) -> Policy:
    """The policy the demo deploys: with the request log its demo policy adds (demo_additions), so the
    stack declares that table with every table's protections; Vigil itself never creates it."""
    return policy if policy.requests is not None else policy.model_copy(update={"requests": DEMO_REQUESTS})


def demo_additions(text: str, today: datetime) -> str:
    """What an organisation adds over time: a waiver with an owner and an expiry, and a request log."""
    if not re.search(r"^waivers:", text, re.M):
        expires = (today + timedelta(days=30)).date().isoformat()
        text += ("\n# Added by `vigil demo`: an accepted risk, shown as waived (its finding keeps its real status).\n"
                 "waivers:\n"
                 f"  - control: MFA-02\n    resource: \"arn:aws:iam::*:user/{WAIVED_USER}\"\n"
                 "    reason: \"Contractor account, MFA device in the mail; console access ends with the contract\"\n"
                 "    owner: security@example.com\n    approval: CHG-2026-0142\n"
                 f"    expires: {expires}\n")
    if not re.search(r"^requests:", text, re.M):
        text += ("\n# Added by `vigil demo`: where subject-rights requests are logged.\n"
                 f"requests: {{table: {DEMO_REQUESTS.table}, deadline: {DEMO_REQUESTS.deadline.text}}}\n")
    return text


def write_demo_policy(source: Path, out: Path, held_subjects: list[str], postgres: bool = False) -> Path:
    text = source.read_text(encoding="utf-8")
    if postgres:
        text = database.with_store(text)
    if not re.search(r"^holds:", text, re.M):
        text = seed.hold_policy_text(text, held_subjects)
    text = demo_additions(text, datetime.now(UTC))
    path = out.parent / f"{out.name}-policy.yaml"  # beside the pack, not in it: its holds name people
    safe_write.write_text(path, text)
    load_policy(path)  # the demo's policy must be as valid as the original
    return path


def shallow(target: Target) -> dict[str, Any]:
    """The target's fields as they are (`asdict` would turn its nested options, e.g. the accounts, into dicts)."""
    return {f.name: getattr(target, f.name) for f in fields(target)}


def run_demo(policy_path: Path, out: Path, seed_value: int = 7, say: Callable[[str], None] = print,
             show: Callable[[str, Any], None] = lambda stage, outcome: None,
             hold: Callable[[DemoRun], None] | None = None) -> DemoRun:
    """The whole demo; `show(stage, outcome)` presents each stage's outcome (the CLI prints it as its command would).
    `hold(run)`, when given, is called after the last stage with the emulator still up (`vigil demo --keep-running`)."""
    demo_environment()
    out.mkdir(parents=True, exist_ok=True)
    run = DemoRun(out=out)
    policy: Policy = load_policy(policy_path)
    started = time.monotonic()

    def lap(name: str) -> None:
        run.timings[name] = round(time.monotonic() - started - sum(run.timings.values()), 2)

    with database.demo_database(datetime.now(UTC), DEMO_ACCOUNTS, say) as postgres, emulator() as endpoint:
        run.endpoint = endpoint
        say(f"emulator: moto on {endpoint} (loopback only, in memory, stopped at the end)")
        aws = Aws(endpoint_url=endpoint)
        account = aws.account_id(policy.regions.primary)
        set_root_mfa(account)
        load_aws_managed_policies(account, set(BACKUP_MANAGED_POLICIES))
        lap("emulator")

        say("deploying the Pulumi program (infra/) into the emulator ...")
        mocks = EmulatorMocks(endpoint, policy.regions.primary, account)
        declare_stack(with_request_log(policy), mocks=mocks)  # the request log is a table of the stack, as in production
        run.deploy = mocks.outcome
        say(f"  {len(mocks.outcome.applied)} resources applied, {len(mocks.outcome.failed)} refused by the emulator, "
            f"{len(mocks.outcome.skipped)} of a type the demo does not apply")
        lap("deploy")

        say("seeding fake personal data ...")
        seeder = seed.Seeder(aws, policy, datetime.now(UTC), seed=seed_value,
                             replica_suffix=StackSettings.defaults(policy).replica_suffix)
        run.seeded = seeder.run()
        say(f"  {run.seeded.subjects} subjects ({run.seeded.closed} closed accounts), "
            f"{sum(run.seeded.objects.values())} objects (replica copies included), "
            f"{sum(run.seeded.records.values())} records; legal holds on {', '.join(run.seeded.held_subjects)} "
            f"and {len(run.seeded.legal_holds)} consent records")
        lap("seed")

        run.broken = breakage.break_things(aws, policy, account)
        for item in run.broken:
            say(f"  broken on purpose ({item.control}): {item.what}")
        run.policy = write_demo_policy(policy_path, out, run.seeded.held_subjects, postgres)
        demo_policy = str(run.policy)
        lap("break")

        def stage(name: str, function: Callable[[Any], Any], options: Any) -> None:
            code, message, outcome = run_stage(function, options)
            run.stages[name] = code
            if outcome is not None:
                show(name, outcome)
            if message:
                say(f"  [yellow]{name}: {message}[/]")

        target = Target(policy=demo_policy, endpoint_url=endpoint, output=out)
        # The signing key sits beside the run folder: a pack must not carry its own private key.
        keys_dir = out.parent / f"{out.name}-keys"
        signing_key = keys_dir / "signing.key"
        if not signing_key.exists():
            keys.generate(keys_dir)
            say(f"signing key: {signing_key} (public key {keys_dir / 'signing.pub'})")
        stage("check", check, CheckOptions(**shallow(target)))
        lap("check")
        # One open erase request, and the plan that would answer it (a dry run: nothing changes).
        say(f"subject rights: an erase request for {DEMO_SUBJECT}, and its plan ...")
        request = RequestLog(aws, load_policy(demo_policy)).add(DEMO_SUBJECT, "erase", datetime.now(UTC))
        say(f"  {request.id}: {request.kind} request received {iso_z(request.received_at)}, due by {iso_z(request.deadline)}")
        stage("subject erase", plan_subject_erase, SubjectPlan(target, out.parent / f"{out.name}-subject"))
        # The request's counts (no ids, no subject) go into the pack, for its "Subject requests" section.
        stage("subject requests", process, ProcessOptions(**shallow(target)))
        lap("subject")
        # A year ahead: what the job will delete and anonymize as data ages (nothing is past retention today).
        as_of = datetime.now(UTC) + timedelta(days=365)
        say(f"retention dry run as of {iso_z(as_of)} (one year from now; nothing changes) ...")
        stage("retain", retain, RetainOptions(**{**shallow(target), "as_of": as_of}))
        lap("retain")
        # The signed pack also goes to the stack's Object Lock evidence bucket, as in production.
        evidence_bucket = f"{StackSettings.defaults(policy).name_prefix}-evidence"
        stage("report", report, ReportOptions(out, policy=demo_policy, endpoint_url=endpoint, region=policy.regions.primary,
                                              upload=f"s3://{evidence_bucket}/packs/{out.name}", signing_key=str(signing_key)))
        stage("verify", verify, VerifyOptions(out, keys_dir / "signing.pub"))
        lap("report")
        if hold is not None:
            hold(run)
    return run


@dataclass(frozen=True)
class SubjectPlan:
    target: Target
    output: Path  # beside the pack, never in it: the plan is about one person


def plan_subject_erase(options: SubjectPlan) -> EraseRun:
    """The plan that would answer the demo subject's erase request (a dry run: nothing changes)."""
    target = options.target
    policy = load_policy(target.policy)
    aws = Aws(endpoint_url=target.endpoint_url)
    options.output.mkdir(parents=True, exist_ok=True)
    return erase_subject(aws, policy, load_keys(policy, aws), DEMO_SUBJECT, target.when(), options.output, new_run_id())


def findings(out: Path) -> list[dict]:
    path = out / "findings.json"
    return json.loads(path.read_text())["findings"] if path.exists() else []
